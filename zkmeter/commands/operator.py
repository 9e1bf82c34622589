"""Operators: the prover daemon, and settling a proof file by hand."""

from __future__ import annotations

import json
import time
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from zkmeter.commands.options import (
    EXISTING_FILE,
    client_for,
    deployment_option,
    echo_err,
    keystore_option,
    load_srs,
    proving_key_for,
    rpc_option,
    run_chain,
    signing_key,
)
from zkmeter.commands.payer import DEFAULT_PORT

if TYPE_CHECKING:
    from contracts.client import ChainClient


#: TOML keys of the daemon's config file and their types (flags given override them).
CONFIG_KEYS: dict[str, type] = {
    "rpc_url": str,
    "deployment": str,
    "srs": str,
    "db": str,
    "archive": str,
    "host": str,
    "port": int,
    "log_size": int,
    "max_rows": int,
    "max_age": float,
    "confirmations": int,
    "prove_processes": int,
    "escrow_ttl": float,
    "roles": str,
    "intake_processes": int,
    "provers": int,
    "operator": str,
    "claim_lease": float,
}


def load_daemon_config(path: Path | None, flags: dict[str, Any]) -> dict[str, Any]:
    """The TOML file's settings (top level or a [daemon] table) overridden by given flags."""
    settings: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, OSError) as error:
            raise click.ClickException(f"cannot read config {path}: {error}") from None
        data = data.get("daemon", data)
        for key, value in data.items():
            if key not in CONFIG_KEYS:
                raise click.ClickException(f"config {path}: unknown setting {key!r}")
            if key in ("private_key", "password"):
                raise click.ClickException("keys never go in the config file")
            settings[key] = CONFIG_KEYS[key](value)
    settings.update({k: v for k, v in flags.items() if v is not None})
    roles = settings.get("roles", "intake,batcher,prover")
    needed = ("deployment", "srs") if roles == "prover" else ("rpc_url", "deployment", "srs")
    for required in needed:
        if required not in settings:
            raise click.ClickException(f"missing --{required.replace('_', '-')} (flag or config)")
    return settings


@click.command()
@click.option("--config", "config_path", type=EXISTING_FILE, help="TOML config file.")
@click.option("--rpc-url", envvar="ZKMETER_RPC_URL", help="JSON-RPC URL of the node.")
@click.option("--deployment", envvar="ZKMETER_DEPLOYMENT", help="Deployment file.")
@click.option("--srs", help="SRS file (covers 2^log-size rows).")
@click.option(
    "--db",
    envvar="ZKMETER_DB",
    help="Store URL: sqlite:///PATH (default sqlite:///zkmeter-operator.db) or "
    "postgresql://USER@HOST:PORT/DB (password in ~/.pgpass or env PGPASSWORD).",
)
@click.option("--archive", help="Directory to archive each batch in.")
@click.option("--host", help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, help=f"Port (default {DEFAULT_PORT}).")
@click.option("--log-size", type=click.IntRange(8, 20), help="Batch domain 2^k (default 8).")
@click.option("--max-rows", type=click.IntRange(1), help="Receipts per batch (default 2^k).")
@click.option("--max-age", type=float, help="Seconds before a partial batch is cut (60).")
@click.option("--confirmations", type=click.IntRange(0), help="Blocks to wait (default 0).")
@click.option("--prove-processes", type=click.IntRange(1), help="Workers per proof (default 1).")
@click.option(
    "--escrow-ttl", type=click.FloatRange(0), help="Seconds an escrow read is reused (1.0)."
)
@click.option(
    "--roles",
    help="Comma-separated roles of this process: intake, batcher, prover "
    "(default all three; see docs/OPERATOR.md, Deployment).",
)
@click.option(
    "--intake-processes",
    type=click.IntRange(1, 64),
    help="Intake processes sharing the port on this machine (default 1).",
)
@click.option("--provers", type=click.IntRange(0, 64), help="Proving workers here (default 1).")
@click.option(
    "--operator", help="Operator address, for a prover-only process (which needs no key)."
)
@click.option(
    "--claim-lease",
    type=click.FloatRange(1),
    help="Seconds a proving worker's claim lasts unless renewed (default 30): how soon "
    "another worker takes over the batch of one that died.",
)
@keystore_option
def daemon(config_path: Path | None, keystore: Path | None, **flags: Any) -> None:
    """Run the operator's daemon: admit receipts over HTTP, batch, prove, settle."""
    from operator_service.daemon import DaemonPlan, prepare_metrics, run_daemon
    from operator_service.jsonlog import configure_json_logging

    settings = load_daemon_config(config_path, flags)
    try:
        plan = DaemonPlan(
            roles=frozenset(
                r.strip()
                for r in settings.get("roles", "intake,batcher,prover").split(",")
                if r.strip()
            ),
            intake_processes=settings.get("intake_processes", 1),
            provers=settings.get("provers", 1),
            host=settings.get("host", "127.0.0.1"),
            port=settings.get("port", DEFAULT_PORT),
        )
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    prepare_metrics(plan)  # before prometheus_client is imported
    configure_json_logging()
    prover_only = plan.roles == {"prover"}
    key = None if prover_only and "operator" in settings else signing_key(keystore)
    build = _builder(settings, plan, key)
    build(False, check_only=True)  # fail here, with a message, before forking anything
    run_daemon(plan, build)


