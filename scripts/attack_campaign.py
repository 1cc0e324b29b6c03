#!/usr/bin/env python3
"""Replay every finding of issue 14 end to end, as an attacker and a newcomer would.

Each attack runs the command line (``demo`` under ``mpiexec``, ``validate``,
``report``), the example script or the library against a scratch directory
and checks that it now ends in a refusal, a rewrite or a detected problem:
never ``complete`` + ``_SUCCESS`` over wrong or mixed data, a hang or a
traceback.  One line per attack (``PASS``/``FAIL``, with the reasons of a
failure indented below), then ``N passed, M failed``; the exit status is 0
only when every attack passed.  Every child process has a timeout (its whole
process group is killed), and the campaign has a time budget, so it always
ends.

Usage::

    python scripts/attack_campaign.py                 # every attack (about 6-10 min on 2 loaded cores)
    python scripts/attack_campaign.py --only 6,7,11   # some of them
    python scripts/attack_campaign.py --list

Run it with the interpreter of the environment under test (its ``mpiexec`` is
the one beside it, or ``$MPIEXEC``); the package is taken from this checkout
(``PYTHONPATH``).  ``--keep`` keeps the scratch directory for inspection.

The attacks (issue 14's numbering):

1.  kill -9 of a rank mid-simulation, then partition mutations (swap two
    scenarios' directories, another scenario's costs copied over, an emptied
    violations file, zeroed 64 B-4 KiB blocks inside data pages with the
    footer intact): ``validate`` names each; ``--resume`` rewrites them and
    ends with the checksum of a clean run.
2.  a case input edited between the crash and ``--resume`` (cascade
    ``downstream_id``, discount rate, per-stage ``num_scenarios``, inflow
    scheme, non-negativity method): refused naming it, nothing changed.
3.  kill during training after a checkpoint, ``--resume --seed 2`` (and
    another detail): refused; no foreign checkpoint ever becomes the latest.
4.  ``--resume`` of a complete run, killed while it runs: no ``_SUCCESS`` or
    ``complete`` stands over a tree in change.
5.  claims: a live writer in another PID namespace (``unshare --pid``) with
    the same host name is not broken; refused runs never delete the live
    claim; two concurrent breakers of a stale claim on a slow filesystem
    (claim renames/unlinks delayed 1.5 s): exactly one wins.
6.  ``validate`` detects bit flips in every kind of file and targeted edits
    of ``metadata.json``/``codes.json``.
7.  ``report`` with an extra partition ``scenario_id=0999``: warns, its
    statistics do not change.
8.  FIFOs at the claim, the manifests, ``metadata.json``, a checkpoint's
    metadata, a partition: ``demo --resume`` (under mpiexec), ``validate``
    and ``report`` never hang, never print a traceback.
9.  a bad case ``config.json`` (``forward_passes`` 0/-3,
    ``num_scenarios`` -5): one clear error naming file and field, nothing
    left behind; the case's own seed is used when ``--seed`` is not given.
10. ``examples/solver_integration.py`` twice into one directory: the second
    is refused, the first run still validates, no claim left behind.
11. ``demo`` into a non-empty directory that holds no run: refused, untouched.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cobre_mpi_io.testing import processes
from cobre_mpi_io.testing.processes import kill_session

REPO = Path(__file__).resolve().parents[1]
CASE_4REE = REPO / "tests" / "data" / "4ree"
EXAMPLE = REPO / "examples" / "solver_integration.py"

SEED = "42"
CMD_TIMEOUT = 150.0  # seconds any single child job may take (2 shared cores)
TOOL_TIMEOUT = 60.0  # validate / report (a FIFO that hangs them is caught by this)


# =========================================================================== processes
@dataclass
class Result:
    """What a child job did."""

    cmd: list[str]
    rc: int | None
    out: str
    err: str
    seconds: float
    timed_out: bool = False

    @property
    def text(self) -> str:
        return self.out + "\n" + self.err

    def brief(self, limit: int = 600) -> str:
        tail = (self.err.strip() or self.out.strip())[-limit:]
        return f"rc={self.rc}{' (TIMED OUT)' if self.timed_out else ''}: {tail!r}"


class Ctx:
    """Interpreter, launcher, scratch space and the clean reference runs of one campaign."""

    def __init__(self, work: Path, python: str, ranks: int, rng_seed: int, verbose: bool) -> None:
        self.work = work
        self.python = python
        self.ranks = ranks
        self.rng = random.Random(rng_seed)
        self.verbose = verbose
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, [os.environ.get(
            "PYTHONPATH")])]), "PYTHONDONTWRITEBYTECODE": "1"}
        self._clean: dict[tuple[str, ...], Path] = {}
        self._n = 0
        self.live: set[subprocess.Popen[Any]] = set()
        self.notes: list[str] = []  # what an attack saw that is worth a line under its verdict

    def kill_all(self) -> None:
        """Kill every job this campaign started that still runs (on exit, SIGTERM or Ctrl-C)."""
        for proc in list(self.live):
            if proc.poll() is None:
                kill_session(proc)
        self.live.clear()

    # ------------------------------------------------------------------ commands
    def mpiexec(self, n: int) -> list[str]:
        launcher = os.environ.get("MPIEXEC") or str(Path(self.python).parent / "mpiexec")
        if not Path(launcher).exists() and not os.environ.get("MPIEXEC"):
            launcher = shutil.which("mpiexec") or "mpiexec"
        return [launcher, os.environ.get("MPIEXEC_NUMPROC_FLAG") or "-n", str(n),
                *os.environ.get("MPIEXEC_PREFLAGS", "").split()]

    def cli(self, *args: str, n: int | None = None) -> list[str]:
        """``python -m cobre_mpi_io ARGS`` (under mpiexec on ``n`` ranks when given)."""
        cmd = [self.python, "-m", "cobre_mpi_io", *args]
        return [*self.mpiexec(n), *cmd] if n else cmd

    def run(self, cmd: Sequence[str], timeout: float = CMD_TIMEOUT) -> Result:
        """Run ``cmd`` in its own session; on timeout kill its whole process group."""
        t0 = time.monotonic()
        if self.verbose:
            print("   $", " ".join(cmd), flush=True)
        proc = subprocess.Popen(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=self.env, start_new_session=True, stdin=subprocess.DEVNULL)
        self.live.add(proc)
        try:
            out, err = proc.communicate(timeout=timeout)
            return Result(list(cmd), proc.returncode, out, err, time.monotonic() - t0)
        except subprocess.TimeoutExpired:
            kill_session(proc)
            out, err = proc.communicate()
            return Result(list(cmd), None, out or "", err or "", time.monotonic() - t0, timed_out=True)
        finally:
            self.live.discard(proc)

    @contextlib.contextmanager
    def start(self, cmd: Sequence[str], name: str) -> Iterator[subprocess.Popen[bytes]]:
        """A background job (own session, output in files under the scratch dir); killed on exit."""
        log = self.work / "logs"
        log.mkdir(exist_ok=True)
        self._n += 1
        with open(log / f"{self._n:03d}-{name}.out", "wb") as so, open(log / f"{self._n:03d}-{name}.err", "wb") as se:
            proc = subprocess.Popen(list(cmd), stdout=so, stderr=se, env=self.env, start_new_session=True,
                                    stdin=subprocess.DEVNULL)
            proc.log_err = log / f"{self._n:03d}-{name}.err"  # type: ignore[attr-defined]
            self.live.add(proc)
            try:
                yield proc
            finally:
                if proc.poll() is None:
                    kill_session(proc)
                self.live.discard(proc)

    def dir(self, name: str) -> Path:
        """A fresh path under the scratch directory (not created)."""
        self._n += 1
        return self.work / f"{self._n:03d}-{name}"

    # ------------------------------------------------------------------ reference runs
    def clean(self, *args: str, n: int | None = None) -> Path:
        """A clean complete demo run with ``args`` (cached); raises when it is not clean."""
        key = (str(n or self.ranks), *args)
        if key not in self._clean:
            out = self.dir("clean")
            res = self.run(self.cli("demo", "--output", str(out), "-q", *args, n=n or self.ranks))
            if res.rc != 0 or manifest_status(out, "simulation") not in ("complete", None):
                raise Setup(f"clean reference run failed: {res.brief()}")
            self._clean[key] = out
        return self._clean[key]

    def copy_of(self, src: Path, name: str) -> Path:
        dst = self.dir(name)
        shutil.copytree(src, dst, symlinks=True)
        return dst


class Setup(Exception):
    """The attack could not be staged (the failure is the campaign's or the machine's, still a FAIL)."""


# =========================================================================== tree helpers
def read_json(path: Path) -> Any:
    """JSON at ``path`` (None when absent, unreadable or not a regular file; never blocks)."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode) and not path.is_symlink():
            return None
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def manifest_status(out: Path, section: str) -> str | None:
    doc = read_json(out / section / "_manifest.json")
    return doc.get("status") if isinstance(doc, dict) else None


