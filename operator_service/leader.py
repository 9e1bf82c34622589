"""Exactly one batcher at a time: elected through the database, with fail-over.

The batcher (operator_service.pipeline.Operator.step: cut, submit, confirm, hold and release)
must be one process, because it owns the operator's batch sequence and transaction nonces.
Every daemon process with the batcher role is a candidate:

- on PostgreSQL the batcher holds a session advisory lock (`pg_try_advisory_lock`) on a
  connection of its own; when its process dies or loses the database, the server drops the
  session and the lock with it, and the next candidate to ask gets it (within its polling
  interval);
- on SQLite (one machine) the batcher holds an exclusive `flock` on `<database>.batcher`; the
  kernel drops it when the process dies.

Taking the lock increments `leadership.epoch` in the store (`ReceiptStore.take_leadership`);
the batcher passes that epoch to each of its writes, and a write with an older epoch fails
(`NotLeaderError`). So a deposed batcher that has not noticed yet (a paused process, a
connection the server already dropped) cannot write, and the chain's own batch sequence
numbers stop any transaction it had already sent from settling a batch twice. No consensus
protocol of our own: the database's lock, and its transactions, decide.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import threading
from typing import IO, Any

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from operator_service.metrics import Metrics
from operator_service.pipeline import Operator
from operator_service.store import (
    NotLeaderError,
    ReceiptStore,
    StoreError,
    sqlite_path,
)

log = logging.getLogger("zkmeter.leader")

#: The advisory lock's key: one per database and schema.
_PG_LOCK_KEY = (
    "hashtextextended(current_database() || '/' || current_schema() || '/zkmeter-batcher', 0)"
)


class Leadership:
    """This process's candidacy for batcher on `store`."""

    def __init__(self, store: ReceiptStore, identity: str) -> None:
        self.store = store
        self.identity = identity
        self.epoch: int | None = None
        self._conn: Connection | None = None
        self._file: IO[Any] | None = None

    def try_acquire(self) -> int | None:
        """Take the batcher's lock if it is free: the new epoch, or None if another process
        holds it (or the database cannot be reached). Returns the epoch if already held."""
        if self.epoch is not None and self.held():
            return self.epoch
        self.release()
        try:
            got = (
                self._lock_postgresql() if self.store.dialect == "postgresql" else self._lock_file()
            )
            if not got:
                return None
            self.epoch = self.store.take_leadership(self.identity)
        except (StoreError, OSError, SQLAlchemyError) as error:
            log.warning("cannot take the batcher's lock", extra={"error": str(error)})
            self.release()
            return None
        log.info("elected batcher", extra={"epoch": self.epoch, "holder": self.identity})
        return self.epoch

    def _lock_postgresql(self) -> bool:
        conn = self.store.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        got = bool(conn.execute(text(f"SELECT pg_try_advisory_lock({_PG_LOCK_KEY})")).scalar())
        if got:
            self._conn = conn
        else:
            conn.close()
        return got

    def _lock_file(self) -> bool:
        path = sqlite_path(self.store.url)
        if path == ":memory:":
            return True  # a private database: this process is the only one
        handle = open(f"{path}.batcher", "a+")  # noqa: SIM115 - held open while leading
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(f"{self.identity}\n")
        handle.flush()
        self._file = handle
        return True

    def held(self) -> bool:
        """Whether this process still holds the lock (on PostgreSQL: its session is alive and
        holds the advisory lock)."""
        if self.epoch is None:
            return False
        if self._conn is None:
            return True  # a file lock lasts as long as this process
        try:
            held = self._conn.execute(
                text(
                    "SELECT COUNT(*) FROM pg_locks WHERE locktype='advisory' AND granted "
                    "AND pid=pg_backend_pid()"
                )
            ).scalar()
        except SQLAlchemyError as error:  # the session is gone: so is the lock
            log.warning("lost the batcher's lock", extra={"error": str(error)})
            return False
        return bool(held)

    def release(self) -> None:
        """Give the lock up (or forget a lock that is already gone)."""
        self.epoch = None
        if self._conn is not None:
            try:
                self._conn.execute(text(f"SELECT pg_advisory_unlock({_PG_LOCK_KEY})"))
                self._conn.close()
            except SQLAlchemyError:  # a dead session released it already
                with contextlib.suppress(SQLAlchemyError):
                    self._conn.invalidate()
                    self._conn.close()
            self._conn = None
        if self._file is not None:
            self._file.close()  # closing the descriptor drops the flock
            self._file = None


class BatcherLoop:
    """A thread that stands for batcher and, while elected, runs `Operator.step()` with the
    epoch it was elected with; it steps down when the lock is lost or a write is fenced."""

    def __init__(
        self,
        operator: Operator,
        leadership: Leadership,
        interval: float = 0.5,
        metrics: Metrics | None = None,
    ) -> None:
        self.operator = operator
        self.leadership = leadership
        self.interval = interval
        self.metrics = metrics or operator.metrics
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="zkmeter-batcher", daemon=True)
        self.thread.start()

    def _step_down(self, why: str) -> None:
        log.warning("no longer the batcher", extra={"reason": why})
        self.operator.epoch = None
        self.leadership.release()
        self.metrics.set("zkmeter_leader", 0)

    def run_once(self) -> bool:
        """One round: stand for election if not elected, else step. True if anything moved."""
        if self.operator.epoch is None:
            epoch = self.leadership.try_acquire()
            if epoch is None:
                return False
            self.operator.epoch = epoch
            self.operator.admission.refresh()
            self.metrics.set("zkmeter_leader", 1)
        if not self.leadership.held():
            self._step_down("lock lost")
            return False
        try:
            return self.operator.step()
        except NotLeaderError as error:
            self._step_down(str(error))
            return False

    def _run(self) -> None:
        while not self.stop_event.is_set():
            try:
                changed = self.run_once()
            except Exception:
                log.exception("batcher step failed; retrying")
                changed = False
            if not changed:
                self.stop_event.wait(self.interval)
        if self.operator.epoch is not None:
            self.operator.epoch = None
            self.leadership.release()

    def stop(self) -> None:
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join()


__all__ = ["BatcherLoop", "Leadership"]
