"""The operator's durable store: receipts, batches and channel cursors in SQLite.

Receipts move admitted -> batched -> proven -> submitted -> settled, together with their
batch. Every transition is one SQLite transaction (WAL journal, `synchronous=FULL`), so a
crash at any point leaves either the state before or the state after it. The chain stays
the truth about settlement: on restart the daemon re-proves batched batches, submits proven
ones, and checks submitted ones against `nextBatchSeq` and `BatchSettled`
(operator_service.pipeline).

Tables:
- receipts(payer, operator, model_id, nonce) unique: the signed channel state
  (cumulative_tokens, max_rate_per_k_tokens, request_hash, signature), the call's tokens
  (derived at admission), the signer, state and batch_seq;
- batches(seq) with state, log_size, public inputs and proof (JSON), proof file path,
  blinding factors, tx hash, gas used and timestamps;
- channels(payer, operator, model_id) -> last admitted nonce and cumulative tokens (the
  position admission continues from);
- meta: the schema version (a database of another version is refused, not reinterpreted).
Integers that may exceed SQLite's 64-bit INTEGER (cumulative tokens, rate caps) are stored as
decimal TEXT.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from channels.receipts import SignedReceipt
from circuits.public_inputs import PublicInputs
from contracts.client import ChannelState
from operator_service.admission import Admission, AdmittedReceipt

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

#: Version 2: receipts are channel states (cumulative tokens, rate cap); version 1 (per-call
#: token receipts) is not compatible.
SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS receipts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    payer TEXT NOT NULL,
    operator TEXT NOT NULL,
    model_id INTEGER NOT NULL,
    nonce INTEGER NOT NULL,
    cumulative_tokens TEXT NOT NULL,
    max_rate_per_k_tokens TEXT NOT NULL,
    tokens INTEGER NOT NULL,
    request_hash BLOB NOT NULL,
    signature BLOB NOT NULL,
    signer TEXT NOT NULL,
    state TEXT NOT NULL,
    batch_seq INTEGER,
    admitted_at REAL NOT NULL,
    UNIQUE (payer, operator, model_id, nonce)
);
CREATE INDEX IF NOT EXISTS receipts_state ON receipts (state, id);
CREATE INDEX IF NOT EXISTS receipts_batch ON receipts (batch_seq);
CREATE TABLE IF NOT EXISTS batches (
    seq INTEGER PRIMARY KEY,
    state TEXT NOT NULL,
    log_size INTEGER NOT NULL,
    receipt_count INTEGER NOT NULL,
    public_json TEXT,
    proof BLOB,
    blinding_json TEXT,
    proof_path TEXT,
    tx_hash TEXT,
    gas_used INTEGER,
    error TEXT,
    created_at REAL NOT NULL,
    proven_at REAL,
    submitted_at REAL,
    settled_at REAL
);
CREATE TABLE IF NOT EXISTS channels (
    payer TEXT NOT NULL,
    operator TEXT NOT NULL,
    model_id INTEGER NOT NULL,
    last_admitted INTEGER NOT NULL,
    last_cumulative TEXT NOT NULL,
    PRIMARY KEY (payer, operator, model_id)
);
"""

_RECEIPT_COLUMNS = (
    "payer, operator, model_id, nonce, cumulative_tokens, max_rate_per_k_tokens, request_hash, "
    "signature, tokens, signer"
)


def _admitted(row: Sequence[Any]) -> AdmittedReceipt:
    """An AdmittedReceipt from a row of `_RECEIPT_COLUMNS`."""
    p, o, m, n, c, r, h, sig, t, signer = row
    receipt = SignedReceipt(p, o, int(m), int(n), int(c), int(r), bytes(h), bytes(sig))
    return AdmittedReceipt(receipt, int(t), str(signer))


class StoreError(RuntimeError):
    """The store cannot be opened or a transition is not allowed from the current state."""


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


def sqlite_path(url: str) -> str:
    """The file path of a `sqlite:///path` URL (`sqlite:///:memory:` for a private memory db)."""
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        scheme = url.split(":", 1)[0] if ":" in url else url
        raise StoreError(
            f"unsupported database URL {url!r} (scheme {scheme!r}): "
            "only sqlite:///PATH is supported"
        )
    path = url[len(prefix) :]
    if not path:
        raise StoreError(f"database URL {url!r} names no file")
    return path