def checksum(out: Path) -> str | None:
    doc = read_json(out / "simulation" / "_manifest.json")
    try:
        return str(doc["checksum"]["value"])
    except (KeyError, TypeError):
        return None


def markers(out: Path) -> list[str]:
    """``_SUCCESS`` markers and ``complete`` manifests standing in ``out``."""
    found = [f"{s}/_SUCCESS" for s in ("simulation", "training") if (out / s / "_SUCCESS").exists()]
    found += [f"{s}/_manifest.json complete" for s in ("simulation", "training")
              if manifest_status(out, s) == "complete"]
    return found


def xxh(data: bytes) -> str:
    import xxhash

    return xxhash.xxh64(data, seed=0).hexdigest()


def snapshot(root: Path, skip: Sequence[str] = ()) -> dict[str, str]:
    """Relative path -> size:xxh64 (or symlink target, or file type) of everything below ``root``."""
    snap: dict[str, str] = {}
    if not root.exists():
        return snap
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if any(rel == s or rel.startswith(s + "/") for s in skip):
            continue
        st = os.lstat(p)
        if stat.S_ISLNK(st.st_mode):
            snap[rel] = "-> " + os.readlink(p)
        elif stat.S_ISREG(st.st_mode):
            snap[rel] = f"{st.st_size}:{xxh(p.read_bytes())}"
        elif not stat.S_ISDIR(st.st_mode):
            snap[rel] = "special"
    return snap


def diff(a: dict[str, str], b: dict[str, str]) -> list[str]:
    keys = sorted(set(a) | set(b))
    return [f"{k}: {a.get(k, 'absent')} -> {b.get(k, 'absent')}" for k in keys if a.get(k) != b.get(k)]


def traceback_in(res: Result) -> bool:
    return "Traceback (most recent call last)" in res.text


def clean_refusal(res: Result, what: str) -> list[str]:
    """Problems unless ``res`` is a refusal: non-zero exit, in time, no traceback, no MPI abort noise."""
    bad = []
    if res.timed_out:
        bad.append(f"{what}: HUNG (killed after {res.seconds:.0f} s)")
    elif res.rc == 0:
        bad.append(f"{what}: exited 0, expected a refusal: {res.brief()}")
    if traceback_in(res):
        bad.append(f"{what}: printed a traceback: {res.brief(900)}")
    return bad


def validate_cli(ctx: Ctx, out: Path, *extra: str, n: int | None = None) -> tuple[Result, dict[str, Any] | None]:
    res = ctx.run(ctx.cli("validate", str(out), "--json", "--all", *extra, n=n), timeout=TOOL_TIMEOUT)
    try:
        doc = json.loads(res.out)
    except ValueError:
        doc = None
    return res, doc if isinstance(doc, dict) else None


def problems_about(doc: dict[str, Any] | None, rel: str) -> set[str]:
    """Problem lines of a validate JSON report that name ``rel`` (an OUT-relative path or part of one)."""
    if not doc:
        return set()
    return {f"{p.get('path')}: {p.get('problem')}" for p in doc.get("problems", [])
            if rel in str(p.get("path")) or rel in str(p.get("problem"))}


def data_region(path: Path) -> tuple[int, int]:
    """``[start, end)`` of a Parquet file's column chunks (after the magic, before the footer)."""
    raw = path.read_bytes()
    if len(raw) < 12 or raw[:4] != b"PAR1" or raw[-4:] != b"PAR1":
        raise Setup(f"{path} is not a Parquet file")
    footer = int.from_bytes(raw[-8:-4], "little")
    return 4, len(raw) - 8 - footer


def zero_block(path: Path, rng: random.Random) -> str:
    """Zero 64 B-4 KiB (clipped) somewhere in the data pages, footer intact; returns what was done."""
    start, end = data_region(path)
    raw = bytearray(path.read_bytes())
    for _ in range(50):
        length = min(rng.randint(64, 4096), end - start)
        off = rng.randint(start, end - length)
        if any(raw[off:off + length]):
            raw[off:off + length] = bytes(length)
            path.write_bytes(bytes(raw))
            return f"zeroed {length} B at offset {off} of {end - start} data bytes"
    raise Setup(f"no non-zero block in {path}")


def flip_bit(path: Path, rng: random.Random, region: tuple[int, int] | None = None) -> bytes:
    """Flip one random bit of ``path``; returns the original bytes."""
    raw = path.read_bytes()
    lo, hi = region or (0, len(raw))
    pos = rng.randrange(lo, hi)
    changed = bytearray(raw)
    changed[pos] ^= 1 << rng.randrange(8)
    path.write_bytes(bytes(changed))
    return raw


# ------------------------------------------------------------------ ranks of an mpiexec job
def rank_pids(launcher: int, size: int, timeout: float = 30) -> dict[int, int]:
    """``{rank: pid}`` of the Python ranks below process ``launcher``; :class:`Setup` when not found in time."""
    try:
        return processes.rank_pids(launcher, size, timeout)
    except TimeoutError as exc:
        raise Setup(str(exc)) from exc


