"""Operator admission against the embedded chain, on each store (SQLite and PostgreSQL): each
refusal its own test, none changes the store; plus the store's URL handling and state
transitions."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from channels.payer import PayerChannel
from channels.receipts import (
    SECP256K1_N,
    BadSignatureError,
    ReceiptDomain,
    ReceiptError,
    SignedReceipt,
    UsageReceipt,
    sign_receipt,
)
from circuits.public_inputs import BatchHeader, PublicInputs
from operator_service.admission import (
    Admission,
    ChainReadNeededError,
    CreditExceededError,
    CumulativeDecreasedError,
    LockedChainView,
    NonceGapError,
    NonceReusedError,
    RateCapTooLowError,
    SignerNotAuthorizedError,
    TokensOutOfRangeError,
    UnknownModelError,
    WrongOperatorError,
)
from operator_service.intake import Intake
from operator_service.store import ADMITTED, BATCHED, PROVEN, SETTLED, ReceiptStore, StoreError
from tests.support.chain import (
    ONE_OPEN,
    RATE_0_002_OPEN,
    World,
)

HASH = b"\x07" * 32
Setup = tuple[World, ReceiptStore, Intake, ReceiptDomain]


@pytest.fixture
def setup(world: World, store_url: str) -> Iterator[Setup]:
    domain = ReceiptDomain(world.client.chain_id, world.deployment.settlement)
    store = ReceiptStore(store_url)
    admission = Admission(LockedChainView(world.client), store, domain, world.operator.address)
    yield world, store, Intake(store, admission), domain
    store.close()


def _refused(
    store: ReceiptStore, intake: Intake, receipt: SignedReceipt, error: type
) -> ReceiptError:
    """`receipt` is refused with `error`, and nothing stored changes (no row, no version)."""
    before = store.snapshot()
    with pytest.raises(error) as info:
        intake.admit(receipt)
    assert isinstance(info.value, ReceiptError)
    assert store.snapshot() == before
    return info.value


def _channel(s: Setup, model: int | None = None, cap: int = RATE_0_002_OPEN) -> PayerChannel:
    w, _, _, domain = s
    return PayerChannel(w.payer, domain, w.operator.address, model or w.model_id, cap)


def test_admits_consecutive_receipts_with_their_tokens(setup: Setup) -> None:
    w, store, intake, _ = setup
    ch = _channel(setup)
    for tokens in (800, 0, 5):
        assert intake.admit(ch.sign(tokens, HASH)) == ADMITTED
    assert store.unsettled_usage(w.payer.address) == {w.model_id: 805}
    position = store.last_admitted(w.payer.address, w.operator.address, w.model_id)
    assert position is not None and (position.nonce, position.cumulative_tokens) == (3, 805)


def test_resending_an_admitted_receipt_is_idempotent(setup: Setup) -> None:
    _w, store, intake, _ = setup
    r = _channel(setup).sign(800, HASH)
    assert intake.admit(r) == ADMITTED
    before = store.snapshot()
    assert intake.admit(r) == ADMITTED
    assert store.snapshot() == before
    # ... but another receipt with the same nonce is a reuse.
    other = sign_receipt(
        setup[0].payer,
        setup[3],
        UsageReceipt(
            setup[0].payer.address, r.operator, r.model_id, 1, 900, r.max_rate_per_k_tokens, HASH
        ),
    )
    _refused(store, intake, other, NonceReusedError)


def test_refuses_bad_signature(setup: Setup) -> None:
    _w, store, intake, _ = setup
    r = _channel(setup).sign(800, HASH)
    forged = replace(r, cumulative_tokens=r.cumulative_tokens + 1)  # signed by nobody we know
    _refused(store, intake, forged, SignerNotAuthorizedError)
    _refused(store, intake, replace(r, signature=b"\x00" * 65), BadSignatureError)


def test_refuses_high_s_signature(setup: Setup) -> None:
    _w, store, intake, _ = setup
    r = _channel(setup).sign(800, HASH)
    s = int.from_bytes(r.signature[32:64], "big")
    high = r.signature[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - r.signature[64]])
    err = _refused(store, intake, replace(r, signature=high), BadSignatureError)
    assert "high-s" in str(err)
    assert intake.admit(r) == ADMITTED  # the canonical twin


def test_refuses_signer_not_authorised_then_admits_once_authorised(setup: Setup) -> None:
    w, store, intake, domain = setup
    hot = PayerChannel(
        w.signer, domain, w.operator.address, w.model_id, RATE_0_002_OPEN, payer=w.payer.address
    )
    r = hot.next_receipt(800, HASH)
    err = _refused(store, intake, r, SignerNotAuthorizedError)
    assert err.code == "signer_not_authorized" and err.http_status == 403
    w.client.authorize_signer(w.signer.address, sender=w.payer)
    assert intake.admit(r) == ADMITTED


def test_refuses_signer_under_revocation(setup: Setup) -> None:
    w, store, intake, domain = setup
    w.client.authorize_signer(w.signer.address, sender=w.payer)
    w.client.revoke_signer(w.signer.address, sender=w.payer)
    hot = PayerChannel(
        w.signer, domain, w.operator.address, w.model_id, RATE_0_002_OPEN, payer=w.payer.address
    )
    err = _refused(store, intake, hot.next_receipt(800, HASH), SignerNotAuthorizedError)
    assert "revoking" in str(err)


def test_refuses_unknown_model(setup: Setup) -> None:
    _w, store, intake, _ = setup
    _refused(store, intake, _channel(setup, model=3).sign(1, HASH), UnknownModelError)


def test_refuses_call_of_2_32_tokens(setup: Setup) -> None:
    w, store, intake, domain = setup
    big = sign_receipt(
        w.payer,
        domain,
        UsageReceipt(
            w.payer.address, w.operator.address, w.model_id, 1, 2**32, RATE_0_002_OPEN, HASH
        ),
    )
    err = _refused(store, intake, big, TokensOutOfRangeError)
    assert err.http_status == 422
    # The twin: 2^32 - 1 tokens pass the range rule (and meet the credit rule next).
    largest = sign_receipt(
        w.payer,
        domain,
        UsageReceipt(
            w.payer.address, w.operator.address, w.model_id, 1, 2**32 - 1, RATE_0_002_OPEN, HASH
        ),
    )
    _refused(store, intake, largest, CreditExceededError)


def test_refuses_cumulative_going_back(setup: Setup) -> None:
    w, store, intake, domain = setup
    ch = _channel(setup)
    intake.admit(ch.sign(800, HASH))
    back = sign_receipt(
        w.payer,
        domain,
        UsageReceipt(
            w.payer.address, w.operator.address, w.model_id, 2, 799, RATE_0_002_OPEN, HASH
        ),
    )
    _refused(store, intake, back, CumulativeDecreasedError)


def test_continues_from_the_chain_after_settlement(setup: Setup) -> None:
    """A channel settled on chain (nonce 12, cumulative 9600) continues from there."""
    from tests.support.chain import settle

    w, store, intake, domain = setup
    settle(w, [w.aggregate()])
    ok = sign_receipt(
        w.payer,
        domain,
        UsageReceipt(
            w.payer.address, w.operator.address, w.model_id, 13, 9_700, RATE_0_002_OPEN, HASH
        ),
    )
    stale = sign_receipt(
        w.payer,
        domain,
        UsageReceipt(
            w.payer.address, w.operator.address, w.model_id, 13, 100, RATE_0_002_OPEN, HASH
        ),
    )
    _refused(store, intake, stale, CumulativeDecreasedError)
    assert intake.admit(ok) == ADMITTED
    assert store.unsettled_usage(w.payer.address) == {w.model_id: 100}


def test_refuses_repeated_nonce(setup: Setup) -> None:
    w, store, intake, domain = setup
    intake.admit(_channel(setup).sign(10, HASH))
    again = sign_receipt(
        w.payer,
        domain,
        UsageReceipt(w.payer.address, w.operator.address, w.model_id, 1, 20, RATE_0_002_OPEN, HASH),
    )
    _refused(store, intake, again, NonceReusedError)


def test_refuses_nonce_gap(setup: Setup) -> None:
    w, store, intake, domain = setup
    gap = sign_receipt(
        w.payer,
        domain,
        UsageReceipt(w.payer.address, w.operator.address, w.model_id, 2, 20, RATE_0_002_OPEN, HASH),
    )
    _refused(store, intake, gap, NonceGapError)


def test_refuses_other_operator(setup: Setup) -> None:
    w, store, intake, domain = setup
    other = PayerChannel(w.payer, domain, w.operator2.address, w.model_id, RATE_0_002_OPEN)
    _refused(store, intake, other.sign(10, HASH), WrongOperatorError)


def test_refuses_rate_cap_below_current_rate(setup: Setup) -> None:
    _w, store, intake, _ = setup
    err = _refused(
        store,
        intake,
        _channel(setup, cap=RATE_0_002_OPEN - 1).sign(10, HASH),
        RateCapTooLowError,
    )
    assert err.code == "rate_cap_too_low"
    assert intake.admit(_channel(setup).sign(10, HASH)) == ADMITTED


def test_refuses_over_credit(setup: Setup) -> None:
    _w, store, intake, _ = setup
    ch = _channel(setup)
    affordable = ONE_OPEN * 1000 // RATE_0_002_OPEN  # 500,000 tokens
    intake.admit(ch.sign(affordable, HASH))
    _refused(store, intake, ch.next_receipt(1, HASH), CreditExceededError)


def test_credit_counts_all_models(setup: Setup) -> None:
    w, store, intake, _ = setup
    intake.admit(_channel(setup).sign(400_000, HASH))  # 0.8 OPEN
    # model 2 at 0.003: 100,000 tokens = 0.3 OPEN: over 1 OPEN in total
    _refused(
        store,
        intake,
        _channel(setup, model=w.model2_id, cap=3 * 10**15).sign(100_000, HASH),
        CreditExceededError,
    )


def test_credit_is_net_of_thawing_withdrawals(setup: Setup) -> None:
    """A withdrawal request stops new credit at once (the funds still back what was admitted)."""
    w, store, intake, _ = setup
    w.client.request_withdrawal(w.operator.address, ONE_OPEN // 2, sender=w.payer)
    ch = _channel(setup)
    half = ONE_OPEN // 2 * 1000 // RATE_0_002_OPEN
    intake.admit(ch.sign(half, HASH))
    _refused(store, intake, ch.next_receipt(1, HASH), CreditExceededError)


def test_credit_counts_escrow_for_this_operator_only(setup: Setup) -> None:
    w, store, _intake, domain = setup
    other = Intake(store, Admission(LockedChainView(w.client), store, domain, w.operator2.address))
    ch = PayerChannel(w.payer, domain, w.operator2.address, w.model_id, RATE_0_002_OPEN)
    _refused(store, other, ch.next_receipt(1_000, HASH), CreditExceededError)
    w.client.approve_and_deposit(w.operator2.address, ONE_OPEN, sender=w.payer)
    assert other.admit(ch.next_receipt(1_000, HASH)) == ADMITTED


def test_credit_priced_at_a_pending_rate_rise(setup: Setup) -> None:
    """Usage admitted now may settle after an announced rise: credit prices it at the rise."""
    w, store, intake, _ = setup
    w.client.propose_rate(w.model_id, 2 * RATE_0_002_OPEN, sender=w.owner)
    intake.admission.refresh()
    ch = _channel(setup, cap=4 * RATE_0_002_OPEN)
    quarter_million = 250_000  # 0.5 OPEN now, 1 OPEN at the pending rate
    intake.admit(ch.sign(quarter_million, HASH))
    _refused(store, intake, ch.next_receipt(1, HASH), CreditExceededError)


def test_unknown_scheme_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="sqlite:///PATH or postgresql://"):
        ReceiptStore("mysql://localhost/ops")
    ReceiptStore(f"sqlite:///{tmp_path / 'x.db'}").close()


def test_database_of_another_schema_version_refused(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE receipts (id INTEGER PRIMARY KEY, tokens INTEGER)")
    db.execute("INSERT INTO receipts VALUES (1, 800)")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="schema version 1"):
        ReceiptStore(f"sqlite:///{path}")
    db = sqlite3.connect(path)
    assert db.execute("SELECT tokens FROM receipts").fetchall() == [(800,)]  # untouched


def test_transitions_in_order(setup: Setup) -> None:
    w, store, intake, _ = setup
    session = _channel(setup)
    for _ in range(3):
        intake.admit(session.sign(10, HASH))
    batch = store.cut_batch(0, 8, 2)
    assert batch is not None and batch.receipt_count == 2
    assert store.counts()[BATCHED] == 2 and store.counts()[ADMITTED] == 1
    with pytest.raises(StoreError):
        store.mark_settled(0, None, None)  # batched cannot jump to settled
    header = BatchHeader(w.client.chain_id, int(w.deployment.settlement, 16), 1, 0)
    store.mark_proven(0, PublicInputs(header, 8, ()), b"proof", {"q": [1]}, None)
    assert store.counts()[PROVEN] == 2
    store.mark_settled(0, "0xab", 1)
    assert store.counts()[SETTLED] == 2
    assert [a.receipt.nonce for a in store.batch_receipts(0)] == [1, 2]
    assert store.unsettled_usage(w.payer.address) == {w.model_id: 10}


def test_store_survives_reopen(setup: Setup, store_url: str) -> None:
    _w, store, intake, _ = setup
    intake.admit(_channel(setup).sign(10, HASH))
    store.close()
    again = ReceiptStore(store_url)
    assert again.counts()[ADMITTED] == 1
    again.close()


class _CountingChain:
    def __init__(self, client: object) -> None:
        self.client, self.escrow_reads = client, 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.client, name)

    def available_escrow(self, payer: str, operator: str) -> int:
        self.escrow_reads += 1
        return int(self.client.available_escrow(payer, operator))  # type: ignore[attr-defined]


def test_escrow_ttl_reuses_reads_until_refresh(setup: Setup) -> None:
    w, store, _, domain = setup
    chain = _CountingChain(LockedChainView(w.client))
    cached = Intake(store, Admission(chain, store, domain, w.operator.address, escrow_ttl=3600))  # type: ignore[arg-type]
    session = _channel(setup)
    for _ in range(3):
        cached.admit(session.sign(10, HASH))
    assert chain.escrow_reads == 1
    cached.admission.refresh()
    cached.admit(session.sign(10, HASH))
    assert chain.escrow_reads == 2
    # the twin: no TTL reads every time
    fresh = Intake(store, Admission(chain, store, domain, w.operator.address))  # type: ignore[arg-type]
    fresh.admit(session.sign(10, HASH))
    fresh.admit(session.sign(10, HASH))
    assert chain.escrow_reads == 4


def test_verify_cached_only_never_reads_the_chain(setup: Setup) -> None:
    """`verify(cached_only=True)` (the daemon's event loop) asks for a chain read instead of
    making one: for a model not cached, an escrow not read within the TTL, a delegated signer
    not seen. Once a normal verify has read them, it passes without the chain. Not a refusal:
    the same receipt then passes a normal verify."""
    w, store, _, domain = setup
    chain = _CountingChain(LockedChainView(w.client))
    admission = Admission(chain, store, domain, w.operator.address, escrow_ttl=3600)  # type: ignore[arg-type]
    receipt = _channel(setup).sign(10, HASH)
    with pytest.raises(ChainReadNeededError):
        admission.verify(receipt, cached_only=True)
    assert chain.escrow_reads == 0
    assert admission.verify(receipt) == w.payer.address  # reads model and escrow
    assert admission.verify(receipt, cached_only=True) == w.payer.address
    assert chain.escrow_reads == 1
    admission.refresh()  # escrow reads forgotten (as after a settlement)
    with pytest.raises(ChainReadNeededError):
        admission.verify(receipt, cached_only=True)
