"""Claims that hold on real machines, only regular files, and the run's identity recorded before any data.

Each finding of issue 14 owned here is a test: a holder in another PID namespace or boot is never judged
dead; two breakers of one stale claim, one of them delayed as on a slow shared filesystem, give exactly one
winner; a refused run leaves the live claim byte for byte; a FIFO at any document's path is refused at once
(never waited on) by the readers, ``demo --resume``, ``validate`` and ``report``; the identity recorded in
``_journal/identity.json`` covers every case input file and refuses a resume, in any phase, naming the
difference and changing nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import CASE_4REE, run_cli, self_comm

from cobre_mpi_io import claim
from cobre_mpi_io.atomic import open_regular, read_regular, require_regular
from cobre_mpi_io.claim import acquire_run, boot_id, holder_is_dead, pid_namespace, read_claim
from cobre_mpi_io.config import RunConfig
from cobre_mpi_io.documents import read_json_document
from cobre_mpi_io.errors import IoError, ManifestError
from cobre_mpi_io.identity import case_inputs, check_same_identity, identity_path, read_recorded_identity
from cobre_mpi_io.layout import CLAIM_NAME
from cobre_mpi_io.policy.checkpoint import list_checkpoints
from cobre_mpi_io.system import System

pytestmark = pytest.mark.timeout(120)
CASE_4REE018 = Path(__file__).parent / "data" / "4ree-v018"


def _snapshot(root: Path) -> dict[str, bytes]:
    """Every file below ``root`` (symlinks by target), byte for byte."""
    out: dict[str, bytes] = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_symlink():
            out[rel] = b"->" + os.readlink(p).encode()
        elif p.is_file():
            out[rel] = p.read_bytes()
    return out


def _claim_doc(pid: int, **over: Any) -> dict[str, Any]:
    return {"host": socket.gethostname(), "boot_id": boot_id(), "pid_namespace": pid_namespace(), "pid": pid,
            "pid_start": None, "job_id": None, "started_at": "2026-01-01T00:00:00Z", "token": "t" * 32,
            "world_size": 1, "run_fingerprint": None, **over}


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


# ----------------------------------------------------------------------------- regular files only
def test_open_regular_refuses_fifo_directory_device_and_outside_link(tmp_path: Path) -> None:
    fifo = tmp_path / "m.json"
    os.mkfifo(fifo)
    t0 = time.monotonic()
    with pytest.raises(IoError, match="FIFO") as err:
        read_regular(fifo)
    assert err.value.cause == "not a regular file" and time.monotonic() - t0 < 2
    with pytest.raises(IoError, match="a directory"):
        read_regular(tmp_path)
    with pytest.raises(IoError, match="character device"):
        read_regular("/dev/null", root="/dev")
    with pytest.raises(IoError, match="FIFO"):
        require_regular(fifo)
    outside = tmp_path / "outside.json"
    outside.write_text("{}")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "link.json").symlink_to(outside)
    with pytest.raises(IoError, match="outside"):
        read_regular(tmp_path / "d" / "link.json")
    (tmp_path / "d" / "in.json").write_text("[1]")
    (tmp_path / "d" / "ok.json").symlink_to("in.json")
    assert read_regular(tmp_path / "d" / "ok.json") == b"[1]"  # a link inside the tree is followed
    with pytest.raises(IoError, match="symbolic link"):
        read_regular(tmp_path / "d" / "ok.json", follow_symlinks=False)
    with pytest.raises(FileNotFoundError):
        open_regular(tmp_path / "missing")
    with pytest.raises(ManifestError, match="does not exist"):
        read_json_document(tmp_path / "missing.json", "missing.json")
    with pytest.raises(IoError, match="FIFO"):
        read_json_document(fifo, str(fifo))
    with pytest.raises(IoError, match="FIFO"):
        read_claim(_claim_at_fifo(tmp_path / "out"))


def _claim_at_fifo(out: Path) -> Path:
    out.mkdir()
    os.mkfifo(out / CLAIM_NAME)
    return out


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small complete demo run (copied by the tests that change it)."""
    out = tmp_path_factory.mktemp("claims") / "run"
    run_cli("demo", "--output", str(out), "--scenarios", "3", "--iterations", "2", "--checkpoint-every", "1", "-q")
    return out


@pytest.mark.parametrize("place", ["_claim.json", "simulation/_manifest.json", "training/_manifest.json",
                                   "training/metadata.json", "policy/checkpoints/iter_000002/metadata.json"])
