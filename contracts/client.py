"""The one web3 client of zkmeter: deploys the contracts, settles batches and reads chain state.

This is the only module that imports web3. It talks to either the embedded in-process chain
(web3's `EthereumTesterProvider` on py-evm, Prague fork) or any JSON-RPC node (anvil in the
integration tests). Every transaction is signed locally with an `eth_account` key and always
carries an explicit `gas` limit: py-evm's gas estimation is slow and overshoots. Gas actually
used is read from the receipts.

Amounts are integers in token base units; rates are base units per 1,000 tokens of usage
(`UsageSettlement.settle` debits `tokens * rate // 1000`).
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.abi import function_signature_to_4byte_selector
from eth_utils.address import to_checksum_address
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD
from web3.types import RPCEndpoint, TxReceipt

from verifier.keys import VerificationKey

ARTIFACTS_DIR = Path(__file__).resolve().parent / "artifacts"

#: Gas limits passed with each transaction (never estimated). Deployments fit well under them.
GAS_DEPLOY = 4_000_000
GAS_TX = 300_000
#: settle: a base, a per-channel allowance (measured: ~36k a new channel, ~18k a channel seen
#: before; benches/bench_gas.py) and the
#: verifier's budget (a two-pairing check alone is 113,440 gas).
GAS_SETTLE_BASE = 150_000
GAS_SETTLE_PER_CHANNEL = 60_000
GAS_VERIFIER_BUDGET = 2_500_000

ANVIL_CHAIN_ID = 31337
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
#: Default verifier-change delay beyond the thawing period: payers see a proposal and still
#: have a day to start thawing before it could apply.
DEFAULT_VERIFIER_DELAY_MARGIN = 24 * 3600


class ChainError(Exception):
    """A chain operation failed for a reason other than a contract revert."""


class ContractRevertError(ChainError):
    """A transaction or call reverted: `error` names the decoded custom error, `args_` its values.

    For example `ContractRevertError("InsufficientEscrow", (payer, needed, available))`.
    """

    def __init__(self, error: str, args: tuple[Any, ...], data: str = "") -> None:
        self.error = error
        self.args_ = args
        self.data = data
        super().__init__(f"reverted with {error}{args!r}" if error else f"reverted ({data})")


@dataclass(frozen=True)
class Aggregate:
    """One channel's total in a batch, as the contracts see it (struct `Aggregate`)."""

    payer: str
    model_id: int
    first_nonce: int
    count: int
    tokens: int

    @property
    def key(self) -> int:
        """The channel's ordering key: payer + 2^160 * modelId."""
        return int(self.payer, 16) | (self.model_id << 160)

    def as_tuple(self) -> tuple[str, int, int, int, int]:
        return (
            to_checksum_address(self.payer),
            self.model_id,
            self.first_nonce,
            self.count,
            self.tokens,
        )


def aggregate_tuple(a: Any) -> tuple[str, int, int, int, int]:
    """The ABI tuple of an aggregate given as an `Aggregate`, any object with the attributes
    payer, model_id, first_nonce, count, tokens, or a 5-tuple in that order."""
    if isinstance(a, Aggregate):
        return a.as_tuple()
    if isinstance(a, tuple | list):
        payer, model_id, first_nonce, count, tokens = a
    else:
        payer, model_id, first_nonce, count, tokens = (
            a.payer,
            a.model_id,
            a.first_nonce,
            a.count,
            a.tokens,
        )
    return (_checksum(payer), int(model_id), int(first_nonce), int(count), int(tokens))


def _checksum(address: str | int) -> str:
    """The checksummed address of a hex string or an integer (an integer is padded to 20
    bytes: `to_checksum_address(int)` drops leading zero bytes)."""
    if isinstance(address, int):
        if not 0 <= address < 1 << 160:
            raise ChainError(f"{address:#x} is not a 20-byte address")
        return str(to_checksum_address(f"0x{address:040x}"))
    return str(to_checksum_address(address))


