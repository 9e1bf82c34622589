"""Fast durable intake: receipts checked against payer state cached in memory, stored many
per transaction (group commit), acknowledged only once that transaction has committed.

A request's receipts go through two stages:
1. `Intake.verify` (any thread, many requests at once): parse, recover the signature on
   libsecp256k1, check the signer, operator and model, and read from the chain what the next
   stage needs (rates, the payer's escrow), all independent of channel state;
2. `Intake.commit` (one thread, `GroupCommitter`): the channel rules in arrival order against
   the `Ledger` (each payer's stored state, cached, plus what this group admits before it),
   then one `ReceiptStore.commit_admissions` transaction for the whole group; only after it
   commits are the requests answered. While one group commits, the next one gathers.

Exact across processes, not by hope: every commit compares and sets the version of each payer
it touches. A process whose cache is stale (another intake admitted for the payer, the
batcher held or released it) loses that race, re-reads the payer and checks the group again;
a refusal that stale state could explain (`nonce_gap`, `credit_exceeded`) re-reads the payer
before it is given. Settlements only lower a payer's unsettled usage, so a cache that has not
seen one errs on the side of refusing, and a refusal re-reads.

A refusal writes nothing; a group whose transaction fails writes nothing and every request in
it gets the error (`StoreUnavailableError`: HTTP 503 with Retry-After).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from channels.receipts import ReceiptError, SignedReceipt
from contracts.client import ChannelState
from operator_service.admission import (
    Admission,
    AdmittedReceipt,
    ChainReadNeededError,
    CreditExceededError,
    NonceGapError,
    NonceReusedError,
)
from operator_service.metrics import Metrics
from operator_service.store import (
    ADMITTED,
    HELD,
    AdmissionWrite,
    PayerSnapshot,
    ReceiptStore,
    StaleStateError,
    StoreUnavailableError,
)

log = logging.getLogger("zkmeter.intake")

#: Attempts at one group when other processes keep changing its payers meanwhile.
MAX_ATTEMPTS = 8
#: Receipts gathered into one transaction at most.
MAX_GROUP_RECEIPTS = 4096


class _StaleGroupError(Exception):
    """A payer turned out stale after this group already admitted for it: check again."""


class Ledger:
    """Admission state per payer: the stored snapshot (cached) and the receipts of the group
    being committed (pending). Implements admission's PendingView. One thread at a time."""

    def __init__(self, store: ReceiptStore, operator: str) -> None:
        self.store = store
        self.operator = operator
        self._base: dict[str, PayerSnapshot] = {}
        self._fresh: set[str] = set()  # payers read during the current attempt
        self._positions: dict[tuple[str, int], ChannelState] = {}
        self._tokens: dict[str, dict[int, int]] = {}
        self._receipts: dict[tuple[str, int, int], tuple[SignedReceipt, str]] = {}

    def snapshot(self, payer: str) -> PayerSnapshot:
        base = self._base.get(payer)
        if base is None:
            base = self.store.load_payer(payer, self.operator)
            self._base[payer] = base
            self._fresh.add(payer)
        return base

    def refresh(self, payer: str) -> bool:
        """Re-read `payer`; True if its version moved (its cached state was stale)."""
        old = self._base.get(payer)
        self._base.pop(payer, None)
        new = self.snapshot(payer)
        return old is None or old.version != new.version

    def is_fresh(self, payer: str) -> bool:
        return payer in self._fresh

    def has_pending(self, payer: str) -> bool:
        return payer in self._tokens

    def forget(self, payers: Sequence[str] | None = None) -> None:
        """Drop cached payers (all, if None): they are read again when next needed."""
        if payers is None:
            self._base.clear()
        else:
            for payer in payers:
                self._base.pop(payer, None)

    # PendingView
    def last_admitted(self, payer: str, operator: str, model_id: int) -> ChannelState | None:
        pending = self._positions.get((payer, model_id))
        if pending is not None:
            return pending
        return self.snapshot(payer).positions.get(model_id)

    def unsettled_usage(self, payer: str) -> Mapping[int, int]:
        usage = dict(self.snapshot(payer).unsettled)
        for model, tokens in self._tokens.get(payer, {}).items():
            usage[model] = usage.get(model, 0) + tokens
        return usage

    def pending_state(self, receipt: SignedReceipt) -> str | None:
        """The state of this exact receipt if this group already admitted it."""
        found = self._receipts.get((receipt.payer, receipt.model_id, receipt.nonce))
        return found[1] if found is not None and found[0] == receipt else None

    def add(self, admitted: AdmittedReceipt, state: str) -> None:
        r = admitted.receipt
        self._positions[(r.payer, r.model_id)] = ChannelState(r.nonce, r.cumulative_tokens)
        tokens = self._tokens.setdefault(r.payer, {})
        tokens[r.model_id] = tokens.get(r.model_id, 0) + admitted.tokens
        self._receipts[(r.payer, r.model_id, r.nonce)] = (r, state)

    def begin(self) -> None:
        """Start an attempt at a group: nothing pending, nothing read yet."""
        self._positions.clear()
        self._tokens.clear()
        self._receipts.clear()
        self._fresh.clear()

    def versions(self) -> dict[tuple[str, str], int | None]:
        """The stored version each payer with pending receipts was checked against."""
        return {(p, self.operator): self._base[p].version for p in self._tokens}

    def committed(self, versions: Mapping[tuple[str, str], int]) -> None:
        """Fold the pending receipts into the cached snapshots (their commit succeeded)."""
        for (payer, _), version in versions.items():
            base = self._base[payer]
            positions = dict(base.positions)
            unsettled = dict(base.unsettled)
            for (p, model), position in self._positions.items():
                if p == payer:
                    positions[model] = position
            for model, tokens in self._tokens[payer].items():
                unsettled[model] = unsettled.get(model, 0) + tokens
            self._base[payer] = PayerSnapshot(payer, version, positions, unsettled, base.held)
        self.begin()


