"""Bandwidth traces: loading, validation, resampling and the synthetic generator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from d3opt.errors import ConfigError
from d3opt.traces import MBPS, Trace, load_trace, synthetic_trace

SHARED_TRACES = Path(__file__).resolve().parents[2] / "shared" / "data" / "traces"


def write(tmp_path: Path, text: str, name: str = "t.tsv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_load_converts_mbit_to_bytes_and_keeps_times(tmp_path):
    path = write(tmp_path, "# comment\n0.0 8.0\n\n1.5\t0.0\n3.0   4\n", "bus.tsv")
    trace = load_trace(path)
    assert trace.name == "bus"
    assert trace.times.tolist() == [0.0, 1.5, 3.0]
    assert trace.bandwidth.tolist() == [1e6, 0.0, 5e5]
    assert trace.mbps.tolist() == [8.0, 0.0, 4.0]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("0 1\n1 2 3\n", "line 2: expected 2 columns"),
        ("0 1\n1 fast\n", "line 2: not numbers"),
        ("0 1\n1 -2\n", "line 2"),
        ("0 1\n1 nan\n", "line 2"),
        ("0 1\n0 2\n", "increase strictly"),
        ("# only a comment\n", "no samples"),
    ],
)
def test_malformed_files_raise_config_errors_naming_the_problem(tmp_path, text, fragment):
    with pytest.raises(ConfigError, match=fragment) as info:
        load_trace(write(tmp_path, text, "bad.tsv"))
    assert "bad.tsv" in str(info.value)


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_trace(tmp_path / "nope.tsv")


def test_trace_arrays_are_read_only_copies():
    times = np.array([0.0, 1.0])
    trace = Trace(times, [1.0, 2.0])
    times[0] = -5.0
    assert trace.times[0] == 0.0
    with pytest.raises(ValueError):
        trace.bandwidth[0] = 3.0


def test_at_holds_the_last_sample_and_rejects_times_before_the_start():
    trace = Trace([10.0, 11.0, 13.0], [1.0, 2.0, 3.0])
    assert [trace.at(t) for t in (10.0, 10.9, 11.0, 12.99, 13.0, 99.0)] == [1, 1, 2, 2, 3, 3]
    with pytest.raises(ConfigError, match="before the trace starts"):
        trace.at(9.0)


sample_traces = st.lists(
    st.tuples(st.floats(0.01, 5.0), st.floats(0.0, 1e7)), min_size=2, max_size=30
).map(lambda rows: Trace(np.cumsum([0.0] + [dt for dt, _ in rows[1:]]), [b for _, b in rows]))


@given(sample_traces, st.floats(0.05, 10.0))
def test_hold_resampling_reads_the_step_function(trace, step):
    resampled = trace.resample(step)
    assert resampled.times[0] == trace.times[0]
    assert resampled.times[-1] <= trace.times[-1] + 1e-9
    assert trace.times[-1] - resampled.times[-1] < step + 1e-9
    for t, value in zip(resampled.times, resampled.bandwidth):
        # The value in force at t (a hair later, to be robust to rounding of t).
        assert value in (trace.at(t), trace.at(min(t + 1e-9 * step, trace.times[-1])))


@given(sample_traces, st.floats(0.05, 10.0))
def test_mean_resampling_preserves_the_integral(trace, step):
    resampled = trace.resample(step, how="mean")
    ends = np.minimum(resampled.times + step, trace.times[-1])
    resampled_area = float(np.sum(resampled.bandwidth * (ends - resampled.times)))
    exact = float(np.sum(np.diff(trace.times) * trace.bandwidth[:-1]))
    assert resampled_area == pytest.approx(exact, rel=1e-9, abs=1e-6)
    assert resampled.bandwidth.min() >= trace.bandwidth.min() - 1e-6
    assert resampled.bandwidth.max() <= trace.bandwidth.max() + 1e-6


def test_window_clip_and_scale_return_new_traces():
    trace = Trace([0.0, 1.0, 2.0, 3.0], [0.0, 4.0, 8.0, 2.0], name="x")
    assert trace.window(1.0, 2.0).times.tolist() == [1.0, 2.0]
    assert trace.clip(low=1.0, high=5.0).bandwidth.tolist() == [1.0, 4.0, 5.0, 2.0]
    assert trace.scaled(0.5).bandwidth.tolist() == [0.0, 2.0, 4.0, 1.0]
    assert trace.bandwidth.tolist() == [0.0, 4.0, 8.0, 2.0]
    with pytest.raises(ConfigError):
        trace.window(5.0, 6.0)
    with pytest.raises(ConfigError):
        trace.scaled(0.0)
    with pytest.raises(ConfigError):
        trace.resample(-1.0)


def test_synthetic_trace_is_seeded_and_has_the_requested_mean():
    a = synthetic_trace(seconds=300, step=0.5, mean_mbps=3.0, seed=11)
    b = synthetic_trace(seconds=300, step=0.5, mean_mbps=3.0, seed=11)
    c = synthetic_trace(seconds=300, step=0.5, mean_mbps=3.0, seed=12)
    assert np.array_equal(a.bandwidth, b.bandwidth)
    assert not np.array_equal(a.bandwidth, c.bandwidth)
    assert len(a) == 601 and np.allclose(np.diff(a.times), 0.5)
    assert a.mean_mbps == pytest.approx(3.0, rel=1e-12)
    assert a.bandwidth.min() > 0


def test_synthetic_drops_are_deep():
    trace = synthetic_trace(seconds=2000, mean_mbps=3.0, seed=3, drop_rate=0.05)
    calm = synthetic_trace(seconds=2000, mean_mbps=3.0, seed=3, drop_rate=0.0)
    # Drops put a sizeable share of samples far below the mean; without drops far fewer.
    deep = np.mean(trace.bandwidth < 0.2 * 3.0 * MBPS)
    assert deep > 0.05
    assert deep > 3 * np.mean(calm.bandwidth < 0.2 * 3.0 * MBPS)


def test_synthetic_rejects_bad_parameters():
    with pytest.raises(ConfigError, match="mean_mbps"):
        synthetic_trace(seconds=10, mean_mbps=0.0, seed=0)
    with pytest.raises(ConfigError, match="drop_depth"):
        synthetic_trace(seconds=10, mean_mbps=1.0, seed=0, drop_depth=2.0)


@pytest.mark.skipif(not SHARED_TRACES.is_dir(), reason="reference traces not present")
def test_shipped_reference_traces_load():
    for path in sorted(SHARED_TRACES.glob("*.tsv")):
        trace = load_trace(path)
        assert len(trace) > 100 and trace.bandwidth.min() >= 0
        steps = np.diff(trace.times)
        assert np.all(steps > 0)
