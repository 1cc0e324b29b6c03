"""The demo end to end under mpiexec: the whole output tree of SPEC §2, and SIGTERM during training."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import mpiexec_argv, run_cli

pytestmark = pytest.mark.timeout(180)


@pytest.mark.mpi_agnostic("the tree a 3-rank demo writes; the launcher only starts it")
def test_demo_writes_the_whole_tree(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = run_cli("demo", "--output", str(out), "--scenarios", "9", "--iterations", "12", "--checkpoint-every", "5",
                   n=3)
    summary = json.loads(proc.stdout)
    assert summary["training"]["status"] == "complete" and summary["simulation"]["status"] == "complete"
    for must in ("simulation/_manifest.json", "simulation/_SUCCESS", "training/_manifest.json", "training/_SUCCESS",
                 "training/metadata.json", "training/convergence.parquet", "training/timing/iterations.parquet",
                 "training/timing/mpi_ranks.parquet/part-rank-0000.parquet",
                 "training/timing/mpi_ranks.parquet/part-rank-0002.parquet",
                 "training/dictionaries/codes.json", "training/dictionaries/bounds.parquet",
                 "training/dictionaries/state_dictionary.json", "training/dictionaries/variables.csv",
                 "training/dictionaries/entities.csv", "policy/metadata.json", "policy/state_dictionary.json",
                 "policy/cuts/stage_000.bin", "policy/states/stage_003.bin", "policy/basis/stage_000.bin"):
        assert (out / must).is_file(), must  # policy/cuts etc. are symlinks into the latest checkpoint
    # checkpoints at 5, 10 and the final 12; the fixed policy paths point at the last one
    assert sorted(p.name for p in (out / "policy" / "checkpoints").iterdir()) == \
        ["iter_000005", "iter_000010", "iter_000012"]
    assert json.loads((out / "policy" / "metadata.json").read_text())["completed_iterations"] == 12
    conv = pq.read_table(out / "training" / "convergence.parquet")
    assert conv.num_rows == 12
    ranks = pq.read_table(out / "training" / "timing" / "mpi_ranks.parquet")
    assert ranks.num_rows == 12 * 3 and sorted(set(ranks.column("rank").to_pylist())) == [0, 1, 2]
    meta = json.loads((out / "training" / "metadata.json").read_text())
    cut_files = sorted((out / "policy" / "cuts").glob("stage_*.bin"))
    h = hashlib.sha256(b"".join(p.read_bytes() for p in cut_files)).hexdigest()
    assert meta["data_integrity"]["policy_hash"] == f"sha256:{h}"
    assert meta["environment"]["num_ranks"] == 3
    assert run_cli("validate", str(out)).returncode == 0
    rep = json.loads(run_cli("report", str(out), "--section", "all", "--json").stdout)
    assert rep["sections"]["convergence"]["summary"]["iterations"] == 12


def test_sigterm_during_training_checkpoints_last_iteration(tmp_path: Path) -> None:
    out = tmp_path / "out"
    cmd = [*mpiexec_argv(2), sys.executable, "-m", "cobre_mpi_io", "demo", "--output", str(out),
           "--iterations", "200", "--iteration-seconds", "0.05", "--checkpoint-every", "4", "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (out / "policy" / "checkpoints").exists() or len(list((out / "policy" / "checkpoints").iterdir())) < 2:
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.05)
        # SIGTERM one rank's process (a scheduler's time limit would signal them all)
        kids = subprocess.run(["pgrep", "-f", f"cobre_mpi_io demo --output {out}"], capture_output=True,
                              text=True, check=False).stdout.split()
        ranks = [int(k) for k in kids if int(k) != proc.pid]
        assert ranks
        os.kill(ranks[-1], signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    manifest = json.loads((out / "training" / "_manifest.json").read_text())
    assert manifest["status"] == "interrupted", err
    done = manifest["iterations"]["completed"]
    assert 8 <= done < 200
    assert json.loads((out / "policy" / "metadata.json").read_text())["completed_iterations"] == done
    assert pq.read_table(out / "training" / "convergence.parquet").num_rows == done
    assert not (out / "training" / "_SUCCESS").exists()
    assert not (out / "simulation").exists()
