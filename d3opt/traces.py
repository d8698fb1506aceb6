"""Bandwidth traces: throughput over time, loaded from files or generated.

A :class:`Trace` is a step function: sample ``i`` gives the throughput (bytes/s) from
``times[i]`` until ``times[i + 1]``; the last sample holds at ``times[-1]``. Trace files have
two whitespace-separated columns per line, ``time_seconds throughput_Mbit_per_s`` (the
format of the Pensieve cooked traces of the Norway HSDPA and FCC broadband data sets); blank
lines and lines starting with ``#`` are ignored. A throughput of zero (an outage) is a valid
sample; a :class:`~d3opt.system.Link` cannot have zero bandwidth, so replays clip traces from
below with :meth:`Trace.clip`.

Examples
--------
>>> t = synthetic_trace(seconds=60, step=1.0, mean_mbps=3.0, seed=7)
>>> len(t), round(t.mean_mbps, 9)
(61, 3.0)
>>> t.resample(10.0).times[:3].tolist()
[0.0, 10.0, 20.0]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from d3opt.errors import ConfigError

#: Bytes per second in one Mbit/s (10^6 bits).
MBPS = 1e6 / 8


def _frozen(values, what: str) -> np.ndarray:
    array = np.array(values, dtype=float)
    if array.ndim != 1:
        raise ConfigError(f"trace {what} must be one-dimensional, got shape {array.shape}")
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class Trace:
    """Throughput over time as a step function (read-only arrays).

    Parameters
    ----------
    times : sample times in seconds, strictly increasing.
    bandwidth : throughput in bytes/s from each time until the next, finite and ``>= 0``.
    name : a label (the file stem for loaded traces).

    >>> t = Trace([0.0, 1.0, 2.0], [1e6, 0.0, 2e6], name="demo")
    >>> t.at(1.5), t.duration
    (0.0, 2.0)
    """

    times: np.ndarray
    bandwidth: np.ndarray
    name: str = ""

    def __post_init__(self):
        times = _frozen(self.times, "times")
        bandwidth = _frozen(self.bandwidth, "bandwidth")
        where = f"trace {self.name!r}" if self.name else "trace"
        if len(times) == 0:
            raise ConfigError(f"{where} has no samples")
        if len(times) != len(bandwidth):
            raise ConfigError(
                f"{where}: {len(times)} times but {len(bandwidth)} bandwidth samples"
            )
        if not np.all(np.isfinite(times)) or not np.all(np.isfinite(bandwidth)):
            raise ConfigError(f"{where}: times and bandwidth must be finite numbers")
        if np.any(bandwidth < 0):
            first = int(np.argmax(bandwidth < 0))
            raise ConfigError(
                f"{where}: negative bandwidth {bandwidth[first]} at t={times[first]} s"
            )
        if np.any(np.diff(times) <= 0):
            first = int(np.argmax(np.diff(times) <= 0)) + 1
            raise ConfigError(
                f"{where}: times must increase strictly; sample {first} at t={times[first]} s "
                f"follows t={times[first - 1]} s"
            )
        object.__setattr__(self, "times", times)
        object.__setattr__(self, "bandwidth", bandwidth)

    def __len__(self) -> int:
        return len(self.times)

    @property
    def duration(self) -> float:
        """Seconds from the first sample to the last."""
        return float(self.times[-1] - self.times[0])

    @property
    def mbps(self) -> np.ndarray:
        """Throughput samples in Mbit/s."""
        return self.bandwidth / MBPS

    @property
    def mean_mbps(self) -> float:
        """Mean of the samples in Mbit/s (each sample counted once)."""
        return float(np.mean(self.bandwidth) / MBPS)

    def at(self, t: float) -> float:
        """Throughput (bytes/s) in force at time ``t``: the last sample at or before ``t``.

        Raises ConfigError for a time before the first sample.

        >>> Trace([0.0, 5.0], [10.0, 20.0]).at(4.999)
        10.0
        """
        index = int(np.searchsorted(self.times, float(t), side="right")) - 1
        if index < 0 or math.isnan(float(t)):
            raise ConfigError(f"time {t!r} s is before the trace starts ({self.times[0]} s)")
        return float(self.bandwidth[index])

    def _area(self, t: np.ndarray) -> np.ndarray:
        """Integral of the step function from ``times[0]`` to each ``t`` (bytes)."""
        cumulative = np.concatenate(([0.0], np.cumsum(np.diff(self.times) * self.bandwidth[:-1])))
        index = np.clip(np.searchsorted(self.times, t, side="right") - 1, 0, len(self) - 1)
        return cumulative[index] + self.bandwidth[index] * (t - self.times[index])

    def resample(self, step: float, *, how: str = "hold") -> "Trace":
        """The trace sampled every ``step`` seconds from its first sample to its last.

        ``how="hold"`` takes the throughput in force at each new time; ``how="mean"`` the
        time-weighted mean over ``[t, t + step)`` (clipped to the end of the trace).

        >>> t = Trace([0.0, 1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 1.0, 3.0, 9.0])
        >>> t.resample(2.0, how="mean").bandwidth.tolist()
        [2.0, 2.0, 9.0]
        """
        step = float(step)
        if not math.isfinite(step) or step <= 0:
            raise ConfigError(f"resampling step must be finite and > 0, got {step!r}")
        if how not in ("hold", "mean"):
            raise ConfigError(f"resampling method must be 'hold' or 'mean', got {how!r}")
        count = int(math.floor(self.duration / step + 1e-9)) + 1
        new_times = self.times[0] + step * np.arange(count)
        if how == "hold":
            index = np.searchsorted(self.times, new_times + 1e-9 * step, side="right") - 1
            values = self.bandwidth[np.clip(index, 0, len(self) - 1)]
        else:
            ends = np.minimum(new_times + step, self.times[-1])
            widths = ends - new_times
            held = self.bandwidth[np.clip(
                np.searchsorted(self.times, new_times, side="right") - 1, 0, len(self) - 1)]
            with np.errstate(invalid="ignore", divide="ignore"):
                means = (self._area(ends) - self._area(new_times)) / widths
            values = np.where(widths > 1e-12 * step, means, held)
        return Trace(new_times, values, name=self.name)

    def window(self, start: float, stop: float) -> "Trace":
        """The samples with ``start <= time <= stop``, times kept (ConfigError if none)."""
        keep = (self.times >= start) & (self.times <= stop)
        if not np.any(keep):
            raise ConfigError(f"trace {self.name!r} has no samples between {start} and {stop} s")
        return Trace(self.times[keep], self.bandwidth[keep], name=self.name)

    def clip(self, *, low: float | None = None, high: float | None = None) -> "Trace":
        """Throughput limited to ``[low, high]`` bytes/s (e.g. ``low > 0`` to replace outages).

        >>> Trace([0.0, 1.0], [0.0, 5.0]).clip(low=1.0).bandwidth.tolist()
        [1.0, 5.0]
        """
        return Trace(self.times, np.clip(self.bandwidth, low, high), name=self.name)

    def scaled(self, factor: float) -> "Trace":
        """Throughput multiplied by ``factor`` (> 0), e.g. to turn 3G into a faster link."""
        if not math.isfinite(float(factor)) or float(factor) <= 0:
            raise ConfigError(f"trace scale factor must be finite and > 0, got {factor!r}")
        return Trace(self.times, self.bandwidth * float(factor), name=self.name)


def load_trace(path: "str | Path", *, name: str | None = None) -> Trace:
    """Read a two-column ``time_seconds throughput_Mbit_per_s`` file into a :class:`Trace`.

    Raises
    ------
    ConfigError
        When the file is missing or a line is malformed (the message gives the line number).

    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     p = pathlib.Path(folder) / "bus.tsv"
    ...     _ = p.write_text("0.0\\t2.0\\n1.0\\t0.8\\n")
    ...     load_trace(p).bandwidth.tolist()
    [250000.0, 100000.0]
    """
    path = Path(path)
    label = name if name is not None else path.stem
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"trace file {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"trace file {str(path)!r} cannot be read: {err}") from None
    times, values = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if len(fields) != 2:
            raise ConfigError(
                f"trace file {path.name!r} line {number}: expected 2 columns "
                f"(time_seconds throughput_Mbit_per_s), got {len(fields)}"
            )
        try:
            t, mbps = float(fields[0]), float(fields[1])
        except ValueError:
            raise ConfigError(
                f"trace file {path.name!r} line {number}: not numbers: {line.strip()!r}"
            ) from None
        if not (math.isfinite(t) and math.isfinite(mbps)) or mbps < 0:
            raise ConfigError(
                f"trace file {path.name!r} line {number}: time and throughput must be finite "
                f"and throughput >= 0, got {line.strip()!r}"
            )
        times.append(t)
        values.append(mbps * MBPS)
    if not times:
        raise ConfigError(f"trace file {path.name!r} has no samples")
    try:
        return Trace(times, values, name=label)
    except ConfigError as err:
        raise ConfigError(f"trace file {path.name!r}: {err}") from None


def synthetic_trace(*, seconds: float, step: float = 1.0, mean_mbps: float, seed: int,
                    volatility: float = 0.25, reversion: float = 0.1,
                    drop_rate: float = 0.02, drop_depth: float = 0.08,
                    drop_seconds: float = 6.0, name: str = "synthetic") -> Trace:
    """A seeded mobile-like trace: a mean-reverting random walk with deep drops.

    The log-throughput follows a discretised Ornstein-Uhlenbeck walk (``reversion`` per second
    towards its mean, ``volatility`` per sqrt-second); drops start as a Poisson process of
    ``drop_rate`` per second, last an exponential time of mean ``drop_seconds`` and multiply
    the throughput by about ``drop_depth`` (like the tunnels and cell edges of the HSDPA
    traces). The result is scaled so that its sample mean is exactly ``mean_mbps``.

    Parameters
    ----------
    seconds, step : duration and sample spacing (``seconds / step + 1`` samples).
    mean_mbps : mean throughput in Mbit/s.
    seed : seed of :func:`numpy.random.default_rng`; equal seeds give equal traces.

    >>> a = synthetic_trace(seconds=30, mean_mbps=2.0, seed=1)
    >>> b = synthetic_trace(seconds=30, mean_mbps=2.0, seed=1)
    >>> bool(np.array_equal(a.bandwidth, b.bandwidth)), bool(a.bandwidth.min() > 0)
    (True, True)
    """
    checks = {"seconds": seconds, "step": step, "mean_mbps": mean_mbps,
              "drop_seconds": drop_seconds}
    for what, value in checks.items():
        if not math.isfinite(float(value)) or float(value) <= 0:
            raise ConfigError(f"synthetic trace: {what} must be finite and > 0, got {value!r}")
    for what, value in {"volatility": volatility, "reversion": reversion,
                        "drop_rate": drop_rate}.items():
        if not math.isfinite(float(value)) or float(value) < 0:
            raise ConfigError(f"synthetic trace: {what} must be finite and >= 0, got {value!r}")
    if not 0 < float(drop_depth) <= 1:
        raise ConfigError(f"synthetic trace: drop_depth must be in (0, 1], got {drop_depth!r}")
    rng = np.random.default_rng(seed)
    count = int(math.floor(seconds / step + 1e-9)) + 1
    keep = math.exp(-reversion * step)
    spread = volatility * math.sqrt((1 - keep**2) / (2 * reversion)) if reversion > 0 \
        else volatility * math.sqrt(step)
    walk = np.empty(count)
    walk[0] = rng.normal(0.0, volatility / math.sqrt(2 * reversion)) if reversion > 0 else 0.0
    shocks = rng.normal(0.0, 1.0, count)
    for i in range(1, count):
        walk[i] = keep * walk[i - 1] + spread * shocks[i]
    factor = np.ones(count)
    starts = rng.random(count) < 1 - math.exp(-drop_rate * step)
    for i in np.flatnonzero(starts):
        length = max(1, int(round(rng.exponential(drop_seconds) / step)))
        depth = drop_depth * math.exp(rng.normal(0.0, 0.3))
        factor[i:i + length] = np.minimum(factor[i:i + length], min(depth, 1.0))
    values = np.exp(walk) * factor
    values *= mean_mbps * MBPS / values.mean()
    return Trace(step * np.arange(count), values, name=name)


__all__ = ["MBPS", "Trace", "load_trace", "synthetic_trace"]
