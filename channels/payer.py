"""The payer's side of its payment channels: sign each call's receipt as the channel's new state.

A channel (payer, operator, model) is a running pair (nonce, cumulative tokens). Signing a
call of `t` tokens signs the state (nonce + 1, cumulative + t) under the payer's rate cap;
that state must be recorded before the signature leaves the process, or a restart would sign
the same nonce again with another cumulative, forking the channel (an operator holding both
could settle the larger).

- `PayerChannel` keeps the state in memory (tests, load generators, one-shot scripts).
- `ChannelBook` keeps every channel of one payer in a SQLite file: each signature is
  committed together with the state it creates (one transaction, `synchronous=FULL`), so a
  payer process that restarts continues its channels exactly; and a channel is held by one
  process at a time (an exclusive `flock` on a lock file per channel, released by the kernel
  when the process dies), so a second process signing the same channel is refused with
  `ChannelInUseError` instead of silently forking it.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address

from channels.receipts import (
    TOKENS_LIMIT,
    UINT128_LIMIT,
    UINT256_LIMIT,
    ReceiptDomain,
    SignedReceipt,
    UsageReceipt,
    sign_receipt,
)


class PayerError(RuntimeError):
    """A payer-side channel operation cannot be done."""


class ChannelInUseError(PayerError):
    """Another process holds this channel: two signers would fork it."""


@dataclass(frozen=True)
class ChannelKey:
    """One channel of one payer on one settlement contract."""

    chain_id: int
    settlement: str
    payer: str
    operator: str
    model_id: int

    def label(self) -> str:
        return (
            f"chain {self.chain_id}, settlement {self.settlement}, payer {self.payer}, "
            f"operator {self.operator}, model {self.model_id}"
        )


class PayerChannel:
    """One channel's signing state, in memory unless a `ChannelBook` persists it.

    `signer` signs for `payer` (default: the signer itself; else a key the payer authorised
    with `UsageSettlement.authorizeSigner`). `max_rate_per_k_tokens` is the rate cap signed in
    every receipt until changed with `set_max_rate`."""

    def __init__(
        self,
        signer: LocalAccount,
        domain: ReceiptDomain,
        operator: str,
        model_id: int,
        max_rate_per_k_tokens: int,
        *,
        payer: str | None = None,
        nonce: int = 0,
        cumulative_tokens: int = 0,
    ) -> None:
        if not 0 <= max_rate_per_k_tokens < UINT256_LIMIT:
            raise PayerError(f"rate cap {max_rate_per_k_tokens} does not fit a uint256")
        self.signer = signer
        self.domain = domain
        self.key = ChannelKey(
            domain.chain_id,
            to_checksum_address(domain.settlement),
            to_checksum_address(payer or signer.address),
            to_checksum_address(operator),
            model_id,
        )
        self.max_rate_per_k_tokens = max_rate_per_k_tokens
        self.nonce = nonce
        self.cumulative_tokens = cumulative_tokens
        self.last_receipt: SignedReceipt | None = None

    @property
    def next_nonce(self) -> int:
        return self.nonce + 1

    def set_max_rate(self, max_rate_per_k_tokens: int) -> None:
        """Sign later receipts with this cap (an operator refuses caps below the current rate)."""
        if not 0 <= max_rate_per_k_tokens < UINT256_LIMIT:
            raise PayerError(f"rate cap {max_rate_per_k_tokens} does not fit a uint256")
        self.max_rate_per_k_tokens = max_rate_per_k_tokens

    def next_receipt(self, tokens: int, request_hash: bytes) -> SignedReceipt:
        """The signed receipt of a call of `tokens` tokens, without recording it."""
        if not 0 <= tokens < TOKENS_LIMIT:
            raise PayerError(f"a call's tokens must be in [0, 2^32), got {tokens}")
        if len(request_hash) != 32:
            raise PayerError(f"request hash must be 32 bytes, got {len(request_hash)}")
        cumulative = self.cumulative_tokens + tokens
        if cumulative >= UINT128_LIMIT:
            raise PayerError("the channel's cumulative tokens would overflow uint128")
        receipt = UsageReceipt(
            payer=self.key.payer,
            operator=self.key.operator,
            model_id=self.key.model_id,
            nonce=self.nonce + 1,
            cumulative_tokens=cumulative,
            max_rate_per_k_tokens=self.max_rate_per_k_tokens,
            request_hash=request_hash,
        )
        return sign_receipt(self.signer, self.domain, receipt)

    def sign(self, tokens: int, request_hash: bytes) -> SignedReceipt:
        """Sign the call's receipt and advance the channel to its state."""
        receipt = self.next_receipt(tokens, request_hash)
        self._advance(receipt)
        return receipt

    def record(self, receipt: SignedReceipt) -> None:
        """Advance to a receipt made by `next_receipt` (after an operator accepted it)."""
        channel = (self.key.payer, self.key.operator, self.key.model_id)
        if (receipt.nonce, receipt.channel) != (self.next_nonce, channel):
            raise PayerError(f"receipt {receipt.nonce} is not this channel's next state")
        self._advance(receipt)

    def _advance(self, receipt: SignedReceipt) -> None:
        self.nonce = receipt.nonce
        self.cumulative_tokens = receipt.cumulative_tokens
        self.last_receipt = receipt


_SCHEMA = """
CREATE TABLE IF NOT EXISTS channels (
    chain_id INTEGER NOT NULL,
    settlement TEXT NOT NULL,
    payer TEXT NOT NULL,
    operator TEXT NOT NULL,
    model_id INTEGER NOT NULL,
    nonce INTEGER NOT NULL,
    cumulative_tokens TEXT NOT NULL,
    max_rate_per_k_tokens TEXT NOT NULL,
    last_receipt TEXT,
    PRIMARY KEY (chain_id, settlement, payer, operator, model_id)
);
"""


