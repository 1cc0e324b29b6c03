"""Direct tests of the one atomic-write helper and the file-system primitives beside it."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

from cobre_mpi_io.atomic import (
    atomic_write,
    is_temp_name,
    missing_files,
    remove_stray_temps,
    reserve_space,
    write_bytes_atomic,
    write_json_atomic,
)
from cobre_mpi_io.errors import IoError, SerializationError


def _entries(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir())


def test_atomic_write_publishes_whole_file_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "f.bin"
    assert write_bytes_atomic(path, b"hello") == 5
    assert path.read_bytes() == b"hello" and _entries(path.parent) == ["f.bin"]


def test_failed_write_keeps_old_content_and_removes_temp(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_write(path) as fh:
        fh.write(b"half of the new")
        raise RuntimeError("producer died")
    assert path.read_bytes() == b"old" and _entries(tmp_path) == ["f.bin"]


def test_exclusive_create_lets_exactly_one_writer_win(tmp_path: Path) -> None:
    path = tmp_path / "lock.json"
    with atomic_write(path, exclusive=True) as fh:
        fh.write(b"first")
    with pytest.raises(IoError) as info, atomic_write(path, exclusive=True) as fh:
        fh.write(b"second")
    assert info.value.cause == "exists" and str(path) in str(info.value)
    assert path.read_bytes() == b"first" and _entries(tmp_path) == ["lock.json"]


def test_write_json_refuses_non_finite_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(SerializationError, match="not valid JSON"):
        write_json_atomic(tmp_path / "m.json", {"x": math.nan})
    assert _entries(tmp_path) == []


def test_unwritable_directory_is_an_io_error_naming_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with pytest.raises(IoError) as info:
        write_bytes_atomic(blocker / "x.bin", b"1")
    assert str(blocker) in str(info.value)


def test_missing_files_finds_absent_and_resized_files(tmp_path: Path) -> None:
    sizes = {}
    for i in range(5000):  # above the threaded threshold
        rel = f"t/scenario_id={i:04d}/data.parquet"
        (tmp_path / rel).parent.mkdir(parents=True)
        (tmp_path / rel).write_bytes(b"x" * (i % 7))
        sizes[rel] = i % 7
    assert missing_files(tmp_path, sizes) == []
    (tmp_path / "t/scenario_id=0003/data.parquet").unlink()
    (tmp_path / "t/scenario_id=4000/data.parquet").write_bytes(b"longer than before")
    assert missing_files(tmp_path, sizes) == ["t/scenario_id=0003/data.parquet", "t/scenario_id=4000/data.parquet"]
    assert missing_files(tmp_path, sizes, threads=1) == missing_files(tmp_path, sizes)


def test_reserve_space_holds_bytes_under_a_temp_name(tmp_path: Path) -> None:
    p = reserve_space(tmp_path / ".x.reserve.tmp", 100_000)
    assert p is not None and p.stat().st_size == 100_000 and is_temp_name(p.name)
    assert remove_stray_temps(tmp_path) == [p] and not p.exists()


def test_remove_stray_temps_only_removes_temps(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    keep = tmp_path / "a" / "data.parquet"
    keep.write_bytes(b"1")
    stray = tmp_path / "a" / ".data.parquet.0123456789ab.tmp"
    stray.write_bytes(b"2")
    assert remove_stray_temps(tmp_path) == [stray]
    assert keep.exists() and not stray.exists()
    assert os.listdir(tmp_path / "a") == ["data.parquet"]
