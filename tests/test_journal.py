"""The run journal (issue 14 item 2): self-checking lines, attempt order, verification of the bytes on disk.

Serial tests with ``COMM_SELF``; the journal's role in resume and in the
commit is tested in ``test_run_journal.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import self_comm

from cobre_mpi_io.errors import IoError
from cobre_mpi_io.hashing import xxh64_hex
from cobre_mpi_io.journal import (
    JOURNAL_FILES_DIR,
    JournalEntry,
    RankJournal,
    active_journal,
    journal_files,
    open_journal,
    read_journal,
    record_removed,
    record_write,
    verify_entry,
    write_bytes_recorded,
)


def _write(out: Path, rel: str, data: bytes) -> JournalEntry:
    p = out / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return JournalEntry(rel, len(data), xxh64_hex(data), None)


def test_records_round_trip_and_last_record_wins(tmp_path: Path) -> None:
    j = RankJournal(tmp_path, 1, 0)
    j.record(tmp_path / "simulation" / "a.parquet", 10, "0" * 16, rows=3)
    j.record("training/b.json", 5, "1" * 16)
    j.flush()
    j.record("training/b.json", 6, "2" * 16)
    j.flush(sync=True)
    j.close()
    got = read_journal(tmp_path)
    assert got == {"simulation/a.parquet": JournalEntry("simulation/a.parquet", 10, "0" * 16, 3),
                   "training/b.json": JournalEntry("training/b.json", 6, "2" * 16, None)}
    assert j.path == tmp_path / JOURNAL_FILES_DIR / "000001-r0000.jsonl"


def test_later_attempt_wins_whatever_the_rank(tmp_path: Path) -> None:
    late = RankJournal(tmp_path, 2, 0)
    early = RankJournal(tmp_path, 1, 5)
    late.record("x", 1, "b" * 16)
    early.record("x", 1, "a" * 16)
    late.close()  # written first, but attempt 2 sorts after attempt 1
    early.close()
    assert read_journal(tmp_path)["x"].xxhash64 == "b" * 16
    assert [(a, r) for a, r, _p in journal_files(tmp_path)] == [(1, 5), (2, 0)]


@pytest.mark.parametrize("damage", ["torn", "zeroed", "flipped", "garbage"])
def test_a_damaged_line_is_ignored_never_misread(tmp_path: Path, damage: str) -> None:
    j = RankJournal(tmp_path, 1, 0)
    j.record("a", 1, "a" * 16)
    j.record("b", 2, "b" * 16)
    j.close()
    raw = j.path.read_bytes()
    first_end = raw.index(b"\n") + 1
    second = raw[first_end:]
    if damage == "torn":
        bad = second[:-7]
    elif damage == "zeroed":
        bad = second[:10] + b"\0" * (len(second) - 10)
    elif damage == "flipped":  # a digit of the size changed: the line's own check catches it
        bad = second.replace(b'"bytes":2', b'"bytes":3')
    else:
        bad = b"\xff\xfe not json at all\n"
    j.path.write_bytes(raw[:first_end] + bad)
    assert read_journal(tmp_path) == {"a": JournalEntry("a", 1, "a" * 16, None)}


@pytest.mark.parametrize("text", ['{"path": "x", "bytes": 1', '{"path": "x"}, {"path": "y"}', '[1, 2]', '"\\ud800"'])
def test_a_line_that_checks_but_is_not_one_object_is_skipped_alone(tmp_path: Path, text: str) -> None:
    """The lines are decoded in one call; a text that is not one JSON object (it checks: a forger's) costs
    its own line only, whatever it would make of its neighbours."""
    j, k = RankJournal(tmp_path, 1, 0), RankJournal(tmp_path, 2, 0)
    j.record("a", 1, "a" * 16)
    k.record("c", 3, "c" * 16)
    j.close()
    k.close()
    forged = f"{text} {xxh64_hex(text.encode())}\n".encode()
    j.path.write_bytes(j.path.read_bytes() + forged + k.path.read_bytes())  # a, the forged line, c
    k.path.unlink()
    assert read_journal(tmp_path) == {"a": JournalEntry("a", 1, "a" * 16, None),
                                      "c": JournalEntry("c", 3, "c" * 16, None)}


def test_removal_records_drop_the_path(tmp_path: Path) -> None:
    j = RankJournal(tmp_path, 1, 0)
    j.record("a", 1, "a" * 16)
    j.record("b", 1, "b" * 16)
    j.record_removed(["a"])
    j.close()
    assert set(read_journal(tmp_path)) == {"b"}


def test_verify_entry_checks_size_and_every_byte(tmp_path: Path) -> None:
    data = os.urandom(20000)
    e = _write(tmp_path, "d/f.bin", data)
    assert verify_entry(tmp_path, e)
    p = tmp_path / "d/f.bin"
    p.write_bytes(data[:5000] + bytes(64) + data[5064:])  # 64 zeroed bytes, same size
    assert not verify_entry(tmp_path, e)
    p.write_bytes(data[:-1])
    assert not verify_entry(tmp_path, e)
    p.unlink()
    assert not verify_entry(tmp_path, e)


def test_verify_entry_refuses_what_is_not_a_regular_file_without_blocking(tmp_path: Path) -> None:
    e = _write(tmp_path, "real.bin", b"abc")
    os.mkfifo(tmp_path / "fifo.bin")
    assert not verify_entry(tmp_path, JournalEntry("fifo.bin", 0, xxh64_hex(b""), None))
    os.symlink(tmp_path / "real.bin", tmp_path / "link.bin")
    assert not verify_entry(tmp_path, JournalEntry("link.bin", 3, e.xxhash64, None))
    (tmp_path / "dir.bin").mkdir()
    assert not verify_entry(tmp_path, JournalEntry("dir.bin", 0, e.xxhash64, None))


def test_a_fifo_in_the_journal_directory_is_refused_not_waited_on(tmp_path: Path) -> None:
    d = tmp_path / JOURNAL_FILES_DIR
    d.mkdir(parents=True)
    os.mkfifo(d / "000001-r0000.jsonl")
    with pytest.raises(IoError, match="not a regular file"):
        read_journal(tmp_path)


def test_open_journal_shares_one_attempt_per_process_and_counts_up(tmp_path: Path) -> None:
    comm = self_comm()
    a = open_journal(comm, tmp_path)
    b = open_journal(comm, tmp_path)
    assert a is b and a.attempt == 1
    assert active_journal(tmp_path / "training" / "x.json") is a
    write_bytes_recorded(tmp_path / "training" / "x.json", b"{}\n")
    b.release()
    a.release()
    assert active_journal(tmp_path / "training" / "x.json") is None
    assert read_journal(tmp_path)["training/x.json"] == JournalEntry("training/x.json", 3, xxh64_hex(b"{}\n"))
    c = open_journal(comm, tmp_path)  # a later attempt (a resume) gets the next number
    try:
        assert c.attempt == 2
        (tmp_path / "training" / "x.json").unlink()
        record_removed([tmp_path / "training" / "x.json"])
    finally:
        c.release()
    assert read_journal(tmp_path) == {}


def test_nothing_is_recorded_outside_a_run(tmp_path: Path) -> None:
    assert not record_write(tmp_path / "f", 1, "a" * 16)
    write_bytes_recorded(tmp_path / "f", b"x")
    assert (tmp_path / "f").read_bytes() == b"x"
    assert not (tmp_path / "_journal").exists()


def test_a_journal_whose_directory_was_removed_is_not_reused(tmp_path: Path) -> None:
    comm = self_comm()
    a = open_journal(comm, tmp_path / "out")
    a.record("x", 1, "a" * 16)
    a.flush()
    import shutil

    shutil.rmtree(tmp_path / "out")  # the run's directory removed while this process holds its journal
    a.record("z", 1, "c" * 16)  # queued for the removed file: never lands in the new directory
    b = open_journal(comm, tmp_path / "out")
    try:
        assert b is not a and b.attempt == 1
        b.record("y", 1, "b" * 16)
        b.flush()
        assert set(read_journal(tmp_path / "out")) == {"y"}
    finally:
        b.release()
    assert a._fd < 0  # the stale journal's file was closed
