"""Progress of long phases (scenarios written, training iterations), reported through ``logging``.

The library never prints.  A phase is followed by a :class:`ProgressReporter`,
which

- logs a line through ``logging.getLogger("cobre_mpi_io.progress")`` at INFO
  when the phase starts, at most every ``interval_s`` seconds while it runs
  (default 10 s) and once at the end::

      simulation 0/2000 scenarios (0%)
      simulation 1200/2000 scenarios (60%), 14.2/s, ETA 56 s
      simulation 2000/2000 scenarios (100%), 14.1/s, done in 2 min 22 s

- hands a :class:`ProgressEvent` to an optional callback on every update, so
  an application can drive a progress bar (the command line draws one with
  tqdm when stderr is a terminal).

It makes no MPI call and works the same without MPI.  Under MPI, create and
update it on rank 0 only, with the count of the **whole job**: the
simulation writer learns the other ranks' counts from non-blocking messages
and calls :meth:`ProgressReporter.update` with the total.

Usage::

    with ProgressReporter("simulation", 2000, "scenarios") as progress:
        for ...:
            progress.update(done)       # absolute count so far (or progress.advance())
    # leaving the block logs the final line (also on an exception: "stopped after ...")

Library code creates reporters without ``interval_s``/``callback``; they then
use the process-wide :class:`ProgressDefaults`, which the application (the
command line) sets with :func:`set_progress_defaults` (``--progress-interval``
and the tqdm bar).  Every progress log record carries its event as the
attribute ``progress`` (``logging`` ``extra``), so a handler can drop the
lines a bar already shows.

To see the lines from your own program: ``logging.basicConfig(level=logging.INFO)``
(or a handler on the ``cobre_mpi_io`` logger).  Importing this module adds a
:class:`logging.NullHandler` to the ``cobre_mpi_io`` logger, so nothing is
printed unless the application configures logging.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final, Self

__all__ = [
    "PROGRESS_LOGGER",
    "ProgressCallback",
    "ProgressDefaults",
    "ProgressEvent",
    "ProgressReporter",
    "format_bytes",
    "format_duration",
    "format_rate",
    "progress_defaults",
    "set_progress_defaults",
    "using_progress_defaults",
]

PROGRESS_LOGGER: Final = "cobre_mpi_io.progress"
"""Name of the logger every :class:`ProgressReporter` logs through (by default)."""

logging.getLogger("cobre_mpi_io").addHandler(logging.NullHandler())


# --------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------


def format_duration(seconds: float) -> str:
    """``0.4 s``, ``56 s``, ``14 min 03 s``, ``2 h 05 min``."""
    s = max(0.0, float(seconds))
    if s < 10:
        return f"{s:.1f} s"
    if s < 59.5:
        return f"{s:.0f} s"
    whole = round(s)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def format_rate(per_second: float) -> str:
    """``14.2/s``, ``3.05/s``, ``2.40/min`` (below 0.1 per second)."""
    r = max(0.0, float(per_second))
    if r >= 100:
        return f"{r:.0f}/s"
    if r >= 10:
        return f"{r:.1f}/s"
    if r >= 0.1:
        return f"{r:.2f}/s"
    return f"{r * 60:.2f}/min"


def format_bytes(n: float) -> str:
    """Decimal units: ``512 B``, ``3.4 kB``, ``1.2 MB``, ``249.6 MB``, ``1.05 GB``."""
    v = float(n)
    if v < 1000:
        return f"{v:.0f} B"
    for unit in ("kB", "MB", "GB", "TB"):
        v /= 1000
        if v < 1000 or unit == "TB":
            return f"{v:.2f} {unit}" if v < 10 and unit in ("GB", "TB") else f"{v:.1f} {unit}"
    raise AssertionError  # pragma: no cover


# --------------------------------------------------------------------------
# Events and defaults
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class ProgressEvent:
    """One update of a phase: what the callback receives and what a log line says.

    Attributes
    ----------
    phase : str
        ``"simulation"``, ``"training"``, ...
    unit : str
        Plural noun of what is counted (``"scenarios"``, ``"iterations"``).
    done : int
        Units done so far over the whole job (including ``initial``).
    total : int
        Units in the phase.
    elapsed_s : float
        Seconds since the reporter was created.
    initial : int
        Units already done when the phase started (a resumed run); the rate
        counts only the units done since.
    final : bool
        True for the last event of the phase (:meth:`ProgressReporter.close`).
    """

    phase: str
    unit: str
    done: int
    total: int
    elapsed_s: float
    initial: int = 0
    final: bool = False

    @property
    def fraction(self) -> float:
        """``done / total`` (1.0 for an empty phase)."""
        return self.done / self.total if self.total > 0 else 1.0

    @property
    def rate(self) -> float | None:
        """Units per second since the start (None before the first unit)."""
        new = self.done - self.initial
        if new <= 0 or self.elapsed_s <= 0:
            return None
        return new / self.elapsed_s

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the current rate (None when unknown or done)."""
        rate = self.rate
        if rate is None or self.done >= self.total:
            return None
        return (self.total - self.done) / rate

    def message(self) -> str:
        """The log line, e.g. ``simulation 1200/2000 scenarios (60%), 14.2/s, ETA 56 s``."""
        pct = math.floor(self.fraction * 100) if self.done < self.total else round(self.fraction * 100)
        parts = [f"{self.phase} {self.done}/{self.total} {self.unit} ({pct}%)"]
        rate = self.rate
        if rate is not None:
            parts.append(format_rate(rate))
        if self.final:
            parts.append(("done in " if self.done >= self.total else "stopped after ")
                         + format_duration(self.elapsed_s))
        elif (eta := self.eta_s) is not None:
            parts.append(f"ETA {format_duration(eta)}")
        return ", ".join(parts)

    def __str__(self) -> str:
        return self.message()


