"""The operator's prover daemon: admit signed receipts, batch, prove, verify, settle.

Parts:
- `Operator`: the synchronous core. `admit(json)` runs the admission rules and stores the
  receipt; `step()` moves every batch one notch along batched -> proven -> submitted ->
  settled and cuts a new batch when the policy says so (max rows or max age). Every state
  change is one store transaction; the chain (`nextBatchSeq`, `BatchSettled`) is the truth
  about what settled, checked before every submission, so a batch is never settled twice
  and a restart resumes where the last run stopped.
- Proving runs in a separate, non-daemonic forked process per batch (the prover forks its
  own workers), so intake never waits for it. Every proof is checked with the Python
  verifier before it is submitted; a proof it rejects is never sent.
- `serve(...)`: the HTTP front (aiohttp, loopback by default): `POST /receipts`,
  `GET /health`, `GET /metrics` (Prometheus text format), and a worker thread calling
  `step()`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing
import os
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak

from circuits.public_inputs import BatchHeader, PublicInputs, address_hex
from contracts.client import ChainClient, ChainError, ContractRevertError, SignedState
from prover.archive import batch_folder
from prover.prover import prove_batch
from prover.proving_key import ProvingKey
from prover.receipts import (
    AUTHORIZED_FOREVER,
    HTTP_STATUS,
    Admission,
    AdmittedReceipt,
    ChannelPosition,
    MalformedReceiptError,
    ModelRates,
    ReceiptDomain,
    SignedReceipt,
    usage_cost,
)
from prover.receipts_file import receipts_file_json
from prover.store import (
    ADMITTED,
    BATCHED,
    HELD,
    PROVEN,
    SUBMITTED,
    Batch,
    ReceiptStore,
    blinding_from_json,
)
from prover.witness import UsageRow
from verifier.proof import Proof
from verifier.proof_file import proof_file_json
from verifier.usage_verifier import verify_batch_proof

log = logging.getLogger("zkmeter.daemon")

#: Contract errors caused by one payer -> the position of the payer among the error's
#: arguments: the batch is re-cut without that payer, whose receipts are held until its
#: escrow covers them and their signers are authorised again.
PAYER_REVERTS: Mapping[str, int] = {
    "InsufficientEscrow": 0,
    "SignerNotAuthorized": 0,
    "InvalidSignature": 1,
}
#: Contract errors after which resubmitting the same batch cannot succeed.
PERMANENT_REVERTS = frozenset(
    {
        "InvalidProof",
        "NoVerifier",
        "UnknownModel",
        "NonceOverflow",
    }
)


class DaemonError(RuntimeError):
    """The daemon cannot go on (configuration, or a batch the chain has differently)."""


class ProofRejectedError(DaemonError):
    """The Python verifier rejected a proof the daemon made: it is not submitted."""


@dataclass
class DaemonConfig:
    """Batching, proving and submission policy."""

    log_size: int = 8  # the domain the daemon proves in (a verifier must be installed for it)
    max_rows: int | None = None  # receipts per batch; default 2^log_size
    max_age: float = 60.0  # seconds the oldest admitted receipt may wait for a batch
    prove_processes: int = 1  # worker processes inside each proving process
    prove_in_subprocess: bool = True
    confirmations: int = 0  # blocks on top of the settling one before "settled"
    submit_timeout: float = 120.0
    retries: int = 5
    backoff: float = 1.0  # seconds, doubled after each failed attempt
    escrow_ttl: float = 0.0  # seconds a payer's escrow read may be reused by admission
    archive: Path | None = None
    work_dir: Path | None = None

    @property
    def batch_rows(self) -> int:
        return min(self.max_rows or (1 << self.log_size), 1 << self.log_size)


class Metrics:
    """Counters, gauges and summaries written in the Prometheus text exposition format."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = defaultdict(float)
        self.gauges: dict[str, float] = {}
        self.help: dict[str, tuple[str, str]] = {}

    def inc(self, name: str, amount: float = 1.0, help_: str = "", **labels: str) -> None:
        with self._lock:
            self.counters[(name, tuple(sorted(labels.items())))] += amount
            self.help.setdefault(name, ("counter", help_))

    def set(self, name: str, value: float, help_: str = "") -> None:
        with self._lock:
            self.gauges[name] = value
            self.help.setdefault(name, ("gauge", help_))

    def counter(self, name: str, **labels: str) -> float:
        return self.counters.get((name, tuple(sorted(labels.items()))), 0.0)

    def exposition(self) -> str:
        lines: list[str] = []
        with self._lock:
            names = sorted({n for n, _ in self.counters} | set(self.gauges))
            for name in names:
                kind, text = self.help.get(name, ("gauge", ""))
                lines.append(f"# HELP {name} {text or name}")
                lines.append(f"# TYPE {name} {kind}")
                if name in self.gauges:
                    lines.append(f"{name} {self.gauges[name]:g}")
                for (n, labels), value in sorted(self.counters.items()):
                    if n != name:
                        continue
                    label_text = ",".join(f'{k}="{v}"' for k, v in labels)
                    lines.append(
                        f"{name}{{{label_text}}} {value:g}" if labels else f"{n} {value:g}"
                    )
        return "\n".join(lines) + "\n"


