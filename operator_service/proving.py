"""Proving a batch off the daemon's intake path: in a forked child process.

The child inherits the proving key copy-on-write (start method "fork"), proves (forking its
own workers, so it is not a daemonic process), and sends the `ProvingResult` back over a pipe.
If the daemon dies meanwhile the result is simply lost: the batch is still `batched` in the
store and is proven again on restart (with new blinding; nothing was sent).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from multiprocessing.connection import Connection

from circuits.public_inputs import BatchHeader
from prover.prover import ProvingResult, prove_batch
from prover.proving_key import ProvingKey
from prover.witness import UsageRow


class ProvingFailedError(RuntimeError):
    """The proving process died or raised; the message says how."""


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


__all__ = ["ProvingFailedError", "prove_in_child"]
