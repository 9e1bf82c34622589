"""The operator's admission rules for receipts (DESIGN "Receipts", PROTOCOL §11).

The operator admits a receipt only if (each rule its own error class and refusal code):
1. the signature is canonical and recovers the payer or a signer the payer authorised on
   chain with no revocation pending (`BadSignatureError`, `SignerNotAuthorizedError`);
2. the receipt names this operator                              (`WrongOperatorError`);
3. the model exists in the registry                             (`UnknownModelError`);
4. the nonce is the channel's next one: last admitted, else last settled on chain, + 1
   (`NonceReusedError` if at or below it, `NonceGapError` if above);
5. the cumulative continues the channel: this call's tokens = cumulative - previous
   cumulative, in [0, 2^32)     (`CumulativeDecreasedError`, `TokensOutOfRangeError`);
6. the signed rate cap covers the model's current rate          (`RateCapTooLowError`);
7. the (payer, operator) escrow account, net of any withdrawal thawing, covers all the
   payer's unsettled usage with this operator, each model's tokens priced at the highest rate
   that can apply before the next notice period ends: max(current, pending)
   (`CreditExceededError`).
A refusal changes no stored state: the checks run before anything is written.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol, TypeGuard

from eth_utils.address import to_checksum_address

from channels.receipts import (
    TOKENS_LIMIT,
    TOKENS_PER_RATE_UNIT,
    BadSignatureError,
    MalformedReceiptError,
    ReceiptDomain,
    ReceiptError,
    SignedReceipt,
    recover_signer,
)
from contracts.client import AUTHORIZED_FOREVER, ChainClient, ChannelState, ModelInfo

log = logging.getLogger("zkmeter.admission")


class SignerNotAuthorizedError(ReceiptError):
    code = "signer_not_authorized"
    http_status = 403


class WrongOperatorError(ReceiptError):
    code = "wrong_operator"
    http_status = 403


class UnknownModelError(ReceiptError):
    code = "unknown_model"
    http_status = 404


class NonceReusedError(ReceiptError):
    code = "nonce_reused"
    http_status = 409


class NonceGapError(ReceiptError):
    code = "nonce_gap"
    http_status = 409


class CumulativeDecreasedError(ReceiptError):
    code = "cumulative_decreased"
    http_status = 409


class TokensOutOfRangeError(ReceiptError):
    code = "tokens_out_of_range"
    http_status = 422


class RateCapTooLowError(ReceiptError):
    code = "rate_cap_too_low"
    http_status = 422


class CreditExceededError(ReceiptError):
    code = "credit_exceeded"
    http_status = 402


#: Seconds past `escrow_ttl` that a read made while verifying a receipt still serves its
#: channel check (which runs in the group committer, where a chain call would hold up every
#: request of the group).
ESCROW_GRACE = 5.0

#: Every refusal class, in the order of the rules above.
REFUSALS: tuple[type[ReceiptError], ...] = (
    MalformedReceiptError,
    BadSignatureError,
    SignerNotAuthorizedError,
    WrongOperatorError,
    UnknownModelError,
    NonceReusedError,
    NonceGapError,
    CumulativeDecreasedError,
    TokensOutOfRangeError,
    RateCapTooLowError,
    CreditExceededError,
)
REFUSAL_CODES = tuple(c.code for c in REFUSALS)
#: HTTP status per refusal code.
HTTP_STATUS: Mapping[str, int] = {c.code: c.http_status for c in REFUSALS}


class ChainReadNeededError(Exception):
    """`verify(..., cached_only=True)` would have to read the chain (a payer, model or signer
    not cached yet): the caller verifies the receipt again where waiting is allowed. Not a
    refusal."""


class ChainView(Protocol):
    """What admission reads from the chain (the chain client, or `LockedChainView`)."""

    def model_count(self) -> int: ...
    def model(self, model_id: int) -> ModelInfo: ...
    def channel(self, payer: str, operator: str, model_id: int) -> ChannelState: ...
    def available_escrow(self, payer: str, operator: str) -> int: ...
    def signer_authorized_until(self, payer: str, signer: str) -> int: ...


class PendingView(Protocol):
    """What admission reads from the operator's own store: usage not yet settled."""

    def last_admitted(self, payer: str, operator: str, model_id: int) -> ChannelState | None: ...
    def unsettled_usage(self, payer: str) -> Mapping[int, int]: ...


