"""Provers and verifiers: SRS files, verification keys, proving a receipts file, verifying a
proof (from a file, from the chain, or from a daemon's archive)."""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import click

from channels.receipts_file import (
    ReceiptsFileError,
    is_columns_file,
    load_receipts,
    load_receipts_columns,
)
from circuits.public_inputs import Aggregate, BatchHeader, PublicInputError, PublicInputs
from circuits.usage_batch import SRS_HEADROOM
from contracts.client import checksum
from prover.prover import prove_batch
from prover.srs import SRS, InsecureSRSWarning, SRSError, import_ptau
from prover.witness import BatchError, UsageArrays, UsageRow, smallest_log_size
from verifier.keys import VerificationKey, VerificationKeyError
from verifier.proof import MalformedProofError, Proof
from verifier.proof_file import parse_proof_file, proof_file_json
from verifier.usage_verifier import verify_batch_proof
from zkmeter.commands.options import (
    EXISTING_FILE,
    OUTPUT_FILE,
    echo_err,
    load_srs,
    proving_key_for,
    reader_for,
    run_chain,
    verification_key_for,
)

# Above this many powers, `srs new` shows a progress bar.
_PROGRESS_THRESHOLD = 1 << 12


@click.group()
def srs() -> None:
    """Structured reference strings (powers of tau) for KZG commitments."""


@srs.command("new")
@click.option(
    "--log-size",
    "-k",
    "k",
    type=click.IntRange(1, 28),
    required=True,
    help="Domain size 2^K: writes 2^K + 3 G1 powers.",
)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--seed", type=int, default=None, help="Derive tau from this seed (reproducible).")
def new(k: int, output: Path, seed: int | None) -> None:
    """Generate an INSECURE development SRS (tau is known to this machine)."""
    n_powers = (1 << k) + SRS_HEADROOM
    click.secho(
        "WARNING: INSECURE development SRS, tau is known: anyone holding it can forge proofs. "
        "Use `zkmeter srs import` with a ceremony .ptau for anything real.",
        fg="red",
        err=True,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureSRSWarning)
        if n_powers >= _PROGRESS_THRESHOLD:
            with click.progressbar(length=n_powers, label="G1 powers", file=None) as bar:
                last = [0]

                def progress(done: int, total: int) -> None:
                    bar.update(done - last[0])
                    last[0] = done

                value = SRS.insecure_development(
                    n_powers, seed=seed, progress=progress, lagrange_log_sizes=(k,)
                )
        else:
            value = SRS.insecure_development(n_powers, seed=seed, lagrange_log_sizes=(k,))
    _save_srs(value, output, "wrote")


