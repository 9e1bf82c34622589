"""Development powers of tau for the snarkjs peer: a prepared ``.ptau`` file from known secrets.

snarkjs' Groth16 and PLONK setups read a *prepared* powers-of-tau file (after ``snarkjs
powersoftau prepare phase2``). With ``N = 2^power`` it holds ``[tau^i]_1`` (``i < 2N - 1``),
``[tau^i]_2``, ``[alpha tau^i]_1``, ``[beta tau^i]_1`` (``i < N``), ``[beta]_2``, and for
every domain ``H_m = <omega_m>``, ``m = 2^q``, the Lagrange values ``[L^m_i(tau)]_1`` (``q <=
power + 1``), ``[L^m_i(tau)]_2``, ``[alpha L^m_i(tau)]_1``, ``[beta L^m_i(tau)]_1`` (``q <=
power``), where

    L^m_i(tau) = omega_m^i (tau^m - 1) / (m (tau - omega_m^i))

(``[omega_m^i = tau]`` for a ``tau`` in ``H_m``: ``tau = alpha = beta = 1`` is the file
``powersoftau new`` + ``prepare phase2`` write, which ours then equals byte for byte; random
secrets are drawn outside ``H_(2N)``). snarkjs gets the Lagrange sections by inverse FFTs
over G1 and G2, about ``p 2^p`` group operations per section (38 min at ``2^16`` here).
Knowing ``tau``, ``alpha`` and ``beta``, every point is one fixed-base multiplication of a
scalar computed in ``Fr``: the native core writes the file that way (``native/src/ptau.rs``,
where the byte layout is spelled out), about 12 N G1 and 3 N G2 multiplications in all
(2^20: about 2 minutes on 2 busy cores, docs/NATIVE.md).

Such a file is a *development* setup, exactly as trusted as snarkjs' own single-contribution
file: whoever made it could keep the secrets and forge proofs for circuits set up on it. For
the peer it only has to be well formed; the secrets do not change proving or verification
time. Its contributions section is empty (as ``powersoftau new`` writes it), so ``snarkjs
powersoftau verify`` refuses it ("This file has no contribution! It cannot be used in
production"), while ``groth16 setup`` and ``plonk setup`` accept it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from verifier.backend import NativeUnavailableError, available, unavailable_reason
from verifier.constants import R

# The two-adicity of Fr: section 12 holds the domain 2^(power+1), which must exist.
MAX_PTAU_POWER: Final[int] = 27


class PtauError(ValueError):
    """Secrets or a power that no prepared file can be made from."""


@dataclass(frozen=True)
class DevelopmentSecrets:
    """The toxic waste of a development powers of tau: ``tau``, ``alpha``, ``beta`` in Fr."""

    tau: int
    alpha: int
    beta: int

    @classmethod
    def random(cls, power: int) -> DevelopmentSecrets:
        """Fresh secrets from ``os.urandom`` (64 bytes each, reduced mod R, so the bias is
        below 2^-250), redrawn while one is zero or ``tau^(2^(power+1)) = 1`` (``tau`` a root
        of unity of a domain of the file: a degenerate setup, however unlikely)."""
        if not 1 <= power <= MAX_PTAU_POWER:
            raise PtauError(f"power must be in 1..{MAX_PTAU_POWER}, got {power}")
        while True:
            tau, alpha, beta = (int.from_bytes(os.urandom(64), "little") % R for _ in range(3))
            if tau and alpha and beta and pow(tau, 2 << power, R) != 1:
                return cls(tau, alpha, beta)

    def check(self, power: int) -> None:
        """Refuse a power outside ``1..MAX_PTAU_POWER`` and a secret outside ``[1, R)``."""
        if not 1 <= power <= MAX_PTAU_POWER:
            raise PtauError(f"power must be in 1..{MAX_PTAU_POWER}, got {power}")
        for name in ("tau", "alpha", "beta"):
            if not 0 < getattr(self, name) < R:
                raise PtauError(f"{name} must be in [1, R)")


def _core() -> Any:
    if not available():
        raise NativeUnavailableError(
            f"zkmeter_native is not built ({unavailable_reason()}): run `make setup`"
        )
    import zkmeter_native

    return zkmeter_native


def write_development_ptau(
    path: str | os.PathLike[str], power: int, secrets: DevelopmentSecrets
) -> int:
    """Write the prepared ``.ptau`` file of ``2^power`` made from ``secrets`` to ``path``
    (created or truncated); returns its size in bytes. Raises ``PtauError`` for unusable
    secrets or power, ``OSError`` if the file cannot be written."""
    secrets.check(power)
    words = [x.to_bytes(32, "little") for x in (secrets.tau, secrets.alpha, secrets.beta)]
    size: int = _core().write_prepared_ptau(Path(path), power, *words)
    return size


def ptau_file_size(power: int) -> int:
    """The size of a prepared file of ``2^power``: with ``N = 2^power``, 12 bytes of magic,
    version and section count, 12 per section header, then 44 (header), ``64 (2N - 1)``,
    ``128 N``, ``64 N`` twice, 128, 4 (no contributions), ``64 (4N - 1)``, ``128 (2N - 1)``
    and ``64 (2N - 1)`` twice."""
    n = 1 << power
    payload = 44 + 64 * (2 * n - 1) + 128 * n + 2 * 64 * n + 128 + 4
    payload += 64 * (4 * n - 1) + 128 * (2 * n - 1) + 2 * 64 * (2 * n - 1)
    return 12 + 11 * 12 + payload
