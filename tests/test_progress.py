"""ProgressReporter: rate-limited log lines, the callback, defaults, formatting (no MPI, fake clock)."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from cobre_mpi_io.progress import (
    PROGRESS_LOGGER,
    ProgressDefaults,
    ProgressEvent,
    ProgressReporter,
    format_bytes,
    format_duration,
    format_rate,
    progress_defaults,
    set_progress_defaults,
    using_progress_defaults,
)


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == PROGRESS_LOGGER]


@pytest.fixture
def caplog_info(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="cobre_mpi_io")
    return caplog


def test_lines_are_rate_limited_and_reach_the_total(caplog_info: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    rep = ProgressReporter("simulation", 1600, "scenarios", interval_s=10.0, clock=clock)
    for i in range(1, 1601):  # 16 scenarios per second (exact in binary) for 100 s
        clock.t = 100.0 + i / 16
        rep.update(i)
    lines = _lines(caplog_info)
    assert lines[0] == "simulation 0/1600 scenarios (0%)"
    assert lines[-1] == "simulation 1600/1600 scenarios (100%), 16.0/s, done in 1 min 40 s"
    # the start, one line per 10 s (9 between start and end) and the final one
    assert len(lines) == 11
    assert lines[5] == "simulation 800/1600 scenarios (50%), 16.0/s, ETA 50 s"
    assert rep.closed
    rep.close()  # idempotent: no second final line
    rep.update(1600)
    assert len(_lines(caplog_info)) == 11


def test_line_format_of_the_issue(caplog_info: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    rep = ProgressReporter("simulation", 2000, "scenarios", interval_s=0, clock=clock)
    clock.t += 1200 / 14.2
    rep.update(1200)
    assert _lines(caplog_info)[-1] == "simulation 1200/2000 scenarios (60%), 14.2/s, ETA 56 s"


def test_interval_zero_logs_every_update(caplog_info: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    with ProgressReporter("training", 5, "iterations", interval_s=0, clock=clock) as rep:
        for k in range(1, 6):
            clock.t += 1
            rep.update(k)
    assert _lines(caplog_info) == [
        "training 0/5 iterations (0%)",
        "training 1/5 iterations (20%), 1.00/s, ETA 4.0 s",
        "training 2/5 iterations (40%), 1.00/s, ETA 3.0 s",
        "training 3/5 iterations (60%), 1.00/s, ETA 2.0 s",
        "training 4/5 iterations (80%), 1.00/s, ETA 1.0 s",
        "training 5/5 iterations (100%), 1.00/s, done in 5.0 s",
    ]


def test_no_repeated_line_while_the_count_does_not_move(caplog_info: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    rep = ProgressReporter("simulation", 12, "scenarios", interval_s=0, clock=clock)
    for done in (0, 0, 3, 3, 3, 6):
        clock.t += 1
        rep.update(done)
    rep.close()
    assert _lines(caplog_info) == [
        "simulation 0/12 scenarios (0%)",
        "simulation 3/12 scenarios (25%), 1.00/s, ETA 9.0 s",
        "simulation 6/12 scenarios (50%), 1.00/s, ETA 6.0 s",
        "simulation 6/12 scenarios (50%), 1.00/s, stopped after 6.0 s",  # the final line always
    ]


def test_close_before_the_end_says_stopped(caplog_info: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    with ProgressReporter("training", 50, "iterations", interval_s=60, clock=clock) as rep:
        clock.t += 12
        rep.advance(37)
    assert _lines(caplog_info) == ["training 0/50 iterations (0%)",
                                   "training 37/50 iterations (74%), 3.08/s, stopped after 12 s"]


def test_resume_rate_counts_only_new_units(caplog_info: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    rep = ProgressReporter("simulation", 100, "scenarios", interval_s=0, initial=60, clock=clock)
    clock.t += 10
    rep.update(80)
    assert _lines(caplog_info) == ["simulation 60/100 scenarios (60%)",
                                   "simulation 80/100 scenarios (80%), 2.00/s, ETA 10 s"]
    # nothing left to do: one final line at once
    ProgressReporter("simulation", 100, "scenarios", initial=100, clock=clock)
    assert _lines(caplog_info)[-1] == "simulation 100/100 scenarios (100%), done in 0.0 s"


def test_callback_gets_every_update_and_the_final_event() -> None:
    events: list[ProgressEvent] = []
    clock = Clock()
    rep = ProgressReporter("simulation", 4, "scenarios", interval_s=1000, callback=events.append, clock=clock)
    for i in range(1, 4):
        clock.t += 2
        rep.update(i)
    rep.close()
    assert [(e.done, e.final) for e in events] == [(0, False), (1, False), (2, False), (3, False), (3, True)]
    last = events[-1]
    assert (last.phase, last.unit, last.total, last.elapsed_s) == ("simulation", "scenarios", 4, 6.0)
    assert last.rate == pytest.approx(0.5) and last.fraction == 0.75 and last.eta_s == pytest.approx(2.0)


def test_log_records_carry_the_event(caplog_info: pytest.LogCaptureFixture) -> None:
    ProgressReporter("simulation", 3, "scenarios").update(3)
    recs = [r for r in caplog_info.records if r.name == PROGRESS_LOGGER]
    assert all(isinstance(getattr(r, "progress", None), ProgressEvent) for r in recs)
    assert recs[-1].progress.final and recs[-1].levelno == logging.INFO  # type: ignore[attr-defined]


def test_failing_callback_is_dropped_with_one_warning(caplog_info: pytest.LogCaptureFixture) -> None:
    calls = []

    def bad(event: ProgressEvent) -> None:
        calls.append(event)
        raise RuntimeError("terminal gone")

    rep = ProgressReporter("simulation", 3, "scenarios", callback=bad)
    rep.update(1)
    rep.update(2)
    assert len(calls) == 1 and rep.callback is None
    warnings = [r for r in caplog_info.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "progress callback failed" in warnings[0].getMessage()


def test_process_defaults_apply_to_reporters_created_without_options(
        caplog_info: pytest.LogCaptureFixture) -> None:
    events: list[ProgressEvent] = []
    before = progress_defaults()
    clock = Clock()
    with using_progress_defaults(ProgressDefaults(interval_s=0.0, callback=events.append)):
        rep = ProgressReporter("training", 3, "iterations", clock=clock)
        assert rep.interval_s == 0.0
        rep.update(1)
    assert progress_defaults() is before
    assert len(events) == 2 and len(_lines(caplog_info)) == 2
    prev = set_progress_defaults(ProgressDefaults(interval_s=5))
    try:
        assert ProgressReporter("x", 1, "u").interval_s == 5
    finally:
        set_progress_defaults(prev)


@pytest.mark.parametrize("make", [
    lambda: ProgressReporter("x", -1, "u"),
    lambda: ProgressReporter("x", 5, "u", initial=6),
    lambda: ProgressReporter("x", 5, "u", interval_s=-1),
    lambda: ProgressReporter("x", 5, "u", interval_s=float("nan")),
    lambda: ProgressDefaults(interval_s=float("inf")),
])
def test_bad_arguments_are_refused(make: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        make()


def test_library_prints_nothing_without_logging_configured(capfd: pytest.CaptureFixture[str]) -> None:
    ProgressReporter("simulation", 2, "scenarios", interval_s=0).update(2)
    logging.getLogger(PROGRESS_LOGGER).warning("a warning with no handler configured")
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_formatting() -> None:
    assert [format_duration(s) for s in (0.42, 9.96, 56.4, 842, 7500)] == [
        "0.4 s", "10.0 s", "56 s", "14 min 02 s", "2 h 05 min"]
    assert [format_rate(r) for r in (1234.5, 14.24, 3.051, 0.04)] == ["1234/s", "14.2/s", "3.05/s", "2.40/min"]
    assert [format_bytes(n) for n in (512, 3400, 1_234_567, 249_600_000, 1_050_000_000)] == [
        "512 B", "3.4 kB", "1.2 MB", "249.6 MB", "1.05 GB"]
