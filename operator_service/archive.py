"""The batch archive: written by the daemon, audited by `zkmeter verify --archive DIR --batch N`.

The daemon archives, per batch, in `DIR/batch-NNNNNNNN/` (folders 0700, files 0600: the
archive undoes zero knowledge): `receipts.json` (the signed receipts, receipts-file format),
`proof.json` (proof file), `blinding.json` (the random coefficients r_j of every column's Z_H
multiple) and, once settled, `tx.json`. The audit:
1. every receipt's EIP-712 signature is canonical and recovers its payer or another signer
   (which, with `chain`, the payer must have authorised at some time), and each channel's
   cumulative tokens grow by exactly each call's tokens;
2. the receipts add up to the proof's public aggregates;
3. each round-1 commitment is recomputed from the receipts and the archived r_j:
   [c + r Z_H]_1 = sum_i c_i [L_i(tau)]_1 + sum_j r_j ([tau^(N+j)]_1 - [tau^j]_1)
   (PROTOCOL §6 step 3, prover.kzg.commit_blinded_lagrange) and must equal the proof's;
4. the proof verifies (Python verifier);
5. optionally, the chain's BatchSettled record for this batch carries keccak256(proof), and
   each of its ChannelSettled records the cumulative tokens of the channel's last receipt.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_utils.crypto import keccak

from channels.receipts import (
    ReceiptDomain,
    ReceiptError,
    SignedReceipt,
    latest_receipts,
    recover_signer,
)
from channels.receipts_file import ReceiptsFileError, parse_receipts, receipts_file_json
from circuits.public_inputs import BatchHeader, PublicInputs, address_hex
from prover.kzg import commit_blinded_lagrange
from prover.proving_key import ProvingKey
from prover.witness import build_witness
from verifier.proof import Proof
from verifier.proof_file import parse_proof_file, proof_file_json
from verifier.usage_verifier import verify_batch_proof


class ArchiveAuditError(Exception):
    """The archived batch does not check out; the message says which step failed."""


@dataclass(frozen=True)
class AuditReport:
    batch_seq: int
    receipts: int
    channels: int
    tokens: int
    commitments_checked: int
    on_chain: bool
    #: receipts signed by a key other than their payer's (checked against the chain's signer
    #: authorisations only when `on_chain`)
    delegated: int


def batch_folder(archive: Path, seq: int) -> Path:
    """Where batch `seq` is archived."""
    return archive / f"batch-{seq:08d}"


def write_json_private(path: Path, data: Any) -> None:
    """Write JSON durably (a temporary file, fsync, rename) and privately: the archive undoes
    zero knowledge (it holds per-call usage and blinding), so folders are created 0700 and
    files 0600."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def archive_proven_batch(
    archive: Path,
    header: BatchHeader,
    receipts: Sequence[tuple[SignedReceipt, int]],
    public: PublicInputs,
    proof: Proof,
    blinding: dict[str, list[int]],
) -> Path:
    """Archive a proven batch: its receipts (with each call's tokens), proof file and blinding
    factors. Returns the proof file's path."""
    folder = batch_folder(archive, header.batch_seq)
    write_json_private(folder / "receipts.json", receipts_file_json(header, receipts))
    write_json_private(folder / "proof.json", proof_file_json(public, proof))
    write_json_private(
        folder / "blinding.json", {k: [str(v) for v in vs] for k, vs in blinding.items()}
    )
    return folder / "proof.json"


def archive_settlement(archive: Path, seq: int, tx_hash: str | None, gas_used: int | None) -> None:
    """Record how batch `seq` settled (`tx.json`)."""
    write_json_private(
        batch_folder(archive, seq) / "tx.json",
        {"batch_seq": seq, "tx_hash": tx_hash, "gas_used": gas_used},
    )


def _load(path: Path) -> Any:
    if not path.is_file():
        raise ArchiveAuditError(f"missing {path}")
    return json.loads(path.read_text(encoding="utf-8"))