def _builder(settings: dict[str, Any], plan: Any, key: str | None) -> Any:
    """The function that makes this process's Operator (or ProvingWorker) in each process."""
    from eth_account import Account

    from contracts.client import ChainClient, ChainError, Deployment
    from operator_service.config import DaemonConfig
    from operator_service.pipeline import DaemonError, Operator
    from operator_service.proving import ProvingWorker
    from operator_service.store import ReceiptStore, StoreError, StoreUnavailableError

    db = settings.get("db", "sqlite:///zkmeter-operator.db")
    k = settings.get("log_size", 8)
    try:
        deployment = Deployment.load(settings["deployment"])
    except (OSError, ValueError) as error:
        raise click.ClickException(str(error)) from None
    if k not in deployment.verifiers:
        raise click.ClickException(f"the settlement contract has no verifier for 2^{k}")
    pk = proving_key_for(load_srs(Path(settings["srs"])), k)
    config = DaemonConfig(
        k=k,
        max_rows=settings.get("max_rows"),
        max_age=settings.get("max_age", 60.0),
        confirmations=settings.get("confirmations", 0),
        prove_processes=settings.get("prove_processes", 1),
        prove_in_step=False,  # proving workers (threads or processes) prove
        escrow_ttl=settings.get("escrow_ttl", 1.0),
        claim_lease=settings.get("claim_lease", 30.0),
        archive=Path(settings["archive"]) if "archive" in settings else None,
    )

    def open_store() -> ReceiptStore:
        """The store; while the database cannot be reached (restarting), wait up to a minute."""
        deadline = time.monotonic() + 60
        while True:
            try:
                return ReceiptStore(db)
            except StoreUnavailableError as error:
                if time.monotonic() > deadline:
                    raise
                echo_err(f"waiting for the store: {error}")
                time.sleep(1)

    def build(in_intake_child: bool, check_only: bool = False) -> Any:
        try:
            store = open_store()
            if key is None:
                from eth_utils.address import to_checksum_address

                from circuits.public_inputs import BatchHeader

                operator = to_checksum_address(str(settings["operator"]))

                def header_of(seq: int) -> BatchHeader:
                    return BatchHeader(
                        deployment.chain_id,
                        int(deployment.settlement, 16),
                        int(operator, 16),
                        seq,
                    )

                worker = ProvingWorker(
                    store,
                    pk,
                    header_of,
                    processes=config.prove_processes,
                    lease=config.claim_lease,
                )
                if check_only:
                    store.close()
                return worker
            client = ChainClient.connect(settings["rpc_url"], key)
            client.use(deployment)
            operator_ = Operator(client, Account.from_key(key), store, pk, config)
        except (StoreError, ChainError, DaemonError, OSError, ValueError) as error:
            raise click.ClickException(str(error)) from None
        if check_only:
            store.close()
        return operator_

    return build


