"""The daemon's metrics through prometheus_client: counters, gauges and histograms.

Every metric the daemon exports is declared in `METRICS` (kind, help, labels, buckets). Each
`Metrics` has its own registry (tests run several daemons in one process). When the daemon
runs several processes on one machine (`zkmeter daemon --intake-processes N`), it sets
`PROMETHEUS_MULTIPROC_DIR` before any of them starts: values then live in files there and
every process's `/metrics` reports the sum over all of them (prometheus_client's multiprocess
mode; gauges report the most recent value written by any process).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)

# No `*_created` series: they double the exposition and nothing here reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]

#: Latency buckets (seconds) of admission requests and commits: 1 ms to 10 s.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Size buckets (receipts) of requests, commits and batches: 1 to 2^20.
SIZE_BUCKETS = tuple(float(4**i) for i in range(11))
#: Proving time buckets (seconds).
PROVING_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 60.0, 150.0, 400.0, 1000.0)


@dataclass(frozen=True)
class MetricSpec:
    kind: str  # "counter", "gauge" or "histogram"
    help: str
    labels: Sequence[str] = ()
    buckets: Sequence[float] = ()


METRICS: dict[str, MetricSpec] = {
    "zkmeter_receipts_admitted_total": MetricSpec("counter", "receipts admitted"),
    "zkmeter_receipts_refused_total": MetricSpec(
        "counter", "receipts refused, by rule", ("reason",)
    ),
    "zkmeter_requests_unavailable_total": MetricSpec(
        "counter", "requests answered 503 because the store could not be written"
    ),
    "zkmeter_intake_retries_total": MetricSpec(
        "counter", "groups checked again because another process changed a payer meanwhile"
    ),
    "zkmeter_admission_seconds": MetricSpec(
        "histogram",
        "time from a POST /receipts arriving to its answer (after the commit)",
        buckets=LATENCY_BUCKETS,
    ),
    "zkmeter_request_receipts": MetricSpec(
        "histogram", "receipts per POST /receipts", buckets=SIZE_BUCKETS
    ),
    "zkmeter_commit_seconds": MetricSpec(
        "histogram", "time to check and commit one group of receipts", buckets=LATENCY_BUCKETS
    ),
    "zkmeter_commit_receipts": MetricSpec(
        "histogram", "receipts stored per transaction (group commit)", buckets=SIZE_BUCKETS
    ),
    "zkmeter_batches_cut_total": MetricSpec("counter", "batches cut"),
    "zkmeter_batch_receipts": MetricSpec(
        "histogram", "receipts per batch cut", buckets=SIZE_BUCKETS
    ),
    "zkmeter_proving_seconds": MetricSpec(
        "histogram", "seconds to prove and verify one batch", buckets=PROVING_BUCKETS
    ),
    "zkmeter_batches_proven_total": MetricSpec("counter", "batches proven and verified"),
    "zkmeter_batches_submitted_total": MetricSpec("counter", "settle transactions sent"),
    "zkmeter_batches_settled_total": MetricSpec("counter", "batches settled on chain"),
    "zkmeter_batches_requeued_total": MetricSpec("counter", "batches re-cut after a refusal"),
    "zkmeter_gas_used_total": MetricSpec("counter", "gas spent on settle"),
    "zkmeter_leader": MetricSpec("gauge", "1 while this process is the elected batcher"),
    "zkmeter_queue_depth": MetricSpec("gauge", "receipts admitted, not batched"),
    "zkmeter_receipts_held": MetricSpec("gauge", "receipts held"),
    "zkmeter_receipts_batched": MetricSpec("gauge", "receipts batched"),
    "zkmeter_receipts_proven": MetricSpec("gauge", "receipts proven"),
    "zkmeter_receipts_submitted": MetricSpec("gauge", "receipts submitted"),
}


def multiprocess_dir() -> str | None:
    """The folder of prometheus_client's multiprocess mode, if the daemon set one."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class Metrics:
    """The daemon's metrics in a registry of their own; `exposition()` is the /metrics text."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._lock = threading.Lock()
        self._metrics: dict[str, Any] = {}
        for name in METRICS:
            self._metric(name)

    def _metric(self, name: str) -> Any:
        metric = self._metrics.get(name)
        if metric is not None:
            return metric
        spec = METRICS.get(name)
        if spec is None:
            raise KeyError(f"{name} is not declared in operator_service.metrics.METRICS")
        with self._lock:
            if name in self._metrics:
                return self._metrics[name]
            if spec.kind == "counter":
                metric = Counter(name, spec.help, spec.labels, registry=self.registry)
            elif spec.kind == "gauge":
                metric = Gauge(
                    name, spec.help, spec.labels, registry=self.registry,
                    multiprocess_mode="mostrecent",
                )  # fmt: skip
            else:
                metric = Histogram(
                    name, spec.help, spec.labels, registry=self.registry, buckets=spec.buckets
                )
            self._metrics[name] = metric
            return metric

    def _labelled(self, name: str, labels: dict[str, str]) -> Any:
        metric = self._metric(name)
        return metric.labels(**labels) if labels else metric

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        self._labelled(name, labels).inc(amount)

    def set(self, name: str, value: float, **labels: str) -> None:
        self._labelled(name, labels).set(value)

    def observe(self, name: str, value: float, **labels: str) -> None:
        self._labelled(name, labels).observe(value)

    def value(self, name: str, **labels: str) -> float:
        """A counter's or gauge's current value in this process (tests)."""
        found = self.registry.get_sample_value(name, labels or None)
        return 0.0 if found is None else found

    def exposition(self) -> str:
        """The Prometheus text format: this registry, or every process's values in
        multiprocess mode."""
        if multiprocess_dir() is not None:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry).decode()
        return generate_latest(self.registry).decode()


def mark_process_dead(pid: int) -> None:
    """Forget a dead process's live gauges (multiprocess mode)."""
    if multiprocess_dir() is not None:
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


__all__ = ["METRICS", "MetricSpec", "Metrics", "mark_process_dead", "multiprocess_dir"]
