"""The daemon's processes: which roles run where, and a small supervisor for one machine.

Roles (docs/OPERATOR.md "Deployment"):
- `intake`: the HTTP front; admits receipts into the store (any number of processes, on any
  number of hosts, sharing one PostgreSQL store; or several processes on one SQLite file);
- `batcher`: stands for election (operator_service.leader) and, while elected, cuts batches,
  submits and confirms settlements (any number of candidates; one acts at a time);
- `prover`: proving workers that claim batched batches (any number, on any host with the SRS;
  no operator key needed).

`run_daemon` runs the roles given. With one intake process everything is threads of this
process. With `intake_processes` N > 1 this process forks N intake processes listening on the
same port (SO_REUSEPORT), runs the batcher and provers itself, restarts an intake process that
dies, and stops them all on SIGTERM or SIGINT. Metrics of all of them are summed at every
`/metrics` (prometheus_client's multiprocess mode).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

ROLES = ("intake", "batcher", "prover")

log = logging.getLogger("zkmeter.daemon")


@dataclass
class DaemonPlan:
    """What this daemon runs: roles, process counts, and where it listens."""

    roles: frozenset[str] = frozenset(ROLES)
    intake_processes: int = 1
    provers: int = 1
    host: str = "127.0.0.1"
    port: int = 8787
    verify_threads: int = 2
    restart_delay: float = 1.0
    children: dict[int, int] = field(default_factory=dict)  # pid -> intake index

    def __post_init__(self) -> None:
        unknown = set(self.roles) - set(ROLES)
        if unknown or not self.roles:
            raise ValueError(f"roles must be some of {', '.join(ROLES)}; got {sorted(self.roles)}")
        if self.intake_processes < 1 or self.provers < 0:
            raise ValueError("intake processes must be at least 1 and provers at least 0")


def prepare_metrics(plan: DaemonPlan) -> str | None:
    """Before anything imports prometheus_client: with several local processes, a folder for
    prometheus_client's multiprocess mode (removed at exit by `run_daemon`)."""
    if "intake" in plan.roles and plan.intake_processes > 1:
        folder = tempfile.mkdtemp(prefix="zkmeter-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
        return folder
    return None


def run_daemon(plan: DaemonPlan, build: Callable[[bool], object]) -> None:
    """Run `plan`. `build(in_intake_child)` makes this process's `Operator` (or, for a
    prover-only process, a `ProvingWorker`): it is called in each process after the fork, so
    no database connection or chain client crosses a fork."""
    from operator_service.http import serve
    from operator_service.leader import BatcherLoop, Leadership
    from operator_service.metrics import mark_process_dead
    from operator_service.pipeline import Operator
    from operator_service.proving import ProvingWorker, worker_identity

    metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    forked = "intake" in plan.roles and plan.intake_processes > 1
    stop = threading.Event()

    def intake_child() -> None:
        operator = build(True)
        if not isinstance(operator, Operator):
            raise TypeError("an intake process needs an Operator")
        serve(operator, plan.host, plan.port, reuse_port=True, verify_threads=plan.verify_threads)

    def fork_intake(index: int) -> None:
        pid = os.fork()
        if pid == 0:  # the child: serve until signalled, never return into the parent's code
            status = 0
            try:
                signal.signal(signal.SIGTERM, signal.default_int_handler)
                intake_child()
            except KeyboardInterrupt:
                pass
            except BaseException:
                log.exception("intake process failed")
                status = 1
            finally:
                os._exit(status)
        plan.children[pid] = index
        log.info("intake process started", extra={"pid": pid, "index": index})

    if forked:
        for index in range(plan.intake_processes):
            fork_intake(index)

    built = build(False)
    threads: list[Callable[[], None]] = []
    if isinstance(built, Operator):
        operator = built
        if "batcher" in plan.roles:
            loop = BatcherLoop(operator, Leadership(operator.store, worker_identity("batcher")))
            loop.start()
            threads.append(loop.stop)
        if "prover" in plan.roles:
            for _ in range(plan.provers):
                worker = ProvingWorker(
                    operator.store,
                    operator.pk,
                    operator.header,
                    processes=operator.config.prove_processes,
                    lease=operator.config.claim_lease,
                    metrics=operator.metrics,
                )
                threads.append(_start_worker(worker, stop))
    elif isinstance(built, ProvingWorker):
        for i in range(plan.provers):
            worker = built if i == 0 else ProvingWorker(
                built.store, built.pk, built.header_of, processes=built.processes,
                lease=built.lease, metrics=built.metrics,
            )  # fmt: skip
            threads.append(_start_worker(worker, stop))
        operator = None
    else:
        raise TypeError(f"cannot run {built!r}")

    def terminate(_signum: int, _frame: object) -> None:
        stop.set()

    try:
        if "intake" in plan.roles and not forked and operator is not None:
            serve(operator, plan.host, plan.port, verify_threads=plan.verify_threads)
        else:
            signal.signal(signal.SIGTERM, terminate)
            signal.signal(signal.SIGINT, terminate)
            while not stop.is_set():
                if forked:
                    _reap_and_restart(plan, fork_intake, mark_process_dead)
                stop.wait(0.2)
    finally:
        stop.set()
        for child in list(plan.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for child in list(plan.children):
            _wait_child(child, deadline)
        for stop_thread in threads:
            stop_thread()
        if metrics_dir and forked:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _start_worker(worker: object, stop: threading.Event) -> Callable[[], None]:
    from operator_service.proving import ProvingWorker

    if not isinstance(worker, ProvingWorker):
        raise TypeError("not a proving worker")
    thread = threading.Thread(target=worker.run, args=(stop,), name="zkmeter-prover", daemon=True)
    thread.start()
    return lambda: thread.join(timeout=5)


def _reap_and_restart(
    plan: DaemonPlan, fork_intake: Callable[[int], None], forget: Callable[[int], None]
) -> None:
    """Restart any intake process that exited (only those: proving children are their
    workers' to reap)."""
    for pid in list(plan.children):
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done, status = pid, 0
        if done == 0:
            continue
        index = plan.children.pop(pid)
        forget(pid)
        log.warning(
            "intake process died; restarting it",
            extra={"pid": pid, "status": os.waitstatus_to_exitcode(status)},
        )
        time.sleep(plan.restart_delay)
        fork_intake(index)


def _wait_child(pid: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return
        if done:
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


__all__ = ["ROLES", "DaemonPlan", "prepare_metrics", "run_daemon"]
