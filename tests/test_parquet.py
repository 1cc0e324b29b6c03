"""Direct tests of the Parquet encoding helper (settings, schema check, footer metadata, records)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cobre_mpi_io.errors import SchemaError
from cobre_mpi_io.hashing import xxh64_file
from cobre_mpi_io.parquet import ParquetConfig, check_schema, encode_table, write_parquet
from cobre_mpi_io.schemas import table

COSTS = table("costs")


def _costs(n: int = 6) -> pa.Table:
    cols = []
    for c in COSTS.columns:
        if c.type_code == "f64":
            cols.append(pa.array(np.linspace(0, 1, n), type=pa.float64()))
        else:
            cols.append(pa.array(np.arange(n) % 3, type=COSTS.arrow_schema.field(c.name).type))
    return pa.Table.from_arrays(cols, schema=COSTS.arrow_schema)


def test_write_returns_the_record_of_what_is_on_disk(tmp_path: Path) -> None:
    rec = write_parquet(tmp_path / "costs" / "data.parquet", _costs(), COSTS, ParquetConfig(), root=tmp_path,
                        metadata={b"k": b"v"})
    p = tmp_path / rec.path
    assert rec.path == "costs/data.parquet" and rec.rows == 6 and rec.bytes == p.stat().st_size
    assert (rec.bytes, rec.xxhash64) == xxh64_file(p)
    meta = pq.read_metadata(p)
    assert meta.metadata[b"k"] == b"v" and meta.row_group(0).column(0).compression == "ZSTD"
    assert pq.read_table(p).schema.remove_metadata() == COSTS.arrow_schema


def test_bytes_equal_pyarrows_with_the_same_settings(tmp_path: Path) -> None:
    tbl = _costs(50)
    ours = encode_table(tbl, COSTS, ParquetConfig()).to_pybytes()
    sink = pa.BufferOutputStream()
    pq.write_table(tbl, sink, compression="zstd", compression_level=3, row_group_size=100_000,
                   use_dictionary=COSTS.key_columns, dictionary_pagesize_limit=1 << 20, write_statistics=True)
    assert ours == sink.getvalue().to_pybytes()


def test_schema_check_names_the_column(tmp_path: Path) -> None:
    tbl = _costs()
    with pytest.raises(SchemaError, match=f"missing \\['{COSTS.columns[0].name}'\\]"):
        check_schema(tbl.drop_columns([COSTS.columns[0].name]), COSTS, "costs/data.parquet")
    name = next(c.name for c in COSTS.columns if c.type_code == "f64")
    bad = tbl.set_column(tbl.schema.get_field_index(name), name, pa.array(np.zeros(6, dtype=np.float32)))
    with pytest.raises(SchemaError, match=name):
        write_parquet(tmp_path / "x.parquet", bad, COSTS, ParquetConfig())
    assert not (tmp_path / "x.parquet").exists()
