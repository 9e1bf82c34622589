"""The operator's durable store: receipts, batches, channel positions, payer versions, proving
claims and the batcher's leadership, in SQLite (the embedded default) or PostgreSQL (an
operator beyond one machine), with one schema and one migration history (Alembic,
operator_service/migrations/).

Receipts move admitted -> batched -> proven -> submitted -> settled, together with their
batch. Every transition is one transaction, so a crash at any point leaves either the state
before or the state after it. The chain stays the truth about settlement: the batcher checks
`nextBatchSeq` and `BatchSettled` before every submission (operator_service.pipeline).

Several processes may share one store (operator_service.intake, .leader, .proving):
- intake processes admit in groups (one transaction for many receipts, "group commit") and
  cache payer state; each transaction compares and sets every touched payer's `version`, so a
  process whose cache is stale loses and re-reads instead of admitting a nonce twice or beyond
  the payer's credit (`StaleStateError`); the unique (payer, operator, model, nonce) key backs
  this up;
- one batcher at a time, elected elsewhere (operator_service.leader), passes the `epoch` it
  was elected with to each of its transitions: a deposed batcher's writes fail with
  `NotLeaderError` (fencing);
- proving workers claim batched batches with a lease (`claim_batch`: `FOR UPDATE SKIP LOCKED`
  on PostgreSQL; SQLite serialises writers anyway) and mark them proven only while they hold
  the claim.

Durability: SQLite runs in WAL mode with `synchronous=FULL`; PostgreSQL connections set
`synchronous_commit=on`. A transaction that returned has reached the disk.

Tables (operator_service/migrations/versions/):
- receipts(payer, operator, model_id, nonce) unique: the signed channel state, the call's
  tokens (derived at admission), the signer, state and batch_seq;
- batches(seq): state, log_size, public inputs and proof, blinding factors, proof file path,
  tx hash, gas used, timestamps, the proving claim;
- channels(payer, operator, model_id) -> last admitted nonce and cumulative tokens;
- payers(payer, operator) -> version; leadership(name) -> epoch, holder;
- meta (schema_version 3) and alembic_version.
Integers that may exceed 64 bits (cumulative tokens, rate caps) are stored as decimal TEXT.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.util.exc import CommandError
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

from channels.receipts import SignedReceipt
from circuits.public_inputs import PublicInputs
from contracts.client import ChannelState
from operator_service.admission import AdmittedReceipt

log = logging.getLogger("zkmeter.store")

ADMITTED, HELD, BATCHED, PROVEN, SUBMITTED, SETTLED, FAILED = (
    "admitted",
    "held",
    "batched",
    "proven",
    "submitted",
    "settled",
    "failed",
)
BATCH_STATES = (BATCHED, PROVEN, SUBMITTED, SETTLED, FAILED)
#: Receipt states that still count against a payer's credit.
UNSETTLED_STATES = (ADMITTED, HELD, BATCHED, PROVEN, SUBMITTED)

#: meta.schema_version written by the newest migration. Version 2 (receipts as channel
#: states, before Alembic) is adopted and upgraded; version 1 (per-call receipts) is refused.
SCHEMA_VERSION = 3
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: The Alembic revision of schema version 2.
FIRST_REVISION = "0001"
#: The batcher's row in `leadership`.
BATCHER = "batcher"
#: Seconds SQLite waits for another process's write lock before giving up (503 at intake).
SQLITE_BUSY_TIMEOUT = 10.0
#: Seconds between a SQLite store's checkpoints of its write-ahead log (`_Checkpointer`).
WAL_CHECKPOINT_INTERVAL = 0.5
#: Bound parameters in one multi-row INSERT on SQLite (it allows 32,766 since 3.32).
INSERT_PARAMETERS = 6000

_RECEIPT_COLUMNS = (
    "payer, operator, model_id, nonce, cumulative_tokens, max_rate_per_k_tokens, request_hash, "
    "signature, tokens, signer"
)
_BATCH_COLUMNS = (
    "seq, state, log_size, receipt_count, public_json, proof, blinding_json, proof_path, "
    "tx_hash, gas_used, error, claimed_by"
)


class StoreError(RuntimeError):
    """The store cannot be opened or a transition is not allowed from the current state."""


class StoreUnavailableError(StoreError):
    """The database cannot be reached or is busy; nothing was written (or, if the connection
    broke during a commit, the outcome is unknown): retry later."""


class StaleStateError(StoreError):
    """Another process changed a payer since this process read it: re-read and try again.
    Nothing was written."""

    def __init__(self, payers: Sequence[str]) -> None:
        super().__init__(f"payer state changed meanwhile: {', '.join(payers)}")
        self.payers = tuple(payers)


class NotLeaderError(StoreError):
    """A batcher wrote with an epoch that is no longer the elected one: nothing was written."""


@dataclass(frozen=True)
class Batch:
    seq: int
    state: str
    k: int
    receipt_count: int
    public: PublicInputs | None
    proof: bytes | None
    blinding_json: str | None
    proof_path: str | None
    tx_hash: str | None
    gas_used: int | None
    error: str | None
    claimed_by: str | None = None


@dataclass(frozen=True)
class PayerSnapshot:
    """What admission needs of one payer (with one operator), as stored.

    `version` is None while the payer has no row (nothing admitted yet); `positions` holds the
    last admitted state of each channel with a stored position (others continue from the
    chain); `unsettled` the tokens per model not yet settled or failed; `held` whether any of
    its receipts are held."""

    payer: str
    version: int | None
    positions: Mapping[int, ChannelState]
    unsettled: Mapping[int, int]
    held: bool


@dataclass(frozen=True)
class AdmissionWrite:
    """One admitted receipt to store, with the state it is stored in (admitted or held)."""

    admitted: AdmittedReceipt
    state: str


def _admitted(row: Sequence[Any]) -> AdmittedReceipt:
    """An AdmittedReceipt from a row of `_RECEIPT_COLUMNS`."""
    p, o, m, n, c, r, h, sig, t, signer = row
    receipt = SignedReceipt(p, o, int(m), int(n), int(c), int(r), bytes(h), bytes(sig))
    return AdmittedReceipt(receipt, int(t), str(signer))


def _batch(row: Sequence[Any]) -> Batch:
    seq, state, k, count, public, proof, blinding, path, tx, gas, error, claimed = row
    return Batch(
        int(seq),
        str(state),
        int(k),
        int(count),
        None if public is None else PublicInputs.from_json(json.loads(public)),
        None if proof is None else bytes(proof),
        blinding,
        path,
        tx,
        None if gas is None else int(gas),
        error,
        claimed,
    )


def sqlite_path(url: str) -> str:
    """The file path of a `sqlite:///path` URL (`sqlite:///:memory:` for a private memory db)."""
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        raise StoreError(f"{url!r} is not a sqlite:///PATH URL")
    path = url[len(prefix) :]
    if not path:
        raise StoreError(f"database URL {url!r} names no file")
    return path


def engine_url(url: str) -> str:
    """The SQLAlchemy URL of a store URL: `sqlite:///PATH`, or `postgresql://...` (also
    `postgres://` and `postgresql+psycopg://`), driven by psycopg 3."""
    if url.startswith("sqlite:///"):
        sqlite_path(url)
        return url
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    scheme = url.split(":", 1)[0] if ":" in url else url
    raise StoreError(
        f"unsupported database URL {url!r} (scheme {scheme!r}): use sqlite:///PATH or "
        "postgresql://USER@HOST:PORT/DATABASE"
    )


def redact(url: str) -> str:
    """The URL with any password replaced by ***, for messages and logs."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return url


