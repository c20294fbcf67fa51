"""Names read from files (layer and model names, labels) made safe to use inside a file name.

A name inside an ``.nvf``, ``.rq`` or package is data from whoever wrote the file: ``x/../../evil`` or
``..`` must never take a write outside the output folder. :func:`file_component` turns any name into one
plain path component; :func:`inside` checks that a path resolves inside its folder.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from .errors import ParameterError

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
#: Longest component made from a name (file systems allow 255 bytes; leave room for prefixes and suffixes).
MAX_COMPONENT = 64


def file_component(name: str) -> str:
    """``name`` as one path component: ``[A-Za-z0-9_.-]`` only, no leading dot, at most 64 characters.

    A name that had to be changed gets a short digest of the original appended, so two different names
    (``conv/1`` and ``conv_1``) never map to the same file.
    """
    text = str(name)
    safe = _UNSAFE.sub("_", text).lstrip(".") or "unnamed"
    if safe == text and len(safe) <= MAX_COMPONENT:
        return safe
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{safe[:MAX_COMPONENT - 9]}-{digest}"


def inside(directory: str | os.PathLike, path: str | os.PathLike) -> Path:
    """``path`` if it resolves inside ``directory`` (symlinks followed), else a :class:`ParameterError`."""
    base, target = Path(directory).resolve(), Path(path).resolve()
    if target != base and base not in target.parents:
        raise ParameterError(f"{path} would be written outside {directory}; refusing")
    return Path(path)
