"""The operator's pipeline: admit signed receipts, batch, prove, verify, settle, confirm.

`Operator` is the synchronous core. `admit(json)` runs the admission rules and stores the
receipt (operator_service.intake; the HTTP front commits many requests at once); `step()` is
the batcher's round: it moves every batch one notch along batched -> proven -> submitted ->
settled and cuts a new batch when the policy says so (max rows or max age). Every state change
is one store transaction; the chain (`nextBatchSeq`, `BatchSettled`) is the truth about what
settled, checked before every submission, so a batch is never settled twice and a restart
resumes where the last run stopped. With `epoch` set (operator_service.leader elected this
process) every batcher write is fenced by it.

Proving: `step()` proves batched batches itself when `config.prove_in_step` (one process; a
forked child per proof, so intake never waits), claiming each like any proving worker
(operator_service.proving), so separate workers may share the work; every proof is checked
with the Python verifier before it is stored, and one it rejects is never sent. The HTTP front
is operator_service.http.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak

from channels.receipts import ReceiptDomain, ReceiptError, latest_receipts
from circuits.public_inputs import BatchHeader, PublicInputs, address_hex
from contracts.client import (
    AUTHORIZED_FOREVER,
    ChainClient,
    ChainError,
    ContractRevertError,
    SignedState,
)
from operator_service.admission import Admission, AdmittedReceipt, LockedChainView, usage_cost
from operator_service.archive import archive_proven_batch, archive_settlement
from operator_service.config import DaemonConfig
from operator_service.intake import Intake, Outcome
from operator_service.metrics import Metrics
from operator_service.proving import ProofRejectedError, ProvingWorker, worker_identity
from operator_service.store import (
    ADMITTED,
    BATCHED,
    HELD,
    PROVEN,
    SUBMITTED,
    Batch,
    ReceiptStore,
    StoreUnavailableError,
    blinding_from_json,
)
from prover.proving_key import ProvingKey
from verifier.proof import Proof

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


def signed_states(public: PublicInputs, receipts: Sequence[AdmittedReceipt]) -> list[SignedState]:
    """For each aggregate (in order), the payer's signed state ending the channel's run: its
    last receipt in the batch."""
    latest = latest_receipts(a.receipt for a in receipts)
    states = []
    for a in public.aggregates:
        receipt = latest.get((a.payer, a.model_id))
        if receipt is None:
            raise DaemonError(f"no receipt of payer {address_hex(a.payer)} in this batch")
        states.append(SignedState.of(receipt))
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
        self.config = config or DaemonConfig(k=pk.layout.k)
        if self.config.k != pk.layout.k:
            raise DaemonError(
                f"proving key is for 2^{pk.layout.k} rows, config says 2^{self.config.k}"
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
            LockedChainView(client, self.chain_lock),
            store,
            self.domain,
            account.address,
            escrow_ttl=self.config.escrow_ttl,
        )
        self.intake = Intake(store, self.admission, self.metrics)
        #: The epoch this process was elected batcher with (operator_service.leader); None
        #: when the pipeline is driven by hand (tests, one process with no election).
        self.epoch: int | None = None
        self.prover = ProvingWorker(
            store,
            pk,
            self.header,
            processes=self.config.prove_processes,
            in_subprocess=self.config.prove_in_subprocess,
            lease=self.config.claim_lease,
            metrics=self.metrics,
            identity=worker_identity("operator"),
        )

    # -- intake ----------------------------------------------------------------------------

    def record(self, outcome: Outcome) -> None:
        """Count a request's outcome in the metrics."""
        if outcome.states:
            self.metrics.inc("zkmeter_receipts_admitted_total", len(outcome.states))
        if isinstance(outcome.error, StoreUnavailableError):
            self.metrics.inc("zkmeter_requests_unavailable_total")
        elif outcome.error is not None:
            code = outcome.error.code if isinstance(outcome.error, ReceiptError) else "internal"
            self.metrics.inc("zkmeter_receipts_refused_total", reason=code)

    def admit(self, data: Any) -> str:
        """Admit one receipt given as JSON (receipts-file form); returns its state or raises
        the rule's ReceiptError (StoreUnavailableError if the store cannot be written). A
        refusal changes nothing stored."""
        (outcome,) = self.intake.commit([self.intake.verify([data])])
        self.record(outcome)
        if outcome.error is not None:
            raise outcome.error
        return outcome.states[0]

    # -- batching --------------------------------------------------------------------------

    def due(self, now: float | None = None) -> bool:
        """A batch is due when a full one is waiting or the oldest receipt is max_age old."""
        waiting = self.store.admitted_count()
        if waiting == 0:
            return False
        if waiting >= self.config.batch_rows:
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
        batch = self.store.cut_batch(seq, self.config.k, self.config.batch_rows, self.epoch)
        if batch is not None:
            self.metrics.inc("zkmeter_batches_cut_total")
            self.metrics.observe("zkmeter_batch_receipts", batch.receipt_count)
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

    def archive(self, batch: Batch) -> None:
        """Write a proven batch's archive folder (from the store) unless it was written."""
        if self.config.archive is None or batch.proof_path is not None:
            return
        public, proof = self._proven(batch)
        receipts = self.store.batch_receipts(batch.seq)
        path = archive_proven_batch(
            self.config.archive,
            self.header(batch.seq),
            [(a.receipt, a.tokens) for a in receipts],
            public,
            Proof.from_bytes(public.k, proof),
            blinding_from_json(batch.blinding_json or "{}"),
        )
        self.store.set_proof_path(batch.seq, path)

    # -- submission and confirmation ---------------------------------------------------------

    def _on_chain(self, seq: int, proof: bytes) -> bool:
        """True if the chain already has batch `seq` of this operator with this proof; raises
        DaemonError if it has that sequence number with another proof."""
        with self.chain_lock:
            event = self.client.settled_batch_event(self.account.address, seq)
        if event is None:
            return False
        if event.proof_hash != keccak(proof):
            raise DaemonError(f"the chain settled batch {seq} with a different proof")
        return True

    def submit(self, batch: Batch) -> None:
        """Send `settle` for a proven batch unless the chain already has it; records the tx
        hash (state submitted) before waiting for the outcome. Retries with backoff."""
        public, proof = self._proven(batch)
        self.archive(batch)
        if self._on_chain(batch.seq, proof):
            self._settled(batch.seq, None)
            return
        with self.chain_lock:
            chain_next = self.client.next_batch_seq(self.account.address)
        if chain_next < batch.seq:
            return  # an earlier batch must settle first
        states = signed_states(public, self.store.batch_receipts(batch.seq))
        delay = self.config.backoff
        for attempt in range(1, self.config.retries + 1):
            try:
                with self.chain_lock:
                    tx_hash = self.client.send_settle(
                        self.account, batch.seq, public.k, public.aggregates, states, proof
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
        self.store.mark_submitted(batch.seq, "0x" + tx_hash.hex(), self.epoch)
        self.metrics.inc("zkmeter_batches_submitted_total")
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
            moved = self.store.requeue_from(seq, [payer], self.epoch)
            self.admission.refresh()
            self.metrics.inc("zkmeter_batches_requeued_total")
            log.warning(
                "batch refused for one payer: re-cut without it, its receipts held",
                extra={"batch": seq, "payer": payer, "error": error.error, "requeued": moved},
            )
            return
        if error.error in PERMANENT_REVERTS:
            self.store.mark_failed(seq, str(error), self.epoch)
            log.error("batch refused by the chain", extra={"batch": seq, "error": str(error)})
            return
        raise error

    def confirm(self, batch: Batch) -> None:
        """Follow a submitted batch: settled once its tx is mined (plus confirmations) or the
        chain shows it; resubmitted if the node lost the transaction."""
        _, proof = self._proven(batch)
        if batch.tx_hash is None:
            raise DaemonError(f"batch {batch.seq} is submitted but has no transaction hash")
        try:
            with self.chain_lock:
                receipt = self.client.settle_outcome(
                    bytes.fromhex(batch.tx_hash[2:]), timeout=self.config.submit_timeout
                )
        except ContractRevertError as error:
            if self._on_chain(batch.seq, proof):
                self._settled(batch.seq, None)
                return
            if error.error == "WrongBatchSeq":
                self.store.mark_unsubmitted(batch.seq, self.epoch)  # proven, sent again
                return
            self._revert(batch.seq, error)
            return
        if receipt is None:
            if self._on_chain(batch.seq, proof):
                self._settled(batch.seq, None)
            elif not self._known(batch.tx_hash):
                self.store.mark_unsubmitted(batch.seq, self.epoch)  # the node lost it
            return  # still pending; the next step looks again
        with self.chain_lock:
            head = self.client.w3.eth.block_number
        if head - int(receipt["blockNumber"]) < self.config.confirmations:
            return
        self._settled(batch.seq, int(receipt["gasUsed"]), batch.tx_hash)

    def _known(self, tx_hash: str) -> bool:
        with self.chain_lock:
            return self.client.transaction_known(bytes.fromhex(tx_hash[2:]))

    def _proven(self, batch: Batch) -> tuple[PublicInputs, bytes]:
        if batch.public is None or batch.proof is None:
            raise DaemonError(f"batch {batch.seq} is {batch.state} but has no proof stored")
        return batch.public, batch.proof

    def _settled(self, seq: int, gas_used: int | None, tx_hash: str | None = None) -> None:
        self.store.mark_settled(seq, tx_hash, gas_used, self.epoch)
        self.admission.refresh()
        if gas_used:
            self.metrics.inc("zkmeter_gas_used_total", gas_used)
        self.metrics.inc("zkmeter_batches_settled_total")
        if self.config.archive is not None:
            archive_settlement(self.config.archive, seq, tx_hash, gas_used)
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
                count = self.store.release_held(payer, self.epoch)
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
        if self.config.prove_in_step:
            while self.prover.prove_next():
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
        self.metrics.set("zkmeter_queue_depth", counts[ADMITTED])
        for state in (HELD, BATCHED, PROVEN, SUBMITTED):
            self.metrics.set(f"zkmeter_receipts_{state}", counts[state])

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "operator": self.account.address,
            "chain_id": self.client.chain_id,
            "settlement": self.domain.settlement,
            "log_size": self.config.k,
            "store": self.store.dialect,
            "receipts": self.store.counts(),
        }


__all__ = [
    "PAYER_REVERTS",
    "PERMANENT_REVERTS",
    "DaemonError",
    "Operator",
    "ProofRejectedError",
    "signed_states",
]
