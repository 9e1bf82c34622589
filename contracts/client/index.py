"""zkmeter's on-chain history as typed records, scanned once and then incrementally.

`ChainIndex` reads the `ModelRegistry` and `UsageSettlement` event logs of one deployment
through `ChainClient` (its bound contract objects and `w3` for blocks and logs; this module
imports no web3 itself) and keeps them in memory as frozen records, each with the
`EventRef` (transaction, log index, block, timestamp) it came from. The first `refresh()`
scans from the deployment block; later ones scan only the blocks mined since, so a page on a
chain with thousands of settled batches costs one `eth_getBlockByNumber` once scanned. If the
block the index last scanned has changed (a reorganisation, or a dev chain reverted to a
snapshot) the index starts again from the deployment block.

Everything the dashboard shows is derived from events, the way the contracts derive it:
- a model's rate schedule replays `RateProposed` as `ModelRegistry.proposeRate` does (a
  proposal still pending is replaced), so `rate_at(t)` equals `ModelRegistry.rateAt(t)`;
- an escrow account's balance is the `balance` of its last `Deposited`/`Withdrawn` event minus
  the `amount` of every `ChannelSettled` since; thawing and `thawEndsAt` follow
  `WithdrawalRequested`/`WithdrawalCancelled`/`Withdrawn` (equal to `accountOf`, tested);
- a channel's settled nonce and cumulative tokens are those of its last `ChannelSettled`.

Three things are not in the logs and are read lazily, then cached: the gas a transaction used
(its receipt), the rate cap a payer signed for a settled channel state (the `SignedState` in
the settling transaction's calldata; `ChannelSettled` carries the rate charged, min(rate,
cap)), and a transaction's sender and decoded call (the transaction page).

Connection failures surface as `NodeUnavailableError`, a node that does not hold the
deployment as `ChainIndexError`; both carry a message meant for a person.
"""

from __future__ import annotations

import bisect
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

from eth_abi.abi import decode as abi_decode
from eth_utils.abi import event_abi_to_log_topic
from eth_utils.address import is_address, is_checksum_address, to_checksum_address

from contracts.client import ChainClient, ChainError, ChannelSettled, Deployment
from contracts.client.errors import NodeUnreachableError

#: Blocks per `eth_getLogs` request at first; halved on a refusal (nodes cap ranges or results).
DEFAULT_CHUNK_BLOCKS = 5_000
#: `signerAuthorizedUntil` of a signer authorised without end (`type(uint64).max`).
FOREVER = (1 << 64) - 1

T = TypeVar("T")


class ChainIndexError(ChainError):
    """The index cannot answer: the node lacks the deployment, or refused a request."""


class NodeUnavailableError(ChainIndexError):
    """The JSON-RPC node cannot be reached (down, wrong URL, or timing out)."""


class AddressError(ValueError):
    """A string that is not a 20-byte hex address (or has a wrong EIP-55 checksum)."""


def checksum_address(text: str) -> str:
    """The EIP-55 checksummed form of `text`; lowercase or uppercase hex is accepted, mixed
    case must carry a valid checksum. Raises `AddressError` otherwise."""
    text = text.strip()
    if not is_address(text):
        raise AddressError(f"{text!r} is not an address (0x followed by 40 hex digits)")
    hex_part = text[2:] if text[:2] in ("0x", "0X") else text
    mixed = hex_part != hex_part.lower() and hex_part != hex_part.upper()
    if mixed and not is_checksum_address(text):
        raise AddressError(f"{text} has a wrong EIP-55 checksum (mistyped?)")
    return str(to_checksum_address(text))


# ----------------------------------------------------------------------------------- records


@dataclass(frozen=True, order=True)
class EventRef:
    """Where a record came from: block, position in the block, transaction, block time."""

    block_number: int
    log_index: int
    tx_hash: str  # 0x-prefixed, lowercase hex
    timestamp: int  # the block's, seconds since the epoch


@dataclass(frozen=True)
class ModelRegistration:
    """`ModelRegistered`: a model, its first owner and rate (base units per 1,000 tokens)."""

    model_id: int
    owner: str
    model_hash: str  # 0x-prefixed hex, 32 bytes
    rate_per_k_tokens: int
    metadata_uri: str
    ref: EventRef


@dataclass(frozen=True)
class RateProposal:
    """`RateProposed`: `new_rate` applies from `effective_from` (unless replaced before)."""

    model_id: int
    old_rate: int
    new_rate: int
    effective_from: int
    ref: EventRef


@dataclass(frozen=True)
class OwnershipTransfer:
    """`ModelOwnershipTransferred`."""

    model_id: int
    previous_owner: str
    new_owner: str
    ref: EventRef


@dataclass(frozen=True)
class RateCheckpoint:
    """A rate and the first timestamp it applies from; `ref` is the event that set it."""

    effective_from: int
    rate_per_k_tokens: int
    ref: EventRef


EscrowKind = Literal["deposit", "withdrawal_requested", "withdrawal_cancelled", "withdrawn"]


