"""The daemon's counters and gauges in the Prometheus text exposition format."""

from __future__ import annotations

import threading
from collections import defaultdict


class Metrics:
    """Counters, gauges and summaries written in the Prometheus text exposition format."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = defaultdict(float)
        self.gauges: dict[str, float] = {}
        self.help: dict[str, tuple[str, str]] = {}

    def inc(self, name: str, amount: float = 1.0, help_: str = "", **labels: str) -> None:
        with self._lock:
            self.counters[(name, tuple(sorted(labels.items())))] += amount
            self.help.setdefault(name, ("counter", help_))

    def set(self, name: str, value: float, help_: str = "") -> None:
        with self._lock:
            self.gauges[name] = value
            self.help.setdefault(name, ("gauge", help_))

    def counter(self, name: str, **labels: str) -> float:
        return self.counters.get((name, tuple(sorted(labels.items()))), 0.0)

    def exposition(self) -> str:
        lines: list[str] = []
        with self._lock:
            names = sorted({n for n, _ in self.counters} | set(self.gauges))
            for name in names:
                kind, text = self.help.get(name, ("gauge", ""))
                lines.append(f"# HELP {name} {text or name}")
                lines.append(f"# TYPE {name} {kind}")
                if name in self.gauges:
                    lines.append(f"{name} {self.gauges[name]:g}")
                for (n, labels), value in sorted(self.counters.items()):
                    if n != name:
                        continue
                    label_text = ",".join(f'{k}="{v}"' for k, v in labels)
                    lines.append(
                        f"{name}{{{label_text}}} {value:g}" if labels else f"{n} {value:g}"
                    )
        return "\n".join(lines) + "\n"


__all__ = ["Metrics"]
