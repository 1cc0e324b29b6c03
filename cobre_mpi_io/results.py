"""The single entry point that writes everything a run produced (SPEC §11).

:func:`write_results` is collective over ``comm`` and runs these steps in
order, every rank agreeing after each one before the next starts:

1. directories; rank 0 withdraws ``training/_SUCCESS`` and a final status
   durably and writes a ``running`` training manifest (so a crash from here
   on leaves nothing that claims the run complete);
2. dictionaries (rank 0, :func:`~cobre_mpi_io.dictionaries.write_dictionaries`);
3. training Parquet (every rank its own part file, rank 0 the per-iteration
   tables: :meth:`TrainingParquetWriter.finalize`);
4. ``training/metadata.json`` (environment detected collectively, rank 0 writes);
5. training manifest with the final status, the checksums and ``files``:
   every file of the training run (tables, timing parts, dictionaries,
   ``metadata.json``, the published policy checkpoint) as the run's journal
   records it (:func:`training_files`);
6. ``simulation/_manifest.json`` when simulation ran: rank 0 rewrites it from
   :attr:`SimulationOutput.manifest` only if the file is missing or differs
   (withdrawing ``simulation/_SUCCESS`` first);
7. ``_SUCCESS`` markers: ``training/`` when the status is ``complete`` or
   ``converged``, ``simulation/`` when its status is ``complete``.

Every file written is recorded in the run's journal
(:mod:`cobre_mpi_io.journal`).

If any rank fails at any step, every rank raises the same
:class:`~cobre_mpi_io.errors.OutputError` (the lowest failing rank's) at that
step, and rank 0 leaves both manifests not ``complete``: the training manifest
says ``running`` (failure before step 4) or ``failed``, the simulation
manifest is rewritten as ``failed`` with the error recorded, and both
``_SUCCESS`` markers are removed. A later call (or a resumed simulation)
restores them.
"""

from __future__ import annotations

import math
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from . import mpi
from ._version import __version__
from .atomic import ensure_dir
from .claim import acquire_run
from .config import RunConfig
from .errors import ManifestError, OutputError, SchemaError
from .hashing import peak_rss_mb, sha256_file, sha256_files, xxh64_files
from .identity import RunIdentity
from .journal import JournalEntry, open_journal, read_journal
from .layout import (
    MANIFEST_NAME,
    POLICY_DIR,
    SUCCESS_NAME,
    TRAINING_DIR,
    policy_cut_files,
    resolve_checkpoint_dir,
)
from .manifest import (
    SUCCESS_STATUSES,
    TRAINING_STATUSES,
    Failure,
    SimulationManifest,
    TrainingManifest,
    remove_success_marker,
    simulation_manifest_text,
    utc_now,
    withdraw_training_completion,
    write_simulation_manifest,
    write_success_marker,
    write_training_manifest,
)
from .parquet import FileRecord
from .schemas import check_format, tables_for_detail
from .system.model import System
from .training.dictionaries import write_dictionaries
from .training.metadata import RunMetadata, detect_environment, input_hash, problem_dimensions, write_metadata
from .training.writer import CONVERGENCE_PATH, IterationRecord, RankTimingRecord, TrainingParquetWriter

__all__ = [
    "SUCCESS_STATUSES",
    "RunConfig",
    "SimulationOutput",
    "TrainingOutput",
    "WrittenResults",
    "policy_xxhash64",
    "training_files",
    "write_results",
]


