"""Benchmark of the policy checkpoint writer and reader (``cobre-mpi-io bench policy``).

For each stage it generates ``cuts x state_dim`` random coefficients and
measures, on the same arrays and in the same run:

- ``write``: :func:`~cobre_mpi_io.checkpoint.write_stage_cuts` (validation,
  NumPy layout, ``writev`` streaming; atomic rename; no fsync, like the
  baselines);
- ``framed``: the same, from coefficients held in an
  :func:`~cobre_mpi_io.policy.allocate_coefficients` array (each row behind
  its FlatBuffer header in memory: one ``writev`` segment per 512 rows
  instead of two per row; the file must be byte-identical to ``write``'s);
- ``tofile``: ``numpy.ndarray.tofile`` of the coefficient array alone;
- ``builder``: a plain ``flatbuffers.Builder`` loop through the
  flatc-generated API (``CreateNumpyVector`` + one ``BendersCut`` table per
  cut), then writing ``Builder.Output()`` to a file;
- ``read``: :func:`~cobre_mpi_io.checkpoint.read_stage_cuts` to an
  ``(n_cuts, state_dim)`` array (zero-copy memory map).

Times are medians over stages x repeats; before each timed write the page
cache is synced (``os.sync``, untimed), both targets are fresh files (as
in a checkpoint, which writes into a new directory) and the order of ``write`` and
``tofile`` alternates, so neither pays for the other's writeback.

On a virtual machine whose freed memory goes back to the host
(virtio-balloon free page reporting, as here) any write into freshly freed
page cache may fault on the host and take 3-6x longer, whichever writer it
is (measured here: the same ``tofile`` took 72-94 ms or 450-610 ms at
random; even ``numpy.ones`` of 250 MB took 56 ms or 270-430 ms).  So before
each timed write the benchmark touches and frees 1.5x the stage's bytes of
memory (untimed), which brings those pages back: the same ``tofile`` then
took 64-105 ms every time.  ``write_over_tofile`` is the ratio of the two
medians; ``paired_ratio`` the median of the ratios of each back-to-back
pair (``write`` and ``tofile`` of the same stage and repeat).
``peak_rss_mb`` is the process peak resident set after one untimed write
of the first stage (its coefficients alive, nothing else), before the read phase
(mapped file pages count as resident) and the builder phase (whose growing
byte array needs about three times the stage).  Each written file is also
decoded with the flatc-generated reader (first and last cut) to prove the
bytes are a valid FlatBuffer.

``--checkpoint`` adds whole checkpoints of the same stages
(:func:`run_checkpoint_bench`): the cost of recording each file's xxhash64
at write time and of verifying it at read time.
"""

from __future__ import annotations

import argparse
import copy
import json
import mmap
import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..hashing import peak_rss_mb
from ..layout import stage_file_name
from ..policy.checkpoint import read_policy_checkpoint, write_policy_checkpoint
from ..policy.codec import allocate_coefficients, write_stage_cuts
from ..policy.decode import read_stage_cuts
from ..policy.mapped import file_digest
from ..policy.records import EntityManifest, PolicyMetadata, StageCuts
from ..testing.policy import builder_stage_cuts
from .args import non_negative_int, positive_int

__all__ = ["add_policy_bench_arguments", "policy_bench_main", "run_checkpoint_bench", "run_policy_bench"]


def _stage(stage_id: int, n: int, d: int, seed: int, format: str = "spec") -> StageCuts:
    rng = np.random.default_rng([seed, stage_id])
    slots = np.arange(n, dtype=np.uint32)
    cobre: dict[str, Any] = {}
    if format == "cobre-0.18":  # the fields Cobre >= 0.14 records in every cuts file
        none = np.full(d, -(2**31), dtype="<i4")
        cobre = {"cost_scale_factor": 1e6, "node_id": stage_id, "graph_stage_id": stage_id,
                 "priced_state_date": -(2**31),
                 "entity_manifest": EntityManifest(np.zeros(d, dtype="u1"), np.arange(d, dtype="<i4"),
                                                   np.zeros(d, dtype="<u4"), np.ones(d, dtype=bool), none,
                                                   none, none)}
    return StageCuts(
        stage_id=stage_id, state_dimension=d, capacity=n, warm_start_count=0,
        cut_ids=slots.astype(np.uint64), slot_index=slots, iteration=slots // 50 + 1,
        forward_pass_idx=slots % 50, scenario_idx=slots % 50, intercepts=rng.standard_normal(n),
        coefficients=rng.standard_normal((n, d)), is_active=(slots % 5) != 0,
        domination_count=np.zeros(n, dtype=np.uint32), **cobre,
    )


