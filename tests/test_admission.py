"""Operator admission against the embedded chain: each refusal its own test, none changes the
store; plus the store's URL handling and state transitions."""

from __future__ import annotations

from pathlib import Path

import pytest

from prover.receipts import (
    Admission,
    BadSignatureError,
    CreditExceededError,
    NonceGapError,
    NonceReusedError,
    OperatorNotAuthorizedError,
    PayerSession,
    ReceiptDomain,
    ReceiptError,
    SignedReceipt,
    TokensOutOfRangeError,
    UnknownModelError,
    WrongOperatorError,
    sign_receipt,
)
from prover.store import ADMITTED, BATCHED, PROVEN, SETTLED, ReceiptStore, StoreError
from tests.chain_world import ONE_OPEN, World, world, world_module  # noqa: F401

HASH = b"\x07" * 32


@pytest.fixture
def setup(world: World, tmp_path: Path) -> tuple[World, ReceiptStore, Admission, ReceiptDomain]:  # noqa: F811
    domain = ReceiptDomain(world.client.chain_id, world.deployment.settlement)
    store = ReceiptStore(f"sqlite:///{tmp_path / 'ops.db'}")
    admission = Admission(world.client, store, domain, world.operator.address)
    return world, store, admission, domain


def _refused(
    store: ReceiptStore, admission: Admission, receipt: SignedReceipt, error: type
) -> None:
    before = store.snapshot()
    with pytest.raises(error) as info:
        store.admit(receipt, admission)
    assert isinstance(info.value, ReceiptError)
    assert store.snapshot() == before


def _session(
    s: tuple[World, ReceiptStore, Admission, ReceiptDomain], model: int | None = None
) -> PayerSession:
    w, _, _, domain = s
    return PayerSession(w.payer, domain, w.operator.address, model or w.model_id)


def test_admits_consecutive_receipts(setup) -> None:  # type: ignore[no-untyped-def]
    w, store, admission, _ = setup
    session = _session(setup)
    for _ in range(3):
        assert store.admit(session.sign(800, HASH), admission) == ADMITTED
    assert store.counts()[ADMITTED] == 3
    assert store.last_admitted_nonce(w.payer.address, w.operator.address, w.model_id) == 3


def test_refuses_bad_signature(setup) -> None:  # type: ignore[no-untyped-def]
    _, store, admission, _ = setup
    r = _session(setup).sign(800, HASH)
    forged = SignedReceipt(**{**r.__dict__, "tokens": 1})
    _refused(store, admission, forged, BadSignatureError)


def test_refuses_unknown_model(setup) -> None:  # type: ignore[no-untyped-def]
    _, store, admission, _ = setup
    _refused(store, admission, _session(setup, 99).sign(800, HASH), UnknownModelError)


def test_refuses_tokens_at_2_32(setup) -> None:  # type: ignore[no-untyped-def]
    _w, store, admission, _ = setup
    r = _session(setup).sign(800, HASH)
    # A well-formed signature over tokens >= 2^32 cannot exist; the field is checked first.
    _refused(
        store, admission, SignedReceipt(**{**r.__dict__, "tokens": 2**32}), TokensOutOfRangeError
    )


def test_refuses_repeated_nonce(setup) -> None:  # type: ignore[no-untyped-def]
    _, store, admission, _ = setup
    session = _session(setup)
    store.admit(session.sign(800, HASH), admission)
    session.next_nonce = 1
    _refused(store, admission, session.sign(800, b"\x08" * 32), NonceReusedError)


def test_refuses_nonce_gap(setup) -> None:  # type: ignore[no-untyped-def]
    _, store, admission, _ = setup
    session = _session(setup)
    session.next_nonce = 2
    _refused(store, admission, session.sign(800, HASH), NonceGapError)


def test_refuses_other_operator(setup) -> None:  # type: ignore[no-untyped-def]
    w, store, admission, domain = setup
    r = sign_receipt(w.payer, domain, w.payer2.address, w.model_id, 1, 800, HASH)
    _refused(store, admission, r, WrongOperatorError)


