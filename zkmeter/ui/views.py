"""What each dashboard page shows: one method per page, from the index to a template name
and its context. No HTML here (templates/), no HTTP (server.py), no web3 (contracts.client.index).

Bad input raises `PageError` with the status and a message meant for the person who typed
it: an unknown model id, an address with no activity, a malformed address or hash.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from contracts.client.index import (
    AddressError,
    BatchRecord,
    ChainIndex,
    ChannelSettlement,
    EscrowEvent,
    EscrowState,
    ModelState,
    RateCheckpoint,
    RateProposal,
    Record,
    SignerChange,
    checksum_address,
)

#: Rows per page in long tables (batches, settlements, account history).
PER_PAGE = 50
#: Latest batches on the overview.
RECENT = 8
TX_HASH = re.compile(r"^0x[0-9a-fA-F]{64}$")


class PageError(Exception):
    """A page that cannot be shown, with what to tell the person who asked for it."""

    def __init__(self, status: int, title: str, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message
        self.hint = hint


@dataclass(frozen=True)
class Page:
    """A template and its context (the server adds what every page shows)."""

    template: str
    context: dict[str, Any]
    status: int = 200


@dataclass(frozen=True)
class Pager:
    """One page of a long table, newest first."""

    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max((self.total + self.per_page - 1) // self.per_page, 1)

    @property
    def start(self) -> int:
        return (self.page - 1) * self.per_page

    def newest_first(self, items: Sequence[Any]) -> list[Any]:
        """This page's slice of `items` (oldest first in storage), newest first."""
        end = len(items) - self.start
        return list(reversed(items[max(end - self.per_page, 0) : max(end, 0)]))


def make_pager(total: int, page_text: str | None, per_page: int = PER_PAGE) -> Pager:
    """The pager for `?page=N` (1-based); a page past the end shows the last one."""
    try:
        page = int(page_text) if page_text else 1
    except ValueError:
        raise PageError(400, "Bad page number", f"{page_text!r} is not a page number") from None
    pager = Pager(1, per_page, total)
    return Pager(min(max(page, 1), pager.pages), per_page, total)


@dataclass(frozen=True)
class DaemonStatus:
    """What the operator daemon's `GET /health` said (or why it said nothing)."""

    url: str
    health: dict[str, Any] | None = None
    error: str | None = None

    #: Receipt states in pipeline order, with what each means.
    STATES: tuple[tuple[str, str], ...] = (
        ("admitted", "admitted, waiting for a batch (the queue)"),
        ("held", "held: the payer's escrow or signer must allow them first"),
        ("batched", "in a batch being proven"),
        ("proven", "proven, to be submitted"),
        ("submitted", "submitted, awaiting confirmation"),
        ("settled", "settled on chain"),
        ("failed", "failed"),
    )

    @property
    def receipts(self) -> list[tuple[str, str, int]]:
        counts = (self.health or {}).get("receipts") or {}
        return [(state, label, int(counts.get(state, 0))) for state, label in self.STATES]


@dataclass
class ChartCache:
    """Rendered SVG charts, keyed by what they depend on (a new settlement re-renders)."""

    render: Callable[..., str]
    entries: dict[tuple[Any, ...], str] = field(default_factory=dict)

    def get(self, key: tuple[Any, ...], **kwargs: Any) -> str:
        svg = self.entries.get(key)
        if svg is None:
            if len(self.entries) > 256:
                self.entries.clear()
            svg = self.entries[key] = self.render(**kwargs)
        return svg


@dataclass(frozen=True)
class ModelRow:
    """A model as the list and its page show it."""

    model: ModelState
    current: RateCheckpoint
    pending: RateCheckpoint | None

    @property
    def model_id(self) -> int:
        return self.model.model_id


@dataclass(frozen=True)
class ProposalRow:
    proposal: RateProposal
    status: str  # "in force", "pending", "superseded", "replaced before it applied"


@dataclass(frozen=True)
class HistoryRow:
    """An escrow account event and the account's balance after it."""

    event: EscrowEvent | ChannelSettlement
    balance: int


@dataclass(frozen=True)
class SignerRow:
    signer: str
    change: SignerChange
    status: str
    until: int | None