class ReceiptStore:
    """The operator's receipts and batches; thread-safe (one connection behind a lock)."""

    def __init__(self, url: str) -> None:
        path = sqlite_path(url)
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._check_schema_version(url)
        self._db.executescript(_SCHEMA)
        self._db.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
            (str(SCHEMA_VERSION),),
        )
        self._lock = threading.RLock()

    def _check_schema_version(self, url: str) -> None:
        tables = {
            r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        if not tables:
            return
        version = None
        if "meta" in tables:
            row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            version = None if row is None else int(row[0])
        if version != SCHEMA_VERSION:
            self._db.close()
            raise StoreError(
                f"{url} holds an operator database of schema version {version or 1}; this "
                f"zkmeter uses version {SCHEMA_VERSION} (receipts are channel states): settle "
                "what it holds with the zkmeter that wrote it, then start a new database"
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return list(self._db.execute(sql, args).fetchall())

    # -- admission (PendingView) ----------------------------------------------------------

    def last_admitted(self, payer: str, operator: str, model_id: int) -> ChannelState | None:
        rows = self._query(
            "SELECT last_admitted, last_cumulative FROM channels "
            "WHERE payer=? AND operator=? AND model_id=?",
            (payer, operator, model_id),
        )
        return ChannelState(int(rows[0][0]), int(rows[0][1])) if rows else None

    def unsettled_usage(self, payer: str) -> Mapping[int, int]:
        rows = self._query(
            "SELECT model_id, SUM(tokens) FROM receipts WHERE payer=? AND state NOT IN (?, ?) "
            "GROUP BY model_id",
            (payer, SETTLED, FAILED),
        )
        return {int(m): int(t) for m, t in rows}

    def admit(self, receipt: SignedReceipt, admission: Admission) -> str:
        """Check `receipt` (raising the rule's ReceiptError, writing nothing) and store it as
        admitted (held, if the payer has held receipts), advancing its channel's position, in
        one transaction. Returns its state. A receipt already stored, byte for byte, is not
        admitted twice: its current state is returned (a payer may resend after a timeout)."""
        with self._lock:
            stored = self._stored_state(receipt)
            if stored is not None:
                return stored
            admitted = admission.check(receipt)
            with self._transaction() as db:
                held = db.execute(
                    "SELECT 1 FROM receipts WHERE payer=? AND state=? LIMIT 1",
                    (receipt.payer, HELD),
                ).fetchone()
                state = HELD if held else ADMITTED
                db.execute(
                    f"INSERT INTO receipts ({_RECEIPT_COLUMNS}, state, admitted_at) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        receipt.payer,
                        receipt.operator,
                        receipt.model_id,
                        receipt.nonce,
                        str(receipt.cumulative_tokens),
                        str(receipt.max_rate_per_k_tokens),
                        receipt.request_hash,
                        receipt.signature,
                        admitted.tokens,
                        admitted.signer,
                        state,
                        time.time(),
                    ),
                )
                db.execute(
                    "INSERT INTO channels (payer, operator, model_id, last_admitted, "
                    "last_cumulative) VALUES (?,?,?,?,?) "
                    "ON CONFLICT (payer, operator, model_id) DO UPDATE SET "
                    "last_admitted=excluded.last_admitted, "
                    "last_cumulative=excluded.last_cumulative",
                    (
                        receipt.payer,
                        receipt.operator,
                        receipt.model_id,
                        receipt.nonce,
                        str(receipt.cumulative_tokens),
                    ),
                )
        return state

    def _stored_state(self, receipt: SignedReceipt) -> str | None:
        """The state of this exact receipt if it is stored already, else None."""
        rows = self._query(
            f"SELECT {_RECEIPT_COLUMNS}, state FROM receipts "
            "WHERE payer=? AND operator=? AND model_id=? AND nonce=?",
            (receipt.payer, receipt.operator, receipt.model_id, receipt.nonce),
        )
        if rows and _admitted(rows[0][:-1]).receipt == receipt:
            return str(rows[0][-1])
        return None

    # -- reading --------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Row counts per table and receipts per state (for tests and metrics)."""
        out = {s: 0 for s in (ADMITTED, HELD, *BATCH_STATES)}
        for state, n in self._query("SELECT state, COUNT(*) FROM receipts GROUP BY state"):
            out[str(state)] = int(n)
        out["receipts"] = int(self._query("SELECT COUNT(*) FROM receipts")[0][0])
        out["batches"] = int(self._query("SELECT COUNT(*) FROM batches")[0][0])
        out["channels"] = int(self._query("SELECT COUNT(*) FROM channels")[0][0])
        return out

    def snapshot(self) -> list[tuple[Any, ...]]:
        """Every stored row of every table (tests compare it before/after a refusal)."""
        return (
            self._query("SELECT * FROM receipts ORDER BY id")
            + self._query("SELECT * FROM batches ORDER BY seq")
            + self._query("SELECT * FROM channels ORDER BY payer, operator, model_id")
        )

    def receipt_state(self, payer: str, operator: str, model_id: int, nonce: int) -> str | None:
        rows = self._query(
            "SELECT state FROM receipts WHERE payer=? AND operator=? AND model_id=? AND nonce=?",
            (payer, operator, model_id, nonce),
        )
        return str(rows[0][0]) if rows else None

    def oldest_admitted_at(self) -> float | None:
        rows = self._query("SELECT MIN(admitted_at) FROM receipts WHERE state=?", (ADMITTED,))
        return float(rows[0][0]) if rows and rows[0][0] is not None else None

    def batch_receipts(self, seq: int) -> list[AdmittedReceipt]:
        """Batch `seq`'s receipts in (payer, model, nonce) order."""
        rows = self._query(
            f"SELECT {_RECEIPT_COLUMNS} FROM receipts WHERE batch_seq=? "
            "ORDER BY payer, model_id, nonce",
            (seq,),
        )
        return [_admitted(row) for row in rows]

    def batch(self, seq: int) -> Batch | None:
        rows = self._query(
            "SELECT seq, state, log_size, receipt_count, public_json, proof, blinding_json, "
            "proof_path, tx_hash, gas_used, error FROM batches WHERE seq=?",
            (seq,),
        )
        if not rows:
            return None
        seq_, state, k, count, public, proof, blinding, path, tx, gas, error = rows[0]
        return Batch(
            int(seq_),
            str(state),
            int(k),
            int(count),
            None if public is None else PublicInputs.from_json(json.loads(public)),
            None if proof is None else bytes(proof),
            blinding,
            path,
            tx,
            gas,
            error,
        )

    def batches(self, states: Sequence[str] = BATCH_STATES) -> list[Batch]:
        marks = ",".join("?" * len(states))
        seqs = self._query(f"SELECT seq FROM batches WHERE state IN ({marks}) ORDER BY seq", states)
        return [b for (s,) in seqs if (b := self.batch(int(s))) is not None]

    def last_batch_seq(self) -> int | None:
        rows = self._query("SELECT MAX(seq) FROM batches")
        return int(rows[0][0]) if rows[0][0] is not None else None

    # -- transitions ----------------------------------------------------------------------

    def cut_batch(self, seq: int, k: int, max_rows: int) -> Batch | None:
        """Move up to `max_rows` of the oldest admitted receipts into a new batch `seq`.

        Receipts are taken in admission order, so each channel's part is a prefix of its
        admitted nonces: consecutive, starting right after what earlier batches hold. Payers
        with held receipts are skipped entirely (their next nonces are held)."""
        with self._transaction() as db:
            ids = [
                int(i)
                for (i,) in db.execute(
                    "SELECT id FROM receipts WHERE state=? AND payer NOT IN "
                    "(SELECT payer FROM receipts WHERE state=?) ORDER BY id LIMIT ?",
                    (ADMITTED, HELD, max_rows),
                ).fetchall()
            ]
            if not ids:
                return None
            if db.execute("SELECT 1 FROM batches WHERE seq=?", (seq,)).fetchall():
                raise StoreError(f"batch {seq} already exists")
            db.execute(
                "INSERT INTO batches (seq, state, log_size, receipt_count, created_at) "
                "VALUES (?,?,?,?,?)",
                (seq, BATCHED, k, len(ids), time.time()),
            )
            db.executemany(
                "UPDATE receipts SET state=?, batch_seq=? WHERE id=?",
                [(BATCHED, seq, i) for i in ids],
            )
        return self.batch(seq)

    def _move(self, seq: int, from_states: Sequence[str], to: str, **fields: Any) -> None:
        with self._transaction() as db:
            row = db.execute("SELECT state FROM batches WHERE seq=?", (seq,)).fetchone()
            if row is None or row[0] not in from_states:
                raise StoreError(
                    f"batch {seq} is {row[0] if row else 'missing'}, cannot become {to}"
                )
            sets = ", ".join(f"{k}=?" for k in fields)
            db.execute(
                f"UPDATE batches SET state=?{', ' + sets if sets else ''} WHERE seq=?",
                (to, *fields.values(), seq),
            )
            db.execute("UPDATE receipts SET state=? WHERE batch_seq=?", (to, seq))

    def mark_proven(
        self,
        seq: int,
        public: PublicInputs,
        proof: bytes,
        blinding: dict[str, list[int]],
        proof_path: Path | None,
    ) -> None:
        self._move(
            seq,
            (BATCHED,),
            PROVEN,
            public_json=json.dumps(public.to_json()),
            proof=proof,
            blinding_json=json.dumps({k: [str(v) for v in vs] for k, vs in blinding.items()}),
            proof_path=None if proof_path is None else str(proof_path),
            proven_at=time.time(),
        )

    def mark_submitted(self, seq: int, tx_hash: str) -> None:
        self._move(seq, (PROVEN, SUBMITTED), SUBMITTED, tx_hash=tx_hash, submitted_at=time.time())

    def mark_unsubmitted(self, seq: int) -> None:
        """A submitted batch whose transaction the node lost or refused for its sequence
        number goes back to proven, to be submitted again after the chain is checked."""
        self._move(seq, (SUBMITTED,), PROVEN, tx_hash=None)

    def mark_settled(self, seq: int, tx_hash: str | None, gas_used: int | None) -> None:
        self._move(
            seq,
            (PROVEN, SUBMITTED),
            SETTLED,
            tx_hash=tx_hash,
            gas_used=gas_used,
            settled_at=time.time(),
        )

    def requeue_from(self, seq: int, hold_payers: Sequence[str]) -> int:
        """Dissolve batch `seq` and every later batch (none may be submitted or settled): their
        receipts go back to admitted, and every unbatched receipt of `hold_payers` is held
        until `release_held`. Returns how many receipts were requeued. One transaction.

        Used when the chain refuses batch `seq` for a payer's sake (escrow short, operator not
        authorised): the other payers' receipts are batched again under the same sequence
        number, the payer's wait; nonces stay consecutive per channel."""
        with self._transaction() as db:
            rows = db.execute("SELECT seq, state FROM batches WHERE seq >= ?", (seq,)).fetchall()
            stuck = [
                (int(q), st) for q, st in rows if st in (SETTLED,) or (st == SUBMITTED and q != seq)
            ]
            if stuck:
                raise StoreError(f"cannot requeue from batch {seq}: {stuck} already sent")
            seqs = [int(q) for q, _ in rows]
            moved = 0
            for q in seqs:
                moved += db.execute(
                    "UPDATE receipts SET state=?, batch_seq=NULL WHERE batch_seq=?", (ADMITTED, q)
                ).rowcount
                db.execute("DELETE FROM batches WHERE seq=?", (q,))
            db.executemany(
                "UPDATE receipts SET state=? WHERE payer=? AND state=?",
                [(HELD, p, ADMITTED) for p in hold_payers],
            )
        return moved

    def unsettled_signers(self, payer: str) -> list[str]:
        """The distinct keys that signed `payer`'s receipts not yet settled or failed."""
        rows = self._query(
            "SELECT DISTINCT signer FROM receipts WHERE payer=? AND state NOT IN (?, ?)",
            (payer, SETTLED, FAILED),
        )
        return [str(s) for (s,) in rows]

    def held_payers(self) -> list[str]:
        return [
            str(p)
            for (p,) in self._query("SELECT DISTINCT payer FROM receipts WHERE state=?", (HELD,))
        ]

    def release_held(self, payer: str) -> int:
        """Held receipts of `payer` become admitted again (to be batched in nonce order)."""
        with self._transaction() as db:
            return int(
                db.execute(
                    "UPDATE receipts SET state=? WHERE payer=? AND state=?", (ADMITTED, payer, HELD)
                ).rowcount
            )

    def mark_failed(self, seq: int, error: str) -> None:
        """A batch the chain refuses for good (e.g. an escrow emptied by a rate change): its
        receipts stop counting as unsettled; the operator must investigate (logged)."""
        self._move(seq, (BATCHED, PROVEN, SUBMITTED), FAILED, error=error)


def blinding_from_json(text: str) -> dict[str, list[int]]:
    return {k: [int(v) for v in vs] for k, vs in json.loads(text).items()}


__all__ = [
    "ADMITTED",
    "BATCHED",
    "BATCH_STATES",
    "FAILED",
    "HELD",
    "PROVEN",
    "SETTLED",
    "SUBMITTED",
    "Batch",
    "ReceiptStore",
    "StoreError",
    "blinding_from_json",
    "sqlite_path",
]