def _back_memory(nbytes: int) -> None:
    """Touch and free ``nbytes`` of memory, so the next write's page cache is backed by the host (see above)."""
    np.ones(max(0, nbytes) // 8).sum()


def _builder_write(path: Path, sc: StageCuts) -> None:
    """The plain generated-API loop (:func:`~cobre_mpi_io.testing.policy.builder_stage_cuts`), written."""
    data = builder_stage_cuts(sc)
    with open(path, "wb") as fh:
        fh.write(data)


def _verify_generated(path: Path, sc: StageCuts) -> bool:
    """Decode ``path`` with the flatc-generated reader and compare the first and last cut."""
    from .._generated.cobre.policy import StageCuts as SC

    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        root = SC.StageCuts.GetRootAs(data, 0)
        if root.CutsLength() != sc.n_cuts or root.StateDimension() != sc.state_dimension:
            return False
        for i in {0, sc.n_cuts - 1} if sc.n_cuts else set():
            cut = root.Cuts(i)
            if cut.SlotIndex() != int(sc.slot_index[i]) or not np.array_equal(
                    cut.CoefficientsAsNumpy().copy(), sc.coefficients[i]):
                return False
    return True


def run_policy_bench(cuts: int, state_dim: int, stages: int, output: str | os.PathLike[str],
                     repeats: int = 3, seed: int = 0, builder: bool = True, format: str = "spec") -> dict[str, Any]:
    """Run the policy checkpoint benchmark; returns the result dict (see module docstring).

    Parameters
    ----------
    cuts, state_dim, stages : int
        Stage size and number of stages (production: 15000 x 2080).
    output : path-like
        Scratch directory (files are left there for inspection).
    repeats : int
        Measurements per stage of write, tofile and read.
    seed : int
    builder : bool
        Also time the plain ``flatbuffers.Builder`` loop (slow, memory-hungry).
    format : {"spec", "cobre-0.18"}
        The layout :func:`write_stage_cuts` writes (``cobre-0.18`` files are
        verified with this package's decoder: no generated reader exists).
    """
    out = Path(output)
    (out / "cuts").mkdir(parents=True, exist_ok=True)
    (out / "tofile").mkdir(parents=True, exist_ok=True)
    (out / "builder").mkdir(parents=True, exist_ok=True)
    (out / "framed").mkdir(parents=True, exist_ok=True)
    write_t: list[float] = []
    framed_t: list[float] = []
    tofile_t: list[float] = []
    read_t: list[float] = []
    builder_t: list[float] = []
    sizes: list[int] = []
    verified = True
    zero_copy = True
    rss_before = peak = peak_rss_mb()
    for s in range(stages):
        sc = _stage(s, cuts, state_dim, seed, format)
        path = out / "cuts" / stage_file_name(s)
        raw = out / "tofile" / f"stage_{s:03d}.f64"

        def ours(sc: StageCuts = sc, path: Path = path) -> None:
            sizes.append(write_stage_cuts(path, sc, durable=False, format=format))

        def tofile(sc: StageCuts = sc, raw: Path = raw) -> None:
            sc.coefficients.tofile(raw)

        if s == 0:  # the writer's memory: one untimed write, before the copies and _back_memory below
            ours()
            peak = peak_rss_mb()
            sizes.clear()
        # the same stage with its coefficients in an allocate_coefficients array (one segment, no header iovecs)
        framed = copy.copy(sc)
        framed.coefficients = allocate_coefficients(cuts, state_dim)
        np.copyto(framed.coefficients, sc.coefficients)
        fpath = out / "framed" / stage_file_name(s)

        def ours_framed(sc: StageCuts = framed, path: Path = fpath) -> None:
            write_stage_cuts(path, sc, durable=False, format=format)

        for r in range(repeats):
            # rotate the order and start each from a clean page cache (no dirty pages of the
            # other writer to flush), so none pays for another's writeback
            runs = [(tofile, tofile_t, raw), (ours, write_t, path), (ours_framed, framed_t, fpath)]
            k = (s * repeats + r) % len(runs)
            for fn, times, target in runs[k:] + runs[:k]:
                target.unlink(missing_ok=True)  # both write fresh files, as a checkpoint does
                os.sync()
                _back_memory(3 * cuts * state_dim * 4)
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
        if format == "spec":
            verified = verified and _verify_generated(path, sc)
        else:
            back = read_stage_cuts(path)
            verified = verified and bool(np.array_equal(back.coefficients[-1], sc.coefficients[-1]))
            del back
        if fpath.read_bytes() != path.read_bytes():
            verified = False
        del sc, ours, tofile, runs, fn, framed, ours_framed
    for s in range(stages):
        for _ in range(repeats):
            t0 = time.perf_counter()
            back = read_stage_cuts(out / "cuts" / stage_file_name(s))
            coef = back.coefficients
            read_t.append(time.perf_counter() - t0)
            assert coef.shape == (cuts, state_dim)
            zero_copy = zero_copy and not coef.flags.owndata
            del back, coef
    if builder:
        for s in range(stages):
            sc = _stage(s, cuts, state_dim, seed)
            sc.validate()
            os.sync()
            t0 = time.perf_counter()
            _builder_write(out / "builder" / stage_file_name(s), sc)
            builder_t.append(time.perf_counter() - t0)
            del sc
    stage_bytes = cuts * state_dim * 8
    w = statistics.median(write_t)
    tf = statistics.median(tofile_t)
    result: dict[str, Any] = {
        "format": format,
        "cuts": cuts,
        "state_dim": state_dim,
        "stages": stages,
        "repeats": repeats,
        "write_seconds": w,
        "read_seconds": statistics.median(read_t),
        "tofile_seconds": tf,
        "builder_seconds": statistics.median(builder_t) if builder_t else None,
        "bytes_per_stage": int(statistics.median(sizes)),
        "coefficient_bytes_per_stage": stage_bytes,
        "peak_rss_mb": round(peak, 1),
        "rss_before_mb": round(rss_before, 1),
        "peak_rss_over_stage_coefficients": round(peak * 2**20 / stage_bytes, 3) if stage_bytes else None,
        "write_over_tofile": round(w / tf, 3) if tf else None,
        "paired_ratio": round(statistics.median(a / b for a, b in zip(write_t, tofile_t, strict=True)), 3)
        if tofile_t and all(tofile_t) else None,
        "framed_write_seconds": statistics.median(framed_t),
        "framed_over_tofile": round(statistics.median(framed_t) / tf, 3) if tf else None,
        "framed_paired_ratio": round(statistics.median(a / b for a, b in zip(framed_t, tofile_t, strict=True)), 3)
        if tofile_t and all(tofile_t) else None,
        "builder_over_write": round(statistics.median(builder_t) / w, 3) if builder_t and w else None,
        "zero_copy_read": zero_copy,
        "verified_with_generated_reader": verified,
        "write_seconds_all": [round(x, 4) for x in write_t],
        "framed_write_seconds_all": [round(x, 4) for x in framed_t],
        "tofile_seconds_all": [round(x, 4) for x in tofile_t],
    }
    return result


def run_checkpoint_bench(cuts: int, state_dim: int, stages: int, output: str | os.PathLike[str],
                         repeats: int = 3, seed: int = 0) -> dict[str, Any]:
    """Whole checkpoints of ``stages`` stages: hashing at write time, verification at read time.

    Each repeat, after an untimed ``os.sync()`` (no fsync, like the stage benchmark):

    - ``files_seconds``: ``write_stage_cuts`` of every stage into a fresh
      directory -- the stage files alone, unhashed (the baseline);
    - ``write_seconds``: ``write_policy_checkpoint`` of the same stages
      (each file hashed right after it is written, ``metadata.json``
      recording the hashes, publication);
    - ``hash_seconds_per_stage``: ``file_digest`` of one written stage file
      (page cache warm), what the checkpoint adds per stage for its hashes;
    - ``read_verified_seconds`` / ``read_trusted_seconds``:
      ``read_policy_checkpoint`` with ``verify=True`` / ``False`` right after
      (page cache warm: the cost of hashing, not of the disk);
    - ``*_and_use_seconds``: the same read plus one pass over every
      coefficient (a resume uses them all; the trusted read pays for the
      pages then instead).

    Parameters
    ----------
    cuts, state_dim, stages : int
        Stage size and number of stages (production: 15000 x 2080).
    output : path-like
        Scratch directory (``output/checkpoint``).
    repeats : int
        Measurements of each.
    seed : int
    """
    out = Path(output) / "checkpoint"
    policy_dir = out / "policy"
    all_cuts = [_stage(s, cuts, state_dim, seed) for s in range(stages)]
    meta = PolicyMetadata(completed_iterations=1, state_dimension=state_dim, num_stages=stages)
    times: dict[str, list[float]] = {k: [] for k in ("files", "write", "hash", "read_verified", "read_trusted",
                                                     "read_verified_and_use", "read_trusted_and_use")}

    def use(ck: Any) -> float:
        return float(sum(float(c.coefficients.sum()) for c in ck.cuts))

    for r in range(repeats):
        shutil.rmtree(out, ignore_errors=True)
        (out / "files").mkdir(parents=True)
        os.sync()
        t0 = time.perf_counter()
        for sc in all_cuts:
            write_stage_cuts(out / "files" / stage_file_name(sc.stage_id), sc, durable=False)
        times["files"].append(time.perf_counter() - t0)
        os.sync()
        t0 = time.perf_counter()
        write_policy_checkpoint(policy_dir, all_cuts, [], meta, keep=0, durable=False)
        times["write"].append(time.perf_counter() - t0)
        for f in sorted((policy_dir / "cuts").glob("stage_*.bin")):
            t0 = time.perf_counter()
            file_digest(f)
            times["hash"].append(time.perf_counter() - t0)
        for verify in ((True, False) if r % 2 == 0 else (False, True)):
            label = "read_verified" if verify else "read_trusted"
            t0 = time.perf_counter()
            ck = read_policy_checkpoint(policy_dir, verify=verify)
            times[label].append(time.perf_counter() - t0)
            use(ck)
            del ck
            t0 = time.perf_counter()
            ck = read_policy_checkpoint(policy_dir, verify=verify)
            use(ck)
            times[label + "_and_use"].append(time.perf_counter() - t0)
            del ck
    shutil.rmtree(out, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "stages": stages,
        **{f"{k}_seconds": round(v, 4) for k, v in med.items()},
        "checkpoint_over_files": round(med["write"] / med["files"], 3) if med["files"] else None,
        "hash_seconds_per_stage": round(med["hash"], 4),
        "verify_seconds_per_stage": round((med["read_verified"] - med["read_trusted"]) / stages, 4),
        **{f"{k}_seconds_all": [round(x, 4) for x in v] for k, v in times.items()},
    }


def add_policy_bench_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``bench policy`` options to ``parser`` and return it."""
    parser.add_argument("--cuts", type=positive_int, default=15000, metavar="N",
                        help="cuts per stage, >= 1 (default 15000)")
    parser.add_argument("--state-dim", type=positive_int, default=2080, metavar="N",
                        help="state dimension, >= 1 (default 2080)")
    parser.add_argument("--stages", type=positive_int, default=3, metavar="N",
                        help="number of stages, >= 1 (default 3)")
    parser.add_argument("--output", required=True, help="scratch directory for the files")
    parser.add_argument("--repeats", type=positive_int, default=3, metavar="N",
                        help="measurements per stage, >= 1 (default 3)")
    parser.add_argument("--seed", type=non_negative_int, default=0, metavar="N",
                        help="random seed of the synthetic cuts, >= 0 (default 0)")
    parser.add_argument("--no-builder", action="store_true", help="skip the flatbuffers.Builder baseline")
    parser.add_argument("--checkpoint", action="store_true",
                        help="also time whole checkpoints: per-file xxhash64 at write, verified vs trusted read")
    parser.add_argument("--format", choices=("spec", "cobre-0.18"), default="spec",
                        help="layout of the stage files written (default spec)")
    parser.add_argument("--json", action="store_true", help="print one JSON object (default: also)")
    return parser


def policy_bench_main(args: argparse.Namespace) -> int:
    """Run the benchmark from parsed ``args`` and print one JSON object; returns the exit code."""
    result = run_policy_bench(args.cuts, args.state_dim, args.stages, args.output,
                              repeats=args.repeats, seed=args.seed, builder=not args.no_builder,
                              format=args.format)
    if args.checkpoint:
        result["checkpoint"] = run_checkpoint_bench(args.cuts, args.state_dim, args.stages, args.output,
                                                    repeats=args.repeats, seed=args.seed)
    sys.stdout.write(json.dumps(result) + "\n")
    if not args.json:  # the headline, for people (stderr: stdout stays one JSON object)
        mb = result["bytes_per_stage"] / 1e6
        sys.stderr.write(
            f"policy stage write ({result['format']}, {mb:.0f} MB): {result['write_seconds']:.3f} s; "
            f"numpy tofile of the same coefficients: {result['tofile_seconds']:.3f} s; "
            f"ratio {result['write_over_tofile']} (medians of {len(result['write_seconds_all'])}); "
            f"median of the paired ratios {result['paired_ratio']}\n"
            f"  from an allocate_coefficients array: {result['framed_write_seconds']:.3f} s; "
            f"ratio {result['framed_over_tofile']}; median of the paired ratios {result['framed_paired_ratio']}\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(policy_bench_main(add_policy_bench_arguments(argparse.ArgumentParser()).parse_args()))
