"""The connection to one chain: accounts, bound contracts, and sending and calling.

zkmeter talks to either the embedded in-process chain (web3's `EthereumTesterProvider` on
py-evm, Prague fork) or any JSON-RPC node (anvil in the integration tests). Every transaction
is signed locally with an `eth_account` key and always carries an explicit `gas` limit:
py-evm's gas estimation is slow and overshoots. Gas actually used is read from the receipts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Self

from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress, HexAddress, HexStr
from eth_utils.abi import function_signature_to_4byte_selector
from eth_utils.address import to_checksum_address
from web3 import HTTPProvider, Web3
from web3.contract import Contract
from web3.exceptions import (
    BadFunctionCallOutput,
    ContractLogicError,
    ProviderConnectionError,
    Web3RPCError,
)
from web3.types import RPCEndpoint, TxReceipt

from contracts.client.artifacts import load_artifact
from contracts.client.codec import checksum
from contracts.client.errors import (
    ChainError,
    ContractRevertError,
    InsufficientFundsError,
    NoContractError,
    NodeRequestError,
    NodeUnreachableError,
    WrongChainError,
    connection_reason,
    decode_revert,
    is_insufficient_funds,
    revert_data,
    rpc_message,
    tester_revert,
)
from contracts.client.records import Deployment

_SIGNATURES: dict[tuple[str, str], tuple[bytes, list[str]]] = {}


def _signature(contract: Contract, name: str) -> tuple[bytes, list[str]]:
    """The 4-byte selector and argument types of `contract`'s one function `name` (cached)."""
    key = (contract.address, name)
    found = _SIGNATURES.get(key)
    if found is None:
        entries: list[dict[str, Any]] = [dict(item) for item in contract.abi]
        (abi,) = [e for e in entries if e.get("type") == "function" and e.get("name") == name]
        types = [str(arg["type"]) for arg in abi["inputs"]]
        selector = function_signature_to_4byte_selector(f"{name}({','.join(types)})")
        found = _SIGNATURES[key] = (selector, types)
    return found


#: Gas limits passed with each transaction (never estimated). Deployments fit well under them.
GAS_DEPLOY = 4_000_000
GAS_TX = 300_000
#: Where the embedded chain "is", in messages.
EMBEDDED = "the embedded chain"


