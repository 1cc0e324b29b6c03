"""The command line's failure messages: what happened once, on which rank and host, and the exact
command that continues the run; Ctrl-C says it was interrupted; OS errors are sentences."""

from __future__ import annotations

import argparse
import errno
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import mpiexec_argv, run_cli

from cobre_mpi_io.cli.messages import continue_command, describe_error
from cobre_mpi_io.errors import IoError
from cobre_mpi_io.validate import validate_output

HOST = socket.gethostname()


def test_os_errors_become_sentences(tmp_path: Path) -> None:
    exists = FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(tmp_path / "x"))
    assert describe_error(exists) == f"{tmp_path / 'x'} already exists"
    io = IoError.from_os_error(tmp_path / "x", exists)
    assert str(io).endswith("[Errno 17] File exists: '" + str(tmp_path / "x") + "'")  # what it used to print
    assert describe_error(io) == f"{tmp_path / 'x'} already exists"
    full = IoError.from_os_error("/d/f", OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/d/f"))
    wrapped = type(full)("/d/f", "disk full", str(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/d/f")))
    for e in (full, wrapped):
        text = describe_error(e)
        assert text == "disk full: no space left on the device for /d/f" and "Errno" not in text
    # inside an agreed message (counts, rank and host, then the cause)
    agreed = RuntimeError(f"simulation failed (3 of 8 scenarios complete): rank 1 (host h): {io}")
    assert describe_error(agreed) == (f"simulation failed (3 of 8 scenarios complete): rank 1 (host h): "
                                      f"{tmp_path / 'x'} already exists")
    assert describe_error(PermissionError(errno.EACCES, "Permission denied", "/p")).startswith("permission denied")
    assert describe_error(OSError(errno.EBUSY, "Device or resource busy", "/b")) == "Device or resource busy (/b)"
    assert describe_error(RuntimeError()) == "RuntimeError"


def _args(tmp_path: Path, *extra: str) -> tuple[argparse.Namespace, list[str]]:
    from cobre_mpi_io.cli.main import build_parser

    argv = ["demo", "--output", str(tmp_path / "run"), "--scenarios", "8", *extra]
    return build_parser().parse_args(argv), argv


def test_continue_command_is_the_original_with_resume(tmp_path: Path) -> None:
    args, argv = _args(tmp_path, "--fail-rank", "1", "--fail-after", "2", "--seed", "3")
    assert continue_command(args, argv, 3) is None  # nothing written yet: nothing to continue
    (tmp_path / "run" / "simulation").mkdir(parents=True)
    (tmp_path / "run" / "simulation" / "_manifest.json").write_text("{}")
    cmd = shlex.split(continue_command(args, argv, 3) or "")
    assert cmd[:3] == ["mpiexec", "-n", "3"]
    assert cmd[3:6] == [sys.executable, "-m", "cobre_mpi_io"]  # how this process was started
    assert cmd[6:] == ["demo", "--output", str(tmp_path / "run"), "--scenarios", "8", "--seed", "3", "--resume"]
    assert "--fail-rank" not in cmd and "--fail-after" not in cmd  # the injected failure is not the run
    assert "--resume" in cmd and cmd.count("--resume") == 1
    args, argv = _args(tmp_path, "--resume")
    assert shlex.split(continue_command(args, argv, 1) or "").count("--resume") == 1
    # a refusal at start (another run holds the directory) has nothing to continue
    assert continue_command(args, argv, 2, RuntimeError(f"{tmp_path}/run/_claim.json: held by host x")) is None


def test_output_naming_a_file_is_a_usage_error(tmp_path: Path) -> None:
    target = tmp_path / "afile"
    target.write_text("mine")
    proc = run_cli("demo", "--output", str(target), "--scenarios", "2", check=False)
    assert proc.returncode == 2, proc.stderr
    assert f"--output {target} is a file, not a directory" in proc.stderr
    assert "Errno" not in proc.stderr and "Traceback" not in proc.stderr
    assert target.read_text() == "mine"


def test_a_failing_rank_is_named_once_with_host_and_the_printed_command_resumes(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = run_cli("demo", "--output", str(out), "--scenarios", "8", "--iterations", "0", "--fail-rank", "1",
                   "--fail-after", "1", "-q", n=2, check=False)
    err = proc.stderr
    assert proc.returncode == 1, err
    assert err.count("cobre-mpi-io: error:") == 1, err
    first = next(line for line in err.splitlines() if line.startswith("cobre-mpi-io: error:"))
    assert f"rank 1 (host {HOST})" in first and first.count("rank 1 (") == 1, first
    assert "0 scenario(s) failed" not in first and "first error" not in first
    assert "scenarios complete" in first
    lines = err.splitlines()  # the launcher may print its own lines after ours (Open MPI does)
    cmd = shlex.split(lines[next(i for i, line in enumerate(lines) if "to continue it" in line) + 1])
    assert cmd[:3] == ["mpiexec", "-n", "2"] and cmd[-1] == "--resume" and "--fail-rank" not in cmd
    again = subprocess.run([*mpiexec_argv(2), *cmd[3:]], capture_output=True, text=True, timeout=120, check=False)
    assert again.returncode == 0, again.stderr
    assert validate_output(out).valid


def test_ctrl_c_says_interrupted_and_how_to_resume(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "cobre_mpi_io", "demo", "--output", str(out), "--scenarios", "40",
                             "--iterations", "0", "--slow", "0.2", "-q"], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not list((out / "simulation").glob("costs/scenario_id=*/data.parquet")) and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert "interrupted (Ctrl-C" in err and "KeyboardInterrupt" not in err and "Traceback" not in err, err
    lines = err.splitlines()
    assert lines[next(i for i, line in enumerate(lines) if "to continue" in line) + 1].strip().endswith("--resume"), err


@pytest.mark.parametrize("argv", [["validate", "/nonexistent/run"], ["report", "/nonexistent/run"]])
def test_read_only_commands_fail_in_one_line(argv: list[str]) -> None:
    proc = run_cli(*argv, check=False)
    assert proc.returncode in (1, 2)
    assert "Traceback" not in proc.stderr and "Errno" not in proc.stderr, proc.stderr