@srs.command("import")
@click.argument("ptau", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option(
    "--max-powers", type=click.IntRange(2), default=None, help="Keep only the first N G1 powers."
)
@click.option(
    "--log-size",
    "-k",
    "lagrange_k",
    type=click.IntRange(8, 20),
    multiple=True,
    help="Take the Lagrange basis of 2^K rows from the file's prepared (phase 2) section into "
    "the cache (repeatable; no G1 FFT later).",
)
def import_(ptau: Path, output: Path, max_powers: int | None, lagrange_k: tuple[int, ...]) -> None:
    """Import the powers of tau of a snarkjs .ptau file (validated) into an SRS file."""
    try:
        value = import_ptau(ptau, max_powers=max_powers, lagrange_log_sizes=lagrange_k)
    except SRSError as exc:
        raise click.ClickException(str(exc)) from exc
    _save_srs(value, output, "imported")


def _save_srs(value: SRS, output: Path, verb: str) -> None:
    try:
        value.save(output)
    except OSError as exc:
        raise click.ClickException(f"cannot write {output}: {exc.strerror}") from exc
    click.echo(f"{verb} {value.n_powers} G1 powers to {output} (digest 0x{value.digest.hex()})")


@srs.command("info")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def info(path: Path) -> None:
    """Validate an SRS file and print its size and digest."""
    try:
        value = SRS.load(path)
    except SRSError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{path}: {value.n_powers} G1 powers, max degree {value.max_degree}")
    click.echo(f"digest 0x{value.digest.hex()}")


@click.command()
@click.argument("receipts", type=EXISTING_FILE)
@click.option("--srs", "srs_path", type=EXISTING_FILE, required=True, help="SRS file.")
@click.option("--output", "-o", type=OUTPUT_FILE, required=True, help="Proof file to write.")
@click.option(
    "--log-size",
    "-k",
    "k",
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
    help="Worker processes of the pure-Python prover (the native one uses its thread pool).",
)
def prove(receipts: Path, srs_path: Path, output: Path, k: int | None, processes: int) -> None:
    """Prove what the receipts in RECEIPTS add up to per channel; write a proof file.

    RECEIPTS is a receipts file (JSON) or its compact columns form (`zkmeter receipts
    pack`), which loads 2^20 receipts in a second or two."""
    rows: list[UsageRow] | UsageArrays
    try:
        if is_columns_file(receipts):  # the compact file of `zkmeter receipts pack`
            header, rows = load_receipts_columns(receipts)
        else:
            header, rows, _raw = load_receipts(receipts)
        k = k or smallest_log_size(len(rows))
    except (ReceiptsFileError, BatchError) as error:
        raise click.ClickException(f"{receipts}: {error}") from None
    srs = load_srs(srs_path)
    pk = proving_key_for(srs, k)
    started = time.perf_counter()
    echo_err(f"proving {len(rows)} receipts in a 2^{k}-row batch")
    try:
        result = prove_batch(
            pk,
            header,
            rows,
            processes=processes,
            progress=lambda m: echo_err(f"  [{time.perf_counter() - started:6.1f} s] {m}"),
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
@click.argument("proof_file", type=EXISTING_FILE, required=False)
@click.option("--srs", "srs_path", type=EXISTING_FILE, help="SRS the proof was made with.")
@click.option("--vk", "vk_path", type=EXISTING_FILE, help="Verification key (keys export).")
@click.option("--rpc-url", envvar="ZKMETER_RPC_URL", help="Re-check a settled batch on this node.")
@click.option(
    "--deployment",
    type=EXISTING_FILE,
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
        vk = verification_key_for(load_srs(srs_path), proof.k)
    verdict = verify_batch_proof(vk, public, proof)
    channels = len(public.aggregates)
    tokens = sum(a.tokens for a in public.aggregates)
    where = " (settled on-chain)" if on_chain else ""
    if verdict.accepted:
        click.echo(
            f"ACCEPTED: batch {public.header.batch_seq} of operator "
            f"{checksum(public.header.operator)}{where}: {channels} channel(s), {tokens} tokens"
        )
        return
    click.echo(f"REJECTED: {verdict.message}")
    sys.exit(1)


def _settled_batch(
    rpc_url: str, deployment_path: Path, operator: str, batch_seq: int
) -> tuple[PublicInputs, Proof]:
    """Public inputs and proof of a settled batch, read from the chain."""
    client = reader_for(rpc_url, deployment_path)
    deployment = client.deployed()
    event, proof_bytes = run_chain(client.settled_batch, operator, batch_seq)
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
    public = PublicInputs(header, event.k, aggregates)
    try:
        proof = Proof.from_bytes(event.k, proof_bytes)
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
    chain's BatchSettled record of an archived batch (operator_service.archive)."""
    from operator_service.archive import ArchiveAuditError, audit_batch, batch_folder

    if batch_seq is None or srs_path is None:
        raise click.UsageError("--archive needs --batch N and --srs FILE")
    chain = None
    if rpc_url is not None:
        if deployment is None:
            raise click.UsageError("--rpc-url needs --deployment")
        chain = reader_for(rpc_url, deployment)
    try:
        proof_data = json.loads((batch_folder(archive, batch_seq) / "proof.json").read_text())
        k = int(proof_data["public"]["log_domain_size"])
    except (OSError, KeyError, ValueError, TypeError) as error:
        raise click.ClickException(f"batch {batch_seq} in {archive}: {error}") from None
    pk = proving_key_for(load_srs(srs_path), k)
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
@click.option("--srs", "srs_path", type=EXISTING_FILE, required=True)
@click.option("--log-size", "-k", "k", type=click.IntRange(8, 20), required=True)
@click.option("--output", "-o", type=OUTPUT_FILE, required=True)
def export(srs_path: Path, k: int, output: Path) -> None:
    """Write the verification key for 2^K-row batches."""
    vk = verification_key_for(load_srs(srs_path), k)
    vk.save(output)
    click.echo(f"wrote the verification key for 2^{k}-row batches to {output}")
