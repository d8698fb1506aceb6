"""What a validation run measured, next to what the plan predicted.

>>> r = ValidationReport(mode="inprocess", dtype="float32", tolerance=1e-5,
...     max_abs_error=0.0, links=(LinkTraffic("device->edge", 400, 400, 41, 1),),
...     stages=(StageTime("device", "phone", 0.001),), plain_time=0.001)
>>> r.ok, r.links[0].matches
(True, True)
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LinkTraffic:
    """Bytes one directed link use carried in one request.

    ``payload`` is tensor bytes (what :func:`d3opt.evaluate` counts as ``predicted``);
    ``header`` the serialisation overhead on top (see :mod:`d3opt.executor.wire`).
    """

    link: str
    predicted: int
    payload: int
    header: int
    messages: int

    @property
    def matches(self) -> bool:
        """True when the tensor bytes sent equal the plan's prediction."""
        return self.payload == self.predicted

    @property
    def sent(self) -> int:
        """Bytes actually sent: payload plus headers."""
        return self.payload + self.header


@dataclass(frozen=True)
class StageTime:
    """Seconds one piece (or tile) took on one node.

    ``compute`` is the time spent running the piece; ``wall`` (distributed mode) the time
    from the node's start of the request to the end of that stage, waiting included.
    """

    stage: str
    node: str
    compute: float
    wall: float | None = None


@dataclass(frozen=True)
class ValidationReport:
    """The result of :func:`d3opt.validate`.

    ``ok`` holds when the split output is within ``tolerance`` of the unsplit model and every
    link carried exactly the predicted tensor bytes.
    """

    mode: str
    dtype: str
    tolerance: float
    max_abs_error: float
    links: tuple[LinkTraffic, ...]
    stages: tuple[StageTime, ...]
    plain_time: float
    total_time: float | None = None

    @property
    def ok(self) -> bool:
        """Output within tolerance and bytes per link as predicted."""
        return self.max_abs_error <= self.tolerance and all(t.matches for t in self.links)

    @property
    def compute_time(self) -> float:
        """Seconds of piece computation summed over stages (tiles included)."""
        return sum(s.compute for s in self.stages)

    def __str__(self) -> str:
        verdict = "OK" if self.ok else "FAILED"
        lines = [
            f"validation ({self.mode}, {self.dtype}): {verdict}",
            f"  max abs error vs unsplit model: {self.max_abs_error:.3g} "
            f"(tolerance {self.tolerance:.0e})",
            f"  unsplit forward: {self.plain_time * 1e3:.2f} ms; pieces: "
            f"{self.compute_time * 1e3:.2f} ms compute"
            + (f", {self.total_time * 1e3:.2f} ms end to end" if self.total_time else ""),
            "  link            predicted B     payload B    header B  msgs  match",
        ]
        for t in self.links:
            lines.append(f"  {t.link:<14}{t.predicted:>12,}{t.payload:>14,}{t.header:>12,}"
                         f"{t.messages:>6}  {'yes' if t.matches else 'NO'}")
        lines.append("  stage           node              compute ms     wall ms")
        for s in self.stages:
            wall = f"{s.wall * 1e3:>12.2f}" if s.wall is not None else f"{'-':>12}"
            lines.append(f"  {s.stage:<16}{s.node:<16}{s.compute * 1e3:>12.2f}{wall}")
        return "\n".join(lines)