ProgressCallback = Callable[[ProgressEvent], None]
"""Called with every :class:`ProgressEvent` (on the thread that updates the reporter)."""


def _check_interval(interval_s: float) -> None:
    if not (isinstance(interval_s, (int, float)) and math.isfinite(interval_s) and interval_s >= 0):
        raise ValueError(f"progress interval must be a finite number of seconds >= 0, got {interval_s!r}")


@dataclass(frozen=True)
class ProgressDefaults:
    """What reporters created without ``interval_s`` / ``callback`` use (process-wide).

    Attributes
    ----------
    interval_s : float
        Seconds between two progress log lines (default 10; 0 logs every update).
    callback : callable, optional
        Receives every :class:`ProgressEvent` (e.g. to drive a progress bar).
    """

    interval_s: float = 10.0
    callback: ProgressCallback | None = None

    def __post_init__(self) -> None:
        _check_interval(self.interval_s)


_defaults = ProgressDefaults()
_defaults_lock = threading.Lock()


def progress_defaults() -> ProgressDefaults:
    """The current process-wide :class:`ProgressDefaults`."""
    return _defaults


def set_progress_defaults(defaults: ProgressDefaults) -> ProgressDefaults:
    """Replace the process-wide defaults; returns the previous ones (to restore them)."""
    global _defaults
    with _defaults_lock:
        previous, _defaults = _defaults, defaults
    return previous


@contextlib.contextmanager
def using_progress_defaults(defaults: ProgressDefaults) -> Iterator[ProgressDefaults]:
    """``with using_progress_defaults(...)``: set the defaults for the block, then restore them."""
    previous = set_progress_defaults(defaults)
    try:
        yield defaults
    finally:
        set_progress_defaults(previous)


# --------------------------------------------------------------------------
# The reporter
# --------------------------------------------------------------------------


