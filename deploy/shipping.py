"""Which resilq modules a deployment package carries: the import closure of the board-side entry points.

The board runs the package's own copy of resilq (``lib/resilq``), not an installed one: exactly the
modules the board-side commands import, found by walking their ``import`` statements with :mod:`ast`
(imports inside functions included, so a lazy import is shipped too), minus the host-only modules in
:data:`HOST_ONLY`. :func:`third_party_imports` lists what else they import, for the check that the
shipped code needs nothing but the standard library, numpy and (for the board target) pynq.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from collections.abc import Iterable
from pathlib import Path

from resilq.errors import ResilqError

#: Where the board-side commands start.
ENTRY_MODULES = ("resilq.deploy.cli", "resilq.deploy.package", "resilq.deploy.emulator", "resilq.deploy.pynq_ip",
                 "resilq.deploy.targets", "resilq.deploy.environment", "resilq.deploy.campaign", "resilq.boards")
#: Imported lazily by shipped code but never needed on the board (they need g++ or the C++ sources).
HOST_ONLY = frozenset({"resilq.hls.csim", "resilq.hls.codegen", "resilq.hls.project", "resilq.hls.vectors",
                       "resilq.hls.simulate", "resilq.hls.cli", "resilq.deploy.build"})
#: What shipped code may import at module level besides resilq and the standard library (pynq: only the
#: board binding, which the board target alone imports).
MODULE_LEVEL_ALLOWED = {"*": frozenset({"numpy"}), "resilq.deploy.pynq_ip": frozenset({"numpy", "pynq"})}
#: Optional libraries shipped code imports inside functions, and why the board can do without them.
OPTIONAL_IMPORTS = {
    "resilq.data": {"sklearn": "the digits dataset only", "scipy": "the digits dataset only"},
    "resilq.ui": {"rich": "plain-text tables and progress without it"},
    "resilq.deploy.environment": {"pynq": "probed inside try"},
    "resilq.boards": {"tomli": "the board.json snapshot without it"},
    "resilq.campaign.statistics": {"scipy": "confidence intervals: resilq report on the host"},
    "resilq.faultsim.simulator": {"threadpoolctl": "BLAS thread limit while propagating; skipped without it"},
    "resilq.faultsim.backend": {"torch": "--device cpu|cuda only: the board runs the numpy backend"},
    "resilq.campaign.distributed": {"distributed": "Dask sharding: host only (the board runs faults in-process)",
                                    "dask_jobqueue": "Dask sharding: host only",
                                    "threadpoolctl": "Dask workers only"},
}
#: Data files shipped with their package (relative to the package folder).
PACKAGE_DATA = {"resilq.boards": ("*/board.toml",)}


def module_file(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise ResilqError(f"cannot locate module {name}")
    return Path(spec.origin)


def is_package(name: str) -> bool:
    return module_file(name).name == "__init__.py"


def _module_level_nodes(tree: ast.Module) -> list[ast.AST]:
    """Statements executed on import: the module body, descending into if/try but not into defs."""
    out, todo = [], list(tree.body)
    while todo:
        node = todo.pop()
        out.append(node)
        if isinstance(node, (ast.If, ast.Try)):
            todo += node.body + node.orelse + getattr(node, "finalbody", [])
            for handler in getattr(node, "handlers", []):
                todo += handler.body
    return out


def _imports(name: str, module_level: bool = False) -> tuple[set[str], set[str]]:
    """(resilq modules, other top-level modules) imported in module ``name`` (anywhere, or on import only)."""
    path = module_file(name)
    tree = ast.parse(path.read_text(), str(path))
    package = name if is_package(name) else name.rpartition(".")[0]
    ours, others = set(), set()
    for node in (_module_level_nodes(tree) if module_level else ast.walk(tree)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                (ours if alias.name.split(".")[0] == "resilq" else others).add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "resilq":
                others.add(target)
                continue
            ours.add(target)
            for alias in node.names:  # ``from . import regmap`` imports a module
                candidate = f"{target}.{alias.name}"
                if importlib.util.find_spec(target) and _exists(candidate):
                    ours.add(candidate)
    return ours, {o.split(".")[0] for o in others if o}


def _exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def closure(entries: Iterable[str] = ENTRY_MODULES) -> list[str]:
    """Every resilq module the entries import, transitively, with their parent packages; sorted."""
    todo, seen = list(entries), set()
    while todo:
        name = todo.pop()
        if name in seen or name in HOST_ONLY:
            continue
        seen.add(name)
        parts = name.split(".")
        todo += [".".join(parts[:k]) for k in range(1, len(parts))]
        ours, _ = _imports(name)
        todo += [m for m in ours if m not in seen]
    return sorted(seen)


def third_party_imports(modules: Iterable[str], module_level: bool = False) -> dict[str, set[str]]:
    """For each module, the non-resilq, non-standard-library top-level modules it imports."""
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    out = {}
    for name in modules:
        _, others = _imports(name, module_level)
        extra = {o for o in others if o not in stdlib}
        if extra:
            out[name] = extra
    return out


def import_problems(modules: Iterable[str]) -> list[str]:
    """Imports that would keep shipped code from running on the board image (empty: none)."""
    modules = list(modules)
    problems = []
    for name, extra in third_party_imports(modules, module_level=True).items():
        bad = extra - MODULE_LEVEL_ALLOWED.get(name, MODULE_LEVEL_ALLOWED["*"])
        if bad:
            problems.append(f"{name} imports {sorted(bad)} on import")
    for name, extra in third_party_imports(modules).items():
        bad = extra - MODULE_LEVEL_ALLOWED.get(name, MODULE_LEVEL_ALLOWED["*"]) - set(OPTIONAL_IMPORTS.get(name, {}))
        if bad:
            problems.append(f"{name} imports {sorted(bad)} (not an optional import of the board image)")
    return problems


def relative_path(name: str) -> Path:
    """Where module ``name`` goes under ``lib/`` (``resilq.hls.regmap`` -> ``resilq/hls/regmap.py``)."""
    parts = name.split(".")
    if is_package(name):
        return Path(*parts) / "__init__.py"
    return Path(*parts[:-1]) / f"{parts[-1]}.py"


def copy_modules(modules: Iterable[str], lib: Path) -> list[Path]:
    """Copy the modules' sources (and their package data) into ``lib``; returns the written files."""
    written = []
    for name in modules:
        dest = lib / relative_path(name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(module_file(name).read_bytes())
        written.append(dest)
        for pattern in PACKAGE_DATA.get(name, ()):
            src_dir = module_file(name).parent
            for data in sorted(src_dir.glob(pattern)):
                out = dest.parent / data.relative_to(src_dir)
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(data.read_bytes())
                written.append(out)
    return written
