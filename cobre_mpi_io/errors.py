"""The one error hierarchy of cobre_mpi_io.

Every failure the package reports is an :class:`OutputError` of exactly one
of four kinds.  Each kind carries its context (path, entity, file, column)
and is also the matching built-in exception, so callers that already catch
``OSError`` or ``ValueError`` keep working:

========================  =====================  ==========================
kind                      also a                 carries
========================  =====================  ==========================
:class:`IoError`          ``OSError``            ``path``, ``cause``
:class:`SerializationError` ``RuntimeError``     ``entity``
:class:`SchemaError`      ``ValueError``         ``file``, ``column``
:class:`ManifestError`    ``ValueError``         ``manifest``
========================  =====================  ==========================

Errors are raised ``from`` their cause, and they pickle (they cross MPI
ranks when a failure is agreed collectively).
"""

from __future__ import annotations

__all__ = ["IoError", "ManifestError", "OutputError", "SchemaError", "SerializationError", "as_output_error"]


class OutputError(Exception):
    """Base class of every error raised by cobre_mpi_io."""

    kind = "output"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (_rebuild, (type(self), self.__dict__.copy()))


def _rebuild(cls: type[OutputError], state: dict[str, object]) -> OutputError:
    err = cls.__new__(cls)
    Exception.__init__(err, state.get("message", ""))
    err.__dict__.update(state)
    return err


class IoError(OutputError, OSError):
    """A filesystem operation failed (permission, disk full, rename failure).

    Parameters
    ----------
    path : str
        The file or directory the operation was about.
    cause : str
        Short reason: ``"permission"``, ``"disk full"``, ``"rename"``, ...
    detail : str, optional
        The underlying system message.
    """

    kind = "io"

    def __init__(self, path: object, cause: str, detail: str = "") -> None:
        self.path = str(path)
        self.cause = cause
        msg = f"I/O error ({cause}) on {self.path}"
        if detail:
            msg += f": {detail}"
        OutputError.__init__(self, msg)

    @classmethod
    def from_os_error(cls, path: object, exc: BaseException) -> IoError:
        """Classify an ``OSError`` into an :class:`IoError` naming ``path``."""
        import errno

        code = getattr(exc, "errno", None)
        cause = {
            errno.ENOSPC: "disk full",
            errno.EFBIG: "disk full",
            errno.EDQUOT: "disk full",
            errno.EACCES: "permission",
            errno.EPERM: "permission",
            errno.EROFS: "permission",
            errno.ENOENT: "not found",
        }.get(code, "os error") if code is not None else "os error"
        return cls(path, cause, str(exc))


class SerializationError(OutputError, RuntimeError):
    """Encoding to Arrow/Parquet/FlatBuffers/JSON failed.

    Parameters
    ----------
    entity : str
        What was being encoded (table, stage file, manifest, ...).
    message : str
        What went wrong.
    """

    kind = "serialization"

    def __init__(self, entity: str, message: str) -> None:
        self.entity = entity
        OutputError.__init__(self, f"serialization error in {entity}: {message}")


class SchemaError(OutputError, ValueError):
    """Data does not match the spec schema.

    Missing/extra column, wrong type or shape, null or NaN in a non-nullable
    column, unknown entity id, a scenario this rank does not own.

    Parameters
    ----------
    file : str
        The table or file the data was meant for (e.g. ``"hydros"``,
        ``"hydros/scenario_id=0003/data.parquet"``, ``"cuts/stage_004.bin"``).
    column : str or None
        The offending column or field, when there is one.
    message : str
        What is wrong.
    """

    kind = "schema"

    def __init__(self, file: str, column: str | None, message: str) -> None:
        self.file = file
        self.column = column
        where = f"{file}" + (f", column {column!r}" if column else "")
        OutputError.__init__(self, f"schema error in {where}: {message}")


class ManifestError(OutputError, ValueError):
    """A manifest is corrupt, inconsistent, or fails its checksum.

    Parameters
    ----------
    manifest : str
        Which manifest (``"simulation"``, ``"training"``, ``"policy"``) or
        its path.
    message : str
        What is wrong.
    """

    kind = "manifest"

    def __init__(self, manifest: str, message: str) -> None:
        self.manifest = manifest
        OutputError.__init__(self, f"manifest error ({manifest}): {message}")


def as_output_error(exc: BaseException, entity: str) -> OutputError:
    """Map any exception to an :class:`OutputError` naming ``entity``.

    An :class:`OutputError` is returned as is; an ``OSError`` becomes an
    :class:`IoError` (naming the exception's filename, else ``entity``);
    Arrow/NumPy encoding failures and everything else become a
    :class:`SerializationError`. The original is kept as ``__cause__``.
    """
    if isinstance(exc, OutputError):
        return exc
    if isinstance(exc, OSError):
        err: OutputError = IoError.from_os_error(getattr(exc, "filename", None) or entity, exc)
    else:
        err = SerializationError(entity, f"{type(exc).__name__}: {exc}")
    err.__cause__ = exc
    return err