@dataclass
class Verified:
    """A request's receipts after `Intake.verify`: the leading ones that passed, each with its
    signer, and the first failure after them (with its index), if any."""

    receipts: list[tuple[SignedReceipt, str]]
    error: Exception | None = None
    error_index: int | None = None
    received: float = field(default_factory=time.perf_counter)


@dataclass
class Outcome:
    """What became of a request: the states of its leading receipts that are stored (after the
    transaction committed), and the first refusal or failure with its index."""

    states: list[str]
    error: Exception | None = None
    index: int | None = None


class Intake:
    """Admission with a cached ledger and group commit over one store."""

    def __init__(
        self, store: ReceiptStore, admission: Admission, metrics: Metrics | None = None
    ) -> None:
        self.store = store
        self.admission = admission
        self.metrics = metrics or Metrics()
        self.ledger = Ledger(store, admission.operator)
        self._commit_lock = threading.Lock()

    def verify(self, items: Sequence[Any], *, cached_only: bool = False) -> Verified:
        """Parse and verify the leading receipts of `items` (JSON objects) up to the first that
        fails (rules 1-3, or malformed). With `cached_only`, raise ChainReadNeededError rather than
        wait for the chain (`Admission.verify`)."""
        out = Verified([])
        for index, item in enumerate(items):
            try:
                receipt = SignedReceipt.from_json(item, operator=self.admission.operator)
                out.receipts.append(
                    (receipt, self.admission.verify(receipt, cached_only=cached_only))
                )
            except ChainReadNeededError:
                raise
            except Exception as error:
                out.error, out.error_index = error, index
                break
        return out

    def verify_receipts(self, receipts: Sequence[SignedReceipt]) -> Verified:
        """`verify` for parsed receipts."""
        out = Verified([])
        for index, receipt in enumerate(receipts):
            try:
                out.receipts.append((receipt, self.admission.verify(receipt)))
            except Exception as error:
                out.error, out.error_index = error, index
                break
        return out

    def _check(self, receipt: SignedReceipt, signer: str) -> tuple[str, AdmissionWrite | None]:
        """The channel rules for one receipt against the ledger: its state, and the write to
        make (None for a resend of a receipt already stored or pending)."""
        ledger, payer = self.ledger, receipt.payer
        ledger.snapshot(payer)
        try:
            admitted = self.admission.check_channel(receipt, signer, ledger)
        except NonceReusedError:
            state = ledger.pending_state(receipt)
            if state is not None:
                return state, None
            stored = self.store.stored_receipt(receipt)
            if stored is not None and stored[0].receipt == receipt:
                return stored[1], None
            raise
        except (NonceGapError, CreditExceededError):
            if ledger.is_fresh(payer):
                raise
            changed = ledger.refresh(payer)
            self.admission.forget_escrow(payer)
            if changed and ledger.has_pending(payer):
                raise _StaleGroupError from None
            return self._check(receipt, signer)
        state = HELD if ledger.snapshot(payer).held else ADMITTED
        ledger.add(admitted, state)
        return state, AdmissionWrite(admitted, state)

    def commit(self, units: Sequence[Verified]) -> list[Outcome]:
        """Check every unit's receipts in order and store the admitted ones in one transaction.
        Each outcome lists the states of the unit's leading receipts that are stored, and its
        first refusal (a ReceiptError), or a StoreUnavailableError for all units."""
        with self._commit_lock:
            started = time.perf_counter()
            for _attempt in range(MAX_ATTEMPTS):
                self.ledger.begin()
                outcomes: list[Outcome] = []
                writes: list[AdmissionWrite] = []
                try:
                    for unit in units:
                        outcome = Outcome([])
                        for index, (receipt, signer) in enumerate(unit.receipts):
                            try:
                                state, write = self._check(receipt, signer)
                            except ReceiptError as error:
                                outcome.error, outcome.index = error, index
                                break
                            outcome.states.append(state)
                            if write is not None:
                                writes.append(write)
                        if outcome.error is None and unit.error is not None:
                            outcome.error, outcome.index = unit.error, unit.error_index
                        outcomes.append(outcome)
                    versions = self.ledger.versions()
                    if writes:
                        new_versions = self.store.commit_admissions(writes, versions)
                        self.ledger.committed(new_versions)
                    else:
                        self.ledger.begin()
                except _StaleGroupError:
                    self.metrics.inc("zkmeter_intake_retries_total")
                    continue
                except StaleStateError as stale:
                    self.ledger.forget(stale.payers)
                    self.metrics.inc("zkmeter_intake_retries_total")
                    continue
                except StoreUnavailableError as error:
                    self.ledger.forget()  # the commit may or may not have happened
                    self.ledger.begin()
                    return [Outcome([], error, 0) for _ in units]
                except Exception:
                    self.ledger.forget()
                    self.ledger.begin()
                    raise
                self.metrics.observe("zkmeter_commit_seconds", time.perf_counter() - started)
                self.metrics.observe("zkmeter_commit_receipts", len(writes))
                return outcomes
            busy = StoreUnavailableError("payer state keeps changing under other intakes")
            return [Outcome([], busy, 0) for _ in units]

    def admit(self, receipt: SignedReceipt) -> str:
        """Admit one receipt now (a group of one): its state, or the rule's ReceiptError
        (StoreUnavailableError if the store cannot be written)."""
        (outcome,) = self.commit([self.verify_receipts([receipt])])
        if outcome.error is not None:
            raise outcome.error
        return outcome.states[0]