def audit_batch(archive: Path, seq: int, pk: ProvingKey, chain: Any = None) -> AuditReport:
    """Run checks 1-5 (5 only if `chain`, a contracts.client.ChainClient, is given)."""
    folder = batch_folder(archive, seq)
    receipts_data = _load(folder / "receipts.json")
    public, proof = parse_proof_file(_load(folder / "proof.json"))
    blinding = {k: [int(v) for v in vs] for k, vs in _load(folder / "blinding.json").items()}
    if public.header.batch_seq != seq:
        raise ArchiveAuditError(f"proof.json is for batch {public.header.batch_seq}, not {seq}")
    domain = ReceiptDomain(public.header.chain_id, address_hex(public.header.settlement))
    operator = address_hex(public.header.operator)

    try:
        _, rows, items = parse_receipts(receipts_data)
    except (ReceiptsFileError, ValueError) as error:
        raise ArchiveAuditError(f"receipts.json: {error}") from None
    receipts: list[SignedReceipt] = []
    foreign_signers: dict[tuple[str, str], int] = {}  # (payer, signer) -> first receipt index
    delegated = 0
    for index, item in enumerate(items):
        try:
            receipt = SignedReceipt.from_json(item)
            signer = recover_signer(receipt, domain)
        except ReceiptError as error:
            raise ArchiveAuditError(f"receipt {index}: {error}") from None
        if receipt.operator.lower() != operator.lower():
            raise ArchiveAuditError(f"receipt {index}: operator is not the batch's")
        if signer != receipt.payer:
            foreign_signers.setdefault((receipt.payer, signer), index)
            delegated += 1
        receipts.append(receipt)
    if chain is not None:
        for (payer, signer), index in sorted(foreign_signers.items()):
            if chain.signer_authorized_until(payer, signer) == 0:
                raise ArchiveAuditError(
                    f"receipt {index}: signed by {signer}, which payer {payer} never authorised"
                )

    witness = build_witness(rows, public.k)
    if tuple(witness.aggregates) != tuple(public.aggregates):
        raise ArchiveAuditError("the receipts do not add up to the proof's public aggregates")

    for name, values in witness.columns.items():
        r = blinding.get(name)
        if r is None:
            raise ArchiveAuditError(f"blinding.json has no factors for column {name}")
        commitment = commit_blinded_lagrange(values, pk.lagrange_points, pk.srs.g1_powers, r)
        if commitment != tuple(proof.commitments[name]):
            raise ArchiveAuditError(f"commitment to column {name} does not match the receipts")

    verdict = verify_batch_proof(pk.vk, public, proof)
    if not verdict.accepted:
        raise ArchiveAuditError(f"proof rejected: {verdict.check}: {verdict.message}")

    on_chain = False
    if chain is not None:
        event = chain.settled_batch_event(operator, seq)
        if event is None:
            raise ArchiveAuditError(f"the chain has no BatchSettled for batch {seq}")
        if event.proof_hash != keccak(proof.to_bytes()):
            raise ArchiveAuditError("the chain settled this batch with a different proof")
        latest_states = latest_receipts(receipts)
        for channel in event.channels:
            latest = latest_states.get((int(channel.payer, 16), channel.model_id))
            if latest is None or latest.cumulative_tokens != channel.cumulative_tokens:
                raise ArchiveAuditError(
                    f"the chain settled channel (payer {channel.payer}, model "
                    f"{channel.model_id}) at cumulative {channel.cumulative_tokens}, not at its "
                    "last archived receipt's"
                )
        on_chain = True
    return AuditReport(
        seq,
        len(rows),
        len(public.aggregates),
        sum(a.tokens for a in public.aggregates),
        len(witness.columns),
        on_chain,
        delegated,
    )


__all__ = [
    "ArchiveAuditError",
    "AuditReport",
    "archive_proven_batch",
    "archive_settlement",
    "audit_batch",
    "batch_folder",
    "write_json_private",
]
