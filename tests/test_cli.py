"""The command line: numbers refused while parsing, help and examples, logging and progress display.

Issue 11 reproductions: ``--scenarios 0`` wrote 16 scenarios; ``--scenarios -1`` was refused only after
the training phase had written ``training/`` and ``policy/``; ``--detail``, ``--assignment`` and
``--queue-capacity`` had no help; the top-level help showed reST markup; a 2,000-scenario demo was
silent for 84 s.
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import run_cli

from cobre_mpi_io.cli.main import build_parser, main

# ------------------------------------------------------------------ parse-time validation

BAD_NUMBERS = [
    # (command words, option, bad value, expected phrase)
    (["demo"], "--scenarios", "0", "must be an integer >= 1"),
    (["demo"], "--scenarios", "-1", "must be an integer >= 1"),
    (["demo"], "--scenarios", "1.5", "must be an integer >= 1"),
    (["demo"], "--scenarios", "many", "must be an integer >= 1"),
    (["demo"], "--seed", "-1", "must be an integer >= 0"),
    (["demo"], "--queue-capacity", "0", "must be an integer >= 1"),
    (["demo"], "--iterations", "-1", "must be an integer >= 0"),
    (["demo"], "--forward-passes", "0", "must be an integer >= 1"),
    (["demo"], "--checkpoint-every", "-5", "must be an integer >= 0"),
    (["demo"], "--fail-rank", "-1", "must be an integer >= 0"),
    (["demo"], "--fail-after", "-1", "must be an integer >= 0"),
    (["demo"], "--slow", "-0.5", "must be a finite number >= 0"),
    (["demo"], "--slow", "nan", "must be a finite number >= 0"),
    (["demo"], "--iteration-seconds", "inf", "must be a finite number >= 0"),
    (["demo"], "--progress-interval", "-1", "must be a finite number >= 0"),
    (["bench", "simulation"], "--scenarios", "0", "must be an integer >= 1"),
    (["bench", "simulation"], "--repeats", "0", "must be an integer >= 1"),
    (["bench", "simulation"], "--seed", "-3", "must be an integer >= 0"),
    (["bench", "finalize"], "--scenarios", "-2", "must be an integer >= 1"),
    (["bench", "finalize"], "--tables", "0", "must be an integer from 1 to 10"),
    (["bench", "finalize"], "--tables", "11", "must be an integer from 1 to 10"),
    (["bench", "finalize"], "--repeats", "0", "must be an integer >= 1"),
    (["bench", "policy"], "--cuts", "0", "must be an integer >= 1"),
    (["bench", "policy"], "--state-dim", "-1", "must be an integer >= 1"),
    (["bench", "policy"], "--stages", "0", "must be an integer >= 1"),
    (["bench", "policy"], "--repeats", "0", "must be an integer >= 1"),
    (["bench", "policy"], "--seed", "-1", "must be an integer >= 0"),
]


@pytest.mark.parametrize(("words", "option", "value", "phrase"), BAD_NUMBERS,
                         ids=[f"{' '.join(w)} {o} {v}" for w, o, v, _ in BAD_NUMBERS])
def test_bad_number_exits_2_before_any_work(words: list[str], option: str, value: str, phrase: str,
                                            tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:
        main([*words, "--output", str(out), f"{option}={value}"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}: {phrase}, got {value!r}" in err, err
    assert not out.exists()  # nothing written


def _parsers(parser: argparse.ArgumentParser, words: tuple[str, ...] = ()) -> Iterator[
        tuple[tuple[str, ...], argparse.ArgumentParser]]:
    yield words, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, (*words, name))


ALL_PARSERS = list(_parsers(build_parser()))


def test_every_subcommand_is_covered() -> None:
    assert {" ".join(w) for w, _p in ALL_PARSERS} == {
        "", "demo", "bench", "bench simulation", "bench finalize", "bench policy", "validate", "report",
        "policy", "policy info", "policy convert"}


@pytest.mark.parametrize(("words", "parser"), ALL_PARSERS, ids=[" ".join(w) or "top" for w, _ in ALL_PARSERS])
def test_every_option_has_help_and_numbers_are_validated(words: tuple[str, ...],
                                                         parser: argparse.ArgumentParser) -> None:
    for action in parser._actions:
        assert action.help and action.help != argparse.SUPPRESS, (words, action.option_strings, action.dest)
        # a bare int/float accepts 0, negatives, nan: every number goes through a validator of cli/args.py
        assert action.type not in (int, float), (words, action.option_strings)
    if words:
        assert parser.epilog and "examples:" in parser.epilog, words
    assert parser.description


@pytest.mark.parametrize(("words", "parser"), ALL_PARSERS, ids=[" ".join(w) or "top" for w, _ in ALL_PARSERS])
def test_help_has_no_markup(words: tuple[str, ...], parser: argparse.ArgumentParser) -> None:
    text = parser.format_help()
    for markup in ("``", ":func:", ":class:", ":mod:", ":meth:", "SPEC", "§"):
        assert markup not in text, (words, markup)


def test_help_of_the_options_the_issue_names(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--help"])
    assert exc.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for phrase in ("--detail {full,stage,summary} simulation detail:",
                   "--assignment {round-robin,block} how scenarios are shared among ranks",
                   "--queue-capacity N results each rank may queue", "examples:", "exit status:"):
        assert phrase in text


def test_good_boundary_values_parse() -> None:
    args = build_parser().parse_args(["demo", "-o", "x", "--scenarios", "1", "--iterations", "0",
                                      "--checkpoint-every", "0", "--seed", "0", "--slow", "0",
                                      "--progress-interval", "0.5"])
    assert (args.scenarios, args.iterations, args.checkpoint_every, args.seed, args.slow,
            args.progress_interval) == (1, 0, 0, 0, 0.0, 0.5)
    args = build_parser().parse_args(["bench", "finalize", "-o", "x", "--tables", "10", "--scenarios", "1"])
    assert args.tables == 10
    with pytest.raises(SystemExit):
        build_parser().parse_args(["demo", "-o", "x", "-q", "-v"])  # one or the other


def test_scenarios_minus_one_under_mpi_writes_nothing_and_the_fix_runs(tmp_path: Path) -> None:
    """Issue 11: refused only after training ran, leaving training/ and policy/ behind."""
    out = tmp_path / "out"
    proc = run_cli("demo", "--output", str(out), "--scenarios", "-1", "--iterations", "2", n=2, check=False)
    assert proc.returncode == 2
    assert proc.stderr.count("argument --scenarios: must be an integer >= 1, got '-1'") == 1  # rank 0 only
    assert not out.exists()
    # the corrected command runs without --resume
    proc = run_cli("demo", "--output", str(out), "--scenarios", "2", "--iterations", "2", "-q", n=2)
    assert proc.stdout == ""
    assert (out / "simulation" / "_SUCCESS").is_file() and (out / "training" / "_SUCCESS").is_file()


# ------------------------------------------------------------------ logging and progress

PROGRESS_RE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (\w+) (\d+)/(\d+) (\w+) \(\d+%\)")


def _progress(stderr: str, phase: str) -> list[tuple[int, int]]:
    found = []
    for line in stderr.splitlines():
        m = PROGRESS_RE.match(line)
        if m and m.group(1) == phase:
            found.append((int(m.group(2)), int(m.group(3))))
    return found


def test_progress_lines_under_mpi_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = run_cli("demo", "--output", str(out), "--scenarios", "12", "--iterations", "6",
                   "--checkpoint-every", "3", "--progress-interval", "0", n=2)
    err = proc.stderr
    training = _progress(err, "training")
    assert training[0] == (0, 6) and training[-1] == (6, 6), err
    assert [d for d, _t in training] == sorted(d for d, _t in training)
    assert re.search(r"training 6/6 iterations \(100%\), [\d.]+/(s|min), done in ", err), err
    for it in (3, 6):
        assert re.search(rf"checkpoint iter_{it:06d} written \(\d+ stages, [\d.]+ (B|kB|MB)\)", err), err
    assert "[rank 1]" not in err  # other ranks: warnings and errors only
    assert "\r" not in err and "|" not in err  # no bar when stderr is a pipe
    assert '"world_size": 2' in proc.stdout  # the summary


def test_simulation_progress_counts_every_rank(tmp_path: Path) -> None:
    """Rank 0 reports the scenarios written by all ranks (the writer's non-blocking counts)."""
    proc = run_cli("demo", "--output", str(tmp_path / "out"), "--scenarios", "12", "--iterations", "0",
                   "--slow", "0.05", "--progress-interval", "0", n=2)
    simulation = _progress(proc.stderr, "simulation")
    assert simulation and simulation[0][1] == 12 and simulation[-1] == (12, 12), proc.stderr
    assert [d for d, _t in simulation] == sorted(d for d, _t in simulation)
    assert max(d for d, _t in simulation[:-1]) > 6 or len(simulation) > 2  # not just rank 0's own 6
    assert re.search(r"simulation 12/12 scenarios \(100%\), [\d.]+/(s|min), done in ", proc.stderr)
    assert "[rank 1]" not in proc.stderr


def test_quiet_silences_progress_and_summary(tmp_path: Path) -> None:
    proc = run_cli("demo", "--output", str(tmp_path / "out"), "--scenarios", "4", "--iterations", "3",
                   "--progress-interval", "0", "-q", n=2)
    assert proc.stdout == "" and proc.stderr == ""


def test_default_interval_logs_start_and_end_only(tmp_path: Path) -> None:
    proc = run_cli("demo", "--output", str(tmp_path / "out"), "--scenarios", "4", "--iterations", "5",
                   "--checkpoint-every", "0")
    assert _progress(proc.stderr, "training") == [(0, 5), (5, 5)], proc.stderr


def test_verbose_names_the_loggers(tmp_path: Path) -> None:
    proc = run_cli("demo", "--output", str(tmp_path / "out"), "--scenarios", "2", "--iterations", "2", "-v")
    assert "INFO" not in proc.stderr  # INFO lines carry no level
    assert "cobre_mpi_io.progress: training 2/2 iterations" in proc.stderr, proc.stderr


def _run_in_pty(argv: list[str], timeout: float = 120) -> tuple[int, str]:
    """Run ``argv`` with stdout and stderr on a pseudo-terminal; returns (exit code, everything printed)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 24 rows, 100 columns
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _w, _x = select.select([master], [], [], 0.2)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    os.close(master)
    try:
        code = proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return code, b"".join(chunks).decode(errors="replace")


def test_terminal_shows_a_bar(tmp_path: Path) -> None:
    code, text = _run_in_pty([sys.executable, "-m", "cobre_mpi_io", "demo", "--output", str(tmp_path / "out"),
                              "--scenarios", "6", "--iterations", "8", "--checkpoint-every", "4",
                              "--iteration-seconds", "0.05", "--progress-interval", "0"])
    assert code == 0, text
    assert re.search(r"training: 100%\|[^\r\n]*\| 8/8 ", text), text  # tqdm's bar
    assert "\r" in text
    assert not _progress(text.replace("\r", "\n"), "training")  # the bar replaces the log lines ...
    assert re.search(r"checkpoint iter_000004 written", text)  # ... other messages still show


def test_progress_bar_option_under_mpiexec(tmp_path: Path) -> None:
    """mpiexec pipes the ranks' output: ``--progress bar`` still draws the bar (for a terminal)."""
    proc = run_cli("demo", "--output", str(tmp_path / "out"), "--scenarios", "4", "--iterations", "4",
                   "--progress", "bar", n=2)
    assert re.search(r"training: 100%\|[^\r\n]*\| 4/4 ", proc.stderr), proc.stderr
    assert not _progress(proc.stderr, "training")


def test_terminal_quiet_shows_no_bar(tmp_path: Path) -> None:
    code, text = _run_in_pty([sys.executable, "-m", "cobre_mpi_io", "demo", "--output", str(tmp_path / "out"),
                              "--scenarios", "2", "--iterations", "3", "-q"])
    assert code == 0 and text == "", text


def test_logging_state_is_restored_after_main(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    logger = logging.getLogger("cobre_mpi_io")
    before = (list(logger.handlers), logger.level, logger.propagate)
    assert main(["report", str(tmp_path)]) in (0, 1)
    capsys.readouterr()
    assert (list(logger.handlers), logger.level, logger.propagate) == before


def test_sigterm_is_reported_in_the_log(tmp_path: Path) -> None:
    """A batch job killed at its time limit says in its log where training stopped and what was saved."""
    cmd = [sys.executable, "-m", "cobre_mpi_io", "demo", "--output", str(tmp_path / "out"), "--iterations", "200",
           "--iteration-seconds", "0.05", "--checkpoint-every", "4", "--progress-interval", "60"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines = []
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if "checkpoint iter_000008 written" in line:
                proc.send_signal(signal.SIGTERM)
                break
        lines.extend(proc.stderr)
        assert proc.wait(timeout=60) == 143
    finally:
        if proc.poll() is None:
            proc.kill()
    err = "".join(lines)
    m = re.search(r"training (\d+)/200 iterations \(\d+%\), [\d.]+/(s|min), stopped after ", err)
    assert m, err
    done = int(m.group(1))
    assert done >= 8
    assert f"WARNING: training stopped by a signal after iteration {done} of 200" in err
    assert f"checkpoint iter_{done:06d} written" in err