def crash(ctx: Ctx, cmd: list[str], ready: Callable[[], bool], victim: int, size: int, name: str,
          timeout: float = 120) -> None:
    """Start ``cmd``, wait until ``ready()``, kill -9 rank ``victim`` (the process itself when ``size`` is 0)."""
    with ctx.start(cmd, name) as proc:
        deadline = time.monotonic() + timeout
        while not ready():
            if proc.poll() is not None:
                err = Path(proc.log_err).read_text()[-500:]  # type: ignore[attr-defined]
                raise Setup(f"{name}: the job ended (rc {proc.returncode}) before the crash point: {err!r}")
            if time.monotonic() > deadline:
                raise Setup(f"{name}: crash point not reached in {timeout:.0f} s")
            time.sleep(0.02)
        pid = proc.pid if size == 0 else rank_pids(proc.pid, size)[victim]
        os.kill(pid, signal.SIGKILL)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired as exc:
            raise Setup(f"{name}: the job did not go down within 60 s after kill -9 of one rank") from exc


def count(out: Path, pattern: str) -> int:
    return len(list(out.glob(pattern)))


# =========================================================================== the attacks
Attack = Callable[[Ctx], list[str]]
ATTACKS: dict[int, tuple[str, Attack]] = {}


def attack(num: int, title: str) -> Callable[[Attack], Attack]:
    def deco(fn: Attack) -> Attack:
        ATTACKS[num] = (title, fn)
        return fn
    return deco


# --------------------------------------------------------------------------- 1
A1_ARGS = ("--scenarios", "16", "--iterations", "1", "--seed", SEED)


@attack(1, "kill -9 mid-simulation + partition mutations: validate names them, resume rewrites them")
def attack_1(ctx: Ctx) -> list[str]:
    bad: list[str] = []
    out = ctx.dir("a1")
    sim = out / "simulation"
    tables = ("costs", "hydros", "thermals", "buses", "exchanges", "inflow_lags", "violations/generic")

    def ready() -> bool:
        return all((sim / t / f"scenario_id={s:04d}" / "data.parquet").exists() for t in tables for s in range(6))

    crash(ctx, ctx.cli("demo", "--output", str(out), "-q", *A1_ARGS, "--slow", "0.5", n=ctx.ranks), ready,
          victim=1, size=ctx.ranks, name="a1-crash")
    if markers(out):
        bad.append(f"after kill -9: markers stand: {markers(out)}")
    _res, before = validate_cli(ctx, out)
    mutated: dict[str, str] = {}
    # swap two scenarios' partition directories
    a, b = sim / "hydros" / "scenario_id=0000", sim / "hydros" / "scenario_id=0001"
    tmp = sim / "hydros" / "swap.tmp"
    a.rename(tmp)
    b.rename(a)
    tmp.rename(b)
    mutated["simulation/hydros/scenario_id=0000/"] = "swapped with scenario 1"
    mutated["simulation/hydros/scenario_id=0001/"] = "swapped with scenario 0"
    # scenario 2's costs over scenario 0
    shutil.copyfile(sim / "costs" / "scenario_id=0002" / "data.parquet", sim / "costs" / "scenario_id=0000" / "data.parquet")
    mutated["simulation/costs/scenario_id=0000/"] = "scenario 2's costs copied over"
    # an emptied violations file
    (sim / "violations" / "generic" / "scenario_id=0003" / "data.parquet").write_bytes(b"")
    mutated["simulation/violations/generic/scenario_id=0003/"] = "emptied"
    # zeroed blocks inside data pages, footer intact (what a lost unflushed write leaves)
    for t, s in (("thermals", 4), ("buses", 5), ("exchanges", 2), ("inflow_lags", 1), ("thermals", 3)):
        p = sim / t / f"scenario_id={s:04d}" / "data.parquet"
        mutated[f"simulation/{t}/scenario_id={s:04d}/"] = zero_block(p, ctx.rng)
    # validate names every mutation, beyond what it said about the crashed tree
    res, after = validate_cli(ctx, out)
    if res.timed_out or after is None or traceback_in(res):
        bad.append(f"validate of the mutated tree: {res.brief()}")
    else:
        if res.rc == 0:
            bad.append("validate says the mutated crashed tree is valid")
        for rel, what in mutated.items():
            new = problems_about(after, rel) - problems_about(before, rel)
            if not new:
                bad.append(f"validate does not flag {rel} ({what}); it said about it: "
                           f"{sorted(problems_about(after, rel))[:2]}")
    # resume rewrites them and ends with the checksum of a clean run
    res = ctx.run(ctx.cli("demo", "--output", str(out), "-q", *A1_ARGS, "--resume", n=ctx.ranks))
    if res.rc != 0:
        bad.append(f"resume after the mutations failed: {res.brief()}")
        return bad
    clean = ctx.clean(*A1_ARGS)
    if checksum(out) != checksum(clean):
        bad.append(f"resume ended with checksum {checksum(out)}, a clean run has {checksum(clean)}")
    for rel, what in mutated.items():
        for p in (out / rel).glob("*.parquet"):
            q = clean / rel / p.name
            if p.read_bytes() != q.read_bytes():
                bad.append(f"resume kept the mutated {rel}{p.name} ({what})")
    res, _doc = validate_cli(ctx, out)
    if res.rc != 0:
        bad.append(f"validate after resume: {res.brief()}")
    return bad


# --------------------------------------------------------------------------- 2
def _edit_json(path: Path, edit: Callable[[Any], None]) -> None:
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc, indent=2))


CASE_EDITS: list[tuple[str, str, Callable[[Any], None], tuple[str, ...]]] = [
    ("cascade downstream_id", "system/hydros.json",
     lambda d: d["hydros"][0].__setitem__("downstream_id", 1), ("hydros.json", "downstream_id")),
    ("annual discount rate", "stages.json",
     lambda d: d["policy_graph"].__setitem__("annual_discount_rate", 0.12), ("stages.json", "discount")),
    ("per-stage num_scenarios", "stages.json",
     lambda d: d["stages"][3].__setitem__("num_scenarios", 5), ("stages.json", "num_scenarios")),
    ("inflow scheme", "config.json",
     lambda d: d["training"]["scenario_source"]["inflow"].__setitem__("scheme", "historical"),
     ("config.json", "scheme")),
    ("non-negativity method", "config.json",
     lambda d: d["modeling"]["inflow_non_negativity"].__setitem__("method", "truncation"),
     ("config.json", "non_negativity")),
]


