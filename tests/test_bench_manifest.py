"""``bench finalize`` in a plain (world size 1) pytest process."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from cobre_mpi_io.cli.bench_finalize import add_finalize_bench_arguments, finalize_bench_main
from cobre_mpi_io.manifest import combined_checksum, read_simulation_manifest

KEYS = ("gather_seconds", "assembly_seconds", "write_seconds", "total_seconds", "gather_bytes_total",
        "gather_bytes_per_rank_max", "manifest_bytes", "records", "world_size")


def test_finalize_bench_tiny(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = add_finalize_bench_arguments(argparse.ArgumentParser())
    args = parser.parse_args(["--scenarios", "20", "--tables", "3", "--output", str(tmp_path),
                              "--repeats", "1", "--json"])
    assert finalize_bench_main(args) == 0
    result = json.loads(capsys.readouterr().out)
    for k in KEYS:
        assert k in result, k
        assert k in result["all_repeats"] or not k.endswith("_seconds")
    assert result["world_size"] == 1
    assert result["records"] == 60
    assert result["status"] == "complete"
    for k in ("gather_seconds", "assembly_seconds", "write_seconds", "total_seconds"):
        assert result[k] >= 0 and len(result["all_repeats"][k]) == 1
    assert result["gather_bytes_total"] == result["gather_bytes_per_rank_max"] > 0

    path = Path(result["manifest_path"])
    assert path.is_file() and path.parent.parent.is_relative_to(tmp_path)
    m = read_simulation_manifest(path)
    assert m.status == "complete" and m.scenarios_completed == m.scenarios_total == 20
    assert len(m.files) == 60 and len(m.partitions_written) == 20
    assert m.checksum_value == combined_checksum({p: e.xxhash64 for p, e in m.files.items()})
    assert m.checksum_value == result["checksum"]
    assert (path.parent / "_SUCCESS").is_file()
    # the manifest timed in the write phase lists the same files
    pieces = read_simulation_manifest(tmp_path / "bench_finalize" / "pieces" / "simulation" / "_manifest.json")
    assert pieces.files == m.files and pieces.checksum_value == m.checksum_value
    assert result["manifest_bytes"] == (tmp_path / "bench_finalize" / "pieces" / "simulation"
                                        / "_manifest.json").stat().st_size


def test_finalize_bench_rejects_too_many_tables(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = add_finalize_bench_arguments(argparse.ArgumentParser())
    with pytest.raises(SystemExit) as exc:  # refused while parsing, before any work
        parser.parse_args(["--scenarios", "2", "--tables", "99", "--output", str(tmp_path), "--repeats", "1"])
    assert exc.value.code == 2
    assert "--tables: must be an integer from 1 to 10" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