def test_a_fifo_never_hangs_resume_validate_or_report(finished_run: Path, tmp_path: Path, place: str) -> None:
    out = tmp_path / "run"
    shutil.copytree(finished_run, out, symlinks=True)
    (out / place).unlink(missing_ok=True)
    os.mkfifo(out / place)
    val = run_cli("validate", str(out), check=False, timeout=60)  # a hang fails here (TimeoutExpired)
    assert val.returncode != 0 and "fifo" in (val.stdout + val.stderr).lower(), (val.stdout, val.stderr)
    assert "Traceback" not in val.stderr
    rep = run_cli("report", str(out), "--section", "all", check=False, timeout=60)  # never hangs either
    assert "Traceback" not in rep.stderr, rep.stderr
    res = run_cli("demo", "--output", str(out), "--scenarios", "3", "--iterations", "2", "--checkpoint-every", "1",
                  "-q", "--resume", check=False, timeout=60)
    assert "Traceback" not in res.stderr, res.stderr
    if res.returncode != 0:  # refused at the door, naming what it found
        assert "fifo" in res.stderr.lower(), res.stderr
        assert (out / place).is_fifo()
    elif (out / place).is_fifo():  # the resume replaced what it rewrites; a FIFO it left is still reported
        assert run_cli("validate", str(out), check=False, timeout=60).returncode != 0


# ----------------------------------------------------------------------------- who holds a claim
def test_holder_is_dead_only_when_everything_proves_it() -> None:
    dead = _dead_pid()
    assert holder_is_dead(_claim_doc(dead))
    assert not holder_is_dead(_claim_doc(os.getpid()))  # alive
    assert holder_is_dead(_claim_doc(os.getpid(), pid_start="1"))  # the pid was reused by another process
    assert not holder_is_dead(_claim_doc(dead, pid_namespace="pid:[1]"))  # a container with its own pids
    assert not holder_is_dead(_claim_doc(dead, boot_id="00000000-0000-0000-0000-000000000000"))
    assert not holder_is_dead(_claim_doc(dead, host="another-node"))
    legacy = _claim_doc(dead)
    del legacy["boot_id"], legacy["pid_namespace"]
    assert not holder_is_dead(legacy)  # an older claim cannot be judged
    assert not holder_is_dead({})


def test_a_rank_that_outlived_rank_0_keeps_the_claim() -> None:
    """Every rank of the run on this machine is recorded: one still alive might still write."""
    dead, me = _dead_pid(), os.getpid()
    assert not holder_is_dead(_claim_doc(dead, local_ranks=[{"pid": me, "pid_start": claim._process_start(me)}]))
    assert holder_is_dead(_claim_doc(dead, local_ranks=[{"pid": _dead_pid(), "pid_start": None}]))
    assert holder_is_dead(_claim_doc(dead, local_ranks=[{"pid": me, "pid_start": "1"}]))  # pid reused
    assert not holder_is_dead(_claim_doc(dead, local_ranks=[{"pid": "x"}]))  # cannot be judged: kept
    assert not holder_is_dead(_claim_doc(dead, local_ranks="junk"))


def test_a_claim_whose_launcher_died_is_broken_once_its_rank_exits(tmp_path: Path) -> None:
    """``kill -9`` of the launcher: its rank exits a moment later; the next run waits for that, then takes over."""
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1.5)"])
    try:
        doc = _claim_doc(holder.pid, pid_start=claim._process_start(holder.pid),
                         launcher={"pid": _dead_pid(), "pid_start": "1"})
        (tmp_path / CLAIM_NAME).write_text(json.dumps(doc))
        t0 = time.monotonic()
        lease = acquire_run(self_comm(), tmp_path)
        waited = time.monotonic() - t0
    finally:
        holder.kill()
        holder.wait()
    assert holder.returncode == 0  # it ended on its own: the claim was broken only after that
    assert waited > 0.5, waited
    rec = read_claim(tmp_path)
    assert rec is not None and rec["pid"] == os.getpid()
    lease.release()