def make_engine(url: str) -> Engine:
    """A SQLAlchemy engine for the store URL, configured for durable commits."""
    target = engine_url(url)
    if target.startswith("sqlite"):
        path = sqlite_path(url)
        options: dict[str, Any] = {
            "connect_args": {"timeout": SQLITE_BUSY_TIMEOUT, "check_same_thread": False}
        }
        if path == ":memory:":
            options["poolclass"] = StaticPool  # one connection: the memory database is private
        else:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(target, **options)
        _durable_sqlite(engine)
        return engine
    # No pre-ping: a connection the server dropped fails its next transaction (503 at intake)
    # and SQLAlchemy then replaces the whole pool; a ping per transaction would cost a round
    # trip on every group.
    engine = sa.create_engine(
        target,
        pool_size=4,
        max_overflow=8,
        connect_args={"connect_timeout": 5, "keepalives": 1, "keepalives_idle": 10},
    )
    _durable_postgresql(engine)
    return engine


_SQLITE_WRITERS: dict[str, threading.RLock] = {}
_SQLITE_WRITERS_LOCK = threading.Lock()


def _sqlite_writer(path: str) -> threading.RLock:
    """The lock the threads of this process hold while they write the SQLite file `path`
    (one for every ReceiptStore on that file; a private lock for a memory database)."""
    if path == ":memory:":
        return threading.RLock()
    key = os.path.realpath(path)
    with _SQLITE_WRITERS_LOCK:
        return _SQLITE_WRITERS.setdefault(key, threading.RLock())