@attack(2, "case input edited between crash and --resume: refused naming it, nothing changed")
def attack_2(ctx: Ctx) -> list[str]:
    bad: list[str] = []
    case = ctx.dir("a2-case")
    shutil.copytree(CASE_4REE, case)
    out = ctx.dir("a2")
    args = ("--case", str(case), "--scenarios", "8", "--iterations", "1", "--seed", SEED)
    crash(ctx, ctx.cli("demo", "--output", str(out), "-q", *args, "--slow", "0.5", n=ctx.ranks),
          lambda: count(out, "simulation/costs/scenario_id=*/data.parquet") >= 2, victim=0, size=ctx.ranks,
          name="a2-crash")
    for what, rel, edit, names in CASE_EDITS:
        original = (case / rel).read_bytes()
        _edit_json(case / rel, edit)
        before = snapshot(out, skip=("_claim.json",))
        res = ctx.run(ctx.cli("demo", "--output", str(out), "-q", *args, "--resume", n=ctx.ranks))
        (case / rel).write_bytes(original)
        bad += clean_refusal(res, f"resume after editing the {what}")
        if res.rc not in (0, None) and not any(n in res.err for n in names):
            bad.append(f"the refusal after editing the {what} does not name it ({' or '.join(names)}): "
                       f"{res.err.strip()[-300:]!r}")
        changed = diff(before, snapshot(out, skip=("_claim.json",)))
        if changed:
            bad.append(f"resume after editing the {what} changed the tree: {changed[:3]}")
    res = ctx.run(ctx.cli("demo", "--output", str(out), "-q", *args, "--resume", n=ctx.ranks))
    if res.rc != 0 or manifest_status(out, "simulation") != "complete":
        bad.append(f"resume with the original case did not complete: {res.brief()}")
    else:
        vres, _doc = validate_cli(ctx, out)
        if vres.rc != 0:
            bad.append(f"validate after the final resume: {vres.brief()}")
    return bad


# --------------------------------------------------------------------------- 3
A3_ARGS = ("--scenarios", "4", "--iterations", "6", "--checkpoint-every", "2", "--seed", SEED)


def _checkpoint_keys(out: Path) -> list[tuple[str, Any, Any]]:
    from cobre_mpi_io.policy.checkpoint import list_checkpoints

    keys = []
    for ckpt in list_checkpoints(out / "policy"):
        meta = read_json(ckpt / "metadata.json") or {}
        keys.append((ckpt.name, meta.get("config_hash"), meta.get("rng_seed")))
    return keys


@attack(3, "kill during training after a checkpoint, --resume --seed 2: refused, no foreign checkpoint")
def attack_3(ctx: Ctx) -> list[str]:
    bad: list[str] = []
    out = ctx.dir("a3")
    crash(ctx, ctx.cli("demo", "--output", str(out), "-q", *A3_ARGS, "--iteration-seconds", "0.6", n=ctx.ranks),
          lambda: count(out, "policy/checkpoints/iter_000002/metadata.json") == 1, victim=0, size=ctx.ranks,
          name="a3-crash")
    if markers(out):
        bad.append(f"after kill -9 in training: markers stand: {markers(out)}")
    own = _checkpoint_keys(out)
    if not own:
        raise Setup("no checkpoint after the crash")
    hashes = {k[1] for k in own}
    for label, extra in (("--seed 2", ("--seed", "2")), ("--detail summary", ("--detail", "summary")),
                         ("--scale production", ("--scale", "production"))):
        args = [a for a in A3_ARGS]
        if extra[0] in args:
            i = args.index(extra[0])
            args[i + 1] = extra[1]
        else:
            args += extra
        before = snapshot(out, skip=("_claim.json",))
        res = ctx.run(ctx.cli("demo", "--output", str(out), "-q", *args, "--resume", n=ctx.ranks))
        bad += clean_refusal(res, f"resume with {label}")
        changed = diff(before, snapshot(out, skip=("_claim.json",)))
        if changed:
            bad.append(f"resume with {label} changed the tree: {changed[:3]}")
        keys = _checkpoint_keys(out)
        if keys and keys[-1][1] not in hashes:
            bad.append(f"after resume with {label} the latest checkpoint is foreign: {keys[-1]}")
        if markers(out):
            bad.append(f"after resume with {label}: markers stand: {markers(out)}")
    # the right arguments finish it, and every checkpoint is the run's own
    res = ctx.run(ctx.cli("demo", "--output", str(out), "-q", *A3_ARGS, "--resume", n=ctx.ranks))
    if res.rc != 0:
        bad.append(f"resume with the original arguments failed: {res.brief()}")
    else:
        foreign = [k for k in _checkpoint_keys(out) if k[1] not in hashes]
        if foreign:
            bad.append(f"foreign checkpoints after the final resume: {foreign}")
        vres, _doc = validate_cli(ctx, out)
        if vres.rc != 0:
            bad.append(f"validate after the final resume: {vres.brief()}")
    return bad


# --------------------------------------------------------------------------- 4
A4_ARGS = ("--scenarios", "4", "--iterations", "4", "--checkpoint-every", "2", "--seed", SEED)


def _training_view(out: Path) -> tuple[Any, ...] | None:
    """(marker stat, manifest completed iterations, convergence rows, convergence bytes hash) or None."""
    import pyarrow.parquet as pq

    marker = out / "training" / "_SUCCESS"
    try:
        st1 = os.lstat(marker)
    except OSError:
        return None
    man = read_json(out / "training" / "_manifest.json") or {}
    try:
        rows = pq.read_metadata(out / "training" / "convergence.parquet").num_rows
    except Exception:  # noqa: BLE001 - unreadable counts as a mismatch
        rows = -1
    try:
        st2 = os.lstat(marker)
    except OSError:
        return None
    if (st1.st_ino, st1.st_ctime_ns) != (st2.st_ino, st2.st_ctime_ns):
        return None  # the marker changed while we looked: no consistent observation
    completed = (man.get("iterations") or {}).get("completed") if isinstance(man, dict) else None
    return (man.get("status") if isinstance(man, dict) else None, completed, rows)


