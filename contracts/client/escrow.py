"""The token, escrow accounts per (payer, operator), receipt signers, and creators' earnings."""

from __future__ import annotations

from eth_account.signers.local import LocalAccount
from web3.logs import DISCARD
from web3.types import TxReceipt

from contracts.client.codec import checksum, escrow_account_from_abi
from contracts.client.connection import GAS_TX, ChainConnection
from contracts.client.records import EscrowAccount


class EscrowOps(ChainConnection):
    # -- the token

    def mint(self, to: str, amount: int, *, sender: LocalAccount | None = None) -> TxReceipt:
        """Mint demo tokens (token owner only)."""
        return self.send(self.token.functions.mint(checksum(to), amount), sender, GAS_TX)

    def token_decimals(self) -> int:
        return int(self.call(self.token.functions.decimals()))

    def token_balance(self, owner: str) -> int:
        return int(self.call(self.token.functions.balanceOf(checksum(owner))))

    def token_symbol(self) -> str:
        """The token's `symbol()` ("OPEN" for zkmeter's own token)."""
        return str(self.call(self.token.functions.symbol()))

    def token_owner(self) -> str:
        """The account that may mint (`owner()` of zkmeter's OpenToken; a token without an
        owner raises ChainError)."""
        return checksum(self.call(self.token.functions.owner()))

    # -- escrow accounts

    def approve_and_deposit(
        self, operator: str, amount: int, *, sender: LocalAccount | None = None
    ) -> TxReceipt:
        """Approve the settlement contract for `amount` and deposit it into `sender`'s escrow
        account for `operator`."""
        self.send(self.token.functions.approve(self.deployed().settlement, amount), sender, GAS_TX)
        fn = self.settlement.functions.deposit(checksum(operator), amount)
        return self.send(fn, sender, GAS_TX)

    def request_withdrawal(
        self, operator: str, amount: int, *, sender: LocalAccount | None = None
    ) -> int:
        """Start thawing `amount` of the account for `operator`; returns the timestamp from
        which `withdraw` pays."""
        fn = self.settlement.functions.requestWithdrawal(checksum(operator), amount)
        receipt = self.send(fn, sender, GAS_TX)
        (event,) = self.settlement.events.WithdrawalRequested().process_receipt(
            receipt, errors=DISCARD
        )
        return int(event["args"]["readyAt"])

    def cancel_withdrawal(self, operator: str, *, sender: LocalAccount | None = None) -> TxReceipt:
        fn = self.settlement.functions.cancelWithdrawal(checksum(operator))
        return self.send(fn, sender, GAS_TX)

    def withdraw(self, operator: str, *, sender: LocalAccount | None = None) -> int:
        """Complete a thawed withdrawal from the account for `operator`; returns the amount."""
        receipt = self.send(self.settlement.functions.withdraw(checksum(operator)), sender, GAS_TX)
        (event,) = self.settlement.events.Withdrawn().process_receipt(receipt, errors=DISCARD)
        return int(event["args"]["amount"])

    def escrow_account(self, payer: str, operator: str) -> EscrowAccount:
        fn = self.settlement.functions.accountOf(checksum(payer), checksum(operator))
        return escrow_account_from_abi(self.call(fn))

    def escrow_balance(self, payer: str, operator: str) -> int:
        """The (payer, operator) account's balance (thawing funds included)."""
        return self.escrow_account(payer, operator).balance

    def available_escrow(self, payer: str, operator: str) -> int:
        """The (payer, operator) balance net of the amount thawing."""
        return self.call_uint(
            self.settlement, "availableEscrow", checksum(payer), checksum(operator)
        )

    # -- signers

    def authorize_signer(self, signer: str, *, sender: LocalAccount | None = None) -> TxReceipt:
        """Let `signer` sign `sender`'s receipts (until revoked and thawed)."""
        return self.send(
            self.settlement.functions.authorizeSigner(checksum(signer)), sender, GAS_TX
        )

    def revoke_signer(self, signer: str, *, sender: LocalAccount | None = None) -> int:
        """Revoke `signer` after the thawing period; returns when it takes effect."""
        receipt = self.send(
            self.settlement.functions.revokeSigner(checksum(signer)), sender, GAS_TX
        )
        (event,) = self.settlement.events.SignerRevoked().process_receipt(receipt, errors=DISCARD)
        return int(event["args"]["effectiveAt"])

    def signer_authorized_until(self, payer: str, signer: str) -> int:
        """Until when `signer` may sign `payer`'s receipts (0: never; 2^64-1: no revocation)."""
        fn = self.settlement.functions.signerAuthorizedUntil(checksum(payer), checksum(signer))
        return int(self.call(fn))

    def is_authorized_signer(self, payer: str, signer: str) -> bool:
        fn = self.settlement.functions.isAuthorizedSigner(checksum(payer), checksum(signer))
        return bool(self.call(fn))

    # -- creators' earnings

    def earnings(self, owner: str) -> int:
        return int(self.call(self.settlement.functions.earnings(checksum(owner))))

    def withdraw_earnings(self, *, sender: LocalAccount | None = None) -> int:
        receipt = self.send(self.settlement.functions.withdrawEarnings(), sender, GAS_TX)
        (event,) = self.settlement.events.EarningsWithdrawn().process_receipt(
            receipt, errors=DISCARD
        )
        return int(event["args"]["amount"])


__all__ = ["EscrowOps"]