@dataclass(frozen=True)
class TrainingOutput:
    """What :func:`write_results` needs from the training phase (on every rank).

    Attributes
    ----------
    status : str
        ``running``, ``complete``, ``converged``, ``failed`` or ``interrupted``.
    started_at : str
        ISO 8601 UTC start of training.
    max_iterations : int
    forward_passes : int
        Forward passes per iteration.
    iterations : sequence of IterationRecord
        Every iteration (ignored when ``writer`` is given).
    rank_timings : sequence of RankTimingRecord
        This rank's timing rows (ignored when ``writer`` is given).
    writer : TrainingParquetWriter, optional
        The writer already fed during training; it is finalized here.
    termination_reason : str, optional
        ``iteration_limit``, ``time_limit``, ``bound_stalling`` or ``simulation``.
    converged_at : int, optional
        Iteration at which convergence was declared.
    cuts_total_generated, cuts_total_active, cuts_peak_active : int, optional
        Default: sum of ``cuts_added``, last and max ``cuts_active``.
    policy_dir : path-like, optional
        ``OUT/policy`` when a checkpoint was written (hashes its ``cuts/stage_*.bin``).
        Default ``OUT/policy`` if it has cut files.
    completed_at : str, optional
        Default: when :func:`write_results` runs (``None`` for ``running``).
    run_id : str, optional
        Default: a new uuid4.
    solver, solver_version : str, optional
        LP solver name and version.
    lp_dimensions : mapping, optional
        Average LP dimensions (rows, columns, nonzeros) for ``problem_dimensions``.
    lp_solve_times_us : sequence of float, optional
        Individual LP solve times; otherwise LP time statistics are estimated
        per iteration from solve times and LP counts.
    """

    status: str
    started_at: str
    max_iterations: int
    forward_passes: int
    iterations: Sequence[IterationRecord] = ()
    rank_timings: Sequence[RankTimingRecord] = ()
    writer: TrainingParquetWriter | None = field(default=None, compare=False, repr=False)
    termination_reason: str | None = None
    converged_at: int | None = None
    cuts_total_generated: int | None = None
    cuts_total_active: int | None = None
    cuts_peak_active: int | None = None
    policy_dir: str | os.PathLike[str] | None = None
    completed_at: str | None = None
    run_id: str | None = None
    solver: str | None = None
    solver_version: str | None = None
    lp_dimensions: Mapping[str, Any] | None = None
    lp_solve_times_us: Sequence[float] | None = None

    def __post_init__(self) -> None:
        if self.status not in TRAINING_STATUSES:
            raise ManifestError("training", f"unknown status {self.status!r}")


@dataclass(frozen=True)
class SimulationOutput:
    """What :func:`write_results` needs from the simulation phase.

    Attributes
    ----------
    manifest : SimulationManifest
        What the simulation writer's collective ``finalize()`` returned.
    """

    manifest: SimulationManifest

    @property
    def tables(self) -> tuple[str, ...]:
        """Simulation tables written (the manifest's, at its detail: :func:`~cobre_mpi_io.schemas.tables_for_detail`)."""
        return tables_for_detail(self.manifest.detail, self.manifest.tables)


@dataclass(frozen=True)
class WrittenResults:
    """What :func:`write_results` wrote (the same on every rank)."""

    training_manifest: TrainingManifest
    metadata: RunMetadata
    training_files: tuple[FileRecord, ...]
    simulation_manifest: SimulationManifest | None = None


def policy_xxhash64(policy_dir: str | os.PathLike[str] | None) -> str | None:
    """xxh64 hex of the concatenated bytes of ``policy/cuts/stage_*.bin`` in stage order; None without cut files."""
    files = policy_cut_files(policy_dir)
    return xxh64_files(files) if files else None


def training_files(output_dir: str | os.PathLike[str], journal: Mapping[str, JournalEntry],
                   policy_dir: str | os.PathLike[str] | None = None) -> dict[str, JournalEntry]:
    """The files a training manifest lists, from the run's journal (pure but for resolving ``policy/latest``).

    Everything the journal records under ``training/`` (tables, timing
    parts, dictionaries, ``metadata.json``) but the manifest itself and
    ``_SUCCESS``; every file of the published policy checkpoint (the one
    ``policy/latest`` designates); and ``policy/state_dictionary.json`` when
    it is a file of its own.

    Parameters
    ----------
    output_dir : path-like
        The run's output directory ``OUT``.
    journal : mapping of str to JournalEntry
        :func:`~cobre_mpi_io.journal.read_journal` of ``OUT``.
    policy_dir : path-like, optional
        The ``policy/`` directory (default ``OUT/policy``).

    Returns
    -------
    dict of str to JournalEntry
        Keyed by ``OUT``-relative path.
    """
    out = Path(output_dir)
    skip = {f"{TRAINING_DIR}/{MANIFEST_NAME}", f"{TRAINING_DIR}/{SUCCESS_NAME}"}
    prefixes = [f"{TRAINING_DIR}/"]
    policy = Path(policy_dir) if policy_dir is not None else out / POLICY_DIR
    try:
        published = resolve_checkpoint_dir(policy)
        prefixes.append(published.relative_to(out.resolve()).as_posix() + "/")
    except (ManifestError, ValueError, OSError):
        pass  # no published checkpoint (or one outside OUT): nothing of the policy to list
    listed = {p: e for p, e in journal.items() if p not in skip and p.startswith(tuple(prefixes))}
    sd = f"{POLICY_DIR}/state_dictionary.json"
    if sd in journal and not (out / sd).is_symlink():
        listed[sd] = journal[sd]
    return listed


