"""End-to-end settlement on a real JSON-RPC node (anvil)."""

from __future__ import annotations

import pytest

from contracts.client import ANVIL_CHAIN_ID, Aggregate, ChainClient, ContractRevertError, Deployment
from tests.anvil import anvil_keys, anvil_url, requires_anvil

__all__ = ["anvil_url"]  # fixture

pytestmark = [pytest.mark.anvil, requires_anvil]


def test_worked_example_settles_on_anvil(anvil_url: str, tmp_path) -> None:
    keys = anvil_keys(4)
    c = ChainClient.connect(anvil_url, keys[0], extra_keys=keys[1:])
    assert c.chain_id == ANVIL_CHAIN_ID
    _deployer, owner, payer, operator = c.accounts
    mock = c.deploy_contract("MockUsageVerifier", 10, True)
    dep = c.deploy_all(3600, 7200, verifiers=[mock.address])
    dep.save(tmp_path / "deployment.json")
    assert Deployment.load(tmp_path / "deployment.json") == dep
    assert dep.verifiers == {10: mock.address}

    model_id = c.register_model(b"\x42" * 32, 2 * 10**15, "ipfs://m", sender=owner)
    c.mint(payer.address, 10**18)
    c.approve_and_deposit(10**17, sender=payer)
    c.authorize_operator(operator.address, sender=payer)
    agg = Aggregate(payer.address, model_id, 0, 12, 9_600)
    receipt = c.settle(operator, 0, 10, [agg], b"proof")
    assert receipt["status"] == 1
    assert c.earnings(owner.address) == 19_200_000_000_000_000
    assert c.last_nonce(payer.address, operator.address, model_id) == 12
    (batch,) = c.batch_events()
    assert batch.channels[0].first_nonce == 1

    # Negative twin on the node: the replay is refused with the decoded custom error.
    with pytest.raises(ContractRevertError) as info:
        c.settle(operator, 0, 10, [agg], b"proof")
    assert (info.value.error, info.value.args_) == ("WrongBatchSeq", (operator.address, 1, 0))
    assert c.earnings(owner.address) == 19_200_000_000_000_000

    # Time travel on anvil: the thawing period.
    c.request_withdrawal(10**16, sender=payer)
    with pytest.raises(ContractRevertError) as info:
        c.withdraw(sender=payer)
    assert info.value.error == "StillThawing"
    c.advance_time(7200)
    assert c.withdraw(sender=payer) == 10**16
