"""Operator and payer commands: `zkmeter daemon`, `zkmeter receipts sign|submit`,
`zkmeter bench load`.

The operator's key comes from env `ZKMETER_PRIVATE_KEY` or an eth-account keystore
(`--keystore FILE`, password from env `ZKMETER_KEYSTORE_PASSWORD` or a prompt), exactly as
the chain commands; a payer's key from env `ZKMETER_PAYER_KEY`. Keys are never command-line
arguments and never logged.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
import tomllib
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import click

from zkmeter.cli_chain import _signing_key, keystore_option

ENV_PAYER_KEY = "ZKMETER_PAYER_KEY"
DEFAULT_PORT = 8787

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)

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
    for required in ("rpc_url", "deployment", "srs"):
        if required not in settings:
            raise click.ClickException(f"missing --{required.replace('_', '-')} (flag or config)")
    return settings


@click.command()
@click.option("--config", "config_path", type=_FILE, help="TOML config file.")
@click.option("--rpc-url", envvar="ZKMETER_RPC_URL", help="JSON-RPC URL of the node.")
@click.option("--deployment", envvar="ZKMETER_DEPLOYMENT", help="Deployment file.")
@click.option("--srs", help="SRS file (covers 2^log-size rows).")
@click.option("--db", help="Database URL, sqlite:///PATH (default sqlite:///zkmeter-operator.db).")
@click.option("--archive", help="Directory to archive each batch in.")
@click.option("--host", help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, help=f"Port (default {DEFAULT_PORT}).")
@click.option("--log-size", type=click.IntRange(8, 20), help="Batch domain 2^k (default 8).")
@click.option("--max-rows", type=click.IntRange(1), help="Receipts per batch (default 2^k).")
@click.option("--max-age", type=float, help="Seconds before a partial batch is cut (60).")
@click.option("--confirmations", type=click.IntRange(0), help="Blocks to wait (default 0).")
@click.option("--prove-processes", type=click.IntRange(1), help="Prover workers (default 1).")
@click.option(
    "--escrow-ttl", type=click.FloatRange(0), help="Seconds an escrow read is reused (1.0)."
)
@keystore_option
def daemon(config_path: Path | None, keystore: Path | None, **flags: Any) -> None:
    """Run the operator's prover daemon: admit receipts over HTTP, batch, prove, settle."""
    from eth_account import Account

    from contracts.client import ChainClient, ChainError, Deployment
    from prover.daemon import DaemonConfig, Operator, configure_json_logging, serve
    from prover.store import ReceiptStore, StoreError
    from zkmeter.cli_proof import load_srs, proving_key_for

    settings = load_daemon_config(config_path, flags)
    configure_json_logging()
    key = _signing_key(keystore)
    try:
        store = ReceiptStore(settings.get("db", "sqlite:///zkmeter-operator.db"))
        client = ChainClient.connect(settings["rpc_url"], key)
        client.use(Deployment.load(settings["deployment"]))
    except (StoreError, ChainError, OSError, ValueError) as error:
        raise click.ClickException(str(error)) from None
    log_size = settings.get("log_size", 8)
    if client.deployment is None or log_size not in client.deployment.verifiers:
        raise click.ClickException(f"the settlement contract has no verifier for 2^{log_size}")
    pk = proving_key_for(load_srs(Path(settings["srs"])), log_size)
    config = DaemonConfig(
        log_size=log_size,
        max_rows=settings.get("max_rows"),
        max_age=settings.get("max_age", 60.0),
        confirmations=settings.get("confirmations", 0),
        prove_processes=settings.get("prove_processes", 1),
        escrow_ttl=settings.get("escrow_ttl", 1.0),
        archive=Path(settings["archive"]) if "archive" in settings else None,
    )
    operator = Operator(client, Account.from_key(key), store, pk, config)
    del key
    serve(operator, settings.get("host", "127.0.0.1"), settings.get("port", DEFAULT_PORT))


# ---------------------------------------------------------------------------------- receipts


@click.group()
def receipts() -> None:
    """Sign receipts (payer) and submit them to an operator's daemon."""


ENV_PAYER_STATE = "ZKMETER_PAYER_STATE"
DEFAULT_PAYER_STATE = "zkmeter-payer.db"