class _Checkpointer:
    """Copies a SQLite database's write-ahead log back into the database file from a thread of
    its own, at most every WAL_CHECKPOINT_INTERVAL s and only after writes, so that no commit
    has to. SQLite's automatic checkpoint runs inside the commit that takes the log past 1,000
    pages: the request behind that commit would wait for megabytes of page writes and an fsync
    of the database file (connections here set `wal_autocheckpoint=0`). PASSIVE mode waits for
    no reader and no writer; once the whole log is copied, the next writer starts it again from
    its beginning, so the log stays small (https://sqlite.org/wal.html#ckpt)."""

    def __init__(self, engine: Engine, closed: threading.Event) -> None:
        self.engine = engine
        self.closed = closed
        self.written = threading.Event()
        self.thread = threading.Thread(target=self._run, name="zkmeter-checkpoint", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.closed.wait(WAL_CHECKPOINT_INTERVAL):
            if self.written.is_set():
                self.written.clear()
                self.checkpoint()

    def checkpoint(self) -> None:
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        except sa.exc.DBAPIError:  # the next round tries again; commits do not depend on it
            log.debug("WAL checkpoint failed", exc_info=True)

    def stop(self) -> None:
        """End the thread, after one last checkpoint of what was written."""
        self.closed.set()
        if self.thread is not threading.current_thread():
            self.thread.join()
        if self.written.is_set():
            self.checkpoint()


class _WriterTurn:
    """Holds a process's SQLite writer lock for one transaction; waiting longer than the
    busy timeout is the same failure as SQLite's own "database is locked"."""

    def __init__(self, lock: threading.RLock) -> None:
        self.lock = lock

    def __enter__(self) -> None:
        if not self.lock.acquire(timeout=SQLITE_BUSY_TIMEOUT):
            raise StoreUnavailableError(
                f"database is locked: another writer of this process held it for over "
                f"{SQLITE_BUSY_TIMEOUT:g} s"
            )

    def __exit__(self, *_exc: object) -> None:
        self.lock.release()


def _durable_sqlite(engine: Engine) -> None:
    """WAL, synchronous=FULL, and transactions begun by us: BEGIN IMMEDIATE for writes (the
    write lock up front: no deadlock between two upgrading readers), BEGIN for reads."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi: Any, _record: Any) -> None:
        dbapi.isolation_level = None  # pysqlite would otherwise BEGIN on its own terms
        cursor = dbapi.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA wal_autocheckpoint=0")  # the store's _Checkpointer does it
        cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT * 1000)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN " + conn.get_execution_options().get("sqlite_begin", ""))


def _durable_postgresql(engine: Engine) -> None:
    """synchronous_commit=on on every connection, whatever the server's default: a commit
    returns only once its WAL record is flushed (what "202 means durable" rests on)."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi: Any, _record: Any) -> None:
        with dbapi.cursor() as cursor:
            cursor.execute("SET synchronous_commit TO on")
        dbapi.commit()


def _unavailable(error: sa.exc.DBAPIError) -> bool:
    """Whether a database error means 'cannot reach or busy' rather than a bug or conflict."""
    return isinstance(error, sa.exc.OperationalError | sa.exc.InterfaceError) or bool(
        error.connection_invalidated
    )


def alembic_config(conn: Connection) -> Config:
    """Alembic's configuration for our migrations, running on `conn`."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    return config


def migrate(engine: Engine, url: str, revision: str = "head") -> None:
    """Bring the database to `revision` (default: the newest), under a lock so that several
    processes starting at once migrate it once. A pre-Alembic database of schema version 2 is
    stamped at revision 0001 first; any other pre-Alembic database is refused, untouched."""
    with engine.connect() as conn:
        conn = conn.execution_options(sqlite_begin="IMMEDIATE")
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('zkmeter-migrate'))"))
            tables = set(sa.inspect(conn).get_table_names())
            config = alembic_config(conn)
            if tables and "alembic_version" not in tables:
                version = None
                if "meta" in tables:
                    row = conn.execute(
                        text("SELECT value FROM meta WHERE key='schema_version'")
                    ).first()
                    version = None if row is None else int(row[0])
                if version != 2:
                    raise StoreError(
                        f"{redact(url)} holds an operator database of schema version "
                        f"{version or 1}; this zkmeter uses version {SCHEMA_VERSION} (receipts "
                        "are channel states): settle what it holds with the zkmeter that wrote "
                        "it, then start a new database"
                    )
                command.stamp(config, FIRST_REVISION)
            try:
                command.upgrade(config, revision)
            except CommandError as error:
                raise StoreError(
                    f"{redact(url)}: {error} (written by a newer zkmeter?); refusing to use it"
                ) from None


class ReceiptStore:
    """The operator's receipts and batches in SQLite or PostgreSQL; thread-safe (a pool of
    connections; each method is one transaction)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.dialect = self.engine.dialect.name
        try:
            migrate(self.engine, url)
        except sa.exc.DBAPIError as error:
            self.engine.dispose()
            raise StoreUnavailableError(f"cannot open {redact(url)}: {error.orig}") from None
        except BaseException:
            self.engine.dispose()
            raise
        self._multi_rowcount = bool(self.engine.dialect.supports_sane_multi_rowcount)
        self._writer: AbstractContextManager[Any] = (
            _WriterTurn(_sqlite_writer(sqlite_path(url)))
            if self.dialect == "sqlite"
            else nullcontext()
        )
        self._closed = threading.Event()
        self._checkpointer = (
            _Checkpointer(self.engine, self._closed)
            if self.dialect == "sqlite" and sqlite_path(url) != ":memory:"
            else None
        )

    def close(self) -> None:
        self._closed.set()
        if self._checkpointer is not None:
            self._checkpointer.stop()
        self.engine.dispose()

    # -- transactions ------------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        """A write transaction (BEGIN IMMEDIATE on SQLite); database trouble becomes
        StoreUnavailableError.

        On SQLite the threads of one process take turns at writing through `_writer` (a
        lock per database file): SQLite has one writer at a time anyway, and a thread that
        found the file locked would poll it with growing sleeps (1, 2, 5, 10, ... ms: SQLite's
        busy handler) where the lock hands over as soon as the other transaction ends. Other
        processes still meet the busy handler."""
        try:
            with self._writer, self.engine.connect() as conn:
                conn = conn.execution_options(sqlite_begin="IMMEDIATE")
                with conn.begin():
                    yield conn
            if self._checkpointer is not None:
                self._checkpointer.written.set()
        except sa.exc.DBAPIError as error:
            if _unavailable(error):
                raise StoreUnavailableError(f"database unavailable: {error.orig}") from None
            raise

    @contextmanager
    def _reading(self, snapshot: bool = False) -> Iterator[Connection]:
        """A read transaction; with `snapshot`, every statement sees the same snapshot
        (REPEATABLE READ on PostgreSQL; a SQLite read transaction is one in WAL mode)."""
        try:
            with self.engine.connect() as conn:
                if snapshot and self.dialect == "postgresql":
                    conn = conn.execution_options(isolation_level="REPEATABLE READ")
                with conn.begin():
                    yield conn
        except sa.exc.DBAPIError as error:
            if _unavailable(error):
                raise StoreUnavailableError(f"database unavailable: {error.orig}") from None
            raise

    def _query(self, sql: str, args: Mapping[str, Any] | None = None) -> list[Any]:
        with self._reading() as conn:
            return list(conn.execute(text(sql), dict(args or {})).all())

    def _insert_rows(
        self, conn: Connection, head: str, rows: Sequence[tuple[Any, ...]], tail: str = ""
    ) -> None:
        """`head VALUES (..) tail` for all `rows`, straight through the driver: the hot path of
        intake, where SQLAlchemy's per-row parameter processing would dominate.

        SQLite: a few hundred rows a statement (`head VALUES (..), (..), .. tail`), because
        the driver releases the GIL around every row's step and taking it back can wait a
        switch interval behind another thread. PostgreSQL: one statement, executed for every
        row (psycopg sends them in one pipeline, and the server plans the statement once)."""
        if not rows:
            return
        width = len(rows[0])
        if self.dialect == "postgresql":
            marks = ", ".join(["%s"] * width)
            conn.exec_driver_sql(f"{head} VALUES ({marks}) {tail}", list(rows))
            return
        group = "(" + ", ".join(["?"] * width) + ")"
        per_statement = max(1, INSERT_PARAMETERS // width)
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            sql = f"{head} VALUES {', '.join([group] * len(chunk))} {tail}"
            conn.exec_driver_sql(sql, tuple(value for row in chunk for value in row))

    def _now(self) -> str:
        """SQL for 'now' in seconds since the epoch: the database's clock on PostgreSQL (one
        clock for every host), the parameter :now (this host's) on SQLite."""
        if self.dialect == "postgresql":
            return "EXTRACT(EPOCH FROM clock_timestamp())::float8"
        return ":now"

    def _check_epoch(self, conn: Connection, epoch: int | None) -> None:
        """Fencing: raise NotLeaderError unless `epoch` is the batcher's current epoch (None:
        an unelected caller, e.g. a test driving the pipeline by hand)."""
        if epoch is None:
            return
        lock = " FOR SHARE" if self.dialect == "postgresql" else ""
        row = conn.execute(
            text(f"SELECT epoch FROM leadership WHERE name=:name{lock}"), {"name": BATCHER}
        ).first()
        if row is None or int(row[0]) != epoch:
            current = None if row is None else int(row[0])
            raise NotLeaderError(f"batcher epoch {epoch} was superseded (now {current})")

    # -- admission ---------------------------------------------------------------------------

    def last_admitted(self, payer: str, operator: str, model_id: int) -> ChannelState | None:
        rows = self._query(
            "SELECT last_admitted, last_cumulative FROM channels "
            "WHERE payer=:payer AND operator=:operator AND model_id=:model",
            {"payer": payer, "operator": operator, "model": model_id},
        )
        return ChannelState(int(rows[0][0]), int(rows[0][1])) if rows else None

    def unsettled_usage(self, payer: str, operator: str | None = None) -> Mapping[int, int]:
        """Tokens per model of `payer`'s receipts not yet settled or failed (with `operator`
        only, if given)."""
        where = " AND operator=:operator" if operator is not None else ""
        rows = self._query(
            "SELECT model_id, SUM(tokens) FROM receipts WHERE payer=:payer "
            f"AND state NOT IN (:settled, :failed){where} GROUP BY model_id",
            {"payer": payer, "operator": operator, "settled": SETTLED, "failed": FAILED},
        )
        return {int(m): int(t) for m, t in rows}

    def load_payer(self, payer: str, operator: str) -> PayerSnapshot:
        """Everything admission needs of `payer`, read in one snapshot, its version first."""
        args = {"payer": payer, "operator": operator, "settled": SETTLED, "failed": FAILED}
        with self._reading(snapshot=True) as conn:
            row = conn.execute(
                text("SELECT version FROM payers WHERE payer=:payer AND operator=:operator"),
                args,
            ).first()
            positions = {
                int(m): ChannelState(int(n), int(c))
                for m, n, c in conn.execute(
                    text(
                        "SELECT model_id, last_admitted, last_cumulative FROM channels "
                        "WHERE payer=:payer AND operator=:operator"
                    ),
                    args,
                )
            }
            unsettled = {
                int(m): int(t)
                for m, t in conn.execute(
                    text(
                        "SELECT model_id, SUM(tokens) FROM receipts WHERE payer=:payer AND "
                        "operator=:operator AND state NOT IN (:settled, :failed) "
                        "GROUP BY model_id"
                    ),
                    args,
                )
            }
            held = (
                conn.execute(
                    text(
                        "SELECT 1 FROM receipts WHERE payer=:payer AND operator=:operator "
                        "AND state=:held LIMIT 1"
                    ),
                    {**args, "held": HELD},
                ).first()
                is not None
            )
        return PayerSnapshot(
            payer, None if row is None else int(row[0]), positions, unsettled, held
        )

    def commit_admissions(
        self, writes: Sequence[AdmissionWrite], versions: Mapping[tuple[str, str], int | None]
    ) -> dict[tuple[str, str], int]:
        """Store admitted receipts in one transaction ("group commit"), advancing each
        channel's position to its last receipt here. `versions` gives, per (payer, operator)
        touched, the version the caller's checks were made against (None: no row then); each
        is compared and set to version + 1, else StaleStateError and nothing is written.
        Returns the new versions."""
        now = time.time()
        new_versions: dict[tuple[str, str], int] = {}
        positions: dict[tuple[str, str, int], tuple[int, int]] = {}
        for w in writes:
            r = w.admitted.receipt
            positions[(r.payer, r.operator, r.model_id)] = (r.nonce, r.cumulative_tokens)
        try:
            with self._transaction() as conn:
                stale = self._compare_and_set(conn, versions)
                for (payer, operator), version in versions.items():
                    new_versions[(payer, operator)] = (version or 0) + 1
                if stale:
                    raise StaleStateError(stale)
                if positions:
                    self._insert_rows(
                        conn,
                        "INSERT INTO channels (payer, operator, model_id, last_admitted, "
                        "last_cumulative)",
                        [(p, o, m, n, str(c)) for (p, o, m), (n, c) in sorted(positions.items())],
                        "ON CONFLICT (payer, operator, model_id) DO UPDATE SET "
                        "last_admitted=excluded.last_admitted, "
                        "last_cumulative=excluded.last_cumulative",
                    )
                if writes:
                    self._insert_rows(
                        conn,
                        f"INSERT INTO receipts ({_RECEIPT_COLUMNS}, state, admitted_at)",
                        [
                            (
                                w.admitted.receipt.payer,
                                w.admitted.receipt.operator,
                                w.admitted.receipt.model_id,
                                w.admitted.receipt.nonce,
                                str(w.admitted.receipt.cumulative_tokens),
                                str(w.admitted.receipt.max_rate_per_k_tokens),
                                w.admitted.receipt.request_hash,
                                w.admitted.receipt.signature,
                                w.admitted.tokens,
                                w.admitted.signer,
                                w.state,
                                now,
                            )
                            for w in writes
                        ],
                    )
        except sa.exc.IntegrityError:
            # A receipt for one of these nonces was stored meanwhile without the payer's
            # version moving (cannot happen through this class; kept as the last line).
            raise StaleStateError(sorted({p for p, _ in versions})) from None
        return new_versions

    def _compare_and_set(
        self, conn: Connection, versions: Mapping[tuple[str, str], int | None]
    ) -> list[str]:
        """Set each (payer, operator)'s version to version + 1 (insert version 1 where the
        caller saw no row) if it is still `version`; returns the payers where it was not.
        Rows are taken in key order (no deadlock between two intakes). PostgreSQL: one
        statement for all of them (a round trip per payer would dominate a group)."""
        new = sorted(k for k, v in versions.items() if v is None)
        old = sorted((k, v) for k, v in versions.items() if v is not None)
        done: set[str] = set()
        if self.dialect == "postgresql":
            if old:
                done.update(
                    row[0]
                    for row in conn.execute(
                        text(
                            "UPDATE payers AS p SET version = p.version + 1 FROM (SELECT "
                            "unnest(CAST(:payers AS text[])) AS payer, "
                            "unnest(CAST(:operators AS text[])) AS operator, "
                            "unnest(CAST(:versions AS bigint[])) AS version) AS v "
                            "WHERE p.payer = v.payer AND p.operator = v.operator "
                            "AND p.version = v.version RETURNING p.payer"
                        ),
                        {
                            "payers": [p for (p, _), _ in old],
                            "operators": [o for (_, o), _ in old],
                            "versions": [v for _, v in old],
                        },
                    )
                )
            if new:
                done.update(
                    row[0]
                    for row in conn.execute(
                        text(
                            "INSERT INTO payers (payer, operator, version) SELECT "
                            "unnest(CAST(:payers AS text[])), unnest(CAST(:operators AS text[])),"
                            " 1 ORDER BY 1 ON CONFLICT DO NOTHING RETURNING payer"
                        ),
                        {"payers": [p for p, _ in new], "operators": [o for _, o in new]},
                    )
                )
        else:
            # SQLite: executemany counts the rows it changed; only on a shortfall find which.
            cas = (
                "UPDATE payers SET version = version + 1 WHERE payer=? AND operator=? AND version=?"
            )
            rows = [(p, o, v) for (p, o), v in old]
            if rows and conn.exec_driver_sql(cas, rows).rowcount == len(rows):
                done.update(p for p, _, _ in rows)
            elif rows:  # nothing was changed above unless every row matched: roll back
                raise StaleStateError(
                    [p for p, o, v in rows if not self._version_is(conn, p, o, v + 1)]
                    or [p for p, _, _ in rows]
                )
            for payer, operator in new:
                if conn.exec_driver_sql(
                    "INSERT INTO payers (payer, operator, version) VALUES (?, ?, 1) "
                    "ON CONFLICT DO NOTHING",
                    (payer, operator),
                ).rowcount:
                    done.add(payer)
        return sorted({p for p, _ in versions} - done)

    @staticmethod
    def _version_is(conn: Connection, payer: str, operator: str, version: int) -> bool:
        row = conn.exec_driver_sql(
            "SELECT version FROM payers WHERE payer=? AND operator=?", (payer, operator)
        ).first()
        return row is not None and int(row[0]) == version

    def stored_receipt(self, receipt: SignedReceipt) -> tuple[AdmittedReceipt, str] | None:
        """The stored receipt for this receipt's channel and nonce, with its state."""
        rows = self._query(
            f"SELECT {_RECEIPT_COLUMNS}, state FROM receipts WHERE payer=:payer AND "
            "operator=:operator AND model_id=:model AND nonce=:nonce",
            {
                "payer": receipt.payer,
                "operator": receipt.operator,
                "model": receipt.model_id,
                "nonce": receipt.nonce,
            },
        )
        return (_admitted(rows[0][:-1]), str(rows[0][-1])) if rows else None

    # -- reading -----------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Receipts per state, receipts, batches and channels in all. Reads the receipts that
        are not settled and the batches table, not the whole history."""
        out = {s: 0 for s in (ADMITTED, HELD, *BATCH_STATES)}
        with self._reading(snapshot=True) as conn:
            for state, n in conn.execute(
                text(
                    "SELECT state, COUNT(*) FROM receipts WHERE state IN "
                    "(:a, :h, :b, :p, :s) GROUP BY state"
                ),
                dict(zip("ahbps", UNSETTLED_STATES, strict=True)),
            ):
                out[str(state)] = int(n)
            for state, receipts in conn.execute(
                text("SELECT state, SUM(receipt_count) FROM batches GROUP BY state")
            ):
                if state in (SETTLED, FAILED):
                    out[str(state)] = int(receipts)
            out["batches"] = int(conn.execute(text("SELECT COUNT(*) FROM batches")).scalar_one())
            out["channels"] = int(conn.execute(text("SELECT COUNT(*) FROM channels")).scalar_one())
        out["receipts"] = sum(out[s] for s in (ADMITTED, HELD, *BATCH_STATES))
        return out

    def admitted_count(self) -> int:
        return int(
            self._query("SELECT COUNT(*) FROM receipts WHERE state=:s", {"s": ADMITTED})[0][0]
        )

    def snapshot(self) -> list[tuple[Any, ...]]:
        """Every stored row of every table (tests compare it before/after a refusal)."""
        with self._reading(snapshot=True) as conn:
            return [
                tuple(row)
                for sql in (
                    "SELECT * FROM receipts ORDER BY id",
                    "SELECT * FROM batches ORDER BY seq",
                    "SELECT * FROM channels ORDER BY payer, operator, model_id",
                    "SELECT * FROM payers ORDER BY payer, operator",
                )
                for row in conn.execute(text(sql))
            ]

    def receipt_state(self, payer: str, operator: str, model_id: int, nonce: int) -> str | None:
        rows = self._query(
            "SELECT state FROM receipts WHERE payer=:payer AND operator=:operator AND "
            "model_id=:model AND nonce=:nonce",
            {"payer": payer, "operator": operator, "model": model_id, "nonce": nonce},
        )
        return str(rows[0][0]) if rows else None

    def oldest_admitted_at(self) -> float | None:
        rows = self._query("SELECT MIN(admitted_at) FROM receipts WHERE state=:s", {"s": ADMITTED})
        return float(rows[0][0]) if rows and rows[0][0] is not None else None

    def batch_receipts(self, seq: int) -> list[AdmittedReceipt]:
        """Batch `seq`'s receipts in (payer, model, nonce) order."""
        rows = self._query(
            f"SELECT {_RECEIPT_COLUMNS} FROM receipts WHERE batch_seq=:seq "
            "ORDER BY payer, model_id, nonce",
            {"seq": seq},
        )
        return [_admitted(row) for row in rows]

    def batch(self, seq: int) -> Batch | None:
        rows = self._query(f"SELECT {_BATCH_COLUMNS} FROM batches WHERE seq=:seq", {"seq": seq})
        return _batch(rows[0]) if rows else None

    def batches(self, states: Sequence[str] = BATCH_STATES) -> list[Batch]:
        marks = ", ".join(f":s{i}" for i in range(len(states)))
        rows = self._query(
            f"SELECT {_BATCH_COLUMNS} FROM batches WHERE state IN ({marks}) ORDER BY seq",
            {f"s{i}": s for i, s in enumerate(states)},
        )
        return [_batch(row) for row in rows]

    def last_batch_seq(self) -> int | None:
        rows = self._query("SELECT MAX(seq) FROM batches")
        return int(rows[0][0]) if rows[0][0] is not None else None

    def unsettled_signers(self, payer: str) -> list[str]:
        """The distinct keys that signed `payer`'s receipts not yet settled or failed."""
        rows = self._query(
            "SELECT DISTINCT signer FROM receipts WHERE payer=:payer AND "
            "state NOT IN (:settled, :failed)",
            {"payer": payer, "settled": SETTLED, "failed": FAILED},
        )
        return [str(s) for (s,) in rows]

    def held_payers(self) -> list[str]:
        rows = self._query("SELECT DISTINCT payer FROM receipts WHERE state=:s", {"s": HELD})
        return [str(p) for (p,) in rows]

    # -- the batcher's transitions (fenced by `epoch`) -----------------------------------------

    def cut_batch(self, seq: int, k: int, max_rows: int, epoch: int | None = None) -> Batch | None:
        """Move up to `max_rows` of the oldest admitted receipts into a new batch `seq`.

        Receipts are taken in admission order, so each channel's part is a prefix of its
        admitted nonces: consecutive, starting right after what earlier batches hold (a
        channel's next nonce commits only after its previous one). Payers with held receipts
        are skipped entirely (their next nonces are held)."""
        with self._transaction() as conn:
            self._check_epoch(conn, epoch)
            if conn.execute(text("SELECT 1 FROM batches WHERE seq=:seq"), {"seq": seq}).first():
                raise StoreError(f"batch {seq} already exists")
            # One statement, run inside the database: the write lock is held for as long as
            # the database needs to move the rows (intake waits for it), not for a round of
            # Python per row.
            moved = conn.execute(
                text(
                    "UPDATE receipts SET state=:batched, batch_seq=:seq WHERE id IN "
                    "(SELECT id FROM receipts WHERE state=:admitted AND payer NOT IN "
                    "(SELECT payer FROM receipts WHERE state=:held) ORDER BY id LIMIT :n)"
                ),
                {"batched": BATCHED, "seq": seq, "admitted": ADMITTED, "held": HELD, "n": max_rows},
            ).rowcount
            if not moved:
                return None
            conn.execute(
                text(
                    "INSERT INTO batches (seq, state, log_size, receipt_count, created_at) "
                    "VALUES (:seq, :state, :k, :n, :now)"
                ),
                {"seq": seq, "state": BATCHED, "k": k, "n": moved, "now": time.time()},
            )
        return self.batch(seq)

    def _move(
        self, seq: int, from_states: Sequence[str], to: str, epoch: int | None, **fields: Any
    ) -> None:
        with self._transaction() as conn:
            self._check_epoch(conn, epoch)
            row = conn.execute(
                text("SELECT state FROM batches WHERE seq=:seq"), {"seq": seq}
            ).first()
            if row is None or row[0] not in from_states:
                raise StoreError(
                    f"batch {seq} is {row[0] if row else 'missing'}, cannot become {to}"
                )
            sets = "".join(f", {k}=:{k}" for k in fields)
            conn.execute(
                text(f"UPDATE batches SET state=:to{sets} WHERE seq=:seq"),
                {"to": to, "seq": seq, **fields},
            )
            conn.execute(
                text("UPDATE receipts SET state=:to WHERE batch_seq=:seq"), {"to": to, "seq": seq}
            )

    def mark_submitted(self, seq: int, tx_hash: str, epoch: int | None = None) -> None:
        self._move(
            seq, (PROVEN, SUBMITTED), SUBMITTED, epoch, tx_hash=tx_hash, submitted_at=time.time()
        )

    def mark_unsubmitted(self, seq: int, epoch: int | None = None) -> None:
        """A submitted batch whose transaction the node lost or refused for its sequence
        number goes back to proven, to be submitted again after the chain is checked."""
        self._move(seq, (SUBMITTED,), PROVEN, epoch, tx_hash=None)

    def mark_settled(
        self, seq: int, tx_hash: str | None, gas_used: int | None, epoch: int | None = None
    ) -> None:
        self._move(
            seq,
            (PROVEN, SUBMITTED),
            SETTLED,
            epoch,
            tx_hash=tx_hash,
            gas_used=gas_used,
            settled_at=time.time(),
        )

    def mark_failed(self, seq: int, error: str, epoch: int | None = None) -> None:
        """A batch the chain refuses for good (e.g. an escrow emptied by a rate change): its
        receipts stop counting as unsettled; the operator must investigate (logged)."""
        self._move(seq, (BATCHED, PROVEN, SUBMITTED), FAILED, epoch, error=error)

    def set_proof_path(self, seq: int, path: Path) -> None:
        with self._transaction() as conn:
            conn.execute(
                text("UPDATE batches SET proof_path=:path WHERE seq=:seq"),
                {"path": str(path), "seq": seq},
            )

    def _bump_payers(self, conn: Connection, payers: Sequence[str]) -> None:
        """Increment the version of every (payer, any operator) row of `payers`: intake
        processes caching them re-read before their next admission for them."""
        if payers:
            conn.execute(
                text("UPDATE payers SET version = version + 1 WHERE payer=:payer"),
                [{"payer": p} for p in sorted(set(payers))],
            )

    def requeue_from(self, seq: int, hold_payers: Sequence[str], epoch: int | None = None) -> int:
        """Dissolve batch `seq` and every later batch (none may be submitted or settled): their
        receipts go back to admitted, and every unbatched receipt of `hold_payers` is held
        until `release_held`. Returns how many receipts were requeued. One transaction.

        Used when the chain refuses batch `seq` for a payer's sake (escrow short, operator not
        authorised): the other payers' receipts are batched again under the same sequence
        number, the payer's wait; nonces stay consecutive per channel."""
        with self._transaction() as conn:
            self._check_epoch(conn, epoch)
            rows = conn.execute(
                text("SELECT seq, state FROM batches WHERE seq >= :seq"), {"seq": seq}
            ).all()
            stuck = [
                (int(q), st) for q, st in rows if st == SETTLED or (st == SUBMITTED and q != seq)
            ]
            if stuck:
                raise StoreError(f"cannot requeue from batch {seq}: {stuck} already sent")
            moved = 0
            for q, _ in rows:
                moved += conn.execute(
                    text("UPDATE receipts SET state=:s, batch_seq=NULL WHERE batch_seq=:q"),
                    {"s": ADMITTED, "q": int(q)},
                ).rowcount
                conn.execute(text("DELETE FROM batches WHERE seq=:q"), {"q": int(q)})
            if hold_payers:
                conn.execute(
                    text("UPDATE receipts SET state=:held WHERE payer=:payer AND state=:admitted"),
                    [{"held": HELD, "payer": p, "admitted": ADMITTED} for p in hold_payers],
                )
            self._bump_payers(conn, hold_payers)
        return moved

    def release_held(self, payer: str, epoch: int | None = None) -> int:
        """Held receipts of `payer` become admitted again (to be batched in nonce order)."""
        with self._transaction() as conn:
            self._check_epoch(conn, epoch)
            count = conn.execute(
                text("UPDATE receipts SET state=:admitted WHERE payer=:payer AND state=:held"),
                {"admitted": ADMITTED, "payer": payer, "held": HELD},
            ).rowcount
            self._bump_payers(conn, [payer])
        return int(count)

    # -- leadership ----------------------------------------------------------------------------

    def take_leadership(self, holder: str) -> int:
        """Record `holder` as the batcher and return its new epoch. Call only while holding the
        batcher's lock (operator_service.leader): the epoch fences the previous holder."""
        with self._transaction() as conn:
            row = conn.execute(
                text(
                    f"UPDATE leadership SET epoch = epoch + 1, holder=:holder, since={self._now()} "
                    "WHERE name=:name RETURNING epoch"
                ),
                {"holder": holder, "name": BATCHER, "now": time.time()},
            ).first()
        if row is None:
            raise StoreError("the leadership table has no batcher row")
        return int(row[0])

    def leadership(self) -> tuple[int, str | None]:
        """The batcher's current (epoch, holder)."""
        rows = self._query(
            "SELECT epoch, holder FROM leadership WHERE name=:name", {"name": BATCHER}
        )
        return int(rows[0][0]), rows[0][1]

    # -- proving claims ------------------------------------------------------------------------

    def claim_batch(self, worker: str, lease: float) -> Batch | None:
        """Claim the oldest batched batch nobody holds a live claim on, for `lease` seconds;
        None if there is none. PostgreSQL: `FOR UPDATE SKIP LOCKED`, so workers never wait
        for one another; SQLite: writers are serialised."""
        skip = " FOR UPDATE SKIP LOCKED" if self.dialect == "postgresql" else ""
        now = self._now()
        with self._transaction() as conn:
            row = conn.execute(
                text(
                    f"UPDATE batches SET claimed_by=:worker, claim_expires={now} + :lease "
                    "WHERE seq = (SELECT seq FROM batches WHERE state=:batched AND "
                    f"(claim_expires IS NULL OR claim_expires < {now}) ORDER BY seq LIMIT 1{skip})"
                    " RETURNING seq"
                ),
                {"worker": worker, "lease": lease, "batched": BATCHED, "now": time.time()},
            ).first()
        return None if row is None else self.batch(int(row[0]))

    def renew_claim(self, seq: int, worker: str, lease: float) -> bool:
        """Extend `worker`'s claim on batch `seq`; False if it no longer holds it."""
        with self._transaction() as conn:
            done = conn.execute(
                text(
                    f"UPDATE batches SET claim_expires={self._now()} + :lease WHERE seq=:seq "
                    "AND claimed_by=:worker AND state=:batched"
                ),
                {
                    "lease": lease,
                    "seq": seq,
                    "worker": worker,
                    "batched": BATCHED,
                    "now": time.time(),
                },
            ).rowcount
        return done == 1

    def release_claim(self, seq: int, worker: str) -> None:
        """Give a claim up (the worker failed): another worker may claim the batch at once."""
        with self._transaction() as conn:
            conn.execute(
                text(
                    "UPDATE batches SET claimed_by=NULL, claim_expires=NULL "
                    "WHERE seq=:seq AND claimed_by=:worker"
                ),
                {"seq": seq, "worker": worker},
            )

    def mark_proven(
        self,
        seq: int,
        public: PublicInputs,
        proof: bytes,
        blinding: dict[str, list[int]],
        proof_path: Path | None,
        worker: str | None = None,
    ) -> None:
        """Store batch `seq`'s verified proof. With `worker`, only while it holds the claim
        (a worker whose claim expired and was taken over writes nothing: StoreError)."""
        with self._transaction() as conn:
            row = conn.execute(
                text("SELECT state, claimed_by FROM batches WHERE seq=:seq"), {"seq": seq}
            ).first()
            if row is None or row[0] != BATCHED:
                raise StoreError(
                    f"batch {seq} is {row[0] if row else 'missing'}, cannot become {PROVEN}"
                )
            if worker is not None and row[1] != worker:
                raise StoreError(f"batch {seq} is claimed by {row[1]}, not {worker}")
            conn.execute(
                text(
                    "UPDATE batches SET state=:to, public_json=:public, proof=:proof, "
                    "blinding_json=:blinding, proof_path=:path, proven_at=:now, "
                    "claimed_by=NULL, claim_expires=NULL WHERE seq=:seq"
                ),
                {
                    "to": PROVEN,
                    "public": json.dumps(public.to_json()),
                    "proof": proof,
                    "blinding": json.dumps({k: [str(v) for v in vs] for k, vs in blinding.items()}),
                    "path": None if proof_path is None else str(proof_path),
                    "now": time.time(),
                    "seq": seq,
                },
            )
            conn.execute(
                text("UPDATE receipts SET state=:to WHERE batch_seq=:seq"),
                {"to": PROVEN, "seq": seq},
            )


def blinding_from_json(text_: str) -> dict[str, list[int]]:
    return {k: [int(v) for v in vs] for k, vs in json.loads(text_).items()}


__all__ = [
    "ADMITTED",
    "BATCHED",
    "BATCHER",
    "BATCH_STATES",
    "FAILED",
    "HELD",
    "PROVEN",
    "SCHEMA_VERSION",
    "SETTLED",
    "SUBMITTED",
    "UNSETTLED_STATES",
    "AdmissionWrite",
    "Batch",
    "NotLeaderError",
    "PayerSnapshot",
    "ReceiptStore",
    "StaleStateError",
    "StoreError",
    "StoreUnavailableError",
    "blinding_from_json",
    "engine_url",
    "make_engine",
    "migrate",
    "redact",
    "sqlite_path",
]