class ChainConnection:
    """One chain, its accounts and (after `use` or a deployment) the zkmeter contracts.

    Accounts are local `eth_account` keys; `accounts[0]` is the default sender. On the embedded
    chain every account is funded with test ether; after `connect` only the given key (and any
    added with `add_account`) can send.
    """

    def __init__(
        self,
        w3: Web3,
        accounts: Sequence[LocalAccount],
        *,
        tester: Any = None,
        endpoint: str = EMBEDDED,
    ) -> None:
        #: The node's URL (or `EMBEDDED`), for messages.
        self.endpoint = endpoint
        try:
            connected = w3.is_connected(show_traceback=True)
        except ProviderConnectionError as exc:  # wraps the HTTP layer's error: explain that
            reason = connection_reason(exc.__cause__ or exc.__context__ or exc)
            raise NodeUnreachableError(endpoint, reason) from exc
        if not connected:
            raise NodeUnreachableError(endpoint, "no JSON-RPC answer to web3_clientVersion")
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
        """A JSON-RPC node at `rpc_url`, sending from `private_key` (and `extra_keys`).
        `NodeUnreachableError` if nothing answers there."""
        try:
            # web3's validation middleware asks the node for eth_chainId before every call and
            # transaction; one node URL is one chain (`ChainClient` reads and keeps its id
            # once), so that answer is cached: about half of a call's Python time otherwise.
            provider = HTTPProvider(
                rpc_url,
                request_kwargs={"timeout": 60},
                cache_allowed_requests=True,
                cacheable_requests={RPCEndpoint("eth_chainId")},
            )
        except (TypeError, ValueError) as exc:
            raise NodeUnreachableError(rpc_url, "not a valid http(s) URL") from exc
        w3 = Web3(provider)
        try:
            keys = [Account.from_key(k) for k in ([private_key] if private_key else [])]
            keys += [Account.from_key(k) for k in extra_keys]
        except (TypeError, ValueError) as exc:  # never echo the key itself
            raise ChainError("the signing key is not a 32-byte hex private key") from exc
        try:
            return cls(w3, keys, endpoint=rpc_url)
        except (OSError, ValueError) as exc:
            raise NodeUnreachableError(rpc_url, connection_reason(exc)) from exc

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
        """Point this client at an existing deployment of this chain (`WrongChainError` if it
        is another chain's); `check_deployed` then checks that its contracts are there."""
        if deployment.chain_id != self.chain_id:
            raise WrongChainError(deployment.chain_id, self.chain_id, self.endpoint)
        self.deployment = deployment

    def check_deployed(self) -> None:
        """`NoContractError` unless every contract of the deployment in use has code on this
        chain (a transaction to an empty address would succeed and do nothing: a node that was
        restarted, or a deployment file of another node of the same chain id)."""
        dep = self.deployed()
        named = [("token", dep.token), ("registry", dep.registry), ("settlement", dep.settlement)]
        named += [(f"verifier for 2^{k}", v) for k, v in sorted(dep.verifiers.items())]
        for what, address in named:
            if not self.has_code(address):
                raise NoContractError(f"the deployment's {what}", checksum(address), self.endpoint)

    def has_code(self, address: str) -> bool:
        """True if a contract's code is at `address` on this chain."""
        return len(self.w3.eth.get_code(to_checksum_address(address))) > 0

    def client_version(self) -> str:
        """The node's `web3_clientVersion` ("anvil/v1.7.1", "Geth/v1.14...", ...)."""
        return str(self.w3.client_version)

    def eth_balance(self, address: str) -> int:
        """The ether (wei) `address` holds, to pay for gas."""
        return int(self.w3.eth.get_balance(to_checksum_address(address)))

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
        tx: Any = {}
        try:
            tx = fn.build_transaction(tx_params)
            signed = sender.sign_transaction(tx)
            return bytes(self.w3.eth.send_raw_transaction(signed.raw_transaction))
        except ContractLogicError as exc:
            raise decode_revert(revert_data(exc)) from exc
        except Web3RPCError as exc:
            raise self._refusal(rpc_message(exc), sender, tx) from exc
        except Exception as exc:
            if self._tester is not None and is_insufficient_funds(str(exc)):
                raise self._refusal(str(exc), sender, tx) from exc
            raise

    def _refusal(self, message: str, sender: LocalAccount, tx: dict[str, Any]) -> ChainError:
        """The error for a transaction the node would not take: `InsufficientFundsError` (with
        the sender's ether and the most the transaction could cost) or `NodeRequestError`."""
        if not is_insufficient_funds(message):
            return NodeRequestError(f"the transaction from {sender.address}", message)
        price = tx.get("maxFeePerGas", tx.get("gasPrice"))
        cost = None if price is None else int(tx["gas"]) * int(price) + int(tx.get("value", 0))
        try:
            balance: int | None = self.eth_balance(sender.address)
        except (ChainError, Web3RPCError):
            balance = None
        return InsufficientFundsError(sender.address, balance, cost)

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
        except BadFunctionCallOutput as exc:
            address = checksum(fn.address)
            if not self.has_code(address):
                raise NoContractError("called by zkmeter", address, self.endpoint) from exc
            raise ChainError(
                f"the contract at {address} gave no answer to {fn.fn_name}(): is it the "
                "contract the deployment names?"
            ) from exc
        except Web3RPCError as exc:
            raise NodeRequestError(f"a call of {fn.fn_name}()", rpc_message(exc)) from exc
        except Exception as exc:
            if self._tester is not None and type(exc).__name__ == "TransactionFailed":
                raise tester_revert(exc) from exc
            raise

    def call_uint(self, contract: Contract, name: str, *args: Any) -> int:
        """`contract.name(*args)` for a view that returns one uint, as one raw `eth_call`
        through the provider: web3's contract-call path (request formatters, middleware,
        ABI decoding) costs about 5 ms of CPU a call on anvil, this about 1.3 ms, and the
        daemon reads every active payer's escrow this way each `escrow_ttl`. Any other
        answer (a revert, an error, a node that cannot be reached, the embedded chain) takes
        the ordinary path, which raises the decoded error."""
        if self._tester is None:
            try:
                selector, types = _signature(contract, name)
                data = "0x" + (selector + abi_encode(types, args)).hex()
                response = self.w3.provider.make_request(
                    RPCEndpoint("eth_call"), [{"to": contract.address, "data": data}, "latest"]
                )
            except Exception:
                response = None
            result = response.get("result") if isinstance(response, dict) else None
            if isinstance(result, str) and len(result) == 66 and result.startswith("0x"):
                return int(result, 16)
        return int(self.call(contract.get_function_by_name(name)(*args)))

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


__all__ = ["EMBEDDED", "GAS_DEPLOY", "GAS_TX", "ChainConnection"]