class Views:
    """The dashboard's pages over one `ChainIndex` (refreshed by the caller)."""

    def __init__(self, index: ChainIndex, charts: ChartCache) -> None:
        self.index = index
        self.charts = charts

    # ------------------------------------------------------------------ helpers

    def common(self) -> dict[str, Any]:
        """What every page shows: deployment, token, latest block, chain time, scan stats."""
        return {
            "deployment": self.index.deployment,
            "token": self.index.token(),
            "latest_block": self.index.latest_block,
            "now": self.index.chain_time,
            "stats": self.index.stats(),
        }

    def _address(self, text: str) -> str:
        try:
            return checksum_address(text)
        except AddressError as exc:
            raise PageError(400, "Not an address", str(exc)) from None

    def _model(self, model_id_text: str) -> ModelState:
        count = len(self.index.models)
        known = f"the registry has {count} model{'s' if count != 1 else ''}" + (
            f" (ids 1 to {max(self.index.models)})" if count else ""
        )
        try:
            model_id = int(model_id_text)
        except ValueError:
            raise PageError(
                400, "Not a model id", f"{model_id_text!r} is not a model id: {known}"
            ) from None
        model = self.index.models.get(model_id)
        if model is None:
            raise PageError(
                404,
                "No such model",
                f"Model {model_id} does not exist: {known}.",
                "Model ids count from 1 in registration order; search the models list.",
            )
        return model

    def _row(self, model: ModelState) -> ModelRow:
        now = self.index.chain_time
        current = model.checkpoint_at(now) or model.schedule[0]
        return ModelRow(model, current, model.pending(now))

    # ------------------------------------------------------------------ overview

    def overview(self) -> Page:
        index = self.index
        batches = [b for op in index.operators.values() for b in op.batches[-RECENT:]]
        recent = sorted(batches, key=lambda b: b.ref, reverse=True)[:RECENT]
        gas = index.gas_used(b.ref.tx_hash for b in recent)
        return Page(
            "overview.html",
            {
                "models": len(index.models),
                "payers": len(index.payers()),
                "operators": len(index.operators),
                "batches": sum(len(op.batches) for op in index.operators.values()),
                "tokens": sum(op.tokens for op in index.operators.values()),
                "paid": sum(op.amount for op in index.operators.values()),
                "recent": recent,
                "gas": gas,
            },
        )

    # ------------------------------------------------------------------ models

    def models(self, query: str, page: str | None) -> Page:
        q = query.strip().lower()
        rows = [self._row(self.index.models[i]) for i in self.index.model_ids()]
        if q:
            rows = [r for r in rows if _matches(r.model, q)]
        pager = make_pager(len(rows), page)
        shown = rows[pager.start : pager.start + pager.per_page]
        return Page("models.html", {"rows": shown, "query": query.strip(), "pager": pager})

    def model(self, model_id_text: str, page: str | None) -> Page:
        model = self._model(model_id_text)
        row = self._row(model)
        now = self.index.chain_time
        token = self.index.token()
        pager = make_pager(len(model.settlements), page)
        settlements = pager.newest_first(model.settlements)
        chart = self.charts.get(
            ("earnings", model.model_id, len(model.settlements), token.decimals, now),
            points=[(s.ref.timestamp, s.amount) for s in model.settlements],
            start=model.registration.ref.timestamp,
            end=now,
            decimals=token.decimals,
            symbol=token.symbol,
            title=f"Cumulative earnings of model {model.model_id} ({token.symbol})",
        )
        in_schedule = {c.ref for c in model.schedule}
        proposals = []
        for p in reversed(model.proposals):
            if p.ref not in in_schedule:
                status = "replaced before it applied"
            elif p.effective_from > now:
                status = "pending"
            elif model.checkpoint_at(now) == next(c for c in model.schedule if c.ref == p.ref):
                status = "in force"
            else:
                status = "superseded"
            proposals.append(ProposalRow(p, status))
        return Page(
            "model.html",
            {
                "row": row,
                "model": model,
                "proposals": proposals,
                "chart": chart,
                "settlements": settlements,
                "pager": pager,
                "channels": len({(s.payer, s.operator) for s in model.settlements}),
            },
        )

    # ------------------------------------------------------------------ payers

    def payers(self, page: str | None) -> Page:
        payers = self.index.payers()
        pager = make_pager(len(payers), page)
        rows = []
        for payer in payers[pager.start : pager.start + pager.per_page]:
            accounts = self.index.payer_accounts(payer)
            rows.append(
                {
                    "payer": payer,
                    "operators": len(accounts),
                    "balance": sum(a.balance for a in accounts),
                    "spent": sum(a.spent for a in accounts),
                    "channels": len(self.index.payer_channels(payer)),
                }
            )
        return Page("payers.html", {"rows": rows, "pager": pager})

    def payer(self, address_text: str, page: str | None) -> Page:
        payer = self._address(address_text)
        index = self.index
        accounts = index.payer_accounts(payer)
        channels = index.payer_channels(payer)
        signer_changes = index.signers.get(payer, [])
        if not accounts and not channels and not signer_changes:
            raise PageError(
                404,
                "Unknown payer",
                f"{payer} has no escrow account, no settled channel and no signer on this "
                "deployment.",
                "A payer appears here once it has deposited escrow for an operator.",
            )
        history = sorted(
            (row for a in accounts for row in _history_rows(a)), key=lambda r: r.event.ref
        )
        pager = make_pager(len(history), page)
        caps = {(c.operator, c.model_id): index.signed_cap(c.last) for c in channels}
        return Page(
            "payer.html",
            {
                "payer": payer,
                "accounts": accounts,
                "channels": channels,
                "caps": caps,
                "signers": self._signers(signer_changes),
                "history": pager.newest_first(history),
                "pager": pager,
                "models": index.models,
            },
        )

    def _signers(self, changes: Sequence[SignerChange]) -> list[SignerRow]:
        now = self.index.chain_time
        last: dict[str, SignerChange] = {}
        for change in changes:
            last[change.signer] = change
        rows = []
        for signer, change in last.items():
            if change.kind == "authorized":
                rows.append(SignerRow(signer, change, "authorized", None))
            elif change.effective_at is not None and change.effective_at > now:
                rows.append(SignerRow(signer, change, "revocation pending", change.effective_at))
            else:
                rows.append(SignerRow(signer, change, "revoked", change.effective_at))
        return rows

    # ------------------------------------------------------------------ operators

    def operators(self, daemon: DaemonStatus | None) -> Page:
        ops = sorted(self.index.operators.values(), key=lambda o: o.batches[-1].ref, reverse=True)
        return Page("operators.html", {"operators": ops, "daemon": daemon})

    def operator(self, address_text: str, page: str | None, daemon: DaemonStatus | None) -> Page:
        operator = self._address(address_text)
        state = self.index.operators.get(operator)
        backing = [a for (_, op), a in self.index.accounts.items() if op == operator]
        if state is None and not backing:
            raise PageError(
                404,
                "Unknown operator",
                f"{operator} has settled no batch and holds no escrow on this deployment.",
            )
        batches: list[BatchRecord] = state.batches if state else []
        pager = make_pager(len(batches), page)
        shown = pager.newest_first(batches)
        return Page(
            "operator.html",
            {
                "operator": operator,
                "state": state,
                "batches": shown,
                "gas": self.index.gas_used(b.ref.tx_hash for b in shown),
                "pager": pager,
                "backing": backing,
                "daemon": daemon,
            },
        )

    def batch(self, address_text: str, seq_text: str) -> Page:
        operator = self._address(address_text)
        try:
            seq = int(seq_text)
        except ValueError:
            raise PageError(400, "Not a batch number", f"{seq_text!r} is not a number") from None
        batch = self.index.batch(operator, seq)
        if batch is None:
            state = self.index.operators.get(operator)
            settled = len(state.batches) if state else 0
            raise PageError(
                404,
                "No such batch",
                f"Operator {operator} has no settled batch {seq} on this deployment "
                f"({settled} settled).",
            )
        caps = {(c.payer, c.model_id): self.index.signed_cap(c) for c in batch.channels}
        return Page(
            "batch.html",
            {
                "batch": batch,
                "gas": self.index.gas_used([batch.ref.tx_hash])[batch.ref.tx_hash],
                "caps": caps,
                "commitments": _words(batch.witness_commitments),
            },
        )

    # ------------------------------------------------------------------ transactions, addresses

    def transaction(self, hash_text: str) -> Page:
        if not TX_HASH.match(hash_text):
            raise PageError(
                400, "Not a transaction hash", f"{hash_text!r} is not 0x and 64 hex digits"
            )
        info = self.index.transaction(hash_text.lower())
        if info is None:
            raise PageError(
                404,
                "Unknown transaction",
                f"The node does not know transaction {hash_text.lower()}.",
            )
        return Page("tx.html", {"tx": info, "models": self.index.models})

    def address(self, address_text: str) -> Page:
        address = self._address(address_text)
        index = self.index
        owned = [self._row(index.models[i]) for i in index.models_owned_by(address)]
        accounts = index.payer_accounts(address)
        operator = index.operators.get(address)
        backing = [a for (_, op), a in index.accounts.items() if op == address]
        signs_for = [
            payer
            for payer, changes in index.signers.items()
            if any(c.signer == address for c in changes)
        ]
        withdrawals = index.withdrawals.get(address, [])
        earned = sum(m.earned for m in index.models.values() if m.owner == address)
        roles = owned or accounts or operator or backing or signs_for or withdrawals
        if not roles:
            raise PageError(
                404,
                "No activity",
                f"{address} has no model, escrow account, batch or signer role on this deployment.",
                "Check the address, and that the dashboard reads the right deployment "
                "(shown at the bottom of the page).",
            )
        return Page(
            "address.html",
            {
                "address": address,
                "owned": owned,
                "earned": earned,
                "accounts": accounts,
                "operator": operator,
                "backing": backing,
                "signs_for": signs_for,
                "withdrawals": withdrawals,
                "is_contract": address
                in (index.deployment.settlement, index.deployment.registry, index.deployment.token),
            },
        )

    def search(self, query: str) -> str:
        """Where the search box sends `query`: a model id, an address, a transaction, or the
        models list filtered by it."""
        q = query.strip()
        if q.isdigit():
            return f"/models/{int(q)}"
        if TX_HASH.match(q):
            return f"/tx/{q.lower()}"
        if re.match(r"^(0x)?[0-9a-fA-F]{40}$", q):
            return f"/address/{self._address(q if q.startswith('0x') else '0x' + q)}"
        return "/models?" + _query_string(q)