class DurableChannel(PayerChannel):
    """A channel whose every signature is committed with its state before it is returned,
    held exclusively by this process until `close()`."""

    def __init__(self, book: ChannelBook, lock: IO[bytes], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._book = book
        self._lock: IO[bytes] | None = lock

    def set_max_rate(self, max_rate_per_k_tokens: int) -> None:
        super().set_max_rate(max_rate_per_k_tokens)
        self._book._save(self)

    def sign(self, tokens: int, request_hash: bytes) -> SignedReceipt:
        if self._lock is None:
            raise PayerError(f"channel ({self.key.label()}) is closed")
        receipt = self.next_receipt(tokens, request_hash)
        previous = (self.nonce, self.cumulative_tokens, self.last_receipt)
        self._advance(receipt)
        try:
            self._book._save(self)
        except BaseException:
            self.nonce, self.cumulative_tokens, self.last_receipt = previous
            raise
        return receipt

    def close(self) -> None:
        """Release the channel for other processes."""
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None

    def __enter__(self) -> DurableChannel:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class ChannelBook:
    """A payer's channels in one SQLite file (`path`), with lock files beside it."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._locks = self.path.with_name(self.path.name + ".locks")

    def close(self) -> None:
        self._db.close()

    def open(
        self,
        signer: LocalAccount,
        domain: ReceiptDomain,
        operator: str,
        model_id: int,
        max_rate_per_k_tokens: int | None = None,
        *,
        payer: str | None = None,
    ) -> DurableChannel:
        """The channel, continued from its recorded state (or new at nonce 0), held by this
        process. `max_rate_per_k_tokens` sets the cap (required for a new channel).

        Raises ChannelInUseError if another process holds it."""
        key = ChannelKey(
            domain.chain_id,
            to_checksum_address(domain.settlement),
            to_checksum_address(payer or signer.address),
            to_checksum_address(operator),
            model_id,
        )
        lock = self._acquire(key)
        try:
            row = self._db.execute(
                "SELECT nonce, cumulative_tokens, max_rate_per_k_tokens, last_receipt "
                "FROM channels WHERE chain_id=? AND settlement=? AND payer=? AND operator=? "
                "AND model_id=?",
                (key.chain_id, key.settlement, key.payer, key.operator, key.model_id),
            ).fetchone()
            if row is None and max_rate_per_k_tokens is None:
                raise PayerError(f"new channel ({key.label()}) needs a rate cap")
            nonce, cumulative, cap = (
                (0, 0, max_rate_per_k_tokens)
                if row is None
                else (
                    int(row[0]),
                    int(row[1]),
                    int(row[2]) if max_rate_per_k_tokens is None else max_rate_per_k_tokens,
                )
            )
            channel = DurableChannel(
                self,
                lock,
                signer=signer,
                domain=domain,
                operator=operator,
                model_id=model_id,
                max_rate_per_k_tokens=cap,
                payer=key.payer,
                nonce=nonce,
                cumulative_tokens=cumulative,
            )
            if row is not None and row[3] is not None:
                channel.last_receipt = SignedReceipt.from_json(json.loads(row[3]))
            self._save(channel)
        except BaseException:
            fcntl.flock(lock, fcntl.LOCK_UN)
            lock.close()
            raise
        return channel

    def channels(self) -> list[tuple[ChannelKey, int, int]]:
        """Every recorded channel with its nonce and cumulative tokens."""
        rows = self._db.execute(
            "SELECT chain_id, settlement, payer, operator, model_id, nonce, cumulative_tokens "
            "FROM channels ORDER BY chain_id, settlement, payer, operator, model_id"
        ).fetchall()
        return [(ChannelKey(c, s, p, o, int(m)), int(n), int(t)) for c, s, p, o, m, n, t in rows]

    def _acquire(self, key: ChannelKey) -> IO[bytes]:
        self._locks.mkdir(mode=0o700, exist_ok=True)
        name = f"{key.chain_id}-{key.settlement}-{key.payer}-{key.operator}-{key.model_id}.lock"
        handle = open(self._locks / name, "a+b")  # noqa: SIM115 (held until close)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise ChannelInUseError(
                f"channel ({key.label()}) is held by another process; two processes signing "
                "one channel would fork it (close the other one first)"
            ) from None
        return handle

    def _save(self, channel: PayerChannel) -> None:
        k = channel.key
        last = None if channel.last_receipt is None else json.dumps(channel.last_receipt.to_json())
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute(
                "INSERT INTO channels (chain_id, settlement, payer, operator, model_id, nonce, "
                "cumulative_tokens, max_rate_per_k_tokens, last_receipt) "
                "VALUES (?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT (chain_id, settlement, payer, operator, model_id) DO UPDATE SET "
                "nonce=excluded.nonce, cumulative_tokens=excluded.cumulative_tokens, "
                "max_rate_per_k_tokens=excluded.max_rate_per_k_tokens, "
                "last_receipt=excluded.last_receipt",
                (
                    k.chain_id,
                    k.settlement,
                    k.payer,
                    k.operator,
                    k.model_id,
                    channel.nonce,
                    str(channel.cumulative_tokens),
                    str(channel.max_rate_per_k_tokens),
                    last,
                ),
            )
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")


__all__ = [
    "ChannelBook",
    "ChannelInUseError",
    "ChannelKey",
    "DurableChannel",
    "PayerChannel",
    "PayerError",
]
