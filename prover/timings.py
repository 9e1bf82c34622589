"""Where proving time goes: seconds per kind of work (witness, MSM, NTT, gates, other)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class ProofTimings:
    """Seconds spent per kind of work, for the benchmark breakdown."""

    seconds: dict[str, float] = field(
        default_factory=lambda: {
            "witness": 0.0,
            "msm": 0.0,
            "ntt": 0.0,
            "gates": 0.0,
            "other": 0.0,
        }
    )
    total: float = 0.0

    def add_parallel(self, wall: float, spent: Sequence[dict[str, float]]) -> None:
        """Attribute ``wall`` seconds of a parallel phase to kinds of work in proportion to
        the process-seconds the workers measured, so the breakdown sums to wall time."""
        total = sum(sum(s.values()) for s in spent)
        if total <= 0:
            self.seconds["other"] += wall
            return
        for kinds in spent:
            for kind, seconds in kinds.items():
                self.seconds[kind] += wall * seconds / total

    @contextmanager
    def measure(self, kind: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[kind] += time.perf_counter() - start


__all__ = ["ProofTimings"]