@dataclass(frozen=True)
class EscrowEvent:
    """`Deposited`, `WithdrawalRequested`, `WithdrawalCancelled` or `Withdrawn` on the
    (payer, operator) account. `amount` is 0 for a cancellation; `balance` is the balance
    after the event where the event states it (deposit, withdrawn), else None; `ready_at` is
    when a requested withdrawal thaws."""

    kind: EscrowKind
    payer: str
    operator: str
    amount: int
    balance: int | None
    ready_at: int | None
    ref: EventRef


@dataclass(frozen=True)
class SignerChange:
    """`SignerAuthorized` (effective_at None: from now on, without end) or `SignerRevoked`
    (the signer may sign until `effective_at`)."""

    kind: Literal["authorized", "revoked"]
    payer: str
    signer: str
    effective_at: int | None
    ref: EventRef


@dataclass(frozen=True)
class ChannelSettlement(ChannelSettled):
    """`ChannelSettled` with where it came from: one channel's run in a batch.
    `rate_per_k_tokens` is the rate charged, min(the model's rate, the payer's signed cap);
    `amount` = tokens * rate // 1000."""

    ref: EventRef

    @property
    def last_nonce(self) -> int:
        return self.first_nonce + self.count - 1


@dataclass(frozen=True)
class BatchRecord:
    """`BatchSettled` with the `ChannelSettled` records of the same transaction."""

    operator: str
    batch_seq: int
    log_domain_size: int
    proof_hash: str
    witness_commitments: bytes
    total_tokens: int
    total_amount: int
    ref: EventRef
    channels: tuple[ChannelSettlement, ...]

    @property
    def rows(self) -> int:
        """Receipts (table rows) in the batch: the sum of the channels' counts."""
        return sum(c.count for c in self.channels)


@dataclass(frozen=True)
class EarningsWithdrawal:
    """`EarningsWithdrawn`: a model owner collected its royalties."""

    owner: str
    amount: int
    ref: EventRef


Record = (
    ModelRegistration
    | RateProposal
    | OwnershipTransfer
    | EscrowEvent
    | SignerChange
    | ChannelSettlement
    | BatchRecord
    | EarningsWithdrawal
)


# -------------------------------------------------------------------------- derived state


@dataclass
class ModelState:
    """A model as its events made it (read-only for callers)."""

    registration: ModelRegistration
    owner: str
    owner_ref: EventRef
    #: The registry's checkpoints: strictly increasing `effective_from`.
    schedule: list[RateCheckpoint]
    proposals: list[RateProposal] = field(default_factory=list)
    transfers: list[OwnershipTransfer] = field(default_factory=list)
    settlements: list[ChannelSettlement] = field(default_factory=list)
    earned: int = 0
    tokens: int = 0

    @property
    def model_id(self) -> int:
        return self.registration.model_id

    def checkpoint_at(self, timestamp: int) -> RateCheckpoint | None:
        """The checkpoint in force at `timestamp` (None before registration)."""
        starts = [c.effective_from for c in self.schedule]
        i = bisect.bisect_right(starts, timestamp)
        return self.schedule[i - 1] if i else None

    def rate_at(self, timestamp: int) -> int:
        """`ModelRegistry.rateAt(modelId, timestamp)`; 0 before registration."""
        checkpoint = self.checkpoint_at(timestamp)
        return checkpoint.rate_per_k_tokens if checkpoint else 0

    def pending(self, now: int) -> RateCheckpoint | None:
        """The announced rate that applies after `now`, if any."""
        last = self.schedule[-1]
        return last if last.effective_from > now else None


@dataclass
class EscrowState:
    """A (payer, operator) account as its events made it, equal to
    `UsageSettlement.accountOf`. `balance_ref` is the event that last changed the balance."""

    payer: str
    operator: str
    balance: int = 0
    thawing: int = 0
    thaw_ends_at: int = 0
    balance_ref: EventRef | None = None
    thaw_ref: EventRef | None = None
    deposited: int = 0
    withdrawn: int = 0
    spent: int = 0
    history: list[EscrowEvent | ChannelSettlement] = field(default_factory=list)

    @property
    def available(self) -> int:
        """The balance net of the amount thawing (`availableEscrow`)."""
        return max(self.balance - self.thawing, 0)


@dataclass
class ChannelState:
    """A channel (payer, operator, model) as settled: its last settlement and the sums."""

    payer: str
    operator: str
    model_id: int
    settlements: list[ChannelSettlement] = field(default_factory=list)
    paid: int = 0

    @property
    def last(self) -> ChannelSettlement:
        return self.settlements[-1]

    @property
    def nonce(self) -> int:
        return self.last.last_nonce

    @property
    def cumulative_tokens(self) -> int:
        return self.last.cumulative_tokens


@dataclass
class OperatorState:
    """An operator's settled batches in sequence order and their totals."""

    operator: str
    batches: list[BatchRecord] = field(default_factory=list)
    tokens: int = 0
    amount: int = 0
    rows: int = 0


@dataclass(frozen=True)
class TokenInfo:
    """The settlement token: symbol and decimals (amounts are shown in whole tokens)."""

    address: str
    symbol: str
    decimals: int


@dataclass(frozen=True)
class TransactionInfo:
    """A transaction as the node reports it, with the records the index holds for it."""

    tx_hash: str
    block_number: int
    timestamp: int
    sender: str
    to: str | None
    contract: str | None  # "UsageSettlement", "ModelRegistry", the token's symbol, or None
    function: str | None
    arguments: tuple[tuple[str, str], ...]  # (name, value as text)
    status: int
    gas_used: int
    gas_limit: int
    records: tuple[Record, ...]