@click.command("settle")
@click.argument("proof_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--receipts",
    "receipts_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="The batch's signed receipts (the file that was proven): each channel's last receipt "
    "is the payer's consent the contract checks.",
)
@rpc_option
@keystore_option
@deployment_option
def settle(
    proof_file: Path, receipts_file: Path, rpc_url: str, keystore: Path | None, deployment: Path
) -> None:
    """Submit PROOF_FILE (zkmeter prove) for settlement, signed by the batch's operator.

    Checked before anything is sent: the proof file's chain, settlement contract and batch
    number match this chain and the operator's next batch, the signing key is the operator's,
    and every channel's last receipt in --receipts is signed and ends exactly where the chain's
    channel plus the proof's totals end. The settlement is then dry-run (eth_call) and sent;
    the contract checks each payer's signature and the proof, all or nothing.
    """
    from verifier.proof import MalformedProofError
    from verifier.proof_file import parse_proof_file

    try:
        public, proof = parse_proof_file(json.loads(proof_file.read_text()))
    except (json.JSONDecodeError, MalformedProofError) as exc:
        raise click.ClickException(f"{proof_file}: {exc}") from exc
    client = client_for(rpc_url, keystore, deployment)
    operator = client.default_account
    header = public.header
    expected = {
        "chain id": (header.chain_id, client.chain_id),
        "settlement": (header.settlement, int(deploymentaddress_argument(client), 16)),
        "operator": (header.operator, int(operator.address, 16)),
        "batch number": (header.batch_seq, run_chain(client.next_batch_seq, operator.address)),
    }
    for what, (in_file, on_chain) in expected.items():
        if in_file != on_chain:
            raise click.ClickException(
                f"{proof_file}: {what} is {in_file:#x} in the proof but {on_chain:#x} here"
                if what in ("settlement", "operator")
                else f"{proof_file}: {what} is {in_file} in the proof but {on_chain} here"
            )
    states = _consent(client, public, receipts_file, operator.address)
    receipt = run_chain(
        client.settle,
        operator,
        header.batch_seq,
        public.k,
        public.aggregates,
        states,
        proof.to_bytes(),
    )
    tokens = sum(a.tokens for a in public.aggregates)
    click.echo(
        f"settled batch {header.batch_seq}: {len(public.aggregates)} channel(s), {tokens} tokens, "
        f"{receipt['gasUsed']:,} gas, tx {receipt['transactionHash'].hex()}"
    )


def _consent(client: ChainClient, public: Any, receipts_file: Path, operator: str) -> list[Any]:
    """The signed state ending each aggregate's run, from the receipts file, checked against
    the chain's channel and the proof's totals."""
    from channels.receipts import ReceiptError, SignedReceipt, latest_receipts
    from circuits.public_inputs import address_hex
    from contracts.client import SignedState

    try:
        data = json.loads(receipts_file.read_text())
        items = data["receipts"]
        receipts = [SignedReceipt.from_json(item, operator=operator) for item in items]
    except (json.JSONDecodeError, KeyError, TypeError, ReceiptError) as exc:
        raise click.ClickException(f"{receipts_file}: {exc}") from exc
    latest = latest_receipts(receipts)
    states = []
    for a in public.aggregates:
        payer = address_hex(a.payer)
        r = latest.get((a.payer, a.model_id))
        if r is None:
            raise click.ClickException(
                f"{receipts_file}: no signed receipt of payer {payer} for model {a.model_id}"
            )
        settled = run_chain(client.channel, payer, operator, a.model_id)
        end = (settled.nonce + a.count, settled.cumulative_tokens + a.tokens)
        if (r.nonce, r.cumulative_tokens) != end:
            raise click.ClickException(
                f"{receipts_file}: the last receipt of payer {payer}, model {a.model_id} is at "
                f"nonce {r.nonce}, cumulative {r.cumulative_tokens}, but the chain's channel plus "
                f"this proof end at nonce {end[0]}, cumulative {end[1]}"
            )
        states.append(SignedState.of(r))
    return states


def deploymentaddress_argument(client: ChainClient) -> str:
    """The settlement contract the client is using (set by `client_for(..., deployment)`)."""
    if client.deployment is None:
        raise click.ClickException("no deployment loaded")
    return client.deployment.settlement
