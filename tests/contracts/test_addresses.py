"""Addresses with leading zero bytes (about 1 payer in 256) through every path that carries a
payer or an operator: public inputs and proof files, receipts and receipts files, the chain
codec, and, end to end on anvil, the daemon's submission, `zkmeter verify --batch` from the
chain's events, and the archive audit.

`to_checksum_address(int)` drops leading zero bytes, which once made `zkmeter settle` crash
for such payers; every conversion now goes through `contracts.client.codec.checksum`."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from eth_account import Account
from eth_utils.address import to_checksum_address
from hypothesis import example, given, settings
from hypothesis import strategies as st

from channels.receipts import SignedReceipt, latest_receipts
from channels.receipts_file import RECEIPTS_FORMAT, parse_receipts
from circuits.public_inputs import Aggregate, BatchHeader, PublicInputs
from contracts.client import ChainClient, checksum
from contracts.client.codec import aggregate_abi
from tests.support.anvil import anvil_keys, requires_anvil

#: Addresses, most of them with one or more leading zero bytes.
addresses = st.one_of(
    st.integers(0, (1 << 152) - 1),
    st.integers(0, (1 << 136) - 1),
    st.integers(0, (1 << 160) - 1),
)


@settings(max_examples=200, deadline=None)
@example(payer=1, operator=0)
@example(payer=(1 << 152) - 1, operator=1 << 152)
@given(payer=addresses, operator=addresses)
def test_addresses_survive_every_conversion(payer: int, operator: int) -> None:
    hexed = checksum(payer)
    assert len(hexed) == 42 and int(hexed, 16) == payer
    assert hexed == to_checksum_address(f"0x{payer:040x}")
    assert checksum(hexed.lower()) == hexed
    # the ABI tuple the contract gets
    aggregate = Aggregate(payer, 7, 1, 3, 2_400)
    assert aggregate_abi(aggregate)[0] == hexed
    # public inputs and their JSON (proof files carry them)
    header = BatchHeader(31337, 0x5E, operator, 0)
    public = PublicInputs(header, 8, (aggregate,))
    assert PublicInputs.from_json(public.to_json()) == public
    # a receipt and a receipts file
    receipt = SignedReceipt(hexed, checksum(operator), 7, 1, 800, 1, b"\x01" * 32, b"\x02" * 65)
    assert SignedReceipt.from_json(receipt.to_json()) == receipt
    assert list(latest_receipts([receipt])) == [(payer, 7)]
    data = {
        "format": RECEIPTS_FORMAT,
        **header.to_json(),
        "receipts": [{**receipt.to_json(), "tokens": 800}],
    }
    _, rows, _ = parse_receipts(data)
    assert (rows[0].payer, rows[0].model_id) == (payer, 7)


def test_an_address_beyond_160_bits_is_refused() -> None:
    from contracts.client import ChainError

    with pytest.raises(ChainError, match="20-byte"):
        checksum(1 << 160)


def _zero_byte_key() -> Account:
    for i in range(1, 100_000):
        account = Account.from_key(i.to_bytes(32, "big"))
        if account.address.startswith("0x00"):
            return account
    raise AssertionError("no key below 100,000 has an address starting with a zero byte")


@pytest.mark.slow
@pytest.mark.anvil
@requires_anvil
def test_zero_byte_payer_through_the_daemon_the_chain_and_the_archive(
    anvil_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from operator_service.config import DaemonConfig
    from operator_service.pipeline import Operator
    from operator_service.store import SETTLED, ReceiptStore
    from zkmeter.cli import main
    from zkmeter.devworld import DEV_LOG_SIZE, deploy_dev_world, development_proving_key

    keys = anvil_keys(3)
    client = ChainClient.connect(anvil_url, keys[0], extra_keys=keys[1:])
    owner, operator = client.accounts[1:3]
    payer = _zero_byte_key()
    client.add_account(payer.key)
    client.set_balance(payer.address, 10**18)
    world = deploy_dev_world(client, [payer], owner, operator)
    store = ReceiptStore(f"sqlite:///{tmp_path / 'op.db'}")
    archive = tmp_path / "archive"
    config = DaemonConfig(DEV_LOG_SIZE, archive=archive, prove_in_subprocess=False)
    op = Operator(client, operator, store, development_proving_key(), config)
    channel = world.payer_channel(payer, world.models[0])
    for tokens in (800, 5, 1_200):
        assert op.admit(channel.sign(tokens, bytes([tokens % 256]) * 32).to_json()) == "admitted"
    op.drain()
    assert store.counts()[SETTLED] == 3
    (batch,) = client.batch_events(operator=operator.address)
    assert batch.channels[0].payer == payer.address
    assert (
        client.channel(payer.address, operator.address, world.models[0]).cumulative_tokens == 2005
    )

    # Re-checked from the chain's events and calldata, and from the archive.
    client.deployment.save(tmp_path / "deployment.json")  # type: ignore[union-attr]
    development_proving_key().vk.save(tmp_path / "vk.json")
    development_proving_key().srs.save(tmp_path / "dev.srs")
    chain_args = ["--rpc-url", anvil_url, "--deployment", str(tmp_path / "deployment.json")]
    runner = CliRunner()
    vk = ["--vk", str(tmp_path / "vk.json")]
    from_chain = runner.invoke(
        main, ["verify", *chain_args, "--operator", operator.address, "--batch", "0", *vk]
    )
    assert from_chain.exit_code == 0, from_chain.output
    assert (
        "ACCEPTED: batch 0" in from_chain.output
        and payer.address.lower()[2:] in (from_chain.output.lower())
    ) or "2005" in from_chain.output
    srs = ["--srs", str(tmp_path / "dev.srs")]
    audited = runner.invoke(
        main, ["verify", "--archive", str(archive), "--batch", "0", *srs, *chain_args]
    )
    assert audited.exit_code == 0, audited.output
    assert "3 signed receipt(s)" in audited.output
    assert "settled on chain with this proof" in audited.output