@dataclass(frozen=True)
class SignedState:
    """The payer's consent to a channel's new state in a batch (struct `SignedState`): the
    rate cap and request hash of the channel's last receipt in the batch, and its signature.
    The contract rebuilds the rest of the receipt (payer, operator, model, nonce, cumulative)."""

    max_rate_per_k_tokens: int
    request_hash: bytes
    signature: bytes

    def as_tuple(self) -> tuple[int, bytes, bytes]:
        return (self.max_rate_per_k_tokens, self.request_hash, self.signature)

    @classmethod
    def of(cls, receipt: Any) -> SignedState:
        """The signed state of a receipt (any object with `max_rate_per_k_tokens`,
        `request_hash` and `signature`, e.g. a `prover.receipts.SignedReceipt`)."""
        return cls(receipt.max_rate_per_k_tokens, receipt.request_hash, receipt.signature)


@dataclass(frozen=True)
class EscrowAccount:
    """A (payer, operator) escrow account: `thawing` of `balance` is withdrawable from
    `thaw_ends_at` (0: no withdrawal requested)."""

    balance: int
    thawing: int
    thaw_ends_at: int

    @property
    def available(self) -> int:
        """The balance net of the amount thawing (what backs newly admitted usage)."""
        return max(self.balance - self.thawing, 0)


@dataclass(frozen=True)
class ChannelState:
    """A channel (payer, operator, model) as settled: last nonce and cumulative tokens."""

    nonce: int
    cumulative_tokens: int


@dataclass
class Deployment:
    """Where the contracts live; saved as JSON so the CLI and the daemon can find them."""

    chain_id: int
    token: str
    registry: str
    settlement: str
    deployer: str
    rate_notice_period: int
    thawing_period: int
    verifier_change_delay: int
    block_number: int
    #: logDomainSize -> verifier address
    verifiers: dict[int, str] = field(default_factory=dict)

    def to_json(self) -> str:
        d = asdict(self)
        d["verifiers"] = {str(k): v for k, v in sorted(self.verifiers.items())}
        return json.dumps(d, sort_keys=True, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Deployment:
        d = json.loads(text)
        d["verifiers"] = {int(k): v for k, v in d.get("verifiers", {}).items()}
        return cls(**d)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Deployment:
        return cls.from_json(Path(path).read_text(encoding="utf-8"))


@dataclass(frozen=True)
class ChannelSettled:
    """A `ChannelSettled` event (`rate_per_k_tokens` is the rate charged: min(current, cap))."""

    operator: str
    payer: str
    model_id: int
    batch_seq: int
    first_nonce: int
    count: int
    tokens: int
    cumulative_tokens: int
    rate_per_k_tokens: int
    amount: int
    model_owner: str


@dataclass(frozen=True)
class BatchSettled:
    """A `BatchSettled` event with the `ChannelSettled` events of the same transaction."""

    operator: str
    batch_seq: int
    log_domain_size: int
    proof_hash: bytes
    witness_commitments: bytes
    total_tokens: int
    total_amount: int
    block_number: int
    transaction_hash: bytes
    channels: tuple[ChannelSettled, ...]


@cache
def load_artifact(name: str) -> dict[str, Any]:
    """The compiled artefact `contracts/artifacts/<name>.json` (abi, bytecode, ...)."""
    path = ARTIFACTS_DIR / f"{name}.json"
    if not path.is_file():
        raise ChainError(f"no artefact {path}; run `python -m contracts.build`")
    artifact: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return artifact


@cache
def _error_table() -> dict[bytes, tuple[str, list[str]]]:
    """4-byte selector -> (name, input types) of every custom error in every artefact."""
    table: dict[bytes, tuple[str, list[str]]] = {}
    table[bytes.fromhex("08c379a0")] = ("Error", ["string"])
    table[bytes.fromhex("4e487b71")] = ("Panic", ["uint256"])
    for path in sorted(ARTIFACTS_DIR.glob("*.json")):
        for item in json.loads(path.read_text(encoding="utf-8")).get("abi", []):
            if item.get("type") != "error":
                continue
            types = [_abi_type(i) for i in item["inputs"]]
            sig = f"{item['name']}({','.join(types)})"
            table[function_signature_to_4byte_selector(sig)] = (item["name"], types)
    return table


def _abi_type(param: dict[str, Any]) -> str:
    t: str = param["type"]
    if t.startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in param["components"]) + ")" + t[5:]
    return t


