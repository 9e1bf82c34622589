"""The operator daemon's batching, proving and submission policy."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class DaemonConfig:
    """Batching, proving and submission policy."""

    k: int = 8  # the domain the daemon proves in (a verifier must be installed for it)
    max_rows: int | None = None  # receipts per batch; default 2^log_size
    max_age: float = 60.0  # seconds the oldest admitted receipt may wait for a batch
    prove_processes: int = 1  # worker processes inside each proving process
    prove_in_subprocess: bool = True
    prove_in_step: bool = True  # the batcher's step proves too (else only proving workers do)
    claim_lease: float = 30.0  # seconds a proving claim lasts unless renewed
    confirmations: int = 0  # blocks on top of the settling one before "settled"
    submit_timeout: float = 120.0
    retries: int = 5
    backoff: float = 1.0  # seconds, doubled after each failed attempt
    escrow_ttl: float = 0.0  # seconds a payer's escrow read may be reused by admission
    archive: Path | None = None
    work_dir: Path | None = None

    @property
    def batch_rows(self) -> int:
        return min(self.max_rows or (1 << self.k), 1 << self.k)


__all__ = ["DaemonConfig"]