@attack(4, "--resume of a complete run, killed in it: no _SUCCESS/complete over a tree in change")
def attack_4(ctx: Ctx) -> list[str]:
    bad: list[str] = []
    out = ctx.copy_of(ctx.clean(*A4_ARGS), "a4")
    orig = snapshot(out)
    seen: list[str] = []
    with ctx.start(ctx.cli("demo", "--output", str(out), "-q", *A4_ARGS, "--resume", "--iteration-seconds", "0.8",
                           n=ctx.ranks), "a4-resume") as proc:
        t0 = time.monotonic()
        changed_at = None
        while proc.poll() is None and time.monotonic() - t0 < 90:
            view = _training_view(out)
            if view is not None and (view[0] != "complete" or view[1] != view[2]):
                seen.append(f"training/_SUCCESS stands with manifest {view[0]} {view[1]} iterations and "
                            f"convergence rows {view[2]}")
            if changed_at is None and (not (out / "training" / "_SUCCESS").exists()
                                       or snapshot(out / "training").get("convergence.parquet")
                                       != orig.get("training/convergence.parquet")):
                changed_at = time.monotonic()
            if changed_at is not None and time.monotonic() - changed_at > 1.2:
                with contextlib.suppress(Setup):
                    os.kill(rank_pids(proc.pid, ctx.ranks, timeout=5)[0], signal.SIGKILL)
                break
            time.sleep(0.03)
        try:
            rc = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            bad.append("resume of a complete run did not end within 60 s after kill -9")
            return bad
    if seen:
        bad.append(f"while training was redone: {seen[0]} ({len(seen)} observations)")
    killed = changed_at is not None
    ctx.notes.append("the resumed complete run trained again and was killed in it" if killed
                     else f"the resumed complete run changed nothing training depends on (exit {rc})")
    err = Path(proc.log_err).read_text()  # type: ignore[attr-defined]
    if "Traceback (most recent call last)" in err:
        bad.append(f"resume of a complete run printed a traceback: {err[-400:]!r}")
    if not killed:
        # nothing was redone: the run must stand exactly as it was (or the resume must be refused cleanly)
        now = snapshot(out, skip=("_claim.json", "_journal"))
        if rc == 0 and diff({k: v for k, v in orig.items() if not k.startswith("_journal")}, now):
            bad.append(f"resume of a complete run exited 0 and changed the tree without withdrawing "
                       f"_SUCCESS long enough to be seen: {diff(orig, now)[:3]}")
    # whatever stands after the kill must be whole: a section's marker or complete status stands only
    # over a section validate finds nothing wrong with (the claim the killed run left is the root's)
    standing = markers(out)
    if standing:
        vres, vdoc = validate_cli(ctx, out)
        for section in ("simulation", "training"):
            mine = [m for m in standing if m.startswith(section + "/")]
            wrong = [f"{p.get('path')}: {p.get('problem')}" for p in (vdoc or {}).get("problems", [])
                     if p.get("section") in (section, "policy" if section == "training" else section)]
            if mine and (wrong or vdoc is None):
                bad.append(f"after kill -9 in the resumed run, {mine} stand over a section with problems: "
                           f"{wrong[:3] or vres.brief()}")
    if not killed and not (out / "training" / "_SUCCESS").exists():
        bad.append("resume of a complete run (not killed) removed training/_SUCCESS")
    res = ctx.run(ctx.cli("demo", "--output", str(out), "-q", *A4_ARGS, "--resume", n=ctx.ranks))
    if res.rc != 0:
        bad.append(f"a further resume did not complete: {res.brief()}")
    else:
        vres, _doc = validate_cli(ctx, out)
        if vres.rc != 0 or checksum(out) != checksum(ctx.clean(*A4_ARGS)):
            bad.append(f"after the further resume: validate {vres.brief()}, checksum {checksum(out)}")
    return bad


# --------------------------------------------------------------------------- 5
A5_ARGS = ("--scenarios", "8", "--iterations", "0", "--seed", SEED)
HOLDER_SLOW = "3"  # seconds per scenario of a live holder: it outlives three refused runs on a loaded machine

_SLOW_FS = r"""
import os, runpy, sys, time
def slow(fn):
    def wrapped(*a, **k):
        if any('_claim' in os.fsdecode(x) for x in a if isinstance(x, (str, bytes, os.PathLike))):
            time.sleep(1.5)
        return fn(*a, **k)
    return wrapped
for name in ('unlink', 'remove', 'rename', 'replace', 'link'):
    setattr(os, name, slow(getattr(os, name)))
sys.argv = ['cobre-mpi-io', *sys.argv[1:]]
runpy.run_module('cobre_mpi_io', run_name='__main__')
"""


def _live_claim_attempts(ctx: Ctx, out: Path, holder: subprocess.Popen[bytes], label: str) -> list[str]:
    """Refused runs against a live holder: each refused, the claim's bytes untouched, the holder alive."""
    bad = []
    claim = out / "_claim.json"
    attempts = [("a fresh run (no --resume)", ctx.cli("demo", "--output", str(out), "-q", *A5_ARGS, n=ctx.ranks)),
                ("--resume with the same arguments", ctx.cli("demo", "--output", str(out), "-q", *A5_ARGS,
                                                              "--resume", n=ctx.ranks)),
                ("--resume --seed 2", ctx.cli("demo", "--output", str(out), "-q", *A5_ARGS[:-1], "2", "--resume"))]
    for what, cmd in attempts:
        before = claim.read_bytes() if claim.exists() else None
        res = ctx.run(cmd)
        after = claim.read_bytes() if claim.exists() else None
        if holder.poll() is not None:
            bad.append(f"{label}: the holder ended before {what} was tried (increase --slow)")
            break
        bad += clean_refusal(res, f"{label}: {what}")
        if before != after:
            bad.append(f"{label}: {what} changed or deleted the live claim")
    return bad


def _holder_ok(ctx: Ctx, out: Path, holder: subprocess.Popen[bytes], label: str) -> list[str]:
    try:
        rc = holder.wait(timeout=CMD_TIMEOUT)
    except subprocess.TimeoutExpired:
        return [f"{label}: the holder did not finish"]
    bad = []
    if rc != 0:
        bad.append(f"{label}: the live holder failed (rc {rc}): "
                   f"{Path(holder.log_err).read_text()[-400:]!r}")  # type: ignore[attr-defined]
    elif checksum(out) != checksum(ctx.clean(*A5_ARGS)):
        bad.append(f"{label}: the holder's run has checksum {checksum(out)}, a clean one "
                   f"{checksum(ctx.clean(*A5_ARGS))} (mixed data)")
    if (out / "_claim.json").exists():
        bad.append(f"{label}: _claim.json left behind after the holder finished")
    return bad