class ChainAdmissionView:
    """The admission's chain reads (`prover.receipts.ChainView`) through the chain client,
    serialised with the worker's chain use by `lock`."""

    def __init__(self, client: ChainClient, lock: threading.RLock | None = None) -> None:
        self.client, self.lock = client, lock or threading.RLock()

    def model_count(self) -> int:
        with self.lock:
            return self.client.model_count()

    def model_rates(self, model_id: int) -> ModelRates:
        with self.lock:
            info = self.client.model(model_id)
        current = int(info["currentRate"])
        pending = int(info["pendingRate"]) if info["pendingRateEffectiveFrom"] else 0
        return ModelRates(current, max(current, pending))

    def channel(self, payer: str, operator: str, model_id: int) -> ChannelPosition:
        with self.lock:
            settled = self.client.channel(payer, operator, model_id)
        return ChannelPosition(settled.nonce, settled.cumulative_tokens)

    def available_escrow(self, payer: str, operator: str) -> int:
        with self.lock:
            return self.client.available_escrow(payer, operator)

    def signer_authorized_until(self, payer: str, signer: str) -> int:
        with self.lock:
            return self.client.signer_authorized_until(payer, signer)


def _prove_to_file(
    pk: ProvingKey, header: BatchHeader, rows: list[UsageRow], processes: int, out: str
) -> None:
    """Proving-process body: prove, write {public, proof, blinding, seconds} to `out` atomically."""
    result = prove_batch(pk, header, rows, processes=processes)
    data = {
        "public": result.public.to_json(),
        "proof": "0x" + result.proof.to_bytes().hex(),
        "blinding": {k: [str(v) for v in vs] for k, vs in result.blinding.items()},
        "seconds": result.timings.total,
    }
    tmp = out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, out)


