"""BN254 and protocol constants for the checking code (defined in circuits.constants)."""

from circuits.constants import (
    COSET_SHIFT,
    MULTIPLICATIVE_GENERATOR,
    ROOT_OF_UNITY_2_28,
    TWO_ADICITY,
    WORD_BYTES,
    P,
    R,
)

__all__ = [
    "COSET_SHIFT",
    "MULTIPLICATIVE_GENERATOR",
    "ROOT_OF_UNITY_2_28",
    "TWO_ADICITY",
    "WORD_BYTES",
    "P",
    "R",
]