@attack(5, "claims: live holder in another PID namespace, refused runs, two concurrent breakers")
def attack_5(ctx: Ctx) -> list[str]:
    bad: list[str] = []
    # (a) a live holder in another PID namespace with the same host name
    unshare = shutil.which("unshare")
    if unshare is None:
        bad.append("unshare not found: the PID-namespace attack cannot run")
    else:
        out = ctx.dir("a5-pidns")
        cmd = [unshare, "--pid", "--fork", "--mount-proc",
               *ctx.cli("demo", "--output", str(out), "-q", *A5_ARGS, "--slow", HOLDER_SLOW)]
        with ctx.start(cmd, "a5-pidns-holder") as holder:
            deadline = time.monotonic() + 60
            while not (out / "_claim.json").exists() or count(out, "simulation/costs/*/data.parquet") < 1:
                if holder.poll() is not None or time.monotonic() > deadline:
                    raise Setup(f"PID-namespace holder did not start: "
                                f"{Path(holder.log_err).read_text()[-400:]!r}")  # type: ignore[attr-defined]
                time.sleep(0.05)
            bad += _live_claim_attempts(ctx, out, holder, "other PID namespace")
            bad += _holder_ok(ctx, out, holder, "other PID namespace")
    # (b) a live holder in this namespace: refused runs never touch its claim
    out = ctx.dir("a5-live")
    with ctx.start(ctx.cli("demo", "--output", str(out), "-q", *A5_ARGS, "--slow", HOLDER_SLOW), "a5-holder") as holder:
        deadline = time.monotonic() + 60
        while not (out / "_claim.json").exists():
            if holder.poll() is not None or time.monotonic() > deadline:
                raise Setup("holder did not start")
            time.sleep(0.05)
        bad += _live_claim_attempts(ctx, out, holder, "same namespace")
        bad += _holder_ok(ctx, out, holder, "same namespace")
    # (c) two breakers of a stale claim on a slow filesystem: exactly one wins
    out = ctx.dir("a5-stale")
    crash(ctx, ctx.cli("demo", "--output", str(out), "-q", *A5_ARGS, "--slow", "0.3"),
          lambda: count(out, "simulation/costs/*/data.parquet") >= 2, victim=0, size=0, name="a5-stale")
    if not (out / "_claim.json").exists():
        raise Setup("the killed run left no claim to break")
    breaker = [ctx.python, "-c", _SLOW_FS, "demo", "--output", str(out), "-q", *A5_ARGS, "--resume", "--slow", "0.8"]
    with ctx.start(breaker, "a5-breaker1") as b1:
        time.sleep(0.4)
        with ctx.start(breaker, "a5-breaker2") as b2:
            rcs: list[int | None] = []
            for b in (b1, b2):
                try:
                    rcs.append(b.wait(timeout=CMD_TIMEOUT))
                except subprocess.TimeoutExpired:
                    rcs.append(None)
            errs = [Path(b.log_err).read_text() for b in (b1, b2)]  # type: ignore[attr-defined]
    if None in rcs:
        bad.append(f"a breaker hung: rcs {rcs}")
    if rcs.count(0) != 1:
        bad.append(f"two breakers of one stale claim: exit statuses {rcs} (exactly one must win): "
                   f"{[e.strip()[-200:] for e in errs]}")
    for e in errs:
        if "Traceback (most recent call last)" in e:
            bad.append(f"a breaker printed a traceback: {e[-300:]!r}")
    if manifest_status(out, "simulation") != "complete" or checksum(out) != checksum(ctx.clean(*A5_ARGS)):
        bad.append(f"after the two breakers: status {manifest_status(out, 'simulation')}, checksum "
                   f"{checksum(out)} (clean {checksum(ctx.clean(*A5_ARGS))})")
    return bad


# --------------------------------------------------------------------------- 6
A6_ARGS = ("--scenarios", "4", "--iterations", "2", "--seed", SEED)
FLIPS_PER_KIND = 3


def _kinds(out: Path) -> dict[str, Path]:
    t = out / "training"
    ckpt = sorted((out / "policy" / "checkpoints").glob("iter_*"))
    kinds = {
        "training convergence.parquet": t / "convergence.parquet",
        "training timing/iterations.parquet": t / "timing" / "iterations.parquet",
        "rank timing part": t / "timing" / "mpi_ranks.parquet" / "part-rank-0000.parquet",
        "bounds.parquet": t / "dictionaries" / "bounds.parquet",
        "entities.csv": t / "dictionaries" / "entities.csv",
        "codes.json": t / "dictionaries" / "codes.json",
        "variables.csv": t / "dictionaries" / "variables.csv",
        "state_dictionary.json": t / "dictionaries" / "state_dictionary.json",
        "metadata.json": t / "metadata.json",
        "training _manifest.json": t / "_manifest.json",
        "simulation partition": out / "simulation" / "costs" / "scenario_id=0001" / "data.parquet",
        "simulation _manifest.json": out / "simulation" / "_manifest.json",
    }
    if ckpt:
        kinds["checkpoint cuts"] = ckpt[-1] / "cuts" / "stage_001.bin"
        kinds["checkpoint metadata.json"] = ckpt[-1] / "metadata.json"
    return kinds


def _library_flags(out: Path, target: Path) -> tuple[bool, str]:
    from cobre_mpi_io.validate import validate_output

    report = validate_output(out, threads=1)
    rel = target.relative_to(out).as_posix()
    inner = rel.partition("/")[2] or rel  # the path in its section (training/, simulation/, policy/)
    named = [str(p) for p in report.problems if p.path == rel or rel in str(p) or inner in p.problem]
    if not report.valid and named:
        return True, named[0]
    return False, f"valid={report.valid}, problems: {[str(p) for p in report.problems][:3]}"


def _targeted_edits(path: Path) -> list[tuple[str, Callable[[Any], None]]]:
    def setter(keys: Sequence[str], fn: Callable[[Any], Any]) -> Callable[[Any], None]:
        def edit(doc: Any) -> None:
            node = doc
            for k in keys[:-1]:
                node = node[k]
            node[keys[-1]] = fn(node[keys[-1]])
        return edit
    doc = json.loads(path.read_text())
    edits: list[tuple[str, Callable[[Any], None]]] = []
    for keys, fn in ((("run_info", "hostname"), lambda v: str(v) + "x"),
                     (("problem_dimensions", "num_hydros"), lambda v: v + 1),
                     (("configuration_snapshot", "seed"), lambda v: v + 1),
                     (("performance_summary", "total_lp_solves"), lambda v: v * 2),
                     (("run_info", "completed_at"), lambda v: "2020-01-01T00:00:00Z")):
        node = doc
        try:
            for k in keys:
                node = node[k]
        except (KeyError, TypeError):
            continue
        edits.append(("/".join(keys), setter(keys, fn)))
    return edits


@attack(6, "validate detects bit flips in every kind of file and targeted edits")
def attack_6(ctx: Ctx) -> list[str]:
    bad: list[str] = []
    out = ctx.copy_of(ctx.clean(*A6_ARGS), "a6")
    for kind, path in _kinds(out).items():
        if not path.is_file():
            bad.append(f"{kind}: {path.relative_to(out)} not found in a clean run")
            continue
        for _ in range(FLIPS_PER_KIND):
            original = flip_bit(path, ctx.rng)
            try:
                ok, why = _library_flags(out, path)
            finally:
                path.write_bytes(original)
            if not ok:
                bad.append(f"bit flip in {kind} not detected: {why}")
                break
    # targeted edits of metadata.json that keep it valid JSON; codes.json that is not JSON
    meta = out / "training" / "metadata.json"
    original = meta.read_bytes()
    for name, edit in _targeted_edits(meta):
        _edit_json(meta, edit)
        try:
            ok, why = _library_flags(out, meta)
        finally:
            meta.write_bytes(original)
        if not ok:
            bad.append(f"metadata.json edit of {name} not detected: {why}")
    codes = out / "training" / "dictionaries" / "codes.json"
    original = codes.read_bytes()
    codes.write_bytes(b"this is not JSON {")
    try:
        ok, why = _library_flags(out, codes)
    finally:
        codes.write_bytes(original)
    if not ok:
        bad.append(f"codes.json that is not JSON passes: {why}")
    # the command line says so too (exit 1, names the file)
    bounds = out / "training" / "dictionaries" / "bounds.parquet"
    original = flip_bit(bounds, ctx.rng, data_region(bounds))
    try:
        res, doc = validate_cli(ctx, out)
    finally:
        bounds.write_bytes(original)
    if res.rc != 1 or not problems_about(doc, "bounds.parquet"):
        bad.append(f"validate (CLI) of a flipped bounds.parquet: {res.brief()}")
    restored = validate_output_clean(out)
    if restored:
        bad.append(f"the restored tree is not valid: {restored}")
    return bad