def test_a_live_rank_is_never_broken_whatever_its_launcher(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        start = claim._process_start(holder.pid)
        # its launcher alive: refused at once, nothing waited for
        doc = _claim_doc(holder.pid, pid_start=start,
                         launcher={"pid": os.getpid(), "pid_start": claim._process_start(os.getpid())})
        (tmp_path / CLAIM_NAME).write_text(json.dumps(doc))
        before = _snapshot(tmp_path)
        t0 = time.monotonic()
        with pytest.raises(IoError, match=f"pid {holder.pid}"):
            acquire_run(self_comm(), tmp_path)
        assert time.monotonic() - t0 < 5 and _snapshot(tmp_path) == before
        # its launcher dead (or unknown) but the rank lives on past the grace: kept
        assert not claim._wait_for_orphans(doc | {"launcher": {"pid": _dead_pid(), "pid_start": "1"}}, grace_s=0.3)
        assert not claim._wait_for_orphans(doc | {"launcher": {"pid": _dead_pid(), "pid_start": None}}, grace_s=0.3)
        assert not claim._wait_for_orphans(doc | {"launcher": None}, grace_s=0.3)
        assert holder.poll() is None
    finally:
        holder.kill()
        holder.wait()


def test_claim_records_the_whole_holder(tmp_path: Path) -> None:
    lease = acquire_run(self_comm(), tmp_path)
    rec = read_claim(tmp_path)
    assert rec is not None
    assert (rec["host"], rec["boot_id"], rec["pid_namespace"], rec["pid"]) == (
        socket.gethostname(), boot_id(), pid_namespace(), os.getpid())
    assert rec["pid_start"] == claim._process_start(os.getpid())
    assert rec["launcher"] is None and rec["local_ranks"] == []  # a singleton: no launcher, no other rank
    lease.release()
    assert not (tmp_path / CLAIM_NAME).exists()


def test_live_holder_in_another_pid_namespace_is_never_broken(tmp_path: Path) -> None:
    doc = _claim_doc(_dead_pid(), pid_namespace="pid:[4026532999]")
    (tmp_path / CLAIM_NAME).write_text(json.dumps(doc))
    (tmp_path / "simulation").mkdir()
    (tmp_path / "simulation" / ".x.parquet.abc.tmp").write_bytes(b"live run's temp file")
    before = _snapshot(tmp_path)
    with pytest.raises(IoError, match="another run holds this output directory"):
        acquire_run(self_comm(), tmp_path)
    assert _snapshot(tmp_path) == before  # the live claim and the live run's temp file untouched


def test_two_breakers_one_delayed_exactly_one_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both read the stale claim; the second renames it away 1.5 s late (a slow shared filesystem)."""
    stale = json.dumps(_claim_doc(_dead_pid())).encode()
    (tmp_path / CLAIM_NAME).write_bytes(stale)
    both_read = threading.Barrier(2)
    real_read, real_set_aside = claim._read_raw, claim._set_aside
    order: list[str] = []

    def read_raw(path: Path) -> bytes | None:
        raw = real_read(path)
        if raw == stale and threading.current_thread().name in ("a", "b"):
            both_read.wait(timeout=10)
        return raw

    def set_aside(path: Path, expected: bytes | None = None, token: str | None = None) -> bool:
        if threading.current_thread().name == "b":
            time.sleep(1.5)
        done = real_set_aside(path, expected, token)
        order.append(f"{threading.current_thread().name}:{done}")
        return done

    monkeypatch.setattr(claim, "_read_raw", read_raw)
    monkeypatch.setattr(claim, "_set_aside", set_aside)
    results: dict[str, Any] = {}

    def take(name: str) -> None:
        try:
            results[name] = claim._take(tmp_path, None, 1, False, None)
        except IoError as exc:
            results[name] = exc

    threads = [threading.Thread(target=take, args=(n,), name=n) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    winners = [n for n, r in results.items() if isinstance(r, str)]
    assert len(winners) == 1, (results, order)
    loser = "b" if winners == ["a"] else "a"
    assert isinstance(results[loser], IoError) and results[loser].cause == "claimed"
    on_disk = read_claim(tmp_path)
    assert on_disk is not None and on_disk["token"] == results[winners[0]]
    assert not [p for p in tmp_path.iterdir() if p.name != CLAIM_NAME]  # nothing set aside is left


def test_refused_run_leaves_the_live_claim_byte_for_byte(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        doc = _claim_doc(holder.pid, pid_start=claim._process_start(holder.pid))
        (tmp_path / CLAIM_NAME).write_text(json.dumps(doc))
        before = _snapshot(tmp_path)
        for _ in range(2):
            with pytest.raises(IoError, match=f"pid {holder.pid}"):
                acquire_run(self_comm(), tmp_path)
            assert _snapshot(tmp_path) == before
    finally:
        holder.kill()
        holder.wait()


# ----------------------------------------------------------------------------- identity recorded first
def _case(tmp_path: Path) -> Path:
    case = tmp_path / "case"
    shutil.copytree(CASE_4REE, case)
    return case


def test_case_inputs_cover_every_input_file(tmp_path: Path) -> None:
    case = _case(tmp_path)
    (case / ".hidden.json").write_text("{}")
    (case / "notes.txt").write_text("not an input")
    files = case_inputs(case)
    assert "config.json" in files and "system/hydros.json" in files
    assert ".hidden.json" not in files and "notes.txt" not in files
    assert files["config.json"]["bytes"] == (case / "config.json").stat().st_size
    os.mkfifo(case / "system" / "extra.json")
    with pytest.raises(IoError, match="FIFO"):
        case_inputs(case)


@pytest.mark.parametrize("edit", ["downstream_id", "discount_rate", "num_scenarios", "new_file"])
def test_identity_covers_what_system_does_not_parse(tmp_path: Path, edit: str) -> None:
    case = _case(tmp_path)
    cfg = RunConfig(seed=1, num_scenarios=4)
    before = cfg.identity(System.from_case(case))
    if edit == "downstream_id":
        doc = json.loads((case / "system" / "hydros.json").read_text())
        doc["hydros"][0]["downstream_id"] = doc["hydros"][1]["id"]
        (case / "system" / "hydros.json").write_text(json.dumps(doc))
        name = "system/hydros.json"
    elif edit == "discount_rate":
        doc = json.loads((case / "stages.json").read_text())
        doc["policy_graph"] = {**doc.get("policy_graph", {}), "annual_discount_rate": 0.12}
        (case / "stages.json").write_text(json.dumps(doc))
        name = "stages.json"
    elif edit == "num_scenarios":
        doc = json.loads((case / "stages.json").read_text())
        doc["stages"][0]["num_scenarios"] = 7
        (case / "stages.json").write_text(json.dumps(doc))
        name = "stages.json"
    else:
        (case / "scenarios").mkdir()
        (case / "scenarios" / "inflow_history.csv").write_text("hydro_id,date,value\n0,2020-01-01,1.0\n")
        name = "scenarios/inflow_history.csv"
    after = cfg.identity(System.from_case(case))
    assert after.fingerprint != before.fingerprint
    with pytest.raises(ManifestError, match=f"case input file {name} "):
        check_same_identity(after, before, "identity.json")


def test_identity_json_is_recorded_before_any_data(tmp_path: Path) -> None:
    case = _case(tmp_path)
    system = System.from_case(case)
    ident = RunConfig(seed=3, num_scenarios=2).identity(system)
    lease = acquire_run(self_comm(), tmp_path / "out", ident)
    try:
        rec = read_recorded_identity(tmp_path / "out")
        assert rec is not None and rec.fingerprint == ident.fingerprint
        assert rec.identity.inputs == case_inputs(case) and rec.identity.config == ident.config
        assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*")
                      if p.is_file()) == ["_claim.json", "_journal/identity.json"]
    finally:
        lease.release()
    doc = json.loads(identity_path(tmp_path / "out").read_text())
    doc["run_identity"]["config"]["seed"] = 4  # an edit of the record itself is detected
    doc["run_identity"]["config_hash"] = "sha256:" + "0" * 64
    identity_path(tmp_path / "out").write_text(json.dumps(doc))
    with pytest.raises(ManifestError, match="was edited"):
        read_recorded_identity(tmp_path / "out")


def test_resume_with_an_edited_case_file_is_refused_and_nothing_changes(tmp_path: Path) -> None:
    case, out = _case(tmp_path), tmp_path / "run"
    args = ("demo", "--output", str(out), "--case", str(case), "--scenarios", "2", "--iterations", "2", "-q")
    run_cli(*args)
    before = _snapshot(out)
    doc = json.loads((case / "system" / "hydros.json").read_text())
    had = "downstream_id" in doc["hydros"][0]
    was = json.dumps(doc["hydros"][0].get("downstream_id"))
    doc["hydros"][0]["downstream_id"] = doc["hydros"][1]["id"]
    (case / "system" / "hydros.json").write_text(json.dumps(doc))
    proc = run_cli(*args, "--resume", check=False)
    # the file and the field: identity.json keeps the text of the case's small JSON files
    field = f"hydros[0].downstream_id is {was if had else 'absent'} there and {doc['hydros'][1]['id']} in this run"
    assert proc.returncode == 1 and f"case input file system/hydros.json differs: {field}" in proc.stderr, \
        proc.stderr
    assert "Traceback" not in proc.stderr
    assert _snapshot(out) == before


def test_a_recorded_case_document_that_does_not_hash_to_its_record_is_not_believed(tmp_path: Path) -> None:
    """The text kept to name an edited field is used only when its bytes are the recorded file's."""
    case = _case(tmp_path)
    ident = RunConfig(seed=3, num_scenarios=2).identity(System.from_case(case))
    lease = acquire_run(self_comm(), tmp_path / "out", ident)
    lease.release()
    path = identity_path(tmp_path / "out")
    doc = json.loads(path.read_text())
    assert set(doc["inputs"]["documents"]) == {rel for rel in case_inputs(case) if rel.endswith(".json")}
    stages = json.loads((case / "stages.json").read_text())
    stages["stages"][0]["num_scenarios"] = 7
    (case / "stages.json").write_text(json.dumps(stages))
    after = RunConfig(seed=3, num_scenarios=2).identity(System.from_case(case))
    with pytest.raises(ManifestError, match=r"stages.json differs: stages\[0\]\.num_scenarios is \d+ there and 7"):
        check_same_identity(after, read_recorded_identity(tmp_path / "out"), str(path))
    doc["inputs"]["documents"]["stages.json"] = json.dumps(stages)  # a forged "original": not its recorded hash
    path.write_text(json.dumps(doc))
    with pytest.raises(ManifestError, match=r"stages.json differs \(") as info:
        check_same_identity(after, read_recorded_identity(tmp_path / "out"), str(path))
    assert "num_scenarios" not in str(info.value)


@pytest.mark.slow(60)
def test_crash_during_training_then_resume_with_another_seed_is_refused(tmp_path: Path) -> None:
    """Finding 3: rank 0 killed after a checkpoint; ``--resume --seed 2`` changes nothing, byte for byte."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "cobre_mpi_io", "demo", "--output", str(out), "--scenarios", "2",
           "--iterations", "40", "--iteration-seconds", "0.1", "--checkpoint-every", "2", "-q"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not (out / "policy" / "checkpoints" / "iter_000002").is_dir():
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert read_recorded_identity(out) is not None  # the identity survived the crash
    before = _snapshot(out)
    assert CLAIM_NAME in before  # the dead run's claim is still there
    for other in (("--seed", "2"), ("--detail", "stage"), ("--scale", "production"), ("--case", str(CASE_4REE)),
                  ("--iterations", "41"), ("--forward-passes", "3"), ("--format", "cobre-0.18", "--case", str(CASE_4REE018))):
        res = run_cli("demo", "--output", str(out), "--scenarios", "2", "--iterations", "40",
                      "--checkpoint-every", "2", "-q", "--resume", *other, check=False)
        assert res.returncode == 1 and "written by another run" in res.stderr, (other, res.stderr)
        assert _snapshot(out) == before, other
    # list_checkpoints(...)[-1] can only be a checkpoint of the run the directory records
    last = list_checkpoints(out / "policy")[-1]
    recorded = read_recorded_identity(out)
    assert recorded is not None
    assert json.loads((last / "metadata.json").read_text())["config_hash"] == recorded.identity.config_hash
    # the original arguments resume it: the stale claim is broken (same host, boot, namespace; pid dead)
    run_cli("demo", "--output", str(out), "--scenarios", "2", "--iterations", "40", "--checkpoint-every", "2",
            "-q", "--resume", timeout=180)
    assert (out / "training" / "_SUCCESS").exists() and not (out / CLAIM_NAME).exists()


def test_another_library_version_or_option_is_named() -> None:
    small = System.synthetic("small")
    here = RunConfig(seed=1, num_scenarios=2).identity(small)
    old = RunConfig(seed=1, num_scenarios=2).identity(small)
    old = type(old)(**{**{k: getattr(old, k) for k in ("system_hash", "config_hash", "detail", "num_scenarios",
                                                        "format_version", "inputs_hash")},
                       "library_version": "0.0.9"}, config=old.config)
    with pytest.raises(ManifestError, match="written by cobre_mpi_io 0.0.9 and this is cobre_mpi_io"):
        check_same_identity(here, old, "identity.json")
    legacy = {k: v for k, v in here.to_dict().items() if k not in ("inputs_hash", "library_version")}
    with pytest.raises(ManifestError, match="an earlier cobre_mpi_io"):
        check_same_identity(here, legacy, "_manifest.json")
    for field, value in (("forward_passes", 3), ("max_iterations", 7), ("format", "cobre-0.18")):
        other = RunConfig(seed=1, num_scenarios=2, **{field: value}).identity(small)
        with pytest.raises(ManifestError, match=f"the configuration's {field} is"):
            check_same_identity(other, here, "identity.json")


def test_a_fifo_partition_footer_is_refused_at_once(tmp_path: Path) -> None:
    from cobre_mpi_io.identity import read_file_fingerprint

    os.mkfifo(tmp_path / "data.parquet")
    with pytest.raises(IoError, match="FIFO"):
        read_file_fingerprint(tmp_path / "data.parquet")
