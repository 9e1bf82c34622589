"""A store shared by several processes, on each store (SQLite and PostgreSQL): intakes with
stale caches, racing intakes, group commit, the batcher's election and fencing, proving
claims, and migrations. Each safety property has its negative twin."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from channels.payer import PayerChannel
from channels.receipts import ReceiptDomain, UsageReceipt, sign_receipt
from circuits.public_inputs import BatchHeader, PublicInputs
from operator_service.admission import (
    Admission,
    AdmittedReceipt,
    CreditExceededError,
    LockedChainView,
    NonceGapError,
    NonceReusedError,
)
from operator_service.intake import Intake
from operator_service.leader import Leadership
from operator_service.store import (
    ADMITTED,
    HELD,
    INSERT_PARAMETERS,
    AdmissionWrite,
    NotLeaderError,
    ReceiptStore,
    StaleStateError,
    StoreError,
    StoreUnavailableError,
    migrate,
)
from tests.support.chain import ONE_OPEN, RATE_0_002_OPEN, World

HASH = b"\x07" * 32


class Two:
    """Two intakes (two processes' caches) over one store."""

    def __init__(self, world: World, url: str) -> None:
        self.world = world
        self.domain = ReceiptDomain(world.client.chain_id, world.deployment.settlement)
        self.store = ReceiptStore(url)
        self.a = self._intake()
        self.b = self._intake()

    def _intake(self) -> Intake:
        chain = LockedChainView(self.world.client)
        return Intake(
            self.store, Admission(chain, self.store, self.domain, self.world.operator.address)
        )

    def channel(self, model: int | None = None) -> PayerChannel:
        w = self.world
        return PayerChannel(
            w.payer, self.domain, w.operator.address, model or w.model_id, RATE_0_002_OPEN
        )

    def receipt(self, nonce: int, cumulative: int, model: int | None = None) -> object:
        w = self.world
        return sign_receipt(
            w.payer,
            self.domain,
            UsageReceipt(
                w.payer.address,
                w.operator.address,
                model or w.model_id,
                nonce,
                cumulative,
                RATE_0_002_OPEN,
                HASH,
            ),
        )

    def rows(self) -> list[tuple[int, int]]:
        """(nonce, cumulative) of every stored receipt, in nonce order."""
        return sorted(
            (int(r[4]), int(r[5]))
            for r in self.store.snapshot()
            if len(r) > 13 and r[1] == self.world.payer.address
        )


@pytest.fixture
def two(world: World, store_url: str) -> Iterator[Two]:
    t = Two(world, store_url)
    yield t
    t.store.close()


def test_stale_cache_sees_the_other_intakes_nonce_and_continues(two: Two) -> None:
    """B cached the channel before A admitted nonce 1: B re-reads on its 'gap' and admits
    nonce 2; the twin: a real gap (nonce 4) is still refused after the re-read."""
    two.b.admit(two.receipt(1, 10))  # B's cache: next is 2
    two.a.ledger.snapshot(two.world.payer.address)  # A caches now
    assert two.b.admit(two.receipt(2, 20)) == ADMITTED  # A's cache says next is 2... of 1
    assert two.a.admit(two.receipt(3, 30)) == ADMITTED  # A re-reads on the apparent gap
    before = two.store.snapshot()
    with pytest.raises(NonceGapError):
        two.b.admit(two.receipt(5, 50))
    assert two.store.snapshot() == before
    assert two.rows() == [(1, 10), (2, 20), (3, 30)]


def test_stale_cache_loses_the_race_for_a_nonce(two: Two) -> None:
    """Both cached the channel at nonce 0; A admits nonce 1; B is handed another state for
    nonce 1 (a forked channel): B's cache would admit it, its compare-and-set fails, it
    re-reads and refuses it as reused. Exactly one nonce-1 receipt is stored."""
    payer = two.world.payer.address
    two.a.ledger.snapshot(payer)
    two.b.ledger.snapshot(payer)
    assert two.a.admit(two.receipt(1, 100)) == ADMITTED
    with pytest.raises(NonceReusedError):
        two.b.admit(two.receipt(1, 200))
    assert two.b.admit(two.receipt(1, 100)) == ADMITTED  # A's very receipt: idempotent
    assert two.rows() == [(1, 100)]


def test_credit_is_exact_across_intakes_and_the_twin_without_versions_is_not(
    two: Two, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A and B both cached the payer; each is asked for 60% of its escrow (on two models).
    With payer versions, B's stale view loses and B refuses (credit_exceeded). The twin:
    without the compare-and-set both admit, 120% of the escrow."""
    payer = two.world.payer.address
    sixty = ONE_OPEN * 6 // 10 * 1000 // RATE_0_002_OPEN  # tokens worth 0.6 OPEN
    model2 = two.world.model2_id
    for intake in (two.a, two.b):
        intake.ledger.snapshot(payer)
    assert two.a.admit(two.receipt(1, sixty)) == ADMITTED
    r2 = sign_receipt(
        two.world.payer,
        two.domain,
        UsageReceipt(payer, two.world.operator.address, model2, 1, sixty, 3 * 10**15, HASH),
    )
    with pytest.raises(CreditExceededError):
        two.b.admit(r2)
    assert sum(two.store.unsettled_usage(payer).values()) == sixty

    # The twin: the same race with the version check switched off over-admits.
    store = two.store
    monkeypatch.setattr(store, "_compare_and_set", lambda conn, versions: [])
    c = two.channel()
    c.nonce, c.cumulative_tokens = 1, sixty
    for intake in (two.a, two.b):
        intake.ledger.forget()
        intake.ledger.snapshot(payer)
    two.a.admit(c.sign(sixty // 2, HASH))
    worth_035 = ONE_OPEN * 35 // 100 * 1000 // (3 * 10**15)  # tokens worth 0.35 OPEN on model 2
    r3 = sign_receipt(
        two.world.payer,
        two.domain,
        UsageReceipt(payer, two.world.operator.address, model2, 1, worth_035, 3 * 10**15, HASH),
    )
    two.b.admit(r3)  # B's stale view (0.6 OPEN unsettled) does not see A's 0.3
    assert usage_cost_open(store, payer) > ONE_OPEN


def usage_cost_open(store: ReceiptStore, payer: str) -> int:
    usage = store.unsettled_usage(payer)
    rates = {1: RATE_0_002_OPEN, 2: 3 * 10**15}
    return sum(t * rates[m] // 1000 for m, t in usage.items())


def test_racing_intakes_never_admit_one_nonce_twice(two: Two) -> None:
    """Threads: A and B are handed two different states for the same nonce at the same
    moment, 12 times over; each nonce is stored once, the winners form one channel."""
    start = two.receipt(1, 1)
    two.a.admit(start)
    winners = [(1, 1)]
    for nonce in range(2, 14):
        base = winners[-1][1]
        forks = [two.receipt(nonce, base + 1), two.receipt(nonce, base + 2)]
        barrier = threading.Barrier(2)
        results: list[object] = [None, None]

        def race(i: int, forks: list[object] = forks, barrier: threading.Barrier = barrier,
                 results: list[object] = results) -> None:  # fmt: skip
            barrier.wait()
            try:
                results[i] = (two.a, two.b)[i].admit(forks[i])  # type: ignore[arg-type]
            except NonceReusedError as error:
                results[i] = error

        threads = [threading.Thread(target=race, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        won = [i for i in range(2) if results[i] == ADMITTED]
        assert len(won) == 1, results
        winners.append((nonce, base + 1 + won[0]))
    assert two.rows() == winners


def test_group_commit_answers_each_request_and_stores_only_what_passed(two: Two) -> None:
    """Three requests in one transaction: the second stops at a gap (its first receipt is
    stored, the rest not), the first repeats a receipt it already sent (stored once)."""
    c = two.channel()
    r1, r2 = c.sign(5, HASH), c.sign(6, HASH)
    gap = two.receipt(9, 999)
    r3 = c.next_receipt(7, HASH)
    units = [
        two.a.verify([r.to_json() for r in (r1, r2, r1)]),
        two.a.verify_receipts([r3, gap, r3]),
        two.a.verify([{"not": "a receipt"}]),
    ]
    first, second, third = two.a.commit(units)
    assert (first.states, first.error) == ([ADMITTED] * 3, None)
    assert second.states == [ADMITTED] and isinstance(second.error, NonceGapError)
    assert second.index == 1
    assert third.states == [] and third.index == 0 and third.error is not None
    assert two.rows() == [(1, 5), (2, 11), (3, 18)]


def test_a_group_of_many_statements_is_stored_whole_or_not_at_all(two: Two) -> None:
    """1,300 receipts in one group span three multi-row INSERTs (`INSERT_PARAMETERS`): all
    stored, in one transaction. The twin: the same kind of group whose last receipt repeats
    a stored nonce (a write the ledger would never make) stores none of its receipts."""
    c = two.channel()
    many = [c.sign(3, HASH) for _ in range(1300)]
    assert 2 * (INSERT_PARAMETERS // 12) < 1300
    (outcome,) = two.a.commit([two.a.verify_receipts(many)])
    assert outcome.error is None and outcome.states == [ADMITTED] * 1300
    assert two.rows() == [(n, 3 * n) for n in range(1, 1301)]

    payer = two.world.payer.address
    version = two.store.load_payer(payer, two.world.operator.address).version
    more = [c.sign(3, HASH) for _ in range(600)]
    signer = two.world.payer.address
    writes = [AdmissionWrite(AdmittedReceipt(r, 3, signer), ADMITTED) for r in more]
    writes.append(AdmissionWrite(AdmittedReceipt(many[0], 3, signer), ADMITTED))
    with pytest.raises(StaleStateError):
        two.store.commit_admissions(writes, {(payer, two.world.operator.address): version})
    assert len(two.rows()) == 1300
    assert two.store.load_payer(payer, two.world.operator.address).version == version


def test_held_payer_is_seen_by_an_intake_that_cached_it(two: Two) -> None:
    """The batcher holds a payer (requeue): an intake that cached the payer before stores its
    next receipt as held; the twin: another payer's receipts stay admitted."""
    c = two.channel()
    two.a.admit(c.sign(5, HASH))
    two.store.requeue_from(0, [two.world.payer.address])  # no batch yet: only the hold
    assert two.a.admit(c.sign(5, HASH)) == HELD
    other = PayerChannel(
        two.world.payer2, two.domain, two.world.operator.address, two.world.model_id,
        RATE_0_002_OPEN,
    )  # fmt: skip
    assert two.a.admit(other.sign(5, HASH)) == ADMITTED


def test_sqlite_writers_of_one_process_take_turns(
    two: Two, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite: while one thread of the process writes (a batch cut, say), an intake's commit
    waits for its turn on the process's writer lock and then commits; a turn that does not
    come within the busy timeout is the store being unavailable (503), and nothing of that
    group is stored. PostgreSQL has no such lock (row locks do this work)."""
    if not store_url.startswith("sqlite"):
        pytest.skip("the writer lock is SQLite's")
    import operator_service.store as store_module

    monkeypatch.setattr(store_module, "SQLITE_BUSY_TIMEOUT", 0.3)
    c = two.channel()

    def hold(seconds: float, entered: threading.Event) -> None:
        with two.store._transaction():
            entered.set()
            time.sleep(seconds)

    entered = threading.Event()
    holder = threading.Thread(target=hold, args=(0.1, entered))
    holder.start()
    entered.wait()
    assert two.a.admit(c.sign(5, HASH)) == ADMITTED  # waited for its turn
    holder.join()

    entered = threading.Event()
    holder = threading.Thread(target=hold, args=(1.0, entered))
    holder.start()
    entered.wait()
    second = c.sign(5, HASH)
    with pytest.raises(StoreUnavailableError, match="locked"):
        two.a.admit(second)
    holder.join()
    assert two.rows() == [(1, 5)]
    assert two.a.admit(second) == ADMITTED  # sent again once the turn comes
    assert two.rows() == [(1, 5), (2, 10)]


def test_sqlite_commits_leave_the_log_to_the_checkpointer(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite: no commit copies the write-ahead log into the database file (the automatic
    checkpoint is off: it would stall the commit that triggers it); the store's checkpointer
    does, here at close (its interval patched to an hour). The log holds every receipt
    meanwhile: a second store reads them all before the checkpoint."""
    import operator_service.store as store_module

    monkeypatch.setattr(store_module, "WAL_CHECKPOINT_INTERVAL", 3600.0)
    db = tmp_path / "op.db"
    two = Two(world, f"sqlite:///{db}")
    size = db.stat().st_size
    c = two.channel()
    for _ in range(80):
        (outcome,) = two.a.commit([two.a.verify_receipts([c.sign(1, HASH) for _ in range(10)])])
        assert outcome.error is None
    assert db.stat().st_size == size  # nothing checkpointed by the commits
    assert Path(f"{db}-wal").stat().st_size > 1000 * 4096  # past SQLite's automatic point
    reader = ReceiptStore(f"sqlite:///{db}")
    assert reader.counts()["admitted"] == 800
    reader.close()
    two.store.close()
    assert db.stat().st_size > size  # the checkpointer's last round at close


# -- the batcher's election and fencing ----------------------------------------------------------


def test_one_batcher_at_a_time_and_a_deposed_one_cannot_write(store_url: str) -> None:
    store = ReceiptStore(store_url)
    other = ReceiptStore(store_url)  # another process's connections
    try:
        first, second = Leadership(store, "first"), Leadership(other, "second")
        epoch = first.try_acquire()
        assert epoch is not None and first.held()
        assert second.try_acquire() is None  # the twin: the lock is taken
        store.release_held("0x" + "00" * 20, epoch)  # the elected epoch may write
        first.release()
        new_epoch = second.try_acquire()
        assert new_epoch == epoch + 1
        assert store.leadership() == (new_epoch, "second")
        with pytest.raises(NotLeaderError):
            store.release_held("0x" + "00" * 20, epoch)  # fenced: nothing written
        with pytest.raises(NotLeaderError):
            store.cut_batch(0, 8, 8, epoch)
        second.release()
    finally:
        store.close()
        other.close()


def test_a_dead_batchers_lock_passes_on(store_url: str) -> None:
    """The holder's session (PostgreSQL) or file (SQLite) goes away without a release, as
    when its process dies: another candidate is elected."""
    store, other = ReceiptStore(store_url), ReceiptStore(store_url)
    try:
        first, second = Leadership(store, "first"), Leadership(other, "second")
        assert first.try_acquire() is not None
        assert second.try_acquire() is None
        if first._conn is not None:
            pid = first._conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
            other.engine.connect().exec_driver_sql(f"SELECT pg_terminate_backend({pid})")
            assert not first.held()
        else:
            assert first._file is not None
            first._file.close()  # what the kernel does when the process dies
            first._file = None
        assert second.try_acquire() is not None
    finally:
        store.close()
        other.close()


# -- proving claims ------------------------------------------------------------------------------


def _batched(store: ReceiptStore, two_batches: int = 2) -> None:
    """Give the store `two_batches` batched batches of one receipt each (raw rows)."""
    from sqlalchemy import text

    with store._transaction() as conn:
        for seq in range(two_batches):
            conn.execute(
                text(
                    "INSERT INTO batches (seq, state, log_size, receipt_count, created_at) "
                    "VALUES (:seq, 'batched', 8, 0, 0)"
                ),
                {"seq": seq},
            )


def test_workers_claim_different_batches_and_a_lapsed_claim_is_taken_over(
    store_url: str,
) -> None:
    store = ReceiptStore(store_url)
    try:
        _batched(store)
        one = store.claim_batch("w1", 60)
        two = store.claim_batch("w2", 60)
        assert one is not None and two is not None and {one.seq, two.seq} == {0, 1}
        assert store.claim_batch("w3", 60) is None  # the twin: both are held
        assert store.renew_claim(one.seq, "w1", -1)  # w1's lease now lapsed (it "died")
        taken = store.claim_batch("w3", 60)
        assert taken is not None and taken.seq == one.seq
        header = BatchHeader(1, 2, 3, one.seq)
        with pytest.raises(StoreError, match="claimed by w3"):
            store.mark_proven(one.seq, PublicInputs(header, 8, ()), b"p", {}, None, "w1")
        store.mark_proven(one.seq, PublicInputs(header, 8, ()), b"p", {}, None, "w3")
        assert store.batch(one.seq).state == "proven"  # type: ignore[union-attr]
    finally:
        store.close()


# -- migrations ------------------------------------------------------------------------------------


def test_migrates_from_the_first_revision(store_url: str) -> None:
    """A database at revision 0001 (schema version 2) with a receipt in it is upgraded on
    open: the data stays, the payer gets its version row."""
    from sqlalchemy import text

    from operator_service.store import make_engine

    engine = make_engine(store_url)
    migrate(engine, store_url, "0001")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO receipts (payer, operator, model_id, nonce, cumulative_tokens, "
                "max_rate_per_k_tokens, tokens, request_hash, signature, signer, state, "
                "admitted_at) VALUES ('0xP', '0xO', 1, 1, '5', '7', 5, :h, :s, '0xP', "
                "'admitted', 0)"
            ),
            {"h": b"h", "s": b"s"},
        )
    engine.dispose()
    store = ReceiptStore(store_url)
    try:
        assert store.counts()[ADMITTED] == 1
        assert store.load_payer("0xP", "0xO").version == 1
        assert store._query("SELECT value FROM meta WHERE key='schema_version'") == [("3",)]
    finally:
        store.close()


def test_adopts_a_pre_alembic_database_and_refuses_a_newer_one(tmp_path: Path) -> None:
    """A SQLite file written by the zkmeter before Alembic (schema version 2, no
    alembic_version) is stamped and upgraded; one stamped with an unknown revision (a newer
    zkmeter) is refused, untouched."""
    import sqlite3

    from operator_service.store import make_engine

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    migrate(engine, url, "0001")
    engine.dispose()
    db = sqlite3.connect(tmp_path / "old.db")
    db.execute("DROP TABLE alembic_version")
    db.commit()
    db.close()
    ReceiptStore(url).close()
    db = sqlite3.connect(tmp_path / "old.db")
    assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [("0002",)]
    db.execute("UPDATE alembic_version SET version_num='9999'")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="newer zkmeter"):
        ReceiptStore(url)