def validate_output_clean(out: Path) -> list[str]:
    from cobre_mpi_io.validate import validate_output

    report = validate_output(out, threads=1)
    return [str(p) for p in report.problems][:3]


# --------------------------------------------------------------------------- 7
A7_ARGS = ("--scenarios", "6", "--iterations", "1", "--seed", SEED)


def _report(ctx: Ctx, out: Path) -> tuple[Result, dict[str, Any] | None]:
    res = ctx.run(ctx.cli("report", str(out), "--json"), timeout=TOOL_TIMEOUT)
    try:
        doc = json.loads(res.out)
    except ValueError:
        doc = None
    return res, doc if isinstance(doc, dict) else None


def _stats(doc: dict[str, Any]) -> Any:
    results = dict(doc.get("sections", {}).get("results") or {})
    for volatile in ("seconds", "engine", "unlisted"):
        results.pop(volatile, None)
    sim = (doc.get("sections", {}).get("simulation") or {}).get("summary")
    return results, sim


@attack(7, "report with an extra partition scenario_id=0999: warns, statistics unchanged")
def attack_7(ctx: Ctx) -> list[str]:
    bad: list[str] = []
    out = ctx.copy_of(ctx.clean(*A7_ARGS), "a7")
    res0, base = _report(ctx, out)
    if base is None:
        raise Setup(f"report of a clean run failed: {res0.brief()}")
    for table_dir in sorted(p.parent for p in (out / "simulation").rglob("scenario_id=0002")):
        shutil.copytree(table_dir / "scenario_id=0002", table_dir / "scenario_id=0999")
    res, doc = _report(ctx, out)
    if res.timed_out or doc is None or traceback_in(res):
        bad.append(f"report with scenario_id=0999: {res.brief()}")
        return bad
    if "0999" not in res.text:
        bad.append("report says nothing about the unlisted scenario_id=0999")
    if _stats(doc) != _stats(base):
        a, b = _stats(base), _stats(doc)
        keys = [k for k in set(a[0]) | set(b[0]) if a[0].get(k) != b[0].get(k)]
        bad.append(f"report statistics changed with scenario_id=0999 (results keys {keys}, summary "
                   f"{'changed' if a[1] != b[1] else 'same'})")
    vres, vdoc = validate_cli(ctx, out)
    if vres.rc != 1 or not problems_about(vdoc, "scenario_id=0999"):
        bad.append(f"validate does not flag the unlisted scenario_id=0999: {vres.brief()}")
    return bad


# --------------------------------------------------------------------------- 8
A8_ARGS = ("--scenarios", "4", "--iterations", "2", "--seed", SEED)


def _fifo_places(out: Path) -> dict[str, Path]:
    ckpt = sorted((out / "policy" / "checkpoints").glob("iter_*"))
    journal = sorted((out / "_journal" / "files").glob("*.jsonl"))
    places = {
        "_claim.json": out / "_claim.json",
        "training/convergence.parquet": out / "training" / "convergence.parquet",
        "training/dictionaries/codes.json": out / "training" / "dictionaries" / "codes.json",
        "simulation/_manifest.json": out / "simulation" / "_manifest.json",
        "training/_manifest.json": out / "training" / "_manifest.json",
        "training/metadata.json": out / "training" / "metadata.json",
        "simulation partition": out / "simulation" / "costs" / "scenario_id=0001" / "data.parquet",
    }
    if ckpt:
        places["checkpoint metadata.json"] = ckpt[-1] / "metadata.json"
    if journal:
        places["a run journal file"] = journal[0]
    return places


@attack(8, "FIFOs in the tree: demo --resume (mpiexec), validate, report never hang")
def attack_8(ctx: Ctx) -> list[str]:
    bad: list[str] = []
    clean = ctx.clean(*A8_ARGS)
    for place in _fifo_places(clean):
        out = ctx.copy_of(clean, "a8")
        target = _fifo_places(out)[place]
        target.unlink(missing_ok=True)
        os.mkfifo(target)
        for tool, cmd, timeout in (
                ("validate", ctx.cli("validate", str(out)), TOOL_TIMEOUT),
                ("report", ctx.cli("report", str(out)), TOOL_TIMEOUT),
                ("demo --resume", ctx.cli("demo", "--output", str(out), "-q", *A8_ARGS, "--resume", n=ctx.ranks),
                 CMD_TIMEOUT)):
            res = ctx.run(cmd, timeout=timeout)
            if res.timed_out:
                bad.append(f"FIFO at {place}: {tool} HUNG (killed after {res.seconds:.0f} s)")
            elif traceback_in(res):
                bad.append(f"FIFO at {place}: {tool} printed a traceback: {res.brief()}")
            elif tool == "validate" and res.rc == 0 and place != "_claim.json":
                bad.append(f"FIFO at {place}: validate says valid")
            elif tool == "demo --resume" and res.rc == 0:
                # it may rebuild a document; then the tree must be whole and hold no FIFO
                vres, _doc = validate_cli(ctx, out)
                if vres.rc != 0 or (target.exists() and stat.S_ISFIFO(os.lstat(target).st_mode)):
                    bad.append(f"FIFO at {place}: demo --resume exited 0 over an invalid tree: {vres.brief()}")
            if res.timed_out and tool == "demo --resume":
                break
    return bad


# --------------------------------------------------------------------------- 9
@attack(9, "bad case config.json: one clear error naming file and field, nothing left behind")
def attack_9(ctx: Ctx) -> list[str]:
    bad: list[str] = []
    for section, key, value in (("training", "forward_passes", 0), ("training", "forward_passes", -3),
                                ("simulation", "num_scenarios", -5)):
        case = ctx.dir("a9-case")
        shutil.copytree(CASE_4REE, case)
        def bad_value(doc: Any, s: str = section, k: str = key, v: int = value) -> None:
            doc[s][k] = v

        _edit_json(case / "config.json", bad_value)
        out = ctx.dir("a9")
        res = ctx.run(ctx.cli("demo", "--output", str(out), "-q", "--case", str(case), "--iterations", "1",
                              n=ctx.ranks))
        what = f"config.json {section}.{key} = {value}"
        bad += clean_refusal(res, what)
        if res.rc not in (0, None):
            if "config.json" not in res.err or key not in res.err:
                bad.append(f"{what}: the error does not name the file and the field: {res.err.strip()[-300:]!r}")
            if sum("error" in line for line in res.err.splitlines()) != 1 or "MPI_Abort" in res.err:
                bad.append(f"{what}: not one clear error: {res.err.strip()[-400:]!r}")
        left = sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) if out.exists() else []
        if left:
            bad.append(f"{what}: left behind {left[:5]}")
    # the case's own seed is honoured when --seed is not given
    case = ctx.dir("a9-seed")
    shutil.copytree(CASE_4REE, case)
    _edit_json(case / "config.json", lambda d: d["training"]["scenario_source"].__setitem__("seed", 7))
    out = ctx.dir("a9-seeded")
    res = ctx.run(ctx.cli("demo", "--output", str(out), "-q", "--case", str(case), "--iterations", "1",
                          "--scenarios", "2", n=ctx.ranks))
    man = read_json(out / "simulation" / "_manifest.json") or {}
    seed = ((man.get("run_identity") or {}).get("config") or {}).get("seed")
    if res.rc != 0 or seed != 7:
        bad.append(f"a case with seed 7 and no --seed ran with seed {seed!r}: {res.brief()}")
    return bad