_ESCROW_EVENTS = {
    "deposit": "Deposited",
    "withdrawal_requested": "WithdrawalRequested",
    "withdrawal_cancelled": "WithdrawalCancelled",
    "withdrawn": "Withdrawn",
}


def event_name(record: Record) -> str:
    """The Solidity event a record was read from."""
    if isinstance(record, EscrowEvent):
        return _ESCROW_EVENTS[record.kind]
    if isinstance(record, SignerChange):
        return "SignerAuthorized" if record.kind == "authorized" else "SignerRevoked"
    return {
        "ModelRegistration": "ModelRegistered",
        "RateProposal": "RateProposed",
        "OwnershipTransfer": "ModelOwnershipTransferred",
        "ChannelSettlement": "ChannelSettled",
        "BatchRecord": "BatchSettled",
        "EarningsWithdrawal": "EarningsWithdrawn",
    }[type(record).__name__]


def record_kind(record: Record) -> str:
    """The record's type name, for templates (which cannot call isinstance)."""
    return type(record).__name__


def _history_rows(account: EscrowState) -> list[HistoryRow]:
    """The account's events with the balance after each: the balance a deposit or withdrawal
    event states, less every settlement since."""
    rows = []
    balance = 0
    for event in account.history:
        if isinstance(event, ChannelSettlement):
            balance -= event.amount
        elif event.balance is not None:
            balance = event.balance
        rows.append(HistoryRow(event, balance))
    return rows


def _matches(model: ModelState, q: str) -> bool:
    """Does the search text `q` (lowercase) name this model: its id, or part of its hash,
    owner or metadata URI."""
    r = model.registration
    return (
        q == str(model.model_id)
        or q in r.model_hash.lower()
        or q in model.owner.lower()
        or q in r.metadata_uri.lower()
    )


def _words(data: bytes) -> list[str]:
    """Bytes as 32-byte hex words (the witness commitments are G1 points, two words each)."""
    return ["0x" + data[i : i + 32].hex() for i in range(0, len(data), 32)]


def _query_string(q: str) -> str:
    from urllib.parse import urlencode

    return urlencode({"q": q})


def account_status(account: EscrowState, now: int) -> str:
    """A withdrawal's state in words."""
    if not account.thaw_ends_at:
        return "none"
    return "withdrawable" if account.thaw_ends_at <= now else "thawing"