class ProgressReporter:
    """Follow one phase: rate-limited INFO log lines plus a callback on every update.

    Not collective (no MPI call): under MPI, use it on rank 0 only, with
    counts over the whole job.  Thread-safe; :meth:`update` costs one clock
    read when no line is due.

    Parameters
    ----------
    phase : str
        Name at the start of every line (``"simulation"``, ``"training"``).
    total : int
        Units in the phase (>= 0).
    unit : str
        Plural noun of what is counted (``"scenarios"``, ``"iterations"``).
    interval_s : float, optional
        At most one log line every ``interval_s`` seconds (plus the first and
        the last); 0 logs every update.  Default: :func:`progress_defaults`
        (10 s unless the application changed it).
    callback : callable, optional
        Called with a :class:`ProgressEvent` on every update and at
        :meth:`close`.  Default: :func:`progress_defaults`.  An exception in
        the callback is logged once at WARNING and the callback dropped; it
        never interrupts the phase.
    initial : int
        Units already done when the phase starts (a resumed run); the rate
        and ETA count only what is done from now on.
    logger : logging.Logger, optional
        Default ``logging.getLogger("cobre_mpi_io.progress")``.
    clock : callable
        Seconds, monotonic (default :func:`time.monotonic`; for tests).

    Raises
    ------
    ValueError
        ``total`` < 0, ``initial`` outside ``0..total`` or a bad interval.
    """

    def __init__(self, phase: str, total: int, unit: str, *, interval_s: float | None = None,
                 callback: ProgressCallback | None = None, initial: int = 0,
                 logger: logging.Logger | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        defaults = progress_defaults()
        if total < 0:
            raise ValueError(f"{phase}: total must be >= 0, got {total}")
        if not 0 <= initial <= total:
            raise ValueError(f"{phase}: initial must be in 0..{total}, got {initial}")
        self.phase = phase
        self.unit = unit
        self.total = int(total)
        self.initial = int(initial)
        self.interval_s = defaults.interval_s if interval_s is None else float(interval_s)
        _check_interval(self.interval_s)
        self.callback = defaults.callback if callback is None else callback
        self.logger = logger or logging.getLogger(PROGRESS_LOGGER)
        self._clock = clock
        self._lock = threading.Lock()
        self._start = clock()
        self._done = self.initial
        self._closed = False
        self._last_log_at = self._start
        self._logged_done: int | None = None
        self._closed = self._done >= self.total  # nothing to do (e.g. a resume that found everything)
        self._emit(self._event(self._start, final=self._closed), log=True)

    @property
    def done(self) -> int:
        """Units done so far (including ``initial``)."""
        return self._done

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._closed

    def _event(self, now: float, final: bool) -> ProgressEvent:
        return ProgressEvent(self.phase, self.unit, self._done, self.total, now - self._start,
                             self.initial, final)

    def update(self, done: int) -> None:
        """Set the count done so far over the whole job.

        Logs a line when ``interval_s`` has passed since the last one and the
        count has changed since (no repeated lines while nothing moves).  Reaching
        ``total`` closes the phase (the final line is logged at once; later
        updates and :meth:`close` do nothing).
        """
        with self._lock:
            if self._closed:
                return
            self._done = int(done)
            now = self._clock()
            if self._done >= self.total:  # complete: the final line now, later updates are ignored
                self._closed = True
                self._emit(self._event(now, final=True), log=True)
                return
            # a line when the interval has passed and the count moved since the last line
            due = now - self._last_log_at >= self.interval_s and self._done != self._logged_done
            if due:
                self._last_log_at = now
            if due or self.callback is not None:
                self._emit(self._event(now, final=False), log=due)

    def advance(self, n: int = 1) -> None:
        """Add ``n`` units to the count."""
        self.update(self._done + n)

    def close(self) -> None:
        """Log the final line (``done in ...`` or ``stopped after ...``) and tell the callback; idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            event = self._event(self._clock(), final=True)
            self._emit(event, log=True)

    def _emit(self, event: ProgressEvent, log: bool) -> None:
        if log:
            self._logged_done = event.done
            self.logger.info("%s", event.message(), extra={"progress": event})
        cb = self.callback
        if cb is not None:
            try:
                cb(event)
            except Exception:  # a display problem never stops the phase
                self.callback = None
                self.logger.warning("%s: progress callback failed; progress display stopped", self.phase,
                                    exc_info=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ProgressReporter({self.phase!r}, {self._done}/{self.total} {self.unit})"
