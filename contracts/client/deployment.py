"""Deploying the contracts, and the settlement owner's delayed verifier changes."""

from __future__ import annotations

from collections.abc import Sequence

from eth_account.signers.local import LocalAccount
from web3.logs import DISCARD
from web3.types import TxReceipt

from contracts.client.codec import checksum
from contracts.client.connection import GAS_TX, ChainConnection
from contracts.client.records import ZERO_ADDRESS, Deployment
from verifier.keys import VerificationKey

#: The generated Solidity verifier (contracts/codegen.py): one contract for 2^8..2^20 rows.
USAGE_VERIFIER = "UsageVerifier8"

#: Default verifier-change delay beyond the thawing period: payers see a proposal and still
#: have a day to start thawing before it could apply.
DEFAULT_VERIFIER_DELAY_MARGIN = 24 * 3600


class DeploymentOps(ChainConnection):
    def deploy_all(
        self,
        rate_notice_period: int,
        thawing_period: int,
        verifiers: Sequence[str] = (),
        *,
        verifier_change_delay: int | None = None,
        token: str | None = None,
        owner: LocalAccount | None = None,
    ) -> Deployment:
        """Deploy OpenToken (unless `token` is an existing ERC-20), ModelRegistry and
        UsageSettlement with `verifiers` (deployed IUsageVerifier addresses) in force from the
        start. Later verifier changes wait `verifier_change_delay` seconds (default: the
        thawing period + 1 day). The deployer owns the token and the settlement contract.

        The contracts refuse periods over a year, `thawing_period` of 0 or not below
        `rate_notice_period`, and a verifier delay not above the thawing period."""
        acct = owner or self.default_account
        delay = thawing_period + DEFAULT_VERIFIER_DELAY_MARGIN
        if verifier_change_delay is not None:
            delay = verifier_change_delay
        token_addr = (
            checksum(token)
            if token
            else self.deploy_contract("OpenToken", acct.address, sender=acct).address
        )
        registry = self.deploy_contract("ModelRegistry", rate_notice_period, sender=acct)
        settlement = self.deploy_contract(
            "UsageSettlement",
            token_addr,
            registry.address,
            thawing_period,
            delay,
            [checksum(v) for v in verifiers],
            acct.address,
            sender=acct,
        )
        installed = {self.verifier_domain(v): checksum(v) for v in verifiers}
        self.deployment = Deployment(
            chain_id=self.chain_id,
            token=token_addr,
            registry=registry.address,
            settlement=settlement.address,
            deployer=acct.address,
            rate_notice_period=rate_notice_period,
            thawing_period=thawing_period,
            verifier_change_delay=delay,
            block_number=self.w3.eth.block_number,
            verifiers=installed,
        )
        return self.deployment

    def deploy_usage_verifier(
        self, vk: VerificationKey, *, sender: LocalAccount | None = None
    ) -> str:
        """Deploy the generated Solidity verifier (UsageVerifier8, every domain size from 2^8
        to 2^20 since protocol v2), the key's domain size and table built in."""
        contract = self.deploy_contract(
            USAGE_VERIFIER, vk.k, list(vk.table_commitment), vk.g2_tau_words(), sender=sender
        )
        return str(contract.address)

    def verifier_domain(self, verifier: str) -> int:
        """log2 of the domain size a deployed IUsageVerifier is for."""
        fn = self.contract("IUsageVerifier", verifier).functions.logDomainSize()
        return int(self.call(fn))

    def propose_verifier(
        self, k: int, verifier: str | None, *, owner: LocalAccount | None = None
    ) -> int:
        """Announce `verifier` (None to remove) for 2^log_domain_size rows (settlement owner
        only); returns the timestamp from which `apply_verifier` may put it in force."""
        address = checksum(verifier) if verifier else ZERO_ADDRESS
        fn = self.settlement.functions.proposeVerifier(k, address)
        receipt = self.send(fn, owner, GAS_TX)
        (event,) = self.settlement.events.VerifierProposed().process_receipt(
            receipt, errors=DISCARD
        )
        return int(event["args"]["readyAt"])

    def cancel_verifier_proposal(self, k: int, *, owner: LocalAccount | None = None) -> TxReceipt:
        fn = self.settlement.functions.cancelVerifierProposal(k)
        return self.send(fn, owner, GAS_TX)

    def apply_verifier(self, k: int, *, owner: LocalAccount | None = None) -> str:
        """Put the proposal for 2^log_domain_size rows in force once its delay has passed;
        returns the verifier now in force (the zero address if removed)."""
        self.send(self.settlement.functions.applyVerifier(k), owner, GAS_TX)
        address = self.verifier_for(k)
        if address == ZERO_ADDRESS:
            self.deployed().verifiers.pop(k, None)
        else:
            self.deployed().verifiers[k] = address
        return address

    def verifier_for(self, k: int) -> str:
        return checksum(self.call(self.settlement.functions.verifierFor(k)))

    def verifier_proposal(self, k: int) -> tuple[str, int]:
        """(proposed verifier, ready-at timestamp); (zero address, 0) when none is pending."""
        verifier, ready_at = self.call(self.settlement.functions.verifierProposalFor(k))
        return checksum(verifier), int(ready_at)


__all__ = ["DEFAULT_VERIFIER_DELAY_MARGIN", "DeploymentOps"]