def _write_json(path: Path, data: Any) -> None:
    """Write JSON durably: a temporary file, fsync, rename. The archive undoes zero knowledge
    (it holds per-call usage and blinding), so folders are 0700 and files 0600 from creation."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def signed_states(public: PublicInputs, receipts: Sequence[AdmittedReceipt]) -> list[SignedState]:
    """For each aggregate (in order), the payer's signed state ending the channel's run: its
    last receipt in the batch."""
    last: dict[tuple[int, int], SignedReceipt] = {}
    for admitted in receipts:
        r = admitted.receipt
        key = (int(r.payer, 16), r.model_id)
        if key not in last or r.nonce > last[key].nonce:
            last[key] = r
    states = []
    for a in public.aggregates:
        r = last.get((a.payer, a.model_id))
        if r is None:
            raise DaemonError(f"no receipt of payer {address_hex(a.payer)} in this batch")
        states.append(SignedState.of(r))
    return states


class Operator:
    """One operator's receipts, batches and settlements on one deployment."""

    def __init__(
        self,
        client: ChainClient,
        account: LocalAccount,
        store: ReceiptStore,
        pk: ProvingKey,
        config: DaemonConfig | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        if client.deployment is None:
            raise DaemonError("the chain client has no deployment")
        self.client = client
        self.account = account
        self.store = store
        self.pk = pk
        self.config = config or DaemonConfig(log_size=pk.layout.log_size)
        if self.config.log_size != pk.layout.log_size:
            raise DaemonError(
                f"proving key is for 2^{pk.layout.log_size} rows, "
                f"config says 2^{self.config.log_size}"
            )
        thawing = client.deployment.thawing_period
        if self.config.max_age >= thawing:
            raise DaemonError(
                f"max_age {self.config.max_age:g} s must be below the thawing period ({thawing} s):"
                " a payer's withdrawal thaws that long, and admitted receipts must settle first"
            )
        self.metrics = metrics or Metrics()
        self.chain_lock = threading.RLock()
        self.domain = ReceiptDomain(client.chain_id, client.deployment.settlement)
        self.admission = Admission(
            ChainAdmissionView(client, self.chain_lock),
            store,
            self.domain,
            account.address,
            escrow_ttl=self.config.escrow_ttl,
        )
        self.work_dir = self.config.work_dir or Path(tempfile.mkdtemp(prefix="zkmeter-prove-"))

    # -- intake ----------------------------------------------------------------------------

    def admit(self, data: Any) -> str:
        """Admit one receipt given as JSON (receipts-file form); returns its state or raises
        the rule's ReceiptError. A refusal changes nothing stored."""
        try:
            receipt = SignedReceipt.from_json(data, operator=self.account.address)
            state = self.store.admit(receipt, self.admission)
        except MalformedReceiptError as error:
            self.metrics.inc("zkmeter_receipts_refused_total", reason=error.code)
            raise
        except Exception as error:
            code = getattr(error, "code", "internal")
            self.metrics.inc(
                "zkmeter_receipts_refused_total", help_="receipts refused by rule", reason=code
            )
            raise
        self.metrics.inc("zkmeter_receipts_admitted_total", help_="receipts admitted")
        return state

    # -- batching --------------------------------------------------------------------------

    def due(self, now: float | None = None) -> bool:
        """A batch is due when a full one is waiting or the oldest receipt is max_age old."""
        counts = self.store.counts()
        if counts[ADMITTED] == 0:
            return False
        if counts[ADMITTED] >= self.config.batch_rows:
            return True
        oldest = self.store.oldest_admitted_at()
        return oldest is not None and (now or time.time()) - oldest >= self.config.max_age

    def cut(self) -> Batch | None:
        """Move the oldest admitted receipts into the next batch (sequence after the store's
        last batch and at least the chain's next one)."""
        with self.chain_lock:
            chain_next = self.client.next_batch_seq(self.account.address)
        last = self.store.last_batch_seq()
        seq = max(chain_next, 0 if last is None else last + 1)
        batch = self.store.cut_batch(seq, self.config.log_size, self.config.batch_rows)
        if batch is not None:
            self.metrics.inc("zkmeter_batches_cut_total", help_="batches cut")
            self.metrics.inc(
                "zkmeter_batch_receipts_total", batch.receipt_count, "receipts batched"
            )
            log.info("batch cut", extra={"batch": seq, "receipts": batch.receipt_count})
        return batch

    # -- proving ---------------------------------------------------------------------------

    def header(self, seq: int) -> BatchHeader:
        return BatchHeader(
            chain_id=self.client.chain_id,
            settlement=int(self.domain.settlement, 16),
            operator=int(self.account.address, 16),
            batch_seq=seq,
        )

    def prove(self, seq: int) -> None:
        """Prove batch `seq`, check the proof with the Python verifier, archive it, mark it
        proven. Raises ProofRejectedError (leaving it batched) if the verifier rejects it."""
        receipts = self.store.batch_receipts(seq)
        rows = [
            UsageRow(int(a.receipt.payer, 16), a.receipt.model_id, a.receipt.nonce, a.tokens)
            for a in receipts
        ]
        header = self.header(seq)
        out = self.work_dir / f"proof-{seq:08d}.json"
        started = time.perf_counter()
        if self.config.prove_in_subprocess:
            context = multiprocessing.get_context("fork")
            process = context.Process(
                target=_prove_to_file,
                args=(self.pk, header, rows, self.config.prove_processes, str(out)),
                daemon=False,
            )
            process.start()
            process.join()
            if process.exitcode != 0:
                raise DaemonError(f"proving batch {seq} failed (exit code {process.exitcode})")
        else:
            _prove_to_file(self.pk, header, rows, self.config.prove_processes, str(out))
        seconds = time.perf_counter() - started
        data = json.loads(out.read_text(encoding="utf-8"))
        public = PublicInputs.from_json(data["public"])
        proof = Proof.from_bytes(public.log_size, bytes.fromhex(data["proof"][2:]))
        if public.header != header:
            raise ProofRejectedError(f"batch {seq}: the proof's header is not this batch's")
        verdict = verify_batch_proof(self.pk.vk, public, proof)
        if not verdict.accepted:
            raise ProofRejectedError(f"batch {seq}: {verdict.check}: {verdict.message}")
        blinding = blinding_from_json(json.dumps(data["blinding"]))
        proof_path = None
        if self.config.archive is not None:
            folder = batch_folder(self.config.archive, seq)
            _write_json(folder / "receipts.json", receipts_file_json(header, receipts))
            _write_json(folder / "proof.json", proof_file_json(public, proof))
            _write_json(folder / "blinding.json", data["blinding"])
            proof_path = str(folder / "proof.json")
        self.store.mark_proven(seq, public.to_json(), data["proof"], blinding, proof_path)
        out.unlink(missing_ok=True)
        self.metrics.inc("zkmeter_proving_seconds_total", seconds, "seconds spent proving")
        self.metrics.inc("zkmeter_batches_proven_total", help_="batches proven and verified")
        log.info("batch proven", extra={"batch": seq, "seconds": round(seconds, 3)})

    # -- submission and confirmation ---------------------------------------------------------

    def _on_chain(self, seq: int, proof_hex: str) -> bool:
        """True if the chain already has batch `seq` of this operator with this proof; raises
        DaemonError if it has that sequence number with another proof."""
        with self.chain_lock:
            if self.client.next_batch_seq(self.account.address) <= seq:
                return False
            events = self.client.batch_events(operator=self.account.address)
        for event in events:
            if event.batch_seq == seq:
                if event.proof_hash != keccak(bytes.fromhex(proof_hex[2:])):
                    raise DaemonError(f"the chain settled batch {seq} with a different proof")
                return True
        raise DaemonError(f"the chain is past batch {seq} but has no BatchSettled for it")

    def submit(self, batch: Batch) -> None:
        """Send `settle` for a proven batch unless the chain already has it; records the tx
        hash (state submitted) before waiting for the outcome. Retries with backoff."""
        assert batch.public_json is not None and batch.proof_hex is not None
        if self._on_chain(batch.seq, batch.proof_hex):
            self._settled(batch.seq, None)
            return
        with self.chain_lock:
            chain_next = self.client.next_batch_seq(self.account.address)
        if chain_next < batch.seq:
            return  # an earlier batch must settle first
        public = PublicInputs.from_json(json.loads(batch.public_json))
        aggregates = [
            (address_hex(a.payer), a.model_id, a.first_nonce, a.count, a.tokens)
            for a in public.aggregates
        ]
        states = signed_states(public, self.store.batch_receipts(batch.seq))
        proof = bytes.fromhex(batch.proof_hex[2:])
        delay = self.config.backoff
        for attempt in range(1, self.config.retries + 1):
            try:
                with self.chain_lock:
                    tx_hash = self.client.send_settle(
                        self.account, batch.seq, public.log_size, aggregates, states, proof
                    )
                break
            except ContractRevertError as error:
                self._revert(batch.seq, error)
                return
            except (ChainError, OSError, ValueError) as error:
                log.warning(
                    "submission failed",
                    extra={"batch": batch.seq, "attempt": attempt, "error": str(error)},
                )
                if attempt == self.config.retries:
                    raise
                time.sleep(delay)
                delay *= 2
        self.store.mark_submitted(batch.seq, "0x" + tx_hash.hex())
        self.metrics.inc("zkmeter_batches_submitted_total", help_="settle transactions sent")
        log.info("batch submitted", extra={"batch": batch.seq, "tx": "0x" + tx_hash.hex()})
        submitted = self.store.batch(batch.seq)
        if submitted is not None:
            self.confirm(submitted)

    def _revert(self, seq: int, error: ContractRevertError) -> None:
        if error.error == "WrongBatchSeq":
            log.warning("chain batch sequence moved", extra={"batch": seq})
            return
        if error.error in PAYER_REVERTS and error.args_:
            payer = str(error.args_[PAYER_REVERTS[error.error]])
            moved = self.store.requeue_from(seq, [payer])
            self.admission.refresh()
            self.metrics.inc(
                "zkmeter_batches_requeued_total", help_="batches re-cut after a refusal"
            )
            log.warning(
                "batch refused for one payer: re-cut without it, its receipts held",
                extra={"batch": seq, "payer": payer, "error": error.error, "requeued": moved},
            )
            return
        if error.error in PERMANENT_REVERTS:
            self.store.mark_failed(seq, str(error))
            log.error("batch refused by the chain", extra={"batch": seq, "error": str(error)})
            return
        raise error

    def confirm(self, batch: Batch) -> None:
        """Follow a submitted batch: settled once its tx is mined (plus confirmations) or the
        chain shows it; resubmitted if the node lost the transaction."""
        assert batch.tx_hash is not None and batch.proof_hex is not None
        try:
            with self.chain_lock:
                receipt = self.client.settle_outcome(
                    bytes.fromhex(batch.tx_hash[2:]), timeout=self.config.submit_timeout
                )
        except ContractRevertError as error:
            if self._on_chain(batch.seq, batch.proof_hex):
                self._settled(batch.seq, None)
                return
            if error.error == "WrongBatchSeq":
                self.store.mark_unsubmitted(batch.seq)  # back to proven, submitted again
                return
            self._revert(batch.seq, error)
            return
        if receipt is None:
            if self._on_chain(batch.seq, batch.proof_hex):
                self._settled(batch.seq, None)
            elif not self._known(batch.tx_hash):
                self.store.mark_unsubmitted(batch.seq)  # the node lost it: submit again
            return  # still pending; the next step looks again
        with self.chain_lock:
            head = self.client.w3.eth.block_number
        if head - int(receipt["blockNumber"]) < self.config.confirmations:
            return
        self._settled(batch.seq, int(receipt["gasUsed"]), batch.tx_hash)

    def _known(self, tx_hash: str) -> bool:
        from web3.exceptions import TransactionNotFound

        try:
            with self.chain_lock:
                self.client.w3.eth.get_transaction(tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            return False
        return True

    def _settled(self, seq: int, gas_used: int | None, tx_hash: str | None = None) -> None:
        self.store.mark_settled(seq, tx_hash, gas_used)
        self.admission.refresh()
        if gas_used:
            self.metrics.inc("zkmeter_gas_used_total", gas_used, "gas spent on settle")
        self.metrics.inc("zkmeter_batches_settled_total", help_="batches settled on chain")
        if self.config.archive is not None:
            _write_json(
                batch_folder(self.config.archive, seq) / "tx.json",
                {"batch_seq": seq, "tx_hash": tx_hash, "gas_used": gas_used},
            )
        log.info("batch settled", extra={"batch": seq, "tx": tx_hash, "gas": gas_used})

    # -- the loop ----------------------------------------------------------------------------

    def release_ready_payers(self) -> bool:
        """Release held payers whose escrow account (net of thawing) now covers their unsettled
        usage and whose receipts' signers are all still authorised. Returns True if any was."""
        released = False
        operator = self.account.address
        for payer in self.store.held_payers():
            with self.chain_lock:
                escrow = self.client.available_escrow(payer, operator)
                signers_ok = all(
                    self.client.signer_authorized_until(payer, signer) == AUTHORIZED_FOREVER
                    for signer in self.store.unsettled_signers(payer)
                    if signer != payer
                )
            owed = usage_cost(self.store.unsettled_usage(payer), self.admission.highest_rate)
            if signers_ok and owed <= escrow:
                count = self.store.release_held(payer)
                log.info("held payer released", extra={"payer": payer, "receipts": count})
                released = True
        return released

    def step(self, force: bool = False) -> bool:
        """Advance every batch one notch, then cut a batch if due (or `force`d and any receipt
        waits). Returns True if anything changed. Safe to call after a crash: it resumes."""
        changed = self.release_ready_payers()
        for batch in self.store.batches((SUBMITTED,)):
            self.confirm(batch)
            changed = True
        for batch in self.store.batches((BATCHED,)):
            self.prove(batch.seq)
            changed = True
        for batch in self.store.batches((PROVEN,)):
            self.submit(batch)
            changed = True
        if (force or self.due()) and self.cut() is not None:
            changed = True
        self.update_gauges()
        return changed

    def drain(self, max_steps: int = 100) -> None:
        """Step (forcing batches) until every admitted receipt is settled or failed."""
        for _ in range(max_steps):
            self.step(force=True)
            counts = self.store.counts()
            if not any(counts[s] for s in (ADMITTED, BATCHED, PROVEN, SUBMITTED)):
                return
        raise DaemonError(f"receipts still pending after {max_steps} steps")

    def update_gauges(self) -> None:
        counts = self.store.counts()
        self.metrics.set("zkmeter_queue_depth", counts[ADMITTED], "receipts admitted, not batched")
        for state in (HELD, BATCHED, PROVEN, SUBMITTED):
            self.metrics.set(f"zkmeter_receipts_{state}", counts[state], f"receipts {state}")

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "operator": self.account.address,
            "chain_id": self.client.chain_id,
            "settlement": self.domain.settlement,
            "log_size": self.config.log_size,
            "receipts": self.store.counts(),
        }


# -------------------------------------------------------------------------------- logging


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the record's extras."""

    _STANDARD: ClassVar[frozenset[str]] = frozenset(vars(logging.makeLogRecord({})))

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in self._STANDARD and key not in entry:
                entry[key] = (
                    value if isinstance(value, int | float | str | bool | None) else str(value)
                )
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_json_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLogFormatter())
    root = logging.getLogger("zkmeter")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