# --------------------------------------------------------------------------- 10
@attack(10, "examples/solver_integration.py twice into one directory: refused, first run valid")
def attack_10(ctx: Ctx) -> list[str]:
    bad: list[str] = []
    out = ctx.dir("a10")
    cmd = [*ctx.mpiexec(ctx.ranks), ctx.python, str(EXAMPLE), str(out)]
    first = ctx.run(cmd)
    if first.rc != 0:
        raise Setup(f"the example failed on an empty directory: {first.brief()}")
    before = snapshot(out)
    second = ctx.run(cmd)
    bad += clean_refusal(second, "the example's second run")
    changed = diff(before, snapshot(out))
    if changed:
        bad.append(f"the second run changed the first run's tree: {changed[:4]}")
    if (out / "_claim.json").exists():
        bad.append("the second run left _claim.json behind")
    res, _doc = validate_cli(ctx, out)
    if res.rc != 0:
        bad.append(f"the first run no longer validates: {res.brief()}")
    # the library's own writers refuse the finished run; a run handle releases its claim on an exception
    before = snapshot(out)
    res = ctx.run([ctx.python, "-c", _LIBRARY_PROBE, str(out), str(ctx.dir("a10-fresh"))], timeout=TOOL_TIMEOUT)
    if res.rc != 0:
        bad.append(f"library writers: {res.brief()}")
    changed = diff(before, snapshot(out))
    if changed:
        bad.append(f"a standalone writer changed the finished run: {changed[:4]}")
    return bad


_LIBRARY_PROBE = r"""
import sys
from pathlib import Path
from cobre_mpi_io import OutputError, System, TrainingParquetWriter
from cobre_mpi_io.run import open_run
out, fresh = Path(sys.argv[1]), Path(sys.argv[2])
bad = []
try:
    TrainingParquetWriter(out)
    bad.append("TrainingParquetWriter accepted a finished run")
except OutputError:
    pass
if (out / "_claim.json").exists():
    bad.append("a refused TrainingParquetWriter left _claim.json")
try:
    with open_run(fresh, System.synthetic("small")):
        raise RuntimeError("the integrator's own bug")
except RuntimeError:
    pass
if (fresh / "_claim.json").exists():
    bad.append("open_run did not release the claim when the code inside raised")
print("; ".join(bad))
sys.exit(1 if bad else 0)
"""


# --------------------------------------------------------------------------- 11
@attack(11, "demo into a non-empty directory that holds no run: refused, untouched")
def attack_11(ctx: Ctx) -> list[str]:
    bad: list[str] = []
    out = ctx.dir("a11")
    out.mkdir()
    (out / "notes.txt").write_text("my notes\n")
    (out / "data").mkdir()
    (out / "data" / "inflows.csv").write_text("a,b\n1,2\n")
    before = snapshot(out)
    res = ctx.run(ctx.cli("demo", "--output", str(out), "-q", "--scenarios", "4", "--iterations", "1", n=ctx.ranks))
    bad += clean_refusal(res, "demo into a non-empty directory")
    now = snapshot(out)
    extra = sorted({p.relative_to(out).as_posix() for p in out.rglob("*")} - {"notes.txt", "data",
                                                                               "data/inflows.csv"})
    if diff(before, now) or extra:
        bad.append(f"the directory was changed: {diff(before, now)[:3]} {extra[:5]}")
    return bad


# =========================================================================== driver
def run_attacks(ctx: Ctx, numbers: Sequence[int], budget: float) -> tuple[int, int]:
    """Run the attacks, print one line each; (passed, failed)."""
    t_start = time.monotonic()
    passed = failed = 0
    for num in numbers:
        title, fn = ATTACKS[num]
        if time.monotonic() - t_start > budget:
            print(f"FAIL {num:2d} {title}: not run, the time budget ({budget:.0f} s) is spent", flush=True)
            failed += 1
            continue
        t0 = time.monotonic()
        try:
            problems = fn(ctx)
        except Setup as exc:
            problems = [f"could not stage the attack: {exc}"]
        except Exception as exc:  # noqa: BLE001 - an attack's own error is a FAIL with its cause
            problems = [f"the campaign raised {type(exc).__name__}: {exc}\n"
                        + "".join(traceback.format_exc(limit=4))]
        dt = time.monotonic() - t0
        notes, ctx.notes = ctx.notes, []
        if problems:
            failed += 1
            print(f"FAIL {num:2d} {title} ({dt:.1f} s)", flush=True)
            for p in problems:
                print(f"       - {p}", flush=True)
        else:
            passed += 1
            print(f"PASS {num:2d} {title} ({dt:.1f} s)", flush=True)
        for note in notes:
            print(f"       note: {note}", flush=True)
    return passed, failed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="comma-separated attack numbers (default: all)")
    parser.add_argument("--list", action="store_true", help="list the attacks and exit")
    parser.add_argument("--ranks", type=int, default=2, help="ranks of the mpiexec jobs (default 2)")
    parser.add_argument("--python", default=sys.executable, help="interpreter of the environment under test")
    parser.add_argument("--seed", type=int, default=None, help="seed of the random mutations (default: random, "
                                                                "printed)")
    parser.add_argument("--budget", type=float, default=1800.0, help="seconds for the whole campaign "
                                                                       "(default 1800)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument("--verbose", action="store_true", help="print every command")
    args = parser.parse_args(argv)
    if args.list:
        for num, (title, _fn) in ATTACKS.items():
            print(f"{num:2d} {title}")
        return 0
    numbers = sorted(ATTACKS) if not args.only else [int(x) for x in args.only.split(",")]
    unknown = [n for n in numbers if n not in ATTACKS]
    if unknown:
        parser.error(f"unknown attack(s) {unknown}")
    seed = args.seed if args.seed is not None else random.randrange(2**31)
    sys.path.insert(0, str(REPO))
    work = Path(tempfile.mkdtemp(prefix="qa-attacks-"))
    print(f"attack campaign: {len(numbers)} attack(s), mutation seed {seed}, scratch {work}", flush=True)
    t0 = time.monotonic()
    ctx = Ctx(work, args.python, args.ranks, seed, args.verbose)

    def stop(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    try:
        passed, failed = run_attacks(ctx, numbers, args.budget)
    finally:
        ctx.kill_all()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"{passed} passed, {failed} failed in {time.monotonic() - t0:.0f} s", flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