class GroupCommitter:
    """A thread that commits queued requests in groups: it takes every request waiting (up to
    `max_receipts` receipts), commits them in one transaction, answers them, and repeats."""

    def __init__(self, intake: Intake, max_receipts: int = MAX_GROUP_RECEIPTS) -> None:
        self.intake = intake
        self.max_receipts = max_receipts
        self._queue: queue.SimpleQueue[tuple[Verified, Future[Outcome]] | None] = (
            queue.SimpleQueue()
        )
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="zkmeter-commit", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def submit(self, unit: Verified) -> Future[Outcome]:
        future: Future[Outcome] = Future()
        self._queue.put((unit, future))
        return future

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            size = len(first[0].receipts)
            stop = False
            while size < self.max_receipts:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                group.append(more)
                size += len(more[0].receipts)
            self._commit(group)
            if stop:
                return

    def _commit(self, group: list[tuple[Verified, Future[Outcome]]]) -> None:
        try:
            outcomes = self.intake.commit([unit for unit, _ in group])
        except Exception as error:  # a bug or an unexpected database error: answered 500
            log.exception("group commit failed")
            for _, future in group:
                future.set_result(Outcome([], error, 0))
            return
        for (_, future), outcome in zip(group, outcomes, strict=True):
            future.set_result(outcome)


__all__ = [
    "MAX_GROUP_RECEIPTS",
    "GroupCommitter",
    "Intake",
    "Ledger",
    "Outcome",
    "Verified",
]