class LockedChainView:
    """The chain client's reads admission needs, serialised with the pipeline's chain use by
    one lock (the embedded chain is not thread-safe)."""

    def __init__(self, client: ChainClient, lock: threading.RLock | None = None) -> None:
        self.client, self.lock = client, lock or threading.RLock()

    def model_count(self) -> int:
        with self.lock:
            return self.client.model_count()

    def model(self, model_id: int) -> ModelInfo:
        with self.lock:
            return self.client.model(model_id)

    def channel(self, payer: str, operator: str, model_id: int) -> ChannelState:
        with self.lock:
            return self.client.channel(payer, operator, model_id)

    def available_escrow(self, payer: str, operator: str) -> int:
        with self.lock:
            return self.client.available_escrow(payer, operator)

    def signer_authorized_until(self, payer: str, signer: str) -> int:
        with self.lock:
            return self.client.signer_authorized_until(payer, signer)


@dataclass(frozen=True)
class AdmittedReceipt:
    """A receipt that passed admission, with what admission derived from it."""

    receipt: SignedReceipt
    tokens: int  # the call's tokens: cumulative minus the previous receipt's cumulative
    signer: str


def usage_cost(tokens_by_model: Mapping[int, int], rate_of: Callable[[int], int]) -> int:
    """Sum over models of tokens * rate // 1000 (the contract's per-channel rounding)."""
    return sum(tokens * rate_of(m) // TOKENS_PER_RATE_UNIT for m, tokens in tokens_by_model.items())


class Admission:
    """The operator's admission checks (rules 1-7 above), reading chain and store; writes nothing.

    `check(receipt)` returns the admitted receipt with its token count, or raises the rule's
    error. It is two halves, which the intake runs apart (operator_service.intake):
    `verify(receipt)` (rules 1-3 and reading what the others need from the chain: no
    channel state, so it runs on many receipts in parallel, before any ordering) and
    `check_channel(receipt, signer, pending)` (rules 4-7, against the channel's position and
    the payer's unsettled usage in `pending`: one receipt after another).

    Model existence is cached (models are never removed); rates, signer authorisations and
    settled channel positions are cached until `refresh()` (the daemon refreshes after every
    settlement and on a timer); escrow reads are reused for `escrow_ttl` seconds.
    """

    def __init__(
        self,
        chain: ChainView,
        pending: PendingView,
        domain: ReceiptDomain,
        operator: str,
        *,
        escrow_ttl: float = 0.0,
    ) -> None:
        self.escrow_ttl = escrow_ttl
        self.chain = chain
        self.pending = pending
        self.domain = domain
        self.operator = to_checksum_address(operator)
        self._model_count = 0
        self._models: dict[int, ModelInfo] = {}
        self._signers: set[tuple[str, str]] = set()
        self._escrow: dict[str, tuple[float, int]] = {}
        self._settled: dict[tuple[str, int], ChannelState] = {}
        self._lock = threading.Lock()
        self._refreshing: set[str] = set()
        self._refresh_queue: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._refresher: threading.Thread | None = None

    def refresh(self) -> None:
        """Forget cached rates, signer authorisations, settled positions and escrow reads."""
        with self._lock:
            self._models.clear()
            self._signers.clear()
            self._escrow.clear()
            self._settled.clear()

    def forget_escrow(self, payer: str) -> None:
        """Read `payer`'s escrow from the chain again next time (its usage was re-read)."""
        with self._lock:
            self._escrow.pop(payer, None)

    def escrow(self, payer: str, grace: float = 0.0) -> int:
        """The (payer, this operator) account net of thawing, read at most every `escrow_ttl` s
        (a read up to `grace` s older is still used: `check_channel` passes ESCROW_GRACE, so
        that the read `verify` made for the receipt serves it without a second chain call).

        It falls only by this operator's settlements (the cache is cleared after each) and by
        withdrawal requests, which thaw; a payer whose escrow turns out short at settlement is
        held by the daemon, never double-charged."""
        now = time.monotonic()
        with self._lock:
            cached = self._escrow.get(payer)
        if self._usable(cached, now, grace):
            return cached[1]
        value = self.chain.available_escrow(payer, self.operator)
        if self.escrow_ttl > 0:
            with self._lock:
                self._escrow[payer] = (now, value)
        return value

    def prefetch_escrow(self, payer: str) -> None:
        """Make `payer`'s escrow ready for `check_channel`: read it now if there is no read
        younger than `escrow_ttl + ESCROW_GRACE`, else, once it is older than `escrow_ttl`,
        have a background thread read it again (requests do not wait for the chain)."""
        now = time.monotonic()
        with self._lock:
            cached = self._escrow.get(payer)
            if self._usable(cached, now, ESCROW_GRACE):
                if now - cached[0] >= self.escrow_ttl and payer not in self._refreshing:
                    self._refreshing.add(payer)
                    self._refresh_queue.put(payer)
                    if self._refresher is None:
                        self._refresher = threading.Thread(
                            target=self._refresh_escrows, name="zkmeter-escrow", daemon=True
                        )
                        self._refresher.start()
                return
        self.escrow(payer)

    def _refresh_escrows(self) -> None:
        while True:
            payer = self._refresh_queue.get()
            started = time.monotonic()
            try:
                value = self.chain.available_escrow(payer, self.operator)
            except Exception:  # the next prefetch reads it, or this thread tries again
                log.warning("escrow refresh failed", extra={"payer": payer}, exc_info=True)
                with self._lock:
                    self._refreshing.discard(payer)
                continue
            with self._lock:
                self._escrow[payer] = (started, value)
                self._refreshing.discard(payer)

    def _model_exists(self, model_id: int) -> bool:
        if 1 <= model_id <= self._model_count:
            return True
        self._model_count = self.chain.model_count()
        return 1 <= model_id <= self._model_count

    def model(self, model_id: int) -> ModelInfo:
        with self._lock:
            info = self._models.get(model_id)
        if info is None:
            info = self.chain.model(model_id)
            with self._lock:
                self._models[model_id] = info
        return info

    def highest_rate(self, model_id: int) -> int:
        """The highest rate settlement may charge for usage admitted now (credit pricing):
        the current rate, or a pending higher one (it applies after the notice period)."""
        return self.model(model_id).highest_rate

    def _check_signer(self, receipt: SignedReceipt, cached_only: bool = False) -> str:
        signer = recover_signer(receipt, self.domain)
        with self._lock:
            known = (receipt.payer, signer) in self._signers
        if signer == receipt.payer or known:
            return signer
        if cached_only:
            raise ChainReadNeededError(f"signer {signer} of payer {receipt.payer}")
        until = self.chain.signer_authorized_until(receipt.payer, signer)
        if until != AUTHORIZED_FOREVER:
            reason = "has not authorised" if until == 0 else "is revoking"
            raise SignerNotAuthorizedError(
                f"signature recovers {signer}, which payer {receipt.payer} {reason} as a signer "
                "in the settlement contract"
            )
        with self._lock:
            self._signers.add((receipt.payer, signer))
        return signer

    def check(self, receipt: SignedReceipt) -> AdmittedReceipt:
        """Every rule, against `self.pending`: the admitted receipt, or the rule's error."""
        return self.check_channel(receipt, self.verify(receipt), self.pending)

    def verify(self, receipt: SignedReceipt, *, cached_only: bool = False) -> str:
        """Rules 1-3 (signature and signer, operator, model); returns the signer. Also reads
        the model's rates and the payer's escrow (if the cached read is older than
        `escrow_ttl`), so that `check_channel` seldom waits for the chain. With
        `cached_only`, raise ChainReadNeededError instead of waiting for any chain read (the
        daemon's event loop verifies this way: it must never wait for the node)."""
        signer = self._check_signer(receipt, cached_only)
        if receipt.operator != self.operator:
            raise WrongOperatorError(
                f"receipt is for operator {receipt.operator}, this operator is {self.operator}"
            )
        if cached_only and not self._is_cached(receipt):
            raise ChainReadNeededError(f"payer {receipt.payer}, model {receipt.model_id}")
        if not self._model_exists(receipt.model_id):
            raise UnknownModelError(f"model {receipt.model_id} is not registered")
        self.model(receipt.model_id)
        if self.escrow_ttl > 0:
            self.prefetch_escrow(receipt.payer)
        return signer

    def _is_cached(self, receipt: SignedReceipt) -> bool:
        """Whether `verify` can pass this receipt's model and escrow without the chain: the
        model is known, and the payer's escrow read is young enough for `prefetch_escrow`
        (a refresh it starts runs in the background)."""
        now = time.monotonic()
        with self._lock:
            if receipt.model_id not in self._models:
                return False
            if self.escrow_ttl <= 0:
                return True
            cached = self._escrow.get(receipt.payer)
        return self._usable(cached, now, ESCROW_GRACE)

    def _usable(
        self, cached: tuple[float, int] | None, now: float, grace: float
    ) -> TypeGuard[tuple[float, int]]:
        """Whether an escrow read `(taken at, value)` may still serve: younger than
        `escrow_ttl + grace` seconds."""
        return cached is not None and now - cached[0] < self.escrow_ttl + grace

    def check_channel(
        self, receipt: SignedReceipt, signer: str, pending: PendingView
    ) -> AdmittedReceipt:
        """Rules 4-7 for a receipt `verify` passed, against the channel's position and the
        payer's unsettled usage in `pending`."""
        channel = f"channel (payer {receipt.payer}, model {receipt.model_id})"
        previous = self.position(receipt.payer, receipt.model_id, pending)
        expected = previous.nonce + 1
        if receipt.nonce < expected:
            raise NonceReusedError(
                f"nonce {receipt.nonce} was already used on {channel}; the next nonce is {expected}"
            )
        if receipt.nonce > expected:
            raise NonceGapError(
                f"nonce {receipt.nonce} skips ahead on {channel}; nonces must be consecutive, "
                f"the next is {expected}"
            )
        tokens = receipt.cumulative_tokens - previous.cumulative_tokens
        if tokens < 0:
            raise CumulativeDecreasedError(
                f"cumulative tokens {receipt.cumulative_tokens} is below the {channel}'s "
                f"{previous.cumulative_tokens} at nonce {previous.nonce}"
            )
        if tokens >= TOKENS_LIMIT:
            raise TokensOutOfRangeError(
                f"this call's tokens ({receipt.cumulative_tokens} - {previous.cumulative_tokens}"
                f" = {tokens}) are not in [0, 2^32)"
            )
        current = self.model(receipt.model_id).current_rate
        if receipt.max_rate_per_k_tokens < current:
            raise RateCapTooLowError(
                f"signed rate cap {receipt.max_rate_per_k_tokens} is below model "
                f"{receipt.model_id}'s current rate {current} (base units per 1,000 tokens)"
            )
        usage = dict(pending.unsettled_usage(receipt.payer))
        usage[receipt.model_id] = usage.get(receipt.model_id, 0) + tokens
        # The contract prices per channel aggregate, rounding down once; the sum of per-channel
        # costs at the highest applicable rate is never below what settlement will charge.
        owed = usage_cost(usage, self.highest_rate)
        escrow = self.escrow(receipt.payer, ESCROW_GRACE if self.escrow_ttl > 0 else 0.0)
        if owed > escrow:
            raise CreditExceededError(
                f"payer {receipt.payer}'s escrow for operator {self.operator} ({escrow} base units "
                f"net of withdrawals) does not cover its unsettled usage with this receipt "
                f"({owed} base units at the highest rate that can apply)"
            )
        return AdmittedReceipt(receipt, tokens, signer)

    def position(
        self, payer: str, model_id: int, pending: PendingView | None = None
    ) -> ChannelState:
        """The channel's last admitted (unsettled) state, else its settled state on chain
        (cached: only this operator's settlements move it, and those follow admissions)."""
        admitted = (pending or self.pending).last_admitted(payer, self.operator, model_id)
        if admitted is not None:
            return admitted
        with self._lock:
            settled = self._settled.get((payer, model_id))
        if settled is None:
            settled = self.chain.channel(payer, self.operator, model_id)
            with self._lock:
                self._settled[(payer, model_id)] = settled
        return settled


__all__ = [
    "HTTP_STATUS",
    "REFUSALS",
    "REFUSAL_CODES",
    "Admission",
    "AdmittedReceipt",
    "ChainView",
    "CreditExceededError",
    "CumulativeDecreasedError",
    "LockedChainView",
    "NonceGapError",
    "NonceReusedError",
    "PendingView",
    "RateCapTooLowError",
    "SignerNotAuthorizedError",
    "TokensOutOfRangeError",
    "UnknownModelError",
    "WrongOperatorError",
    "usage_cost",
]