@receipts.command("sign")
@click.option("--deployment", envvar="ZKMETER_DEPLOYMENT", type=_FILE, required=True)
@click.option("--operator", required=True, help="Operator address the receipts are for.")
@click.option("--model", "model_id", type=click.IntRange(1), required=True)
@click.option("--tokens", type=click.IntRange(0, 2**32 - 1), multiple=True, required=True)
@click.option(
    "--max-rate",
    help="Highest royalty you accept, in tokens per 1,000 tokens (e.g. 0.002); required for a "
    "new channel, else the channel's last cap.",
)
@click.option(
    "--decimals",
    type=click.IntRange(0, 77),
    default=18,
    show_default=True,
    help="The settlement token's decimals (for --max-rate).",
)
@click.option(
    "--payer",
    help="The payer the receipts are for, when the key is a signer the payer authorised "
    "(default: the key's own address).",
)
@click.option(
    "--state",
    "state_path",
    envvar=ENV_PAYER_STATE,
    default=DEFAULT_PAYER_STATE,
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help=f"The payer's channel book (SQLite; env {ENV_PAYER_STATE}).",
)
@click.option("--request-hash", help="0x + 32 bytes (default: random per receipt).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), required=True)
def sign(
    deployment: Path,
    operator: str,
    model_id: int,
    tokens: tuple[int, ...],
    max_rate: str | None,
    decimals: int,
    payer: str | None,
    state_path: Path,
    request_hash: str | None,
    output: Path,
) -> None:
    """Sign one receipt per --tokens value (key from env ZKMETER_PAYER_KEY) into a receipts
    file, extending it if it exists.

    Each receipt is the channel's next state (nonce + 1, cumulative + tokens), recorded in the
    channel book (--state) before it is written out, so signing continues where it stopped
    after a restart; a second process signing the same channel is refused."""
    from eth_account import Account
    from eth_utils.address import is_hex_address, to_checksum_address

    from contracts.client import Deployment
    from prover.payer import ChannelBook, PayerError
    from prover.receipts import ReceiptDomain
    from prover.receipts_file import RECEIPTS_FORMAT
    from zkmeter.cli_chain import parse_token_amount

    key = os.environ.get(ENV_PAYER_KEY)
    if not key:
        raise click.ClickException(f"no payer key: set {ENV_PAYER_KEY}")
    for value, hint in ((operator, "--operator"), (payer, "--payer")):
        if value is not None and not is_hex_address(value):
            raise click.BadParameter("not a hex address", param_hint=hint)
    if request_hash is not None and (not request_hash.startswith("0x") or len(request_hash) != 66):
        raise click.BadParameter("must be 0x + 32 bytes of hex", param_hint="--request-hash")
    cap = None if max_rate is None else parse_token_amount(max_rate, decimals)
    account = Account.from_key(key)
    dep = Deployment.load(deployment)
    domain = ReceiptDomain(dep.chain_id, dep.settlement)
    data: dict[str, Any] = {
        "format": RECEIPTS_FORMAT,
        "chain_id": dep.chain_id,
        "settlement": dep.settlement,
        "operator": to_checksum_address(operator),
        "batch_seq": 0,
        "receipts": [],
    }
    if output.exists():
        data = json.loads(output.read_text(encoding="utf-8"))
        if data.get("format") != RECEIPTS_FORMAT:
            raise click.ClickException(f"{output} is not a {RECEIPTS_FORMAT} receipts file")
    book = ChannelBook(state_path)
    try:
        with book.open(account, domain, operator, model_id, cap, payer=payer) as channel:
            first = channel.next_nonce
            for count in tokens:
                digest = (
                    bytes.fromhex(request_hash[2:]) if request_hash else secrets.token_bytes(32)
                )
                receipt = channel.sign(count, digest)
                data["receipts"].append({**receipt.to_json(), "tokens": count})
                tmp = output.with_suffix(output.suffix + ".tmp")
                tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
                tmp.replace(output)
            click.echo(
                f"signed {len(tokens)} receipt(s), nonces {first}..{channel.nonce}, channel at "
                f"{channel.cumulative_tokens} tokens"
            )
    except PayerError as error:
        raise click.ClickException(str(error)) from None
    finally:
        book.close()


def post_json(url: str, body: Any, timeout: float = 30) -> tuple[int, Any]:
    """POST `body` as JSON; returns (status, decoded JSON reply)."""
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


@receipts.command("submit")
@click.argument("receipts_file", type=_FILE)
@click.option("--url", default=f"http://127.0.0.1:{DEFAULT_PORT}", show_default=True)
def submit(receipts_file: Path, url: str) -> None:
    """Post a receipts file's receipts to a daemon (POST URL/receipts)."""
    data = json.loads(receipts_file.read_text(encoding="utf-8"))
    items = data.get("receipts", []) if isinstance(data, dict) else data
    for item in items:
        item.setdefault("operator", data.get("operator"))
    try:
        status, reply = post_json(url.rstrip("/") + "/receipts", items)
    except OSError as error:
        raise click.ClickException(f"cannot reach {url}: {error}") from None
    if status != 202:
        raise click.ClickException(
            f"refused ({status}) {reply.get('error')}: {reply.get('message')} "
            f"(receipt {reply.get('index')}, {reply.get('admitted', 0)} admitted before it)"
        )
    click.echo(f"{len(reply['states'])} receipt(s) admitted")


# ---------------------------------------------------------------------------------- load


def run_load(
    url: str,
    payer_keys: list[bytes],
    deployment: Any,
    operator: str,
    model_id: int,
    receipts_per_payer: int,
    duration: float,
    tokens: int = 1,
    starts: dict[str, tuple[int, int]] | None = None,
    max_rate: int = 2**192 - 1,
) -> dict[str, Any]:
    """Play each payer in its own thread: sign and post receipts one at a time until
    `receipts_per_payer` are sent or `duration` seconds pass; a refused receipt's state is
    not taken (the next receipt retries it). `starts` gives a payer's channel position
    (nonce, cumulative) to continue from. Returns counts and rates."""
    from eth_account import Account

    from prover.payer import PayerChannel
    from prover.receipts import ReceiptDomain

    domain = ReceiptDomain(deployment.chain_id, deployment.settlement)
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + duration
    endpoint = url.rstrip("/") + "/receipts"

    def play(key: bytes) -> None:
        account = Account.from_key(key)
        nonce, cumulative = (starts or {}).get(account.address, (0, 0))
        channel = PayerChannel(
            account, domain, operator, model_id, max_rate, nonce=nonce, cumulative_tokens=cumulative
        )
        for _ in range(receipts_per_payer):
            if time.monotonic() > deadline:
                return
            receipt = channel.next_receipt(tokens, secrets.token_bytes(32))
            status, reply = post_json(endpoint, receipt.to_json())
            with lock:
                outcomes["admitted" if status == 202 else str(reply.get("error"))] += 1
            if status == 202:
                channel.record(receipt)

    started = time.monotonic()
    threads = [threading.Thread(target=play, args=(k,)) for k in payer_keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    admitted = outcomes.pop("admitted", 0)
    return {
        "admitted": admitted,
        "refused": dict(outcomes),
        "seconds": elapsed,
        "receipts_per_second": admitted / elapsed if elapsed > 0 else 0.0,
    }


@click.command("load")
@click.option("--url", default=f"http://127.0.0.1:{DEFAULT_PORT}", show_default=True)
@click.option("--deployment", envvar="ZKMETER_DEPLOYMENT", type=_FILE, required=True)
@click.option("--operator", required=True)
@click.option("--model", "model_id", type=click.IntRange(1), default=1, show_default=True)
@click.option("--payers", type=click.IntRange(1, 256), default=4, show_default=True)
@click.option("--receipts", type=click.IntRange(1, 1_000_000), default=100, show_default=True)
@click.option("--duration", type=click.FloatRange(0.1, 3600), default=10.0, show_default=True)
@click.option(
    "--keys",
    "keys_file",
    type=_FILE,
    help="Payer keys, one hex key a line (with escrow for the operator); default: fresh keys, "
    "which the daemon refuses for lack of escrow.",
)
def load(
    url: str,
    deployment: Path,
    operator: str,
    model_id: int,
    payers: int,
    receipts: int,
    duration: float,
    keys_file: Path | None,
) -> None:
    """Play --payers payers against a daemon, each sending up to --receipts receipts within
    --duration seconds; print receipts/s and refusals."""
    from contracts.client import Deployment

    if keys_file is not None:
        lines = [x.strip() for x in keys_file.read_text().splitlines() if x.strip()]
        keys = [bytes.fromhex(x.removeprefix("0x")) for x in lines][:payers]
    else:
        keys = [secrets.token_bytes(32) for _ in range(payers)]
    result = run_load(
        url, keys, Deployment.load(deployment), operator, model_id, receipts, duration
    )
    click.echo(
        f"{result['admitted']} admitted in {result['seconds']:.2f} s "
        f"({result['receipts_per_second']:.1f} receipts/s); refused: {result['refused'] or 'none'}"
    )