def decode_revert(data: str | bytes | None) -> ContractRevertError:
    """Decode revert data into a `ContractRevertError` naming the custom error and its arguments."""
    raw = (
        bytes.fromhex(data[2:] if data.startswith("0x") else data)
        if isinstance(data, str)
        else data
    )
    if not raw or len(raw) < 4:
        return ContractRevertError("", (), "0x" + (raw or b"").hex())
    entry = _error_table().get(raw[:4])
    if entry is None:
        return ContractRevertError("", (), "0x" + raw.hex())
    name, types = entry
    values = tuple(abi_decode(types, raw[4:]))
    values = tuple(
        to_checksum_address(v) if t == "address" else v for t, v in zip(types, values, strict=True)
    )
    return ContractRevertError(name, values, "0x" + raw.hex())


def _revert_data(exc: ContractLogicError) -> str | None:
    data = exc.data
    if isinstance(data, dict):
        data = data.get("data")
    return data


def _tester_revert(exc: Exception) -> ContractRevertError:
    """Decode eth-tester's `TransactionFailed`, which carries the revert data as the str() of
    its bytes (b'...'), possibly after "execution reverted: "."""
    reason: Any = exc.args[0] if exc.args else b""
    if isinstance(reason, str):
        text = reason.removeprefix("execution reverted: ")
        if text.startswith(("b'", 'b"')):
            reason = ast.literal_eval(text)
    if isinstance(reason, bytes):
        return decode_revert(reason)
    return ContractRevertError("Error", (str(reason),), "")


