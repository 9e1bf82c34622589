"""`zkmeter prove`, `zkmeter verify` and `zkmeter keys export`."""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import click

from circuits.public_inputs import Aggregate, BatchHeader, PublicInputError, PublicInputs
from circuits.usage_batch import UnsupportedDomainError
from prover.prover import prove_batch
from prover.proving_key import ProvingKey, ProvingKeyError
from prover.receipts_file import ReceiptsFileError, load_receipts
from prover.srs import SRS, InsecureSRSWarning, SRSError
from prover.witness import BatchError, smallest_log_size
from verifier.keys import VerificationKey, VerificationKeyError
from verifier.proof import MalformedProofError, Proof
from verifier.proof_file import parse_proof_file, proof_file_json
from verifier.usage_verifier import verify_batch_proof

_EXISTING_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
_OUTPUT_FILE = click.Path(dir_okay=False, path_type=Path)


def _stderr(message: str) -> None:
    click.echo(message, err=True)


def load_srs(path: Path) -> SRS:
    """Load an SRS file, turning its errors into a one-line CLI error."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", InsecureSRSWarning)
            return SRS.load(path)
    except (SRSError, OSError) as error:
        raise click.ClickException(f"cannot use SRS {path}: {error}") from None


def proving_key_for(srs: SRS, log_size: int) -> ProvingKey:
    started = time.perf_counter()
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.perf_counter()
        if now - last[0] > 2 or done == total:
            last[0] = now
            _stderr(f"  Lagrange basis for 2^{log_size} rows: {100 * done // max(total, 1)}%")

    try:
        key = ProvingKey.build(srs, log_size, progress=progress)
    except (ProvingKeyError, UnsupportedDomainError) as error:
        raise click.ClickException(str(error)) from None
    elapsed = time.perf_counter() - started
    if elapsed > 1:
        _stderr(f"  proving key for 2^{log_size} rows ready in {elapsed:.1f} s")
    return key


@click.command()
@click.argument("receipts", type=_EXISTING_FILE)
@click.option("--srs", "srs_path", type=_EXISTING_FILE, required=True, help="SRS file.")
@click.option("--output", "-o", type=_OUTPUT_FILE, required=True, help="Proof file to write.")
@click.option(
    "--log-size",
    "-k",
    type=click.IntRange(8, 20),
    default=None,
    help="Domain size 2^K (default: the smallest that fits the receipts).",
)
@click.option(
    "--processes",
    "-j",
    type=click.IntRange(1, 64),
    default=2,
    show_default=True,
    help="Processes for the MSMs.",
)
def prove(
    receipts: Path, srs_path: Path, output: Path, log_size: int | None, processes: int
) -> None:
    """Prove what the receipts in RECEIPTS add up to per channel; write a proof file."""
    try:
        header, rows, _raw = load_receipts(receipts)
        log_size = log_size or smallest_log_size(len(rows))
    except (ReceiptsFileError, BatchError) as error:
        raise click.ClickException(f"{receipts}: {error}") from None
    srs = load_srs(srs_path)
    pk = proving_key_for(srs, log_size)
    started = time.perf_counter()
    _stderr(f"proving {len(rows)} receipts in a 2^{log_size}-row batch")
    try:
        result = prove_batch(
            pk,
            header,
            rows,
            processes=processes,
            progress=lambda m: _stderr(f"  [{time.perf_counter() - started:6.1f} s] {m}"),
        )
    except BatchError as error:
        raise click.ClickException(f"{receipts}: {error}") from None
    output.write_text(json.dumps(proof_file_json(result.public, result.proof), indent=2) + "\n")
    aggregates = result.public.aggregates
    click.echo(
        f"proved {len(rows)} receipts in {len(aggregates)} channel(s), "
        f"{sum(a.tokens for a in aggregates)} tokens, in {result.timings.total:.1f} s: "
        f"{output} ({len(result.proof.to_bytes())}-byte proof)"
    )


@click.command()
@click.argument("proof_file", type=_EXISTING_FILE, required=False)
@click.option("--srs", "srs_path", type=_EXISTING_FILE, help="SRS the proof was made with.")
@click.option("--vk", "vk_path", type=_EXISTING_FILE, help="Verification key (keys export).")
@click.option("--rpc-url", envvar="ZKMETER_RPC_URL", help="Re-check a settled batch on this node.")
@click.option(
    "--deployment",
    type=_EXISTING_FILE,
    envvar="ZKMETER_DEPLOYMENT",
    help="Deployment file (zkmeter chain deploy) of the settlement contract.",
)
@click.option("--operator", help="Operator address of the settled batch (with --batch).")
@click.option("--batch", "batch_seq", type=click.IntRange(0), help="Settled batch number.")
@click.option(
    "--archive",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Audit batch --batch of a daemon's archive (needs --srs; --rpc-url checks the chain).",
)
def verify(
    proof_file: Path | None,
    srs_path: Path | None,
    vk_path: Path | None,
    rpc_url: str | None,
    deployment: Path | None,
    operator: str | None,
    batch_seq: int | None,
    archive: Path | None,
) -> None:
    """Verify PROOF_FILE, or a batch settled on-chain (--rpc-url --deployment --operator
    --batch), or a daemon's archived batch (--archive DIR --batch N); exit 0 only if the
    proof is accepted.

    A settled batch is re-checked from the chain alone: its public inputs from the
    ChannelSettled events (first nonces as the contract filled them in), its proof from the
    settling transaction's calldata (checked against the event's proof hash), and the
    verification key from --vk/--srs, not from the chain.
    """
    if archive is not None:
        _verify_archive(archive, batch_seq, srs_path, rpc_url, deployment)
        return
    if (srs_path is None) == (vk_path is None):
        raise click.UsageError("give exactly one of --srs or --vk")
    on_chain = batch_seq is not None
    if on_chain:
        if proof_file is not None or not (rpc_url and deployment and operator):
            raise click.UsageError(
                "re-checking a settled batch takes --rpc-url, --deployment, --operator and "
                "--batch, and no PROOF_FILE"
            )
        assert batch_seq is not None and rpc_url and deployment and operator
        public, proof = _settled_batch(rpc_url, deployment, operator, batch_seq)
    else:
        if proof_file is None:
            raise click.UsageError("give a PROOF_FILE, or --batch N to re-check a settled batch")
        try:
            public, proof = parse_proof_file(json.loads(proof_file.read_text()))
        except (json.JSONDecodeError, MalformedProofError, PublicInputError) as error:
            click.echo(f"REJECTED: {proof_file}: {error}")
            sys.exit(1)
    if vk_path is not None:
        try:
            vk = VerificationKey.load(vk_path)
        except VerificationKeyError as error:
            raise click.ClickException(f"{vk_path}: {error}") from None
    else:
        assert srs_path is not None
        vk = proving_key_for(load_srs(srs_path), proof.log_size).vk
    verdict = verify_batch_proof(vk, public, proof)
    channels = len(public.aggregates)
    tokens = sum(a.tokens for a in public.aggregates)
    where = " (settled on-chain)" if on_chain else ""
    if verdict.accepted:
        click.echo(
            f"ACCEPTED: batch {public.header.batch_seq} of operator "
            f"0x{public.header.operator:040x}{where}: {channels} channel(s), {tokens} tokens"
        )
        return
    click.echo(f"REJECTED: {verdict.message}")
    sys.exit(1)


def _settled_batch(
    rpc_url: str, deployment_path: Path, operator: str, batch_seq: int
) -> tuple[PublicInputs, Proof]:
    """Public inputs and proof of a settled batch, read from the chain."""
    from contracts.client import ChainClient, ChainError, Deployment

    try:
        client = ChainClient.connect(rpc_url)
        deployment = Deployment.load(deployment_path)
        client.use(deployment)
        event, proof_bytes = client.settled_batch(operator, batch_seq)
    except (ChainError, OSError, ValueError) as error:
        raise click.ClickException(str(error)) from None
    header = BatchHeader(
        chain_id=client.chain_id,
        settlement=int(deployment.settlement, 16),
        operator=int(event.operator, 16),
        batch_seq=event.batch_seq,
    )
    aggregates = tuple(
        Aggregate(int(c.payer, 16), c.model_id, c.first_nonce, c.count, c.tokens)
        for c in event.channels
    )
    public = PublicInputs(header, event.log_domain_size, aggregates)
    try:
        proof = Proof.from_bytes(event.log_domain_size, proof_bytes)
    except MalformedProofError as error:
        click.echo(f"REJECTED: the settled proof does not decode: {error}")
        sys.exit(1)
    return public, proof


def _verify_archive(
    archive: Path,
    batch_seq: int | None,
    srs_path: Path | None,
    rpc_url: str | None,
    deployment: Path | None,
) -> None:
    """Signatures, commitments from receipts + blinding, the proof, and (with --rpc-url) the
    chain's BatchSettled record of an archived batch (prover.archive)."""
    from prover.archive import ArchiveAuditError, audit_batch, batch_folder

    if batch_seq is None or srs_path is None:
        raise click.UsageError("--archive needs --batch N and --srs FILE")
    chain = None
    if rpc_url is not None:
        from contracts.client import ChainClient, ChainError, Deployment

        if deployment is None:
            raise click.UsageError("--rpc-url needs --deployment")
        try:
            chain = ChainClient.connect(rpc_url)
            chain.use(Deployment.load(deployment))
        except (ChainError, OSError, ValueError) as error:
            raise click.ClickException(str(error)) from None
    try:
        proof_data = json.loads((batch_folder(archive, batch_seq) / "proof.json").read_text())
        log_size = int(proof_data["public"]["log_domain_size"])
    except (OSError, KeyError, ValueError, TypeError) as error:
        raise click.ClickException(f"batch {batch_seq} in {archive}: {error}") from None
    pk = proving_key_for(load_srs(srs_path), log_size)
    try:
        report = audit_batch(archive, batch_seq, pk, chain)
    except (ArchiveAuditError, BatchError) as error:
        click.echo(f"REJECTED: batch {batch_seq}: {error}")
        sys.exit(1)
    click.echo(
        f"ACCEPTED: batch {batch_seq}: {report.receipts} signed receipt(s), "
        f"{report.channels} channel(s), {report.tokens} tokens; "
        f"{report.commitments_checked} commitments recomputed"
        + ("; settled on chain with this proof" if report.on_chain else "")
        + (
            f"; {report.delegated} receipt(s) signed by a payer's signer key"
            + (" (authorised on chain)" if report.on_chain else " (not checked: give --rpc-url)")
            if report.delegated
            else ""
        )
    )


@click.group()
def keys() -> None:
    """Verification keys."""


@keys.command("export")
@click.option("--srs", "srs_path", type=_EXISTING_FILE, required=True)
@click.option("--log-size", "-k", type=click.IntRange(8, 20), required=True)
@click.option("--output", "-o", type=_OUTPUT_FILE, required=True)
def export(srs_path: Path, log_size: int, output: Path) -> None:
    """Write the verification key for 2^K-row batches."""
    vk = proving_key_for(load_srs(srs_path), log_size).vk
    vk.save(output)
    click.echo(f"wrote the verification key for 2^{log_size}-row batches to {output}")
