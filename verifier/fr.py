"""The scalar field Fr of BN254: arithmetic helpers on canonical Python ints.

An element of Fr is represented by the Python ``int`` in ``[0, R)`` congruent to it,
where ``R`` is the prime order of the BN254 groups (EIP-196/197, ``verifier.constants.R``).
Functions here accept any int and reduce it mod ``R``; they always return canonical
representatives. Encoding follows the EVM: 32 bytes, big-endian (as in EIP-197 calldata).
"""

from collections.abc import Sequence
from typing import TypeAlias

from verifier.constants import ROOT_OF_UNITY_2_28, TWO_ADICITY, WORD_BYTES, R

Fr: TypeAlias = int
"""An element of Fr: the canonical representative in ``[0, R)``."""


class NonCanonicalScalarError(ValueError):
    """A byte string does not encode a canonical element of Fr (wrong length or value >= R)."""


class ScalarOutOfRangeError(NonCanonicalScalarError):
    """A scalar given as an integer (a point, value, challenge or transcript input) is not a
    canonical element of Fr: not an int, or not in [0, R)."""


def check_scalar(value: int, name: str = "scalar") -> None:
    """Raise ``ScalarOutOfRangeError`` unless ``value`` is an int in [0, R)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ScalarOutOfRangeError(f"{name} must be an int, got {type(value).__name__}")
    if not 0 <= value < R:
        raise ScalarOutOfRangeError(f"{name} = {value} is not in [0, R)")


def inverse(a: int) -> Fr:
    """Return ``a^(-1) mod R``; raise ``ZeroDivisionError`` if ``a ≡ 0 (mod R)``."""
    a %= R
    if a == 0:
        raise ZeroDivisionError("inverse: zero has no inverse in Fr")
    return pow(a, -1, R)


def batch_inverse(values: Sequence[int]) -> list[Fr]:
    """Return ``[v^(-1) mod R for v in values]`` with one field inversion.

    Montgomery's trick (Montgomery 1987, "Speeding the Pollard and elliptic curve methods of
    factorization", §10.3.1): with prefix products ``c_i = v_0 * ... * v_i``, invert ``c_{n-1}``
    once, then walk back: ``v_i^(-1) = c_{i-1} * c_i^(-1)`` and ``c_{i-1}^(-1) = v_i * c_i^(-1)``.
    Costs ``3(n - 1)`` multiplications and one inversion. Raises ``ZeroDivisionError`` naming
    the first index whose value is ``0 mod R``.
    """
    n = len(values)
    if n == 0:
        return []
    prefix = [0] * n
    acc = 1
    for i, v in enumerate(values):
        v %= R
        if v == 0:
            raise ZeroDivisionError(f"batch_inverse: element at index {i} is zero in Fr")
        acc = acc * v % R
        prefix[i] = acc
    inv_acc = pow(acc, -1, R)  # (v_0 * ... * v_i)^(-1), for i going down from n - 1
    out = [0] * n
    for i in range(n - 1, 0, -1):
        out[i] = prefix[i - 1] * inv_acc % R
        inv_acc = inv_acc * values[i] % R
    out[0] = inv_acc
    return out


def powers(x: int, n: int) -> list[Fr]:
    """Return ``[1, x, x^2, ..., x^(n-1)] mod R`` (``n`` elements; empty for ``n == 0``)."""
    if n < 0:
        raise ValueError(f"powers: count must be non-negative, got {n}")
    x %= R
    out = [0] * n
    acc = 1
    for i in range(n):
        out[i] = acc
        acc = acc * x % R
    return out


def root_of_unity(k: int) -> Fr:
    """Return the primitive ``2^log_size``-th root of unity ``ROOT_OF_UNITY_2_28^(2^(28 - k))``.

    These roots are compatible: ``root_of_unity(k + 1)^2 == root_of_unity(k)``. Raises
    ``ValueError`` unless ``0 <= k <= TWO_ADICITY`` (28: ``R - 1 = 2^28 * odd``).
    """
    if not 0 <= k <= TWO_ADICITY:
        raise ValueError(
            f"root_of_unity: k (log2 of the order) must be in 0..{TWO_ADICITY} "
            f"(2-adicity of Fr), got {k}"
        )
    return pow(ROOT_OF_UNITY_2_28, 1 << (TWO_ADICITY - k), R)


def fr_to_bytes(a: int) -> bytes:
    """Encode ``a mod R`` as 32 bytes, big-endian (an EVM word)."""
    return (a % R).to_bytes(WORD_BYTES, "big")


def fr_from_bytes(b: bytes) -> Fr:
    """Decode a 32-byte big-endian canonical element of Fr.

    Raises ``NonCanonicalScalarError`` if ``len(b) != 32`` or the value is ``>= R`` (no silent
    reduction: a proof or transcript with a non-canonical scalar is malformed).
    """
    if len(b) != WORD_BYTES:
        raise NonCanonicalScalarError(f"fr_from_bytes: expected {WORD_BYTES} bytes, got {len(b)}")
    v = int.from_bytes(b, "big")
    if v >= R:
        raise NonCanonicalScalarError(
            f"fr_from_bytes: value 0x{v:064x} is not below the scalar field modulus R"
        )
    return v