@dataclass(frozen=True)
class ScanStats:
    """How far the index has scanned and what the scans cost."""

    from_block: int
    scanned_to: int | None
    records: int
    first_scan_seconds: float | None
    last_refresh_seconds: float | None
    rescans: int


# ------------------------------------------------------------------------------ decoding


def _int(value: Any) -> int:
    """A JSON-RPC quantity ("0x1a") or an int."""
    return int(value, 16) if isinstance(value, str) else int(value)


def _bytes(value: Any) -> bytes:
    """JSON-RPC data ("0x...") or bytes."""
    return bytes.fromhex(value[2:]) if isinstance(value, str) else bytes(value)


@dataclass(frozen=True)
class RawLog:
    """One log, whichever way it arrived (a node's JSON, or web3's formatted dict)."""

    topics: tuple[bytes, ...]
    data: bytes
    block_number: int
    log_index: int
    tx_hash: str
    block_timestamp: int | None

    @classmethod
    def of(cls, log: Mapping[str, Any]) -> RawLog:
        stamp = log.get("blockTimestamp")
        return cls(
            topics=tuple(_bytes(t) for t in log["topics"]),
            data=_bytes(log["data"]),
            block_number=_int(log["blockNumber"]),
            log_index=_int(log["logIndex"]),
            tx_hash="0x" + _bytes(log["transactionHash"]).hex(),
            block_timestamp=None if stamp is None else _int(stamp),
        )


@lru_cache(maxsize=4096)
def _checksummed(address: str) -> str:
    """EIP-55 form of a lowercase address (keccak per call: cached, addresses repeat)."""
    return str(to_checksum_address(address))


@dataclass(frozen=True)
class EventDecoder:
    """Decodes one event's logs with eth_abi, straight from its ABI entry: the indexed
    arguments from the topics, the others from the data; addresses checksummed. (web3's
    `process_log` gives the same arguments, tested, at some twenty times the cost.)"""

    name: str
    topic: bytes
    indexed: tuple[tuple[str, str], ...]  # (name, type), in topic order
    data: tuple[tuple[str, str], ...]  # (name, type), in data order
    #: Every data argument a one-word static type or `bytes`/`string` (all of zkmeter's
    #: events): decoded by slicing words, without eth_abi's generic machinery.
    flat: bool

    @classmethod
    def of(cls, abi: Mapping[str, Any]) -> EventDecoder:
        inputs = [(str(i["name"]), str(i["type"]), bool(i["indexed"])) for i in abi["inputs"]]
        indexed = tuple((n, t) for n, t, ix in inputs if ix)
        if not all(_static(t) for _, t in indexed):
            raise ChainIndexError(f"event {abi['name']}: indexed arguments must be one word")
        data = tuple((n, t) for n, t, ix in inputs if not ix)
        return cls(
            name=str(abi["name"]),
            topic=bytes(event_abi_to_log_topic(cast(Any, abi))),
            indexed=indexed,
            data=data,
            flat=all(t in _DYNAMIC or _static(t) for _, t in data),
        )

    def decode(self, topics: Sequence[bytes], data: bytes) -> dict[str, Any]:
        if len(topics) != len(self.indexed) + 1:
            raise ChainIndexError(f"a {self.name} log with {len(topics)} topics")
        args: dict[str, Any] = {}
        for (name, type_), topic in zip(self.indexed, topics[1:], strict=True):
            args[name] = _word(type_, topic)
        if self.flat:
            args.update(_decode_flat(self.data, data))
        else:
            values = abi_decode([t for _, t in self.data], data)
            args.update(zip((n for n, _ in self.data), values, strict=True))
            for name, type_ in self.data:
                if type_ == "address":
                    args[name] = _checksummed(args[name])
        return args


_DYNAMIC = ("bytes", "string")


def _static(type_: str) -> bool:
    """One-word static ABI types: uintN, intN, address, bool, bytesN."""
    return (
        type_ in ("address", "bool")
        or re.fullmatch(
            r"u?int(8|16|24|32|40|48|56|64|72|80|88|96|104|112|120|128|136|144|"
            r"152|160|168|176|184|192|200|208|216|224|232|240|248|256)?",
            type_,
        )
        is not None
        or re.fullmatch(r"bytes([1-9]|[12][0-9]|3[0-2])", type_) is not None
    )


def _word(type_: str, word: bytes) -> Any:
    """A one-word ABI value (a topic, or a head word of static type)."""
    if len(word) != 32:
        raise ChainIndexError(f"an ABI word of {len(word)} bytes")
    if type_ == "address":
        return _checksummed("0x" + word[12:].hex())
    if type_ == "bool":
        return word[-1] == 1
    if type_.startswith("bytes"):
        return word[: int(type_[5:])]
    if type_.startswith("int"):
        return int.from_bytes(word, "big", signed=True)
    return int.from_bytes(word, "big")