def test_refuses_unauthorised_payer(setup) -> None:  # type: ignore[no-untyped-def]
    w, store, admission, domain = setup
    stranger = w.client.accounts[7]
    r = sign_receipt(stranger, domain, w.operator.address, w.model_id, 1, 0, HASH)
    _refused(store, admission, r, OperatorNotAuthorizedError)


def test_refuses_over_credit(setup) -> None:  # type: ignore[no-untyped-def]
    _w, store, admission, _ = setup
    # 1 OPEN escrow at 0.002 OPEN / 1000 tokens covers 500,000 tokens exactly.
    session = _session(setup)
    store.admit(session.sign(400_000, HASH), admission)
    store.admit(session.sign(100_000, HASH), admission)
    _refused(store, admission, session.sign(1, HASH), CreditExceededError)


def test_over_credit_counts_all_models(setup) -> None:  # type: ignore[no-untyped-def]
    w, store, admission, _ = setup
    store.admit(_session(setup).sign(400_000, HASH), admission)  # 0.8 OPEN
    # model 2 at 0.003 OPEN/1000: 66,667 * 3e15 // 1000 = 0.200001 OPEN > the 0.2 left
    _refused(store, admission, _session(setup, w.model2_id).sign(66_667, HASH), CreditExceededError)
    store.admit(_session(setup, w.model2_id).sign(66_666, HASH), admission)


def test_unknown_scheme_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="only sqlite"):
        ReceiptStore("postgresql://localhost/ops")
    ReceiptStore(f"sqlite:///{tmp_path / 'x.db'}").close()


def test_transitions_in_order(setup) -> None:  # type: ignore[no-untyped-def]
    w, store, admission, _ = setup
    session = _session(setup)
    for _ in range(3):
        store.admit(session.sign(10, HASH), admission)
    batch = store.cut_batch(0, 8, 2)
    assert batch is not None and batch.receipt_count == 2
    assert store.counts()[BATCHED] == 2 and store.counts()[ADMITTED] == 1
    with pytest.raises(StoreError):
        store.mark_settled(0, None, None)  # batched cannot jump to settled
    store.mark_proven(0, {}, "0x", {"q": [1]}, None)
    assert store.counts()[PROVEN] == 2
    store.mark_settled(0, "0xab", 1)
    assert store.counts()[SETTLED] == 2
    assert [r.nonce for r in store.batch_receipts(0)] == [1, 2]
    assert store.unsettled_usage(w.payer.address) == {w.model_id: 10}


def test_store_survives_reopen(setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _w, store, admission, _ = setup
    store.admit(_session(setup).sign(10, HASH), admission)
    store.close()
    again = ReceiptStore(f"sqlite:///{tmp_path / 'ops.db'}")
    assert again.counts()[ADMITTED] == 1


class _CountingChain:
    def __init__(self, client: object) -> None:
        self.client, self.escrow_reads = client, 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.client, name)

    def escrow_balance(self, payer: str) -> int:
        self.escrow_reads += 1
        return int(self.client.escrow_balance(payer))  # type: ignore[attr-defined]


def test_escrow_ttl_reuses_reads_until_refresh(setup) -> None:  # type: ignore[no-untyped-def]
    w, store, _, domain = setup
    chain = _CountingChain(w.client)
    cached = Admission(chain, store, domain, w.operator.address, escrow_ttl=3600)  # type: ignore[arg-type]
    session = _session(setup)
    for _ in range(3):
        store.admit(session.sign(10, HASH), cached)
    assert chain.escrow_reads == 1
    cached.refresh()
    store.admit(session.sign(10, HASH), cached)
    assert chain.escrow_reads == 2
    # the twin: no TTL reads every time
    fresh = Admission(chain, store, domain, w.operator.address)  # type: ignore[arg-type]
    store.admit(session.sign(10, HASH), fresh)
    store.admit(session.sign(10, HASH), fresh)
    assert chain.escrow_reads == 4
