"""Public inputs of a usage-batch proof and the rules they must satisfy.

Public: chain id, settlement contract, operator, batch sequence number, the domain size
N = 2^log_size, and one aggregate per channel (payer, modelId, firstNonce, count, tokens),
listed with strictly increasing keys key = payer + 2^160 * modelId (docs/PROTOCOL.md §2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from circuits.usage_batch import (
    MODEL_ID_BITS,
    NONCE_BITS,
    PAYER_BITS,
    TOKEN_BITS,
    Layout,
    channel_key,
)


class PublicInputError(ValueError):
    """The public inputs break a rule of the statement; the message names the rule."""


@dataclass(frozen=True)
class Aggregate:
    """What one channel (payer, operator, modelId) adds up to in a batch."""

    payer: int
    model_id: int
    first_nonce: int
    count: int
    tokens: int

    @property
    def key(self) -> int:
        return channel_key(self.payer, self.model_id)

    def to_json(self) -> dict[str, Any]:
        return {
            "payer": address_hex(self.payer),
            "model_id": self.model_id,
            "first_nonce": self.first_nonce,
            "count": self.count,
            "tokens": self.tokens,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Aggregate:
        try:
            return cls(
                payer=parse_address(data["payer"], "payer"),
                model_id=int(data["model_id"]),
                first_nonce=int(data["first_nonce"]),
                count=int(data["count"]),
                tokens=int(data["tokens"]),
            )
        except KeyError as missing:
            raise PublicInputError(f"aggregate is missing field {missing}") from None


@dataclass(frozen=True)
class BatchHeader:
    """Binds a proof to one chain, one settlement contract, one operator and one batch."""

    chain_id: int
    settlement: int
    operator: int
    batch_seq: int

    def to_json(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "settlement": address_hex(self.settlement),
            "operator": address_hex(self.operator),
            "batch_seq": self.batch_seq,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BatchHeader:
        try:
            return cls(
                chain_id=int(data["chain_id"]),
                settlement=parse_address(data["settlement"], "settlement"),
                operator=parse_address(data["operator"], "operator"),
                batch_seq=int(data["batch_seq"]),
            )
        except KeyError as missing:
            raise PublicInputError(f"batch header is missing field {missing}") from None


@dataclass(frozen=True)
class PublicInputs:
    header: BatchHeader
    k: int
    aggregates: tuple[Aggregate, ...]

    @property
    def layout(self) -> Layout:
        return Layout(self.k)

    def to_json(self) -> dict[str, Any]:
        return {
            **self.header.to_json(),
            "log_domain_size": self.k,
            "aggregates": [a.to_json() for a in self.aggregates],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PublicInputs:
        try:
            return cls(
                header=BatchHeader.from_json(data),
                k=int(data["log_domain_size"]),
                aggregates=tuple(Aggregate.from_json(a) for a in data["aggregates"]),
            )
        except KeyError as missing:
            raise PublicInputError(f"public inputs are missing field {missing}") from None


def check_public_inputs(public: PublicInputs) -> None:
    """Raise PublicInputError unless the public inputs satisfy every rule of §2.

    The bounds are what the soundness argument needs: counts and token sums far below R,
    so that field equalities between sums are integer equalities.
    """
    layout = public.layout  # raises UnsupportedDomainError for unsupported sizes
    header = public.header
    for name, value, bits in (
        ("chain id", header.chain_id, 256),
        ("settlement", header.settlement, PAYER_BITS),
        ("operator", header.operator, PAYER_BITS),
        ("batch sequence number", header.batch_seq, 64),
    ):
        if not 0 <= value < 1 << bits:
            raise PublicInputError(f"{name} {value} is out of range [0, 2^{bits})")
    aggregates = public.aggregates
    if not aggregates:
        raise PublicInputError("a batch needs at least one aggregate")
    if len(aggregates) > layout.size:
        raise PublicInputError(f"{len(aggregates)} aggregates exceed the domain size {layout.size}")
    total_rows = 0
    previous_key = -1
    for index, agg in enumerate(aggregates):
        where = f"aggregate {index}"
        if not 0 <= agg.payer < 1 << PAYER_BITS:
            raise PublicInputError(f"{where}: payer is not a 160-bit address")
        if not 0 <= agg.model_id < 1 << MODEL_ID_BITS:
            raise PublicInputError(f"{where}: modelId {agg.model_id} does not fit in 64 bits")
        if not 1 <= agg.count <= layout.size:
            raise PublicInputError(f"{where}: count {agg.count} is not in [1, {layout.size}]")
        if not agg.first_nonce >= 1 or agg.first_nonce + agg.count - 1 >= 1 << NONCE_BITS:
            raise PublicInputError(
                f"{where}: nonces {agg.first_nonce}..{agg.first_nonce + agg.count - 1} "
                f"are not within [1, 2^{NONCE_BITS})"
            )
        if not 0 <= agg.tokens <= agg.count * ((1 << TOKEN_BITS) - 1):
            raise PublicInputError(
                f"{where}: tokens {agg.tokens} cannot be the sum of {agg.count} uint32 counts"
            )
        key = agg.key
        if key <= previous_key:
            raise PublicInputError(f"{where}: keys are not strictly increasing")
        previous_key = key
        total_rows += agg.count
    if total_rows > layout.max_rows:
        raise PublicInputError(f"{total_rows} rows in all exceed the domain's {layout.max_rows}")


def address_hex(value: int) -> str:
    return f"0x{value:040x}"


def parse_address(value: object, what: str) -> int:
    """An address from a 0x-prefixed 40-hex-digit string or an int."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.startswith(("0x", "0X")) and len(value) == 42:
        try:
            number = int(value, 16)
        except ValueError:
            raise PublicInputError(f"{what} {value!r} is not a hex address") from None
    else:
        raise PublicInputError(f"{what} {value!r} is not a 0x-prefixed 20-byte address")
    if not 0 <= number < 1 << PAYER_BITS:
        raise PublicInputError(f"{what} {value!r} does not fit in 160 bits")
    return number