def _decode_flat(fields: Sequence[tuple[str, str]], data: bytes) -> dict[str, Any]:
    """ABI-decode a tuple of one-word static types and `bytes`/`string` (head words, then
    each dynamic value at its offset: a length word and the padded bytes)."""
    if len(data) < 32 * len(fields):
        raise ChainIndexError(f"log data of {len(data)} bytes for {len(fields)} arguments")
    out: dict[str, Any] = {}
    for i, (name, type_) in enumerate(fields):
        head = data[32 * i : 32 * i + 32]
        if type_ not in _DYNAMIC:
            out[name] = _word(type_, head)
            continue
        offset = int.from_bytes(head, "big")
        length = int.from_bytes(data[offset : offset + 32], "big")
        value = data[offset + 32 : offset + 32 + length]
        if offset + 32 + length > len(data) or len(value) != length:
            raise ChainIndexError(f"log data too short for argument {name}")
        out[name] = value.decode("utf-8", errors="replace") if type_ == "string" else value
    return out


# ------------------------------------------------------------------------------ the index


class ChainIndex:
    """Typed, cached history of one zkmeter deployment. Not thread-safe: use it from one
    thread (the dashboard runs every chain access on a single worker thread).

    `ChainIndex.for_client(client)` indexes the deployment `client` uses (the embedded demo
    chain); `ChainIndex.for_node(url, deployment)` connects lazily and reconnects after a
    failure, so a dashboard started while its node is down works once the node is up.
    """

    def __init__(
        self,
        connect: Callable[[], ChainClient],
        deployment: Deployment,
        *,
        rpc_url: str | None = None,
        chunk_blocks: int = DEFAULT_CHUNK_BLOCKS,
    ) -> None:
        if chunk_blocks < 1:
            raise ValueError("chunk_blocks must be at least 1")
        self.deployment = deployment
        self.rpc_url = rpc_url
        self.chunk_blocks = chunk_blocks
        self._connect = connect
        self._client: ChainClient | None = None
        self._topics: dict[bytes, EventDecoder] = {}
        self._token: TokenInfo | None = None
        self._gas: dict[str, int] = {}
        self._caps: dict[str, dict[tuple[str, int], int]] = {}
        self._first_scan_seconds: float | None = None
        self._last_refresh_seconds: float | None = None
        self._rescans = 0
        self._reset()

    # ------------------------------------------------------------------ construction

    @classmethod
    def for_client(cls, client: ChainClient, **kwargs: Any) -> ChainIndex:
        """An index over `client`'s current deployment."""
        if client.deployment is None:
            raise ChainIndexError("the client has no deployment to index")
        return cls(lambda: client, client.deployment, **kwargs)

    @classmethod
    def for_node(
        cls, rpc_url: str, deployment: Deployment | str | Path, **kwargs: Any
    ) -> ChainIndex:
        """An index over `deployment` (a `Deployment` or its JSON file) on the node at
        `rpc_url`, read-only (no key). The node is contacted on the first `refresh()`."""
        if not isinstance(deployment, Deployment):
            try:
                deployment = Deployment.load(deployment)
            except (OSError, ValueError, TypeError, KeyError) as exc:
                raise ChainIndexError(f"cannot read deployment file {deployment}: {exc}") from exc

        dep = deployment

        def connect() -> ChainClient:
            try:
                client = ChainClient.connect(rpc_url)
            except ChainError as exc:
                raise NodeUnavailableError(f"cannot reach the node at {rpc_url} ({exc})") from exc
            try:
                client.use(dep)
            except ChainError as exc:  # the node serves another chain
                raise ChainIndexError(f"{exc}: wrong deployment file or wrong --rpc-url") from exc
            return client

        return cls(connect, dep, rpc_url=rpc_url, **kwargs)

    def _reset(self) -> None:
        """Forget everything scanned (first scan, or after a reorganisation)."""
        self._scanned_to: int | None = None
        self._scanned_hash: bytes | None = None
        self._latest_block = 0
        self._latest_timestamp = 0
        self._timestamps: dict[int, int] = {}
        self._count = 0
        self.models: dict[int, ModelState] = {}
        self.accounts: dict[tuple[str, str], EscrowState] = {}
        self.channels: dict[tuple[str, str, int], ChannelState] = {}
        self.operators: dict[str, OperatorState] = {}
        self.signers: dict[str, list[SignerChange]] = {}
        self.withdrawals: dict[str, list[EarningsWithdrawal]] = {}
        self.by_tx: dict[str, list[Record]] = {}
        self._pending_channels: dict[str, list[ChannelSettlement]] = {}
        self._payer_accounts: dict[str, list[EscrowState]] = {}
        self._payer_channels: dict[str, list[ChannelState]] = {}
        self._owned: dict[str, set[int]] = {}

    def client(self) -> ChainClient:
        """The connected client (connecting now if needed)."""
        if self._client is None:
            client = self._rpc("connecting", self._connect)
            code = self._rpc(
                "reading contract code",
                lambda: client.w3.eth.get_code(to_checksum_address(self.deployment.settlement)),
            )
            if not code:
                raise ChainIndexError(
                    f"no UsageSettlement at {self.deployment.settlement} on chain "
                    f"{client.chain_id}: wrong deployment file, or the chain was reset"
                )
            self._client = client
        return self._client

    def _rpc(self, what: str, fn: Callable[[], T]) -> T:
        """Run one node request, turning failures into errors a person can read."""
        try:
            return fn()
        except ChainIndexError:
            raise
        except (OSError, NodeUnreachableError) as exc:
            raise self._unavailable(what, exc) from exc
        except Exception as exc:  # the client's ChainErrors and web3's: the node refused
            raise ChainIndexError(f"the node{self._where} refused {what}: {exc}") from exc

    @property
    def _where(self) -> str:
        return f" at {self.rpc_url}" if self.rpc_url else ""

    def _unavailable(self, what: str, exc: Exception) -> NodeUnavailableError:
        self._client = None  # reconnect next time
        return NodeUnavailableError(f"cannot reach the node{self._where} while {what}: {exc}")

    # ------------------------------------------------------------------ scanning

    def refresh(self) -> int:
        """Scan the blocks mined since the last scan (all of them the first time); returns
        how many blocks were scanned. Raises `NodeUnavailableError` if the node is down."""
        started = time.perf_counter()
        client = self.client()
        w3 = client.w3
        latest = self._rpc("reading the latest block", lambda: w3.eth.get_block("latest"))
        number, block_hash = int(latest["number"]), bytes(latest["hash"])
        if self._scanned_to is not None and not self._still_canonical(number, block_hash):
            self._rescans += 1
            self._reset()
        self._latest_block, self._latest_timestamp = number, int(latest["timestamp"])
        self._timestamps[number] = self._latest_timestamp
        start = self.deployment.block_number if self._scanned_to is None else self._scanned_to + 1
        first = self._scanned_to is None
        if start <= number:
            self._scan(client, start, number)
        self._scanned_to, self._scanned_hash = number, block_hash
        elapsed = time.perf_counter() - started
        self._last_refresh_seconds = elapsed
        if first:
            self._first_scan_seconds = elapsed
        return max(number - start + 1, 0)

    def _still_canonical(self, latest: int, latest_hash: bytes) -> bool:
        """True if the last scanned block is still part of the chain."""
        if self._scanned_to is None or self._scanned_hash is None:
            return False
        if latest < self._scanned_to:
            return False
        if latest == self._scanned_to:
            return latest_hash == self._scanned_hash
        w3 = self.client().w3
        scanned_to = self._scanned_to
        block = self._rpc("checking for a reorganisation", lambda: w3.eth.get_block(scanned_to))
        return bytes(block["hash"]) == self._scanned_hash

    def _scan(self, client: ChainClient, start: int, end: int) -> None:
        addresses = [
            to_checksum_address(self.deployment.registry),
            to_checksum_address(self.deployment.settlement),
        ]
        chunk = self.chunk_blocks
        block = start
        while block <= end:
            last = min(block + chunk - 1, end)
            try:
                logs = self._get_logs(client, addresses, block, last)
            except OSError as exc:
                raise self._unavailable("reading logs", exc) from exc
            except Exception as exc:
                if chunk == 1:
                    raise ChainIndexError(f"the node refused logs of block {block}: {exc}") from exc
                chunk = max(chunk // 2, 1)  # the node caps ranges or results: ask for less
                continue
            self._ingest_logs(client, logs)
            block = last + 1

    @staticmethod
    def _get_logs(
        client: ChainClient, addresses: Sequence[str], start: int, end: int
    ) -> list[RawLog]:
        """The logs of both contracts in blocks [start, end], oldest first. From a JSON-RPC
        node they are taken as the node sends them (web3's per-log result formatting costs
        more than decoding them); the in-process tester needs web3's request formatting."""
        if client.is_embedded:
            params: Any = {"address": addresses, "fromBlock": start, "toBlock": end}
            return [RawLog.of(log) for log in client.w3.eth.get_logs(params)]
        request = {"address": addresses, "fromBlock": hex(start), "toBlock": hex(end)}
        response = client.w3.provider.make_request("eth_getLogs", [request])  # type: ignore[arg-type]
        if "error" in response:
            raise ChainIndexError(f"eth_getLogs refused: {response['error']}")
        return [RawLog.of(log) for log in response["result"]]

    def _decoders(self, client: ChainClient) -> dict[bytes, EventDecoder]:
        if not self._topics:
            for contract in (client.registry, client.settlement):
                for abi in contract.abi:
                    if abi.get("type") == "event":
                        decoder = EventDecoder.of(abi)
                        self._topics[decoder.topic] = decoder
        return self._topics

    def _ingest_logs(self, client: ChainClient, logs: Sequence[RawLog]) -> None:
        decoders = self._decoders(client)
        self._fill_timestamps(client, logs)
        for log in logs:
            decoder = decoders.get(log.topics[0]) if log.topics else None
            if decoder is None:
                continue
            ref = EventRef(
                block_number=log.block_number,
                log_index=log.log_index,
                tx_hash=log.tx_hash,
                timestamp=self._timestamps[log.block_number],
            )
            self._apply(decoder.name, decoder.decode(log.topics, log.data), ref)

    def _fill_timestamps(self, client: ChainClient, logs: Sequence[RawLog]) -> None:
        """Block timestamps of the logs' blocks: from the logs where the node includes them
        (`blockTimestamp`, anvil does), else one `eth_getBlockByNumber` per block (batched
        where the provider supports JSON-RPC batches)."""
        missing: set[int] = set()
        for log in logs:
            if log.block_number in self._timestamps:
                continue
            if log.block_timestamp is not None:
                self._timestamps[log.block_number] = log.block_timestamp
            else:
                missing.add(log.block_number)
        if not missing:
            return
        w3 = client.w3
        numbers = sorted(missing)
        blocks = self._rpc("reading block times", lambda: _batched(w3, w3.eth.get_block, numbers))
        for number, block in zip(numbers, blocks, strict=True):
            self._timestamps[number] = int(block["timestamp"])

    def ingest(self, records: Iterable[Record]) -> None:
        """Add records as if scanned (in chain order): for tests and benchmarks that build a
        large history without mining it. The chain itself is not touched."""
        for record in records:
            self._add(record)

    # ------------------------------------------------------------------ applying events

    def _apply(self, name: str, a: Mapping[str, Any], ref: EventRef) -> None:
        record: Record | None
        if name == "ModelRegistered":
            record = ModelRegistration(
                int(a["modelId"]),
                a["owner"],
                "0x" + bytes(a["modelHash"]).hex(),
                int(a["ratePerKTokens"]),
                str(a["metadataURI"]),
                ref,
            )
        elif name == "RateProposed":
            record = RateProposal(
                int(a["modelId"]),
                int(a["oldRate"]),
                int(a["newRate"]),
                int(a["effectiveFrom"]),
                ref,
            )
        elif name == "ModelOwnershipTransferred":
            record = OwnershipTransfer(int(a["modelId"]), a["previousOwner"], a["newOwner"], ref)
        elif name == "Deposited":
            record = EscrowEvent(
                "deposit", a["payer"], a["operator"], int(a["amount"]), int(a["balance"]), None, ref
            )
        elif name == "WithdrawalRequested":
            record = EscrowEvent(
                "withdrawal_requested",
                a["payer"],
                a["operator"],
                int(a["amount"]),
                None,
                int(a["readyAt"]),
                ref,
            )
        elif name == "WithdrawalCancelled":
            record = EscrowEvent(
                "withdrawal_cancelled", a["payer"], a["operator"], 0, None, None, ref
            )
        elif name == "Withdrawn":
            record = EscrowEvent(
                "withdrawn",
                a["payer"],
                a["operator"],
                int(a["amount"]),
                int(a["balance"]),
                None,
                ref,
            )
        elif name == "SignerAuthorized":
            record = SignerChange("authorized", a["payer"], a["signer"], None, ref)
        elif name == "SignerRevoked":
            record = SignerChange("revoked", a["payer"], a["signer"], int(a["effectiveAt"]), ref)
        elif name == "ChannelSettled":
            record = ChannelSettlement(
                operator=a["operator"],
                payer=a["payer"],
                model_id=int(a["modelId"]),
                batch_seq=int(a["batchSeq"]),
                first_nonce=int(a["firstNonce"]),
                count=int(a["count"]),
                tokens=int(a["tokens"]),
                cumulative_tokens=int(a["cumulativeTokens"]),
                rate_per_k_tokens=int(a["ratePerKTokens"]),
                amount=int(a["amount"]),
                model_owner=a["modelOwner"],
                ref=ref,
            )
        elif name == "BatchSettled":
            record = BatchRecord(
                operator=a["operator"],
                batch_seq=int(a["batchSeq"]),
                log_domain_size=int(a["logDomainSize"]),
                proof_hash="0x" + bytes(a["proofHash"]).hex(),
                witness_commitments=bytes(a["witnessCommitments"]),
                total_tokens=int(a["totalTokens"]),
                total_amount=int(a["totalAmount"]),
                ref=ref,
                channels=(),  # the ChannelSettled records of the transaction, added by _add
            )
        elif name == "EarningsWithdrawn":
            record = EarningsWithdrawal(a["owner"], int(a["amount"]), ref)
        else:  # verifier changes: not shown by the dashboard
            record = None
        if record is not None:
            self._add(record)

    def _add(self, record: Record) -> None:
        self._count += 1
        ref = record.ref
        self.by_tx.setdefault(ref.tx_hash, []).append(record)
        if isinstance(record, ModelRegistration):
            checkpoint = RateCheckpoint(ref.timestamp, record.rate_per_k_tokens, ref)
            self.models[record.model_id] = ModelState(record, record.owner, ref, [checkpoint])
            self._owned.setdefault(record.owner, set()).add(record.model_id)
        elif isinstance(record, RateProposal):
            self._propose(record)
        elif isinstance(record, OwnershipTransfer):
            model = self.models[record.model_id]
            self._owned.get(model.owner, set()).discard(record.model_id)
            model.owner, model.owner_ref = record.new_owner, ref
            model.transfers.append(record)
            self._owned.setdefault(record.new_owner, set()).add(record.model_id)
        elif isinstance(record, EscrowEvent):
            self._escrow(record)
        elif isinstance(record, SignerChange):
            self.signers.setdefault(record.payer, []).append(record)
        elif isinstance(record, ChannelSettlement):
            self._settle_channel(record)
        elif isinstance(record, BatchRecord):
            pending = tuple(self._pending_channels.pop(ref.tx_hash, ()))
            if not record.channels:  # the batch's ChannelSettled records came just before
                record = replace(record, channels=pending)
                self.by_tx[ref.tx_hash][-1] = record
            operator = self.operators.setdefault(record.operator, OperatorState(record.operator))
            operator.batches.append(record)
            operator.tokens += record.total_tokens
            operator.amount += record.total_amount
            operator.rows += record.rows
        else:
            self.withdrawals.setdefault(record.owner, []).append(record)

    def _propose(self, p: RateProposal) -> None:
        """`ModelRegistry.proposeRate`: drop a still-pending checkpoint, then add (or, at the
        same effective time, overwrite) the new one."""
        model = self.models[p.model_id]
        model.proposals.append(p)
        schedule = model.schedule
        if schedule[-1].effective_from > p.ref.timestamp:
            schedule.pop()
        checkpoint = RateCheckpoint(p.effective_from, p.new_rate, p.ref)
        if schedule[-1].effective_from == p.effective_from:
            schedule[-1] = checkpoint
        else:
            schedule.append(checkpoint)

    def _account(self, payer: str, operator: str) -> EscrowState:
        account = self.accounts.get((payer, operator))
        if account is None:
            account = EscrowState(payer, operator)
            self.accounts[(payer, operator)] = account
            self._payer_accounts.setdefault(payer, []).append(account)
        return account

    def _escrow(self, e: EscrowEvent) -> None:
        account = self._account(e.payer, e.operator)
        account.history.append(e)
        if e.kind == "deposit":
            account.deposited += e.amount
        elif e.kind == "withdrawal_requested":
            account.thawing, account.thaw_ends_at, account.thaw_ref = (
                e.amount,
                e.ready_at or 0,
                e.ref,
            )
        elif e.kind == "withdrawal_cancelled":
            account.thawing, account.thaw_ends_at, account.thaw_ref = 0, 0, e.ref
        else:
            account.withdrawn += e.amount
            account.thawing, account.thaw_ends_at, account.thaw_ref = 0, 0, e.ref
        if e.balance is not None:
            account.balance, account.balance_ref = e.balance, e.ref

    def _settle_channel(self, s: ChannelSettlement) -> None:
        self._pending_channels.setdefault(s.ref.tx_hash, []).append(s)
        account = self._account(s.payer, s.operator)
        account.balance -= s.amount
        account.spent += s.amount
        account.balance_ref = s.ref
        account.history.append(s)
        key = (s.payer, s.operator, s.model_id)
        channel = self.channels.get(key)
        if channel is None:
            channel = ChannelState(s.payer, s.operator, s.model_id)
            self.channels[key] = channel
            self._payer_channels.setdefault(s.payer, []).append(channel)
        channel.settlements.append(s)
        channel.paid += s.amount
        model = self.models.get(s.model_id)
        if model is not None:
            model.settlements.append(s)
            model.earned += s.amount
            model.tokens += s.tokens

    # ------------------------------------------------------------------ queries

    @property
    def latest_block(self) -> int:
        return self._latest_block

    @property
    def chain_time(self) -> int:
        """The latest block's timestamp (what "now" means on chain)."""
        return self._latest_timestamp

    def stats(self) -> ScanStats:
        return ScanStats(
            self.deployment.block_number,
            self._scanned_to,
            self._count,
            self._first_scan_seconds,
            self._last_refresh_seconds,
            self._rescans,
        )

    def token(self) -> TokenInfo:
        """The settlement token's symbol and decimals (read once)."""
        if self._token is None:
            client = self.client()
            token = client.token
            symbol = self._rpc("reading the token symbol", lambda: token.functions.symbol().call())
            decimals = self._rpc("reading the token decimals", client.token_decimals)
            self._token = TokenInfo(self.deployment.token, str(symbol), int(decimals))
        return self._token

    def model_ids(self) -> list[int]:
        return sorted(self.models)

    def models_owned_by(self, owner: str) -> list[int]:
        return sorted(self._owned.get(owner, ()))

    def payer_accounts(self, payer: str) -> list[EscrowState]:
        """The payer's escrow accounts, one per operator, in order of first use."""
        return list(self._payer_accounts.get(payer, ()))

    def payer_channels(self, payer: str) -> list[ChannelState]:
        return list(self._payer_channels.get(payer, ()))

    def payers(self) -> list[str]:
        return list(self._payer_accounts)

    def batch(self, operator: str, batch_seq: int) -> BatchRecord | None:
        state = self.operators.get(operator)
        if state is None:
            return None
        batches = state.batches
        if 0 <= batch_seq < len(batches) and batches[batch_seq].batch_seq == batch_seq:
            return batches[batch_seq]
        return next((b for b in batches if b.batch_seq == batch_seq), None)

    def records_of(self, tx_hash: str) -> list[Record]:
        return list(self.by_tx.get(tx_hash.lower(), ()))

    # ------------------------------------------------------------------ lazy reads

    def gas_used(self, tx_hashes: Iterable[str]) -> dict[str, int]:
        """Gas used by each transaction (from its receipt; cached, batched where possible)."""
        hashes = [h.lower() for h in tx_hashes]
        wanted = [h for h in dict.fromkeys(hashes) if h not in self._gas]
        if wanted:
            w3 = self.client().w3
            receipts = self._rpc(
                "reading transaction receipts",
                lambda: _batched(w3, w3.eth.get_transaction_receipt, wanted),
            )
            for tx_hash, receipt in zip(wanted, receipts, strict=True):
                self._gas[tx_hash] = int(receipt["gasUsed"])
        return {h: self._gas[h] for h in hashes}

    def prime_gas(self, gas: Mapping[str, int]) -> None:
        """Record known gas figures (for synthetic histories in benchmarks)."""
        self._gas.update(gas)

    def signed_cap(self, settlement: ChannelSettlement) -> int | None:
        """The `maxRatePerKTokens` the payer signed for the state `settlement` settled, from
        the settling transaction's calldata (None if that transaction is not a direct
        `settle` call, e.g. sent through another contract)."""
        caps = self._caps.get(settlement.ref.tx_hash)
        if caps is None:
            caps = self._read_caps(settlement.ref.tx_hash)
            self._caps[settlement.ref.tx_hash] = caps
        return caps.get((settlement.payer, settlement.model_id))

    def _read_caps(self, tx_hash: str) -> dict[tuple[str, int], int]:
        client = self.client()
        tx = self._rpc("reading a transaction", lambda: client.w3.eth.get_transaction(tx_hash))  # type: ignore[arg-type]
        if str(tx.get("to") or "").lower() != self.deployment.settlement.lower():
            return {}
        try:
            function, args = client.settlement.decode_function_input(tx["input"])
        except ValueError:
            return {}
        if function.fn_name != "settle":
            return {}
        caps: dict[tuple[str, int], int] = {}
        for aggregate, state in zip(args["aggregates"], args["states"], strict=False):
            payer = to_checksum_address(_field(aggregate, "payer", 0))
            model_id = int(_field(aggregate, "modelId", 1))
            caps[(payer, model_id)] = int(_field(state, "maxRatePerKTokens", 0))
        return caps

    def transaction(self, tx_hash: str) -> TransactionInfo | None:
        """A transaction with its decoded call and the records it produced; None if the node
        does not know it."""
        client = self.client()
        w3 = client.w3

        def read() -> tuple[Any, Any] | None:
            try:
                return w3.eth.get_transaction(tx_hash), w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
            except Exception as exc:
                if type(exc).__name__ == "TransactionNotFound":
                    return None
                raise

        found = self._rpc("reading a transaction", read)
        if found is None:
            return None
        tx, receipt = found
        number = int(receipt["blockNumber"])
        timestamp = self._timestamps.get(number)
        if timestamp is None:
            block = self._rpc("reading a block", lambda: w3.eth.get_block(number))
            timestamp = self._timestamps[number] = int(block["timestamp"])
        self._gas[tx_hash.lower()] = int(receipt["gasUsed"])
        contract_name, function, arguments = self._decode_call(client, tx)
        return TransactionInfo(
            tx_hash=tx_hash.lower(),
            block_number=number,
            timestamp=timestamp,
            sender=str(tx["from"]),
            to=str(tx["to"]) if tx.get("to") else None,
            contract=contract_name,
            function=function,
            arguments=arguments,
            status=int(receipt["status"]),
            gas_used=int(receipt["gasUsed"]),
            gas_limit=int(tx["gas"]),
            records=tuple(self.records_of(tx_hash)),
        )

    def _decode_call(
        self, client: ChainClient, tx: Any
    ) -> tuple[str | None, str | None, tuple[tuple[str, str], ...]]:
        to = str(tx.get("to") or "").lower()
        contracts = {
            self.deployment.settlement.lower(): ("UsageSettlement", client.settlement),
            self.deployment.registry.lower(): ("ModelRegistry", client.registry),
            self.deployment.token.lower(): (self.token().symbol + " token", client.token),
        }
        if to not in contracts:
            return None, None, ()
        name, contract = contracts[to]
        try:
            function, args = contract.decode_function_input(tx["input"])
        except ValueError:
            return name, None, ()
        return name, str(function.fn_name), tuple((k, _describe(v)) for k, v in args.items())


def _field(struct: Any, name: str, position: int) -> Any:
    """A decoded struct's field: web3 gives structs as dicts by name (tuples in older
    versions)."""
    return struct[name] if isinstance(struct, Mapping) else struct[position]


def _batched(w3: Any, method: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
    """`[method(x) for x in items]`, as JSON-RPC batches of 500 where the provider supports
    them (HTTP nodes do; web3's in-process tester does not)."""
    if len(items) > 1:
        try:
            out: list[Any] = []
            for start in range(0, len(items), 500):
                with w3.batch_requests() as batch:
                    for item in items[start : start + 500]:
                        batch.add(method(item))
                    out.extend(batch.execute())
            if len(out) == len(items) and not any(isinstance(r, Exception) for r in out):
                return out
        except OSError:
            raise
        except Exception:  # provider without batch support: one request each
            pass
    return [method(item) for item in items]


def _describe(value: Any, limit: int = 120) -> str:
    """A call argument as short text: bytes as hex, sequences element by element."""
    if isinstance(value, bytes | bytearray):
        text = "0x" + bytes(value).hex()
    elif isinstance(value, Mapping):
        text = "{" + ", ".join(f"{k}: {_describe(v, limit)}" for k, v in value.items()) + "}"
    elif isinstance(value, list | tuple):
        text = "[" + ", ".join(_describe(v, limit) for v in value) + "]"
    else:
        text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