# -------------------------------------------------------------------------------- HTTP


def make_app(operator: Operator, intake: ThreadPoolExecutor) -> Any:
    """The aiohttp application: POST /receipts, GET /health, GET /metrics."""
    from aiohttp import web

    async def post_receipts(request: web.Request) -> web.Response:
        loop = asyncio.get_running_loop()
        try:
            body = json.loads(await request.text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            operator.metrics.inc("zkmeter_receipts_refused_total", reason="malformed_receipt")
            return web.json_response(
                {"error": "malformed_receipt", "message": f"body is not JSON: {error}"}, status=400
            )
        items: Sequence[Any] = body if isinstance(body, list) else [body]
        states: list[str] = []
        for index, item in enumerate(items):
            try:
                states.append(await loop.run_in_executor(intake, operator.admit, item))
            except Exception as error:
                code = getattr(error, "code", None)
                if code is None:
                    log.exception("admission failed")
                    return web.json_response(
                        {"error": "internal", "message": str(error), "admitted": len(states)},
                        status=500,
                    )
                payload: dict[str, Any] = {"error": code, "message": str(error)}
                if isinstance(body, list):
                    payload.update(index=index, admitted=len(states))
                return web.json_response(payload, status=HTTP_STATUS.get(code, 400))
        if isinstance(body, list):
            return web.json_response({"states": states}, status=202)
        return web.json_response({"state": states[0]}, status=202)

    async def health(_: web.Request) -> web.Response:
        loop = asyncio.get_running_loop()
        return web.json_response(await loop.run_in_executor(intake, operator.health))

    async def metrics(_: web.Request) -> web.Response:
        await asyncio.get_running_loop().run_in_executor(intake, operator.update_gauges)
        return web.Response(
            text=operator.metrics.exposition(), content_type="text/plain", charset="utf-8"
        )

    app = web.Application(client_max_size=8 * 1024 * 1024)
    app.router.add_post("/receipts", post_receipts)
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    return app


@dataclass
class Worker:
    """A thread that calls `operator.step()` every `interval` seconds until stopped."""

    operator: Operator
    interval: float = 0.5
    stop_event: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="zkmeter-worker", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop_event.is_set():
            try:
                changed = self.operator.step()
            except Exception:
                log.exception("worker step failed; retrying")
                changed = False
            if not changed:
                self.stop_event.wait(self.interval)

    def stop(self) -> None:
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join()


def serve(operator: Operator, host: str = "127.0.0.1", port: int = 8787) -> None:
    """Run the HTTP front and the worker until interrupted (SIGINT/SIGTERM)."""
    from aiohttp import web

    intake = ThreadPoolExecutor(max_workers=1, thread_name_prefix="zkmeter-intake")
    worker = Worker(operator)
    worker.start()
    log.info(
        "daemon listening",
        extra={"host": host, "port": port, "operator": operator.account.address},
    )
    try:
        web.run_app(make_app(operator, intake), host=host, port=port, print=None)
    finally:
        worker.stop()
        intake.shutdown()


__all__ = [
    "HTTP_STATUS",
    "ChainAdmissionView",
    "DaemonConfig",
    "DaemonError",
    "JsonLogFormatter",
    "Metrics",
    "Operator",
    "ProofRejectedError",
    "Worker",
    "configure_json_logging",
    "make_app",
    "serve",
    "signed_states",
]
