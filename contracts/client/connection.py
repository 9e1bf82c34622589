"""The connection to one chain: accounts, bound contracts, and sending and calling.

zkmeter talks to either the embedded in-process chain (web3's `EthereumTesterProvider` on
py-evm, Prague fork) or any JSON-RPC node (anvil in the integration tests). Every transaction
is signed locally with an `eth_account` key and always carries an explicit `gas` limit:
py-evm's gas estimation is slow and overshoots. Gas actually used is read from the receipts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Self

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress, HexAddress, HexStr
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractLogicError
from web3.types import RPCEndpoint, TxReceipt

from contracts.client.artifacts import load_artifact
from contracts.client.codec import checksum
from contracts.client.errors import (
    ChainError,
    ContractRevertError,
    decode_revert,
    revert_data,
    tester_revert,
)
from contracts.client.records import Deployment

#: Gas limits passed with each transaction (never estimated). Deployments fit well under them.
GAS_DEPLOY = 4_000_000
GAS_TX = 300_000


class ChainConnection:
    """One chain, its accounts and (after `use` or a deployment) the zkmeter contracts.

    Accounts are local `eth_account` keys; `accounts[0]` is the default sender. On the embedded
    chain every account is funded with test ether; after `connect` only the given key (and any
    added with `add_account`) can send.
    """

    def __init__(self, w3: Web3, accounts: Sequence[LocalAccount], *, tester: Any = None) -> None:
        if not w3.is_connected():
            raise ChainError("not connected to a chain")
        self.w3 = w3
        self.accounts: list[LocalAccount] = list(accounts)
        #: The `eth_tester.EthereumTester` behind the embedded chain, or None for a node.
        self._tester = tester
        self.is_embedded = tester is not None
        self.chain_id: int = w3.eth.chain_id
        self.deployment: Deployment | None = None
        self._contracts: dict[tuple[str, str], Contract] = {}

    @classmethod
    def embedded(cls) -> Self:
        """A fresh in-process chain (py-evm, Prague) with eth-tester's 10 funded test accounts."""
        from eth_tester import EthereumTester, PyEVMBackend
        from web3 import EthereumTesterProvider

        backend = PyEVMBackend()
        tester = EthereumTester(backend)
        w3 = Web3(EthereumTesterProvider(tester))
        keys = [Account.from_key(k.to_bytes()) for k in backend.account_keys]
        return cls(w3, keys, tester=tester)

    @classmethod
    def connect(
        cls, rpc_url: str, private_key: str | bytes | None = None, *, extra_keys: Iterable[str] = ()
    ) -> Self:
        """A JSON-RPC node at `rpc_url`, sending from `private_key` (and `extra_keys`)."""
        w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 60}))
        keys = [Account.from_key(k) for k in ([private_key] if private_key else [])]
        keys += [Account.from_key(k) for k in extra_keys]
        try:
            return cls(w3, keys)
        except (OSError, ValueError) as exc:
            raise ChainError(f"cannot reach {rpc_url}: {exc}") from exc

    def add_account(self, private_key: str | bytes) -> LocalAccount:
        acct: LocalAccount = Account.from_key(private_key)
        self.accounts.append(acct)
        return acct

    @property
    def default_account(self) -> LocalAccount:
        if not self.accounts:
            raise ChainError("no signing key: give a private key or keystore")
        return self.accounts[0]

    def use(self, deployment: Deployment) -> None:
        """Point this client at an existing deployment (checks the chain id)."""
        if deployment.chain_id != self.chain_id:
            raise ChainError(
                f"deployment is for chain {deployment.chain_id}, connected to {self.chain_id}"
            )
        self.deployment = deployment

    def deployed(self) -> Deployment:
        """The deployment in use; ChainError if there is none."""
        if self.deployment is None:
            raise ChainError("no deployment: call deploy_all() or use(Deployment.load(path))")
        return self.deployment

    # ------------------------------------------------------------------ contracts

    def contract(self, name: str, address: str) -> Contract:
        """The contract `name` (artefact) at `address` (bound objects are cached)."""
        key = (name, checksum(address))
        bound = self._contracts.get(key)
        if bound is None:
            address_ = ChecksumAddress(HexAddress(HexStr(key[1])))
            bound = self.w3.eth.contract(address=address_, abi=load_artifact(name)["abi"])
            self._contracts[key] = bound
        return bound

    @property
    def token(self) -> Contract:
        return self.contract("OpenToken", self.deployed().token)

    @property
    def registry(self) -> Contract:
        return self.contract("ModelRegistry", self.deployed().registry)

    @property
    def settlement(self) -> Contract:
        return self.contract("UsageSettlement", self.deployed().settlement)

    # ------------------------------------------------------------------ sending and calling

    def transaction(self, fn: Any, sender: LocalAccount, gas: int) -> bytes:
        """Sign `fn` (a contract function call or constructor) as `sender` and broadcast it;
        returns the transaction hash without waiting. A revert raises ContractRevertError."""
        tx_params: Any = {
            "from": sender.address,
            "gas": gas,
            "nonce": self.w3.eth.get_transaction_count(sender.address, "pending"),
            "chainId": self.chain_id,
        }
        try:
            tx: Any = fn.build_transaction(tx_params)
            signed = sender.sign_transaction(tx)
            return bytes(self.w3.eth.send_raw_transaction(signed.raw_transaction))
        except ContractLogicError as exc:
            raise decode_revert(revert_data(exc)) from exc

    def send(self, fn: Any, sender: LocalAccount | None, gas: int) -> TxReceipt:
        """Sign and send `fn`, wait for it to be mined; raise ContractRevertError on revert."""
        tx_hash = self.transaction(fn, sender or self.default_account, gas)
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120)  # type: ignore[arg-type]
        if receipt["status"] != 1:
            raise self.revert_reason(tx_hash)
        return receipt

    def call(self, fn: Any, tx: dict[str, Any] | None = None) -> Any:
        """Call a function without a transaction (eth_call, against the latest block; `tx` sets
        e.g. `from` and `gas` for a dry run); a revert raises `ContractRevertError` with the
        decoded error."""
        try:
            return fn.call(tx) if tx else fn.call()
        except ContractLogicError as exc:
            raise decode_revert(revert_data(exc)) from exc
        except Exception as exc:
            if self._tester is not None and type(exc).__name__ == "TransactionFailed":
                raise tester_revert(exc) from exc
            raise

    def revert_reason(self, tx_hash: bytes) -> ContractRevertError:
        """Why a mined transaction failed: replayed as a call on the state before its block."""
        tx = self.w3.eth.get_transaction(tx_hash)  # type: ignore[arg-type]
        receipt = self.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
        call = {"from": tx["from"], "data": tx["input"], "gas": tx["gas"]}
        if tx["to"] is not None:  # None: a contract creation
            call["to"] = tx["to"]
        block = receipt["blockNumber"] - 1
        if self._tester is not None:
            from eth_tester.exceptions import TransactionFailed

            try:
                self._tester.call(
                    {k: (v.hex() if isinstance(v, bytes) else v) for k, v in call.items()}, block
                )
            except TransactionFailed as exc:
                return tester_revert(exc)
        else:
            try:
                self.w3.eth.call(call, block)  # type: ignore[arg-type]
            except ContractLogicError as exc:
                return decode_revert(revert_data(exc))
        return ContractRevertError("", (), f"status 0 in tx 0x{tx_hash.hex()}")

    def deploy_contract(
        self, name: str, *args: Any, sender: LocalAccount | None = None, gas: int = GAS_DEPLOY
    ) -> Contract:
        """Deploy artefact `name` with constructor `args`; returns the bound contract."""
        art = load_artifact(name)
        if art["bytecode"] in ("", "0x"):
            raise ChainError(f"{name} is abstract or an interface: nothing to deploy")
        factory = self.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
        receipt = self.send(factory.constructor(*args), sender, gas)
        address = receipt["contractAddress"]
        if address is None:
            raise ChainError(f"deploying {name} created no contract")
        return self.contract(name, address)

    def latest_timestamp(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def rpc(self, method: str, params: list[Any]) -> Any:
        """A raw JSON-RPC request (test and dev-node methods web3 has no typed call for)."""
        return self.w3.manager.request_blocking(RPCEndpoint(method), params)


__all__ = ["GAS_DEPLOY", "GAS_TX", "ChainConnection"]