class ChainClient:
    """Deploy, settle and read the zkmeter contracts on one chain.

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

    # ------------------------------------------------------------------ construction

    @classmethod
    def embedded(cls) -> ChainClient:
        """A fresh in-process chain (py-evm, Prague) with eth-tester's 10 funded test accounts."""
        from eth_tester import EthereumTester, PyEVMBackend  # type: ignore[import-untyped]
        from web3 import EthereumTesterProvider

        backend = PyEVMBackend()
        tester = EthereumTester(backend)
        w3 = Web3(EthereumTesterProvider(tester))
        keys = [Account.from_key(k.to_bytes()) for k in backend.account_keys]
        return cls(w3, keys, tester=tester)

    @classmethod
    def connect(
        cls, rpc_url: str, private_key: str | bytes | None = None, *, extra_keys: Iterable[str] = ()
    ) -> ChainClient:
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

    # ------------------------------------------------------------------ low level

    def contract(self, name: str, address: str) -> Contract:
        """The contract `name` (artefact) at `address` (bound objects are cached)."""
        key = (name, to_checksum_address(address))
        bound = self._contracts.get(key)
        if bound is None:
            bound = self.w3.eth.contract(address=key[1], abi=load_artifact(name)["abi"])
            self._contracts[key] = bound
        return bound

    def send(self, fn: Any, sender: LocalAccount | None, gas: int) -> TxReceipt:
        """Sign and send a contract function call (or constructor); raise on revert."""
        acct = sender or self.default_account
        tx_params = {
            "from": acct.address,
            "gas": gas,
            "nonce": self.w3.eth.get_transaction_count(acct.address, "pending"),
            "chainId": self.chain_id,
        }
        try:
            tx = fn.build_transaction(tx_params)
            signed = acct.sign_transaction(tx)
            tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        except ContractLogicError as exc:
            raise decode_revert(_revert_data(exc)) from exc
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120)
        if receipt["status"] != 1:
            call = {k: tx[k] for k in ("from", "to", "data", "value", "gas") if k in tx}
            raise self._revert_reason(call, receipt["blockNumber"] - 1, tx_hash.hex())
        return receipt

    def _call(self, fn: Any, tx: dict[str, Any] | None = None) -> Any:
        """Call a function without a transaction (eth_call, against the latest block; `tx` sets
        e.g. `from` and `gas` for a dry run); a revert raises `ContractRevertError` with the
        decoded error."""
        try:
            return fn.call(tx) if tx else fn.call()
        except ContractLogicError as exc:
            raise decode_revert(_revert_data(exc)) from exc
        except Exception as exc:
            if self._tester is not None and type(exc).__name__ == "TransactionFailed":
                raise _tester_revert(exc) from exc
            raise

    def _revert_reason(self, call: dict[str, Any], block: int, tx_hash: str) -> ContractRevertError:
        """Replay a failed transaction as a call on the state before it to learn why it reverted."""
        if self._tester is not None:
            from eth_tester.exceptions import TransactionFailed  # type: ignore[import-untyped]

            try:
                self._tester.call(
                    {k: (v.hex() if isinstance(v, bytes) else v) for k, v in call.items()}, block
                )
            except TransactionFailed as exc:
                return _tester_revert(exc)
        else:
            try:
                self.w3.eth.call(call, block)  # type: ignore[arg-type]
            except ContractLogicError as exc:
                return decode_revert(_revert_data(exc))
        return ContractRevertError("", (), f"status 0 in tx {tx_hash}")

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

    def _dep(self) -> Deployment:
        if self.deployment is None:
            raise ChainError("no deployment: call deploy_all() or use(Deployment.load(path))")
        return self.deployment

    @property
    def token(self) -> Contract:
        return self.contract("OpenToken", self._dep().token)

    @property
    def registry(self) -> Contract:
        return self.contract("ModelRegistry", self._dep().registry)

    @property
    def settlement(self) -> Contract:
        return self.contract("UsageSettlement", self._dep().settlement)

    # ------------------------------------------------------------------ deployment

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
            to_checksum_address(token)
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
            [to_checksum_address(v) for v in verifiers],
            acct.address,
            sender=acct,
        )
        installed = {
            int(self._call(self.contract("IUsageVerifier", v).functions.logDomainSize())): (
                to_checksum_address(v)
            )
            for v in verifiers
        }
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
        """Deploy the generated Solidity verifier for the key's domain size (UsageVerifier8
        for 8-bit limbs, below 2^16 rows; UsageVerifier16 from 2^16), the key built in."""
        name = "UsageVerifier16" if vk.layout.limb_bits == 16 else "UsageVerifier8"
        contract = self.deploy_contract(
            name, vk.log_size, list(vk.table_commitment), vk.g2_tau_words(), sender=sender
        )
        return str(contract.address)

    def propose_verifier(
        self, log_domain_size: int, verifier: str | None, *, owner: LocalAccount | None = None
    ) -> int:
        """Announce `verifier` (None to remove) for 2^log_domain_size rows (settlement owner
        only); returns the timestamp from which `apply_verifier` may put it in force."""
        address = to_checksum_address(verifier) if verifier else ZERO_ADDRESS
        fn = self.settlement.functions.proposeVerifier(log_domain_size, address)
        receipt = self.send(fn, owner, GAS_TX)
        (event,) = self.settlement.events.VerifierProposed().process_receipt(
            receipt, errors=DISCARD
        )
        return int(event["args"]["readyAt"])

    def cancel_verifier_proposal(
        self, log_domain_size: int, *, owner: LocalAccount | None = None
    ) -> TxReceipt:
        fn = self.settlement.functions.cancelVerifierProposal(log_domain_size)
        return self.send(fn, owner, GAS_TX)

    def apply_verifier(self, log_domain_size: int, *, owner: LocalAccount | None = None) -> str:
        """Put the proposal for 2^log_domain_size rows in force once its delay has passed;
        returns the verifier now in force (the zero address if removed)."""
        self.send(self.settlement.functions.applyVerifier(log_domain_size), owner, GAS_TX)
        address = self.verifier_for(log_domain_size)
        if address == ZERO_ADDRESS:
            self._dep().verifiers.pop(log_domain_size, None)
        else:
            self._dep().verifiers[log_domain_size] = address
        return address

    def verifier_for(self, log_domain_size: int) -> str:
        return str(self._call(self.settlement.functions.verifierFor(log_domain_size)))

    def verifier_proposal(self, log_domain_size: int) -> tuple[str, int]:
        """(proposed verifier, ready-at timestamp); (zero address, 0) when none is pending."""
        verifier, ready_at = self._call(
            self.settlement.functions.verifierProposalFor(log_domain_size)
        )
        return str(verifier), int(ready_at)

    # ------------------------------------------------------------------ models

    def register_model(
        self,
        model_hash: bytes,
        rate_per_k_tokens: int,
        metadata_uri: str = "",
        *,
        sender: LocalAccount | None = None,
    ) -> int:
        """Register a model owned by `sender`; returns its id."""
        receipt = self.send(
            self.registry.functions.register(model_hash, rate_per_k_tokens, metadata_uri),
            sender,
            GAS_TX + 20_000 * (len(metadata_uri) // 32 + 1),
        )
        (event,) = self.registry.events.ModelRegistered().process_receipt(receipt, errors=DISCARD)
        return int(event["args"]["modelId"])

    def propose_rate(
        self, model_id: int, new_rate: int, *, sender: LocalAccount | None = None
    ) -> int:
        """Propose a new rate; returns the timestamp from which it applies."""
        receipt = self.send(self.registry.functions.proposeRate(model_id, new_rate), sender, GAS_TX)
        (event,) = self.registry.events.RateProposed().process_receipt(receipt, errors=DISCARD)
        return int(event["args"]["effectiveFrom"])

    def transfer_model_ownership(
        self, model_id: int, new_owner: str, *, sender: LocalAccount | None = None
    ) -> TxReceipt:
        fn = self.registry.functions.transferModelOwnership(
            model_id, to_checksum_address(new_owner)
        )
        return self.send(fn, sender, GAS_TX)

    def model(self, model_id: int) -> dict[str, Any]:
        """`ModelRegistry.modelOf` as a dict (modelId, modelHash, owner, currentRate, ...)."""
        info = self._call(self.registry.functions.modelOf(model_id))
        names = [
            c["name"] for c in self._abi_fn("ModelRegistry", "modelOf")["outputs"][0]["components"]
        ]
        return dict(zip(names, info, strict=True))

    def model_count(self) -> int:
        return int(self._call(self.registry.functions.modelCount()))

    def current_rate(self, model_id: int) -> int:
        return int(self._call(self.registry.functions.currentRate(model_id)))

    def rate_at(self, model_id: int, timestamp: int) -> int:
        return int(self._call(self.registry.functions.rateAt(model_id, timestamp)))

    @staticmethod
    def _abi_fn(artifact: str, name: str) -> dict[str, Any]:
        for item in load_artifact(artifact)["abi"]:
            if item.get("type") == "function" and item["name"] == name:
                return dict(item)
        raise ChainError(f"{artifact} has no function {name}")

    # ------------------------------------------------------------------ token and escrow

    def mint(self, to: str, amount: int, *, sender: LocalAccount | None = None) -> TxReceipt:
        """Mint demo tokens (token owner only)."""
        return self.send(self.token.functions.mint(to_checksum_address(to), amount), sender, GAS_TX)

    def token_decimals(self) -> int:
        return int(self._call(self.token.functions.decimals()))

    def token_balance(self, owner: str) -> int:
        return int(self._call(self.token.functions.balanceOf(to_checksum_address(owner))))

    def approve_and_deposit(
        self, operator: str, amount: int, *, sender: LocalAccount | None = None
    ) -> TxReceipt:
        """Approve the settlement contract for `amount` and deposit it into `sender`'s escrow
        account for `operator`."""
        self.send(self.token.functions.approve(self._dep().settlement, amount), sender, GAS_TX)
        fn = self.settlement.functions.deposit(to_checksum_address(operator), amount)
        return self.send(fn, sender, GAS_TX)

    def request_withdrawal(
        self, operator: str, amount: int, *, sender: LocalAccount | None = None
    ) -> int:
        """Start thawing `amount` of the account for `operator`; returns the timestamp from
        which `withdraw` pays."""
        fn = self.settlement.functions.requestWithdrawal(to_checksum_address(operator), amount)
        receipt = self.send(fn, sender, GAS_TX)
        (event,) = self.settlement.events.WithdrawalRequested().process_receipt(
            receipt, errors=DISCARD
        )
        return int(event["args"]["readyAt"])

    def cancel_withdrawal(self, operator: str, *, sender: LocalAccount | None = None) -> TxReceipt:
        fn = self.settlement.functions.cancelWithdrawal(to_checksum_address(operator))
        return self.send(fn, sender, GAS_TX)

    def withdraw(self, operator: str, *, sender: LocalAccount | None = None) -> int:
        """Complete a thawed withdrawal from the account for `operator`; returns the amount."""
        fn = self.settlement.functions.withdraw(to_checksum_address(operator))
        receipt = self.send(fn, sender, GAS_TX)
        (event,) = self.settlement.events.Withdrawn().process_receipt(receipt, errors=DISCARD)
        return int(event["args"]["amount"])

    def escrow_account(self, payer: str, operator: str) -> EscrowAccount:
        fn = self.settlement.functions.accountOf(
            to_checksum_address(payer), to_checksum_address(operator)
        )
        balance, thawing, thaw_ends_at = self._call(fn)
        return EscrowAccount(int(balance), int(thawing), int(thaw_ends_at))

    def escrow_balance(self, payer: str, operator: str) -> int:
        """The (payer, operator) account's balance (thawing funds included)."""
        return self.escrow_account(payer, operator).balance

    def available_escrow(self, payer: str, operator: str) -> int:
        """The (payer, operator) balance net of the amount thawing."""
        fn = self.settlement.functions.availableEscrow(
            to_checksum_address(payer), to_checksum_address(operator)
        )
        return int(self._call(fn))

    def authorize_signer(self, signer: str, *, sender: LocalAccount | None = None) -> TxReceipt:
        """Let `signer` sign `sender`'s receipts (until revoked and thawed)."""
        fn = self.settlement.functions.authorizeSigner(to_checksum_address(signer))
        return self.send(fn, sender, GAS_TX)

    def revoke_signer(self, signer: str, *, sender: LocalAccount | None = None) -> int:
        """Revoke `signer` after the thawing period; returns when it takes effect."""
        fn = self.settlement.functions.revokeSigner(to_checksum_address(signer))
        receipt = self.send(fn, sender, GAS_TX)
        (event,) = self.settlement.events.SignerRevoked().process_receipt(receipt, errors=DISCARD)
        return int(event["args"]["effectiveAt"])

    def signer_authorized_until(self, payer: str, signer: str) -> int:
        """Until when `signer` may sign `payer`'s receipts (0: never; 2^64-1: no revocation)."""
        fn = self.settlement.functions.signerAuthorizedUntil(
            to_checksum_address(payer), to_checksum_address(signer)
        )
        return int(self._call(fn))

    def is_authorized_signer(self, payer: str, signer: str) -> bool:
        fn = self.settlement.functions.isAuthorizedSigner(
            to_checksum_address(payer), to_checksum_address(signer)
        )
        return bool(self._call(fn))

    def earnings(self, owner: str) -> int:
        return int(self._call(self.settlement.functions.earnings(to_checksum_address(owner))))

    def withdraw_earnings(self, *, sender: LocalAccount | None = None) -> int:
        receipt = self.send(self.settlement.functions.withdrawEarnings(), sender, GAS_TX)
        (event,) = self.settlement.events.EarningsWithdrawn().process_receipt(
            receipt, errors=DISCARD
        )
        return int(event["args"]["amount"])

    # ------------------------------------------------------------------ settlement

    def next_batch_seq(self, operator: str) -> int:
        return int(
            self._call(self.settlement.functions.nextBatchSeq(to_checksum_address(operator)))
        )

    def channel(self, payer: str, operator: str, model_id: int) -> ChannelState:
        """Channel (payer, operator, model) as settled: last nonce and cumulative tokens."""
        fn = self.settlement.functions.channelOf(
            to_checksum_address(payer), to_checksum_address(operator), model_id
        )
        nonce, cumulative = self._call(fn)
        return ChannelState(int(nonce), int(cumulative))

    def receipt_digest(
        self,
        payer: str,
        operator: str,
        model_id: int,
        nonce: int,
        cumulative_tokens: int,
        max_rate_per_k_tokens: int,
        request_hash: bytes,
    ) -> bytes:
        """`UsageSettlement.receiptDigest`: the EIP-712 digest the contract checks signatures on."""
        fn = self.settlement.functions.receiptDigest(
            to_checksum_address(payer),
            to_checksum_address(operator),
            model_id,
            nonce,
            cumulative_tokens,
            max_rate_per_k_tokens,
            request_hash,
        )
        return bytes(self._call(fn))

    def domain_separator(self) -> bytes:
        return bytes(self._call(self.settlement.functions.domainSeparator()))

    def _settle_call(
        self,
        batch_seq: int,
        log_domain_size: int,
        aggregates: Sequence[Any],
        states: Sequence[SignedState],
        proof_bytes: bytes,
    ) -> tuple[Any, int]:
        """The bound `settle` call and its gas limit."""
        if len(states) != len(aggregates):
            raise ChainError(
                f"{len(aggregates)} aggregates but {len(states)} signed states: settle needs "
                "the payer's signed state for every channel"
            )
        gas = GAS_SETTLE_BASE + GAS_SETTLE_PER_CHANNEL * len(aggregates) + GAS_VERIFIER_BUDGET
        gas = min(gas + 16 * len(proof_bytes), int(self.w3.eth.get_block("latest")["gasLimit"]))
        fn = self.settlement.functions.settle(
            batch_seq,
            log_domain_size,
            [aggregate_tuple(a) for a in aggregates],
            [s.as_tuple() for s in states],
            proof_bytes,
        )
        return fn, gas

    def settle(
        self,
        operator: LocalAccount | None,
        batch_seq: int,
        log_domain_size: int,
        aggregates: Sequence[Any],
        states: Sequence[SignedState],
        proof_bytes: bytes,
        *,
        gas: int | None = None,
        dry_run: bool = True,
    ) -> TxReceipt:
        """Submit batch `batch_seq` from `operator`; returns the receipt (gas in `gasUsed`).
        With `dry_run` (the default) it is first simulated with eth_call, so a refusal costs
        no gas.

        `aggregates` are `Aggregate`s (or see `aggregate_tuple`), keys strictly increasing; their
        `first_nonce` is ignored by the contract, which fills it in from its own state.
        `states[i]` is the payer's signed state ending channel i's run in this batch.

        Raises `ContractRevertError` with the contract's error (e.g. `InvalidProof`,
        `InsufficientEscrow`, `SignerNotAuthorized`) if the settlement is refused; nothing
        changes on chain then."""
        fn, limit = self._settle_call(batch_seq, log_domain_size, aggregates, states, proof_bytes)
        sender = operator or self.default_account
        if dry_run:
            self._call(fn, {"from": sender.address, "gas": gas or limit})
        return self.send(fn, sender, gas or limit)

    def send_settle(
        self,
        operator: LocalAccount,
        batch_seq: int,
        log_domain_size: int,
        aggregates: Sequence[Any],
        states: Sequence[SignedState],
        proof_bytes: bytes,
    ) -> bytes:
        """Simulate `settle` with eth_call (a revert raises ContractRevertError and costs no
        gas), then sign and broadcast it without waiting; returns the transaction hash, so the
        caller can record it before the outcome is known (see `settle_outcome`)."""
        fn, gas = self._settle_call(batch_seq, log_domain_size, aggregates, states, proof_bytes)
        tx_params: Any = {
            "from": operator.address,
            "gas": gas,
            "nonce": self.w3.eth.get_transaction_count(operator.address, "pending"),
            "chainId": self.chain_id,
        }
        try:
            self._call(fn, {"from": operator.address, "gas": gas})
            tx: Any = fn.build_transaction(tx_params)
            signed = operator.sign_transaction(tx)
            return bytes(self.w3.eth.send_raw_transaction(signed.raw_transaction))
        except ContractLogicError as exc:
            raise decode_revert(_revert_data(exc)) from exc

    def settle_outcome(self, tx_hash: bytes, timeout: float = 120) -> TxReceipt | None:
        """The mined receipt of a transaction sent by `send_settle`, None if it is not mined
        within `timeout` seconds (or unknown to the node); a revert raises ContractRevertError."""
        from web3.exceptions import TimeExhausted, TransactionNotFound

        try:
            receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout)  # type: ignore[arg-type]
        except (TimeExhausted, TransactionNotFound):
            return None
        if receipt["status"] != 1:
            tx = self.w3.eth.get_transaction(tx_hash)  # type: ignore[arg-type]
            call = {"from": tx["from"], "to": tx["to"], "data": tx["input"], "gas": tx["gas"]}
            raise self._revert_reason(call, receipt["blockNumber"] - 1, tx_hash.hex())
        return receipt

    def verify_batch_call(
        self,
        verifier: str,
        operator: str,
        batch_seq: int,
        aggregates: Sequence[Any],
        proof_bytes: bytes,
        *,
        settlement: str | None = None,
    ) -> bool:
        """Call `verifier.verifyBatch` directly (eth_call, no transaction) with this chain's id
        and the settlement address (default: the deployment's); the aggregates' first nonces
        are passed as given. Reverts (malformed proof) raise `ContractRevertError`."""
        target = settlement or self._dep().settlement
        fn = self.contract("IUsageVerifier", verifier).functions.verifyBatch(
            self.chain_id,
            to_checksum_address(target),
            to_checksum_address(operator),
            batch_seq,
            [aggregate_tuple(a) for a in aggregates],
            proof_bytes,
        )
        return bool(self._call(fn))

    def batch_events(
        self,
        from_block: int | None = None,
        to_block: int | str = "latest",
        operator: str | None = None,
    ) -> list[BatchSettled]:
        """Settled batches (oldest first), each with its channels."""
        start = self._dep().block_number if from_block is None else from_block
        filters: dict[str, Any] = {"from_block": start, "to_block": to_block}
        if operator is not None:
            filters["argument_filters"] = {"operator": to_checksum_address(operator)}
        channel_logs = self.settlement.events.ChannelSettled().get_logs(**filters)
        by_tx: dict[bytes, list[ChannelSettled]] = {}
        for log in channel_logs:
            a = log["args"]
            by_tx.setdefault(bytes(log["transactionHash"]), []).append(
                ChannelSettled(
                    operator=a["operator"],
                    payer=a["payer"],
                    model_id=a["modelId"],
                    batch_seq=a["batchSeq"],
                    first_nonce=a["firstNonce"],
                    count=a["count"],
                    tokens=a["tokens"],
                    cumulative_tokens=a["cumulativeTokens"],
                    rate_per_k_tokens=a["ratePerKTokens"],
                    amount=a["amount"],
                    model_owner=a["modelOwner"],
                )
            )
        out = []
        for log in self.settlement.events.BatchSettled().get_logs(**filters):
            a = log["args"]
            tx = bytes(log["transactionHash"])
            out.append(
                BatchSettled(
                    operator=a["operator"],
                    batch_seq=a["batchSeq"],
                    log_domain_size=a["logDomainSize"],
                    proof_hash=bytes(a["proofHash"]),
                    witness_commitments=bytes(a["witnessCommitments"]),
                    total_tokens=a["totalTokens"],
                    total_amount=a["totalAmount"],
                    block_number=log["blockNumber"],
                    transaction_hash=tx,
                    channels=tuple(by_tx.get(tx, [])),
                )
            )
        return out

    def settled_batch(self, operator: str, batch_seq: int) -> tuple[BatchSettled, bytes]:
        """The `BatchSettled` record of `operator`'s batch `batch_seq` and the proof bytes
        it was settled with, read back from the settling transaction's calldata and checked
        against the proof hash the event committed to."""
        matches = [e for e in self.batch_events(operator=operator) if e.batch_seq == batch_seq]
        if not matches:
            raise ChainError(f"no settled batch {batch_seq} of operator {operator} on this chain")
        event = matches[0]
        tx = self.w3.eth.get_transaction(event.transaction_hash)
        function, args = self.settlement.decode_function_input(tx["input"])
        if function.fn_name != "settle":
            raise ChainError(f"transaction {event.transaction_hash.hex()} is not a settle call")
        proof = bytes(args["proof"])
        if Web3.keccak(proof) != event.proof_hash:
            raise ChainError("the settling transaction's proof does not match the event's hash")
        return event, proof

    # ------------------------------------------------------------------ time

    def latest_timestamp(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def advance_time(self, seconds: int) -> int:
        """Move the chain clock forward by `seconds` and mine a block; returns its timestamp."""
        if seconds < 0:
            raise ChainError("time only moves forward")
        if self.is_embedded:
            # eth-tester mines the travelling block at (target - 1).
            target = self.latest_timestamp() + seconds + 1
            pending = int(self.w3.eth.get_block("pending")["timestamp"])
            self._rpc("testing_timeTravel", [max(pending + 1, target)])
        else:
            self._rpc("evm_increaseTime", [seconds])
            self._rpc("evm_mine", [])
        return self.latest_timestamp()

    def snapshot(self) -> Any:
        """Save the chain state (for tests); `revert(snapshot_id)` returns to it."""
        return self._rpc("evm_snapshot", [])

    def revert(self, snapshot_id: Any) -> None:
        """Return to a state saved by `snapshot` (the client's `deployment` is kept as is)."""
        self._rpc("evm_revert", [snapshot_id])

    def _rpc(self, method: str, params: list[Any]) -> Any:
        """A raw JSON-RPC request (test and dev-node methods web3 has no typed call for)."""
        return self.w3.manager.request_blocking(RPCEndpoint(method), params)
