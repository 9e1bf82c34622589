"""Proving batches: a worker claims a batched batch from the store, proves it in a forked
child process, checks the proof with the Python verifier and stores it as proven.

Workers may run in the daemon's process, in processes of their own, or on other hosts (each
with the SRS; no operator key is needed): `ProvingWorker.run`. A claim is a lease
(`ReceiptStore.claim_batch`: `FOR UPDATE SKIP LOCKED` on PostgreSQL), renewed while the proof
runs; a worker that dies stops renewing and another worker takes the batch over once the lease
lapses (the first one's late result, if any, is refused by the store). Nothing has been sent
for a batched batch, so proving it again, with new blinding, is always safe.

The child inherits the proving key copy-on-write (start method "fork"), proves (forking its
own workers, so it is not a daemonic process), and sends the `ProvingResult` back over a pipe.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection

from circuits.public_inputs import BatchHeader
from operator_service.admission import AdmittedReceipt
from operator_service.metrics import Metrics
from operator_service.store import Batch, ReceiptStore, StoreError
from prover.prover import ProvingResult, prove_batch
from prover.proving_key import ProvingKey
from prover.witness import UsageRow
from verifier.usage_verifier import verify_batch_proof

log = logging.getLogger("zkmeter.prover")

#: Seconds a proving claim lasts unless renewed (renewed every third of it while proving).
CLAIM_LEASE = 30.0


class ProvingFailedError(RuntimeError):
    """The proving process died or raised; the message says how."""


class ProofRejectedError(RuntimeError):
    """The Python verifier rejected a proof the daemon made: it is not stored or submitted."""


def worker_identity(role: str) -> str:
    """A name for this process in claims and leadership: role@host:pid:random."""
    return f"{role}@{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def _prove_and_send(
    pk: ProvingKey, header: BatchHeader, rows: Sequence[UsageRow], processes: int, out: Connection
) -> None:
    try:
        out.send(prove_batch(pk, header, rows, processes=processes))
    except Exception as error:
        out.send(ProvingFailedError(f"{type(error).__name__}: {error}"))
    finally:
        out.close()


def prove_in_child(
    pk: ProvingKey, header: BatchHeader, rows: Sequence[UsageRow], processes: int
) -> ProvingResult:
    """`prove_batch` in a forked child process; raises ProvingFailedError if it fails."""
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(
        target=_prove_and_send, args=(pk, header, rows, processes, sender), daemon=False
    )
    child.start()
    sender.close()
    try:
        outcome = receiver.recv()
    except EOFError:
        outcome = None
    finally:
        receiver.close()
        child.join()
    if isinstance(outcome, ProvingFailedError):
        raise outcome
    if not isinstance(outcome, ProvingResult):
        raise ProvingFailedError(f"the proving process exited with code {child.exitcode}")
    return outcome


def prove_and_check(
    pk: ProvingKey,
    header: BatchHeader,
    receipts: Sequence[AdmittedReceipt],
    *,
    processes: int = 1,
    in_subprocess: bool = True,
) -> ProvingResult:
    """Prove a batch's receipts and check the proof with the Python verifier; raises
    ProofRejectedError if the verifier rejects it or it proves another header."""
    rows = [
        UsageRow(int(a.receipt.payer, 16), a.receipt.model_id, a.receipt.nonce, a.tokens)
        for a in receipts
    ]
    if in_subprocess:
        result = prove_in_child(pk, header, rows, processes)
    else:
        result = prove_batch(pk, header, rows, processes=processes)
    if result.public.header != header:
        raise ProofRejectedError(
            f"batch {header.batch_seq}: the proof's header is not this batch's"
        )
    verdict = verify_batch_proof(pk.vk, result.public, result.proof)
    if not verdict.accepted:
        raise ProofRejectedError(f"batch {header.batch_seq}: {verdict.check}: {verdict.message}")
    return result


class ProvingWorker:
    """Claims batched batches from the store, proves and checks them, stores them as proven."""

    def __init__(
        self,
        store: ReceiptStore,
        pk: ProvingKey,
        header_of: Callable[[int], BatchHeader],
        *,
        processes: int = 1,
        in_subprocess: bool = True,
        lease: float = CLAIM_LEASE,
        metrics: Metrics | None = None,
        identity: str | None = None,
    ) -> None:
        self.store = store
        self.pk = pk
        self.header_of = header_of
        self.processes = processes
        self.in_subprocess = in_subprocess
        self.lease = lease
        self.metrics = metrics or Metrics()
        self.identity = identity or worker_identity("prover")

    def _renew_until(self, seq: int, done: threading.Event) -> None:
        while not done.wait(self.lease / 3):
            try:
                if not self.store.renew_claim(seq, self.identity, self.lease):
                    log.warning("proving claim lost", extra={"batch": seq})
                    return
            except StoreError as error:
                log.warning("cannot renew proving claim", extra={"batch": seq, "error": str(error)})

    def prove(self, batch: Batch) -> None:
        """Prove a batch this worker has claimed, check it, store it as proven. On failure the
        claim is given up (the batch stays batched) and the error raised."""
        seq = batch.seq
        if batch.k != self.pk.layout.k:
            self.store.release_claim(seq, self.identity)
            raise ProvingFailedError(
                f"batch {seq} is for 2^{batch.k} rows, this key 2^{self.pk.layout.k}"
            )
        done = threading.Event()
        renewer = threading.Thread(target=self._renew_until, args=(seq, done), daemon=True)
        renewer.start()
        started = time.perf_counter()
        try:
            result = prove_and_check(
                self.pk,
                self.header_of(seq),
                self.store.batch_receipts(seq),
                processes=self.processes,
                in_subprocess=self.in_subprocess,
            )
        except BaseException:
            done.set()
            with contextlib.suppress(StoreError):  # else the lease lapses by itself
                self.store.release_claim(seq, self.identity)
            raise
        finally:
            done.set()
            renewer.join()
        seconds = time.perf_counter() - started
        self.store.mark_proven(
            seq, result.public, result.proof.to_bytes(), result.blinding, None, self.identity
        )
        self.metrics.observe("zkmeter_proving_seconds", seconds)
        self.metrics.inc("zkmeter_batches_proven_total")
        log.info("batch proven", extra={"batch": seq, "seconds": round(seconds, 3)})

    def prove_next(self) -> bool:
        """Claim and prove the oldest unclaimed batched batch; False if there was none."""
        batch = self.store.claim_batch(self.identity, self.lease)
        if batch is None:
            return False
        self.prove(batch)
        return True

    def run(self, stop: threading.Event, interval: float = 0.5) -> None:
        """Prove batches until `stop` is set; errors are logged and the loop goes on."""
        while not stop.is_set():
            try:
                worked = self.prove_next()
            except Exception:
                log.exception("proving failed; the batch stays batched")
                worked = False
            if not worked:
                stop.wait(interval)


__all__ = [
    "CLAIM_LEASE",
    "ProofRejectedError",
    "ProvingFailedError",
    "ProvingWorker",
    "prove_and_check",
    "prove_in_child",
    "worker_identity",
]
