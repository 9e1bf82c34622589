"""The payer's channels: cumulative states, the durable channel book (restart continues,
a second process is refused), rate caps."""

from __future__ import annotations

import multiprocessing
import os
import signal
from pathlib import Path

import pytest
from eth_account import Account

from channels.payer import ChannelBook, ChannelInUseError, PayerChannel, PayerError
from channels.receipts import ReceiptDomain, recover_signer

PAYER = Account.from_key(b"\x01" * 32)
SIGNER = Account.from_key(b"\x03" * 32)
DOMAIN = ReceiptDomain(31337, "0x" + "ab" * 20)
OPERATOR = "0x" + "cd" * 20
RATE = 2 * 10**15


def test_channel_signs_cumulative_states() -> None:
    ch = PayerChannel(PAYER, DOMAIN, OPERATOR, 3, RATE)
    a, b, c = (ch.sign(t, bytes([i]) * 32) for i, t in enumerate((800, 0, 5)))
    assert [(r.nonce, r.cumulative_tokens) for r in (a, b, c)] == [(1, 800), (2, 800), (3, 805)]
    assert (ch.nonce, ch.cumulative_tokens, ch.next_nonce) == (3, 805, 4)
    assert {r.max_rate_per_k_tokens for r in (a, b, c)} == {RATE}
    assert recover_signer(c, DOMAIN) == PAYER.address


def test_channel_refuses_out_of_range_calls_without_advancing() -> None:
    ch = PayerChannel(PAYER, DOMAIN, OPERATOR, 1, RATE)
    for bad in (-1, 2**32):
        with pytest.raises(PayerError):
            ch.sign(bad, b"\x00" * 32)
    with pytest.raises(PayerError):
        ch.sign(1, b"\x00" * 31)
    assert (ch.nonce, ch.cumulative_tokens) == (0, 0)


def test_signer_signs_for_its_payer() -> None:
    ch = PayerChannel(SIGNER, DOMAIN, OPERATOR, 1, RATE, payer=PAYER.address)
    r = ch.sign(10, b"\x00" * 32)
    assert r.payer == PAYER.address
    assert recover_signer(r, DOMAIN) == SIGNER.address


def test_next_receipt_then_record() -> None:
    ch = PayerChannel(PAYER, DOMAIN, OPERATOR, 1, RATE)
    r = ch.next_receipt(5, b"\x00" * 32)
    assert ch.nonce == 0  # not taken until recorded
    ch.record(r)
    assert (ch.nonce, ch.cumulative_tokens) == (1, 5)
    with pytest.raises(PayerError):
        ch.record(r)


def test_book_continues_after_reopen(tmp_path: Path) -> None:
    path = tmp_path / "payer.db"
    book = ChannelBook(path)
    with book.open(PAYER, DOMAIN, OPERATOR, 1, RATE) as ch:
        ch.sign(800, b"\x01" * 32)
        ch.sign(800, b"\x02" * 32)
    book.close()
    book = ChannelBook(path)
    with book.open(PAYER, DOMAIN, OPERATOR, 1) as ch:  # the cap is remembered
        assert (ch.nonce, ch.cumulative_tokens, ch.max_rate_per_k_tokens) == (2, 1600, RATE)
        assert ch.last_receipt is not None and ch.last_receipt.nonce == 2
        r = ch.sign(100, b"\x03" * 32)
    assert (r.nonce, r.cumulative_tokens) == (3, 1700)
    keys = book.channels()
    assert [(k.model_id, n, t) for k, n, t in keys] == [(1, 3, 1700)]


def test_new_channel_needs_a_cap(tmp_path: Path) -> None:
    book = ChannelBook(tmp_path / "payer.db")
    with pytest.raises(PayerError, match="rate cap"):
        book.open(PAYER, DOMAIN, OPERATOR, 1)
    with book.open(PAYER, DOMAIN, OPERATOR, 1, RATE) as ch:  # not held after the refusal
        ch.sign(1, b"\x00" * 32)


def test_second_holder_of_a_channel_refused_and_released_on_close(tmp_path: Path) -> None:
    book = ChannelBook(tmp_path / "payer.db")
    first = book.open(PAYER, DOMAIN, OPERATOR, 1, RATE)
    with pytest.raises(ChannelInUseError, match="another process"):
        ChannelBook(tmp_path / "payer.db").open(PAYER, DOMAIN, OPERATOR, 1, RATE)
    # Other channels are free.
    book.open(PAYER, DOMAIN, OPERATOR, 2, RATE).close()
    first.close()
    with pytest.raises(PayerError, match="closed"):
        first.sign(1, b"\x00" * 32)
    ChannelBook(tmp_path / "payer.db").open(PAYER, DOMAIN, OPERATOR, 1, RATE).close()


def _hold_and_sign(path: str, ready: multiprocessing.synchronize.Event) -> None:  # type: ignore[name-defined]
    ch = ChannelBook(path).open(PAYER, DOMAIN, OPERATOR, 1, RATE)
    ch.sign(800, b"\x01" * 32)
    ready.set()
    signal.pause()


def test_other_process_refused_while_it_lives_and_its_signature_survives_a_kill(
    tmp_path: Path,
) -> None:
    """A process signs and is SIGKILLed holding the channel: while it lives another process
    is refused; after the kill the channel is free and continues after its signature."""
    path = str(tmp_path / "payer.db")
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    holder = ctx.Process(target=_hold_and_sign, args=(path, ready))
    holder.start()
    try:
        assert ready.wait(30)
        with pytest.raises(ChannelInUseError):
            ChannelBook(path).open(PAYER, DOMAIN, OPERATOR, 1, RATE)
    finally:
        os.kill(holder.pid or 0, signal.SIGKILL)
        holder.join()
    with ChannelBook(path).open(PAYER, DOMAIN, OPERATOR, 1) as ch:
        r = ch.sign(5, b"\x02" * 32)
    assert (r.nonce, r.cumulative_tokens) == (2, 805)


def test_failed_save_does_not_advance(tmp_path: Path) -> None:
    book = ChannelBook(tmp_path / "payer.db")
    ch = book.open(PAYER, DOMAIN, OPERATOR, 1, RATE)
    ch.sign(1, b"\x00" * 32)
    book.close()  # the database is gone: the next signature cannot be recorded
    with pytest.raises(Exception):  # noqa: B017 (sqlite3.ProgrammingError)
        ch.sign(2, b"\x00" * 32)
    assert (ch.nonce, ch.cumulative_tokens) == (1, 1)
    ch.close()