def _seconds_between(a: str | None, b: str | None) -> float | None:
    if not a or not b:
        return None
    try:
        return round((datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds(), 3)
    except ValueError:
        return None


def _training_manifest(tr: TrainingOutput, iters: Sequence[IterationRecord], world_size: int,
                       status: str, completed_at: str | None, convergence_value: str | None,
                       policy_value: str | None, identity: RunIdentity | None = None) -> TrainingManifest:
    active = [r.cuts_active for r in iters]
    gaps = [r.gap_percent for r in iters if r.gap_percent is not None and not math.isnan(r.gap_percent)]
    return TrainingManifest(
        status=status, started_at=tr.started_at, max_iterations=tr.max_iterations,
        completed_at=completed_at, iterations_completed=len(iters), converged_at=tr.converged_at,
        achieved=tr.status == "converged" or tr.converged_at is not None,
        final_gap_percent=gaps[-1] if gaps else None,
        termination_reason=tr.termination_reason,
        total_generated=tr.cuts_total_generated if tr.cuts_total_generated is not None
        else sum(r.cuts_added for r in iters),
        total_active=tr.cuts_total_active if tr.cuts_total_active is not None else (active[-1] if active else 0),
        peak_active=tr.cuts_peak_active if tr.cuts_peak_active is not None else max(active, default=0),
        policy_value=policy_value, convergence_value=convergence_value,
        world_size=world_size, forward_passes_per_iteration=tr.forward_passes,
        run_fingerprint=identity.fingerprint if identity is not None else None,
        run_identity=identity.to_dict() if identity is not None else None,
    )


def _performance(tr: TrainingOutput, iters: Sequence[IterationRecord], peak_rss_mb: float,
                 io_seconds: float) -> dict[str, Any]:
    total_lp = int(sum(r.lp_solves for r in iters))
    avg: float | None
    med: float | None
    p99: float | None
    if tr.lp_solve_times_us is not None and len(tr.lp_solve_times_us):
        t = np.asarray(tr.lp_solve_times_us, dtype=np.float64)
        avg, med, p99, source = float(t.mean()), float(np.median(t)), float(np.percentile(t, 99)), "per_solve"
    else:
        per = np.array([(r.forward_solve_ms + r.backward_solve_ms) * 1000.0 / r.lp_solves
                        for r in iters if r.lp_solves > 0], dtype=np.float64)
        solve_us = sum((r.forward_solve_ms + r.backward_solve_ms) * 1000.0 for r in iters)
        avg = solve_us / total_lp if total_lp else None
        med = float(np.median(per)) if per.size else None
        p99 = float(np.percentile(per, 99)) if per.size else None
        source = "per_iteration_estimate"
    return {
        "total_lp_solves": total_lp,
        "avg_lp_time_us": _rnd(avg),
        "median_lp_time_us": _rnd(med),
        "p99_lp_time_us": _rnd(p99),
        "lp_time_source": source,
        "peak_memory_mb": max([int(r.memory_peak_mb) for r in iters] + [round(peak_rss_mb)]),
        "total_communication_time_seconds": round(
            sum(r.mpi_allreduce_ms + r.mpi_broadcast_ms for r in iters) / 1000.0, 3),
        "io_write_time_seconds": round(sum(r.io_write_ms for r in iters) / 1000.0 + io_seconds, 3),
    }


def _rnd(x: float | None) -> float | None:
    return None if x is None else round(float(x), 3)




def write_results(output_dir: str | os.PathLike[str], training_output: TrainingOutput,
                  simulation_output: SimulationOutput | None, system: System, config: Any,
                  comm: mpi.Comm | None = None, *, fmt: str | None = None) -> WrittenResults:
    """Write dictionaries, training tables, manifests, metadata and markers of a run.

    Collective over ``comm``: every rank calls it with its own
    ``training_output`` (same iterations, its own rank timings). Steps and
    failure behaviour: see the module documentation.

    Parameters
    ----------
    output_dir : path-like
        The run's output directory ``OUT``.
    training_output : TrainingOutput
    simulation_output : SimulationOutput or None
        ``None`` when simulation did not run.
    system : System
    config : RunConfig, Cobre ``config.json`` dict, flat mapping or object
        See :meth:`RunConfig.coerce`.
    comm : MPI communicator, optional
        Default ``MPI.COMM_WORLD``.
    fmt : {"spec", "cobre-0.18"}, optional
        Output format of the dictionaries and training tables
        (:mod:`cobre_mpi_io.formats`); default: the configuration's
        ``format`` (which it must equal when given). A
        ``training_output.writer`` must have been created with the same format.

    Returns
    -------
    WrittenResults
        The final training manifest, metadata, training file records and the
        simulation manifest, identical on every rank.

    Raises
    ------
    OutputError
        The same error on every rank when any step failed on any rank.
    """
    t0 = time.perf_counter()
    c = mpi.resolve_comm(comm)
    rank, size = mpi.rank_of(c), mpi.size_of(c)
    out = Path(output_dir)
    train_dir, sim_dir = out / "training", out / "simulation"
    tr = training_output
    cfg = mpi.run_agreed(c, lambda: RunConfig.coerce(config), "config")
    assert cfg is not None

    def output_format() -> str:
        if fmt is not None and check_format(fmt) != cfg.format:
            raise SchemaError("write_results", "format", f"format {fmt!r} differs from the configuration's "
                                                         f"{cfg.format!r} (set RunConfig.format)")
        return cfg.format
    fmt_: str = mpi.run_agreed(c, output_format, "format")
    writer = tr.writer
    iters: list[IterationRecord] = list(writer.iteration_records if writer is not None else tr.iterations)
    final_status = tr.status
    completed_at = None if final_status == "running" else (tr.completed_at or utc_now())
    policy_dir = Path(tr.policy_dir) if tr.policy_dir is not None else out / "policy"
    manifest_final = False
    identity = cfg.identity(system)
    lease = acquire_run(c, out, identity)  # shared with this run's writers; refuses another run's directory
    try:
        journal = open_journal(c, out, identity.fingerprint)  # every file below is recorded in the run's journal
    except BaseException:
        lease.release()
        raise
    try:
        # 1. directories + running manifest
        def directories() -> None:
            if rank == 0:
                ensure_dir(train_dir)
                withdraw_training_completion(train_dir)  # durably, before anything under it is rewritten
                write_training_manifest(train_dir / "_manifest.json", _training_manifest(
                    tr, iters, size, "running", None, None, None, identity))
            for d in (train_dir / "timing" / "mpi_ranks.parquet", train_dir / "dictionaries", out / "policy"):
                ensure_dir(d)
            if simulation_output is not None:
                ensure_dir(sim_dir)
        mpi.run_agreed(c, directories, "directories")

        # 2. dictionaries
        # the manifest's tables; a manifest without them falls back to the config's detail level
        sim_tables = (simulation_output.tables or None) if simulation_output is not None else ()
        mpi.run_agreed(c, lambda: write_dictionaries(
            train_dir / "dictionaries", system, cfg, simulation_tables=sim_tables,
            policy_dir=out / "policy", identity=identity, fmt=fmt_) if rank == 0 else None, "dictionaries")

        # 3. training Parquet: prepare locally (agreed), then the self-agreeing collective finalize
        def prepare() -> TrainingParquetWriter:
            if writer is not None:
                if Path(writer.output_dir).resolve() != out.resolve():
                    raise SchemaError("training", None, f"the training writer writes to {writer.output_dir}, "
                                                        f"not {out}")
                if writer.format != fmt_:
                    raise SchemaError("training", None, f"the training writer writes format {writer.format}, "
                                                        f"write_results was asked for {fmt_}")
                return writer
            w = TrainingParquetWriter(out, c, fmt=fmt_)
            for r in iters:
                w.write_iteration(r)
            w.write_rank_timing(tr.rank_timings)
            return w
        w: TrainingParquetWriter = mpi.run_agreed(c, prepare, "training tables")
        files = tuple(w.finalize())
        conv = next(f for f in files if f.path == CONVERGENCE_PATH)
        manifest_final = True  # training is written: a failure from here on leaves the manifest "failed"

        # 4. metadata (environment and peak memory gathered from every rank)
        env = detect_environment(c)
        peak = max(mpi.allgather(c, peak_rss_mb()))

        def metadata() -> RunMetadata:
            ih, ih_src = input_hash(system)
            cut_files = policy_cut_files(policy_dir)
            md = RunMetadata(
                run_info={
                    "run_id": tr.run_id or str(uuid.uuid4()), "started_at": tr.started_at,
                    "completed_at": completed_at, "duration_seconds": _seconds_between(tr.started_at, completed_at),
                    "cobre_version": __version__, "solver": tr.solver, "solver_version": tr.solver_version,
                    "hostname": os.uname().nodename, "user": _user(),
                },
                configuration_snapshot={k: v for k, v in cfg.to_dict().items()},
                problem_dimensions=problem_dimensions(system, tr.lp_dimensions),
                performance_summary=_performance(tr, iters, peak, time.perf_counter() - t0),
                data_integrity={
                    "input_hash": ih, "input_hash_source": ih_src, "config_hash": cfg.config_hash,
                    "system_hash": system.system_hash,
                    "run_fingerprint": identity.fingerprint, "run_identity": identity.to_dict(),
                    "policy_hash": sha256_files(cut_files) if cut_files else None,
                    "convergence_hash": sha256_file(out / CONVERGENCE_PATH) if rank == 0 else None,
                },
                environment=env,
            )
            if rank == 0:
                write_metadata(train_dir / "metadata.json", md)
            return md
        md: RunMetadata | None = mpi.run_agreed(c, metadata, "metadata")
        md = mpi.bcast_from_root(c, md)

        # 5. training manifest: the final status, and every file of the training run as the journal records it
        def training_manifest() -> TrainingManifest:
            m = _training_manifest(tr, iters, size, final_status, completed_at, conv.xxhash64,
                                   policy_xxhash64(policy_dir), identity)
            if rank == 0:
                journal.flush(sync=True)
                m = replace(m, files=training_files(out, read_journal(out), policy_dir))
                write_training_manifest(train_dir / "_manifest.json", m)
            return m
        tm: TrainingManifest = mpi.run_agreed(c, training_manifest, "training manifest")
        tm = mpi.bcast_from_root(c, tm)  # rank 0's (the one written), even if other ranks lack iteration rows

        # 6. simulation manifest
        sm = simulation_output.manifest if simulation_output is not None else None

        def simulation_manifest() -> None:
            if rank != 0 or sm is None:
                return
            path = sim_dir / "_manifest.json"
            try:  # finalize() normally wrote exactly these bytes already: compare, do not re-parse
                same = path.read_bytes() == simulation_manifest_text(sm).encode("utf-8")
            except FileNotFoundError:
                same = False
            if not same:
                remove_success_marker(sim_dir)  # no marker over a manifest in change (restored by step 7)
                write_simulation_manifest(path, sm)
        mpi.run_agreed(c, simulation_manifest, "simulation manifest")

        # 7. markers
        def markers() -> None:
            if rank != 0:
                return
            if final_status in SUCCESS_STATUSES:
                write_success_marker(train_dir)
            if sm is not None:
                if sm.status == "complete":
                    write_success_marker(sim_dir)
                else:
                    remove_success_marker(sim_dir)
        mpi.run_agreed(c, markers, "markers")
    except OutputError as exc:
        if rank == 0:
            _leave_incomplete(out, tr, iters, size, manifest_final, simulation_output, exc, identity)
        raise
    finally:
        journal.release()
        lease.release()
    assert md is not None
    return WrittenResults(training_manifest=tm, metadata=md, training_files=files, simulation_manifest=sm)


def _user() -> str | None:
    try:
        import getpass

        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user database in some containers
        return os.environ.get("USER")


def _leave_incomplete(out: Path, tr: TrainingOutput, iters: Sequence[IterationRecord], size: int,
                      manifest_final: bool, sim: SimulationOutput | None, exc: OutputError,
                      identity: RunIdentity) -> None:
    """Best effort, rank 0 only, no collectives: no manifest says ``complete`` after a failure."""
    train_dir, sim_dir = out / "training", out / "simulation"
    try:
        remove_success_marker(train_dir)
        if manifest_final:
            write_training_manifest(train_dir / "_manifest.json",
                                    _training_manifest(tr, iters, size, "failed", None, None, None, identity))
    except OutputError:
        pass
    if sim is None:
        return
    try:
        remove_success_marker(sim_dir)
        m = sim.manifest
        if m.status == "complete":
            write_simulation_manifest(sim_dir / "_manifest.json", replace(
                m, status="failed", completed_at=None,
                failures=tuple(m.failures) + (Failure(0, None, exc.kind, f"write_results: {exc}"),)))
    except OutputError:
        pass
