"""Errors a user can act on. Every message names the offending thing (file, layer, shape, value)."""


class ResilqError(Exception):
    """Base class: the CLI prints these as one-line errors instead of a traceback."""


class FormatError(ResilqError):
    """A resilq file (.rq, .nvf, package) is corrupt, truncated, of another kind or of another version."""


class UnsupportedModelError(ResilqError):
    """A model uses a layer, quantizer or size that resilq (or the accelerator) cannot represent."""


class DatasetError(ResilqError):
    """A dataset is missing or its files are malformed."""


class ShapeError(ResilqError):
    """An input or tensor has the wrong shape or dtype for the model."""


class MismatchError(ResilqError):
    """Two artefacts that must belong together do not (e.g. an NVF file computed for another model)."""


class ParameterError(ResilqError, ValueError):
    """A user-supplied parameter is out of range (a threshold outside [0, 1], a ratio >= 1, ...)."""


#: SQLite's messages for a full disk, a read-only file or folder and an unreadable file (sqlite3.OperationalError
#: carries no errno): the store reports these like the OS errors they are.
SQLITE_OS_MESSAGES = ("database or disk is full", "attempt to write a readonly database", "unable to open database",
                      "disk I/O error", "readonly database")


def user_error_message(exc: BaseException) -> str | None:
    """One line for an error the user can act on -- a :class:`ResilqError`, an OS error (EACCES, ENOSPC,
    EROFS, ENOENT, ...), SQLite's disk errors, running out of memory -- or None for a genuine bug (the CLI
    shows its traceback)."""
    import errno
    import sqlite3

    if isinstance(exc, ResilqError):
        return str(exc)
    if isinstance(exc, OSError):
        code = errno.errorcode.get(exc.errno or 0, "")
        text = exc.strerror or str(exc)
        where = "".join(f": {f}" for f in (exc.filename, exc.filename2) if f is not None)
        return f"{text}{f' ({code})' if code else ''}{where}"
    if isinstance(exc, sqlite3.OperationalError) and any(m in str(exc) for m in SQLITE_OS_MESSAGES):
        return f"database: {exc}"
    if isinstance(exc, MemoryError):
        return f"out of memory{f' ({exc})' if str(exc) else ''}: the input is larger than this machine can hold"
    return None


def run_command(command: str, func, *args) -> int:
    """Run a sub-command (host CLI and a package's board entry): a user error -- bad input, a full disk, a
    read-only folder -- ends as ``resilq COMMAND: error: ...`` on stderr and exit 2; only a genuine bug
    shows a traceback; Ctrl-C exits 130."""
    import sys

    try:
        return int(func(*args) or 0)
    except KeyboardInterrupt:
        print(f"resilq {command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        message = user_error_message(exc)
        if message is None:
            raise
        print(f"resilq {command}: error: {message}", file=sys.stderr)
        return 2
