"""Parquet encoding with the spec settings (SPEC §3), used by every Parquet writer.

One frozen :class:`ParquetConfig` holds the settings; :func:`encode_table`
turns an Arrow table into Parquet bytes in memory; :func:`write_parquet`
checks the schema, encodes, hashes the bytes while they are hot (xxhash64)
and writes them through the one atomic-write primitive, returning a
:class:`FileRecord` of what was written.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from .atomic import write_bytes_atomic
from .errors import SchemaError, SerializationError
from .hashing import xxh64_hex
from .schemas import TableSchema

__all__ = ["FileRecord", "ParquetConfig", "check_schema", "encode_table", "write_parquet"]


@dataclass(frozen=True)
class ParquetConfig:
    """Parquet settings (defaults: SPEC §3).

    Attributes
    ----------
    compression : str
        Codec, ``"zstd"``.
    compression_level : int
        Codec level, 3.
    row_group_size : int
        Maximum rows per row group, 100,000.
    dictionary_page_limit : int
        Dictionary page size limit in bytes (~1 MB).
    write_statistics : bool
        Column statistics on.
    dictionary_on_keys_only : bool
        Dictionary-encode only id/code columns (floats plain). ``False``
        gives pyarrow's default (dictionary on every column).
    """

    compression: str = "zstd"
    compression_level: int = 3
    row_group_size: int = 100_000
    dictionary_page_limit: int = 1 << 20
    write_statistics: bool = True
    dictionary_on_keys_only: bool = True

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the settings."""
        return asdict(self)


@dataclass(frozen=True)
class FileRecord:
    """What a writer wrote: path relative to its root, rows, bytes, xxhash64 hex."""

    path: str
    rows: int
    bytes: int
    xxhash64: str

    def to_dict(self) -> dict[str, Any]:
        """The manifest form ``{rows, bytes, xxhash64}`` (path is the key)."""
        return {"rows": self.rows, "bytes": self.bytes, "xxhash64": self.xxhash64}


def encode_table(tbl: pa.Table, schema: TableSchema, config: ParquetConfig,
                 metadata: Mapping[bytes, bytes] | None = None) -> pa.Buffer:
    """Encode ``tbl`` (already in ``schema``) to Parquet bytes in memory.

    Parameters
    ----------
    tbl : pyarrow.Table
        The rows, already checked against ``schema`` (:func:`check_schema`).
    schema : TableSchema
        The spec table: its name for errors, its key columns for dictionary encoding.
    config : ParquetConfig
        Codec, level, row-group size, dictionary and statistics settings.
    metadata : Mapping of bytes to bytes, optional
        The footer's key-value metadata (the run fingerprint,
        :data:`~cobre_mpi_io.identity.FOOTER_KEY`), replacing any metadata
        ``tbl`` carries; ``None`` or empty drops it.

    Returns
    -------
    pyarrow.Buffer
        The complete Parquet file.

    Raises
    ------
    SerializationError
        Naming the table when Arrow/Parquet encoding fails.
    """
    if metadata or tbl.schema.metadata:
        tbl = tbl.replace_schema_metadata(dict(metadata) if metadata else None)
    sink = pa.BufferOutputStream()
    use_dict: bool | list[str] = schema.key_columns if config.dictionary_on_keys_only else True
    try:
        pq.write_table(
            tbl,
            sink,
            compression=config.compression,
            compression_level=config.compression_level,
            row_group_size=config.row_group_size,
            use_dictionary=use_dict,
            dictionary_pagesize_limit=config.dictionary_page_limit,
            write_statistics=config.write_statistics,
        )
    except (pa.ArrowException, ValueError, TypeError) as exc:
        raise SerializationError(schema.name, f"Parquet encoding failed: {exc}") from exc
    return sink.getvalue()


def check_schema(tbl: pa.Table, schema: TableSchema, file: str) -> None:
    """Raise :class:`SchemaError` unless ``tbl`` has exactly the spec schema and no illegal nulls.

    Parameters
    ----------
    tbl : pyarrow.Table
        The rows to check.
    schema : TableSchema
        The spec table: column names in order, Arrow types and nullability.
    file : str
        The file the rows are for, named in the error.

    Raises
    ------
    SchemaError
        Naming ``file`` and the first offending column: a missing or extra
        column, columns out of spec order, a type other than the spec's, or
        a null in a non-nullable column.
    """
    expected = schema.arrow_schema
    if tbl.schema.names != expected.names:
        missing = [n for n in expected.names if n not in tbl.schema.names]
        extra = [n for n in tbl.schema.names if n not in expected.names]
        col = (missing or extra or [None])[0]
        raise SchemaError(file, col, f"columns differ from the spec: missing {missing}, extra {extra}"
                          if missing or extra else "columns are not in spec order")
    for f, e in zip(tbl.schema, expected):
        if f.type != e.type:
            raise SchemaError(file, f.name, f"type {f.type} where the spec says {e.type}")
        if not e.nullable and tbl.column(f.name).null_count:
            raise SchemaError(file, f.name, "null in a non-nullable column")


def write_parquet(path: str | os.PathLike[str], tbl: pa.Table, schema: TableSchema, config: ParquetConfig,
                  *, root: str | os.PathLike[str] | None = None, durable: bool = True,
                  start_writeback: bool = False, metadata: Mapping[bytes, bytes] | None = None) -> FileRecord:
    """Check, encode, hash and atomically write one Parquet file.

    Parameters
    ----------
    path : path-like
        Final file path.
    tbl : pyarrow.Table
        The rows; must match ``schema`` exactly (names, order, types, nulls).
    schema : TableSchema
        The spec table.
    config : ParquetConfig
        Encoding settings.
    root : path-like, optional
        The record's path is relative to it (POSIX); default the file name.
    durable : bool
        fsync file and directory (default).
    start_writeback : bool
        When not durable, start the kernel's writeback of the file now (see
        :func:`~cobre_mpi_io.atomic.atomic_write`).
    metadata : mapping of bytes to bytes, optional
        Footer key-value metadata (the run fingerprint).

    Returns
    -------
    FileRecord
        Path, rows, bytes and xxhash64 of what was written.

    Raises
    ------
    SchemaError, SerializationError, IoError
    """
    p = Path(path)
    rel = p.relative_to(root).as_posix() if root is not None else p.name
    check_schema(tbl, schema, rel)
    buf = encode_table(tbl, schema, config, metadata)
    view = memoryview(buf)
    digest = xxh64_hex(view)
    write_bytes_atomic(p, view, durable=durable, start_writeback=start_writeback)
    return FileRecord(rel, tbl.num_rows, buf.size, digest)
