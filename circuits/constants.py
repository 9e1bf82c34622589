"""Constants of BN254 (alt_bn128) and of the zkmeter protocol, in one place.

They live in circuits/ because the field is part of the statement; verifier/constants.py
re-exports them for the checking code.

Names follow the literature: ``P`` the base-field modulus, ``R`` the order of the
groups G1, G2, GT (the scalar field Fr), as in EIP-196/197 and py_ecc.
"""

from typing import Final

# Base field Fq of BN254 (EIP-196: "p").
P: Final[int] = 21888242871839275222246405745257275088696311157297823662689037894645226208583

# Scalar field Fr of BN254: the prime order of G1 and G2 (EIP-196: "q", py_ecc: curve_order).
R: Final[int] = 21888242871839275222246405745257275088548364400416034343698204186575808495617

# R - 1 = 2^28 * odd, so Fr has multiplicative subgroups of every size 2^k, k <= 28.
TWO_ADICITY: Final[int] = 28

# 5 generates Fr^* (it is galois' and arkworks' choice of primitive element for this field).
MULTIPLICATIVE_GENERATOR: Final[int] = 5

# A primitive 2^28-th root of unity: 5^((R - 1) / 2^28).
ROOT_OF_UNITY_2_28: Final[int] = pow(MULTIPLICATIVE_GENERATOR, (R - 1) >> TWO_ADICITY, R)

# Coset shift used to evaluate the quotient off H: a generator of Fr^*, so the coset
# COSET_SHIFT * H' never meets any power-of-two subgroup H'.
COSET_SHIFT: Final[int] = MULTIPLICATIVE_GENERATOR

# Width of field elements and of transcript words, in bytes (big-endian, EVM words).
WORD_BYTES: Final[int] = 32
