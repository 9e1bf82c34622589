"""Fr helpers against galois' prime field GF(R) (built with primitive element 5, no search)."""

import random
from typing import Any

import galois
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verifier.constants import MULTIPLICATIVE_GENERATOR, TWO_ADICITY, R
from verifier.fr import (
    NonCanonicalScalarError,
    batch_inverse,
    fr_from_bytes,
    fr_to_bytes,
    inverse,
    powers,
    root_of_unity,
)

scalars = st.integers(min_value=0, max_value=R - 1)
nonzero_scalars = st.integers(min_value=1, max_value=R - 1)


@pytest.fixture(scope="module")
def GF() -> Any:
    return galois.GF(R, primitive_element=MULTIPLICATIVE_GENERATOR, verify=False)


def test_inverse_matches_galois(GF: Any) -> None:
    rng = random.Random(1)
    xs = [rng.randrange(1, R) for _ in range(50)]
    expected = [int(v) for v in GF(xs) ** -1]
    assert [inverse(x) for x in xs] == expected
    assert [inverse(x + 1) for x in xs] != expected  # negative twin


def test_inverse_reduces_its_input() -> None:
    assert inverse(R + 2) == inverse(2)
    assert inverse(-2) == R - inverse(2)


@pytest.mark.parametrize("zero", [0, R, -R, 5 * R])
def test_inverse_of_zero_is_rejected(zero: int) -> None:
    with pytest.raises(ZeroDivisionError, match="zero has no inverse in Fr"):
        inverse(zero)


@settings(max_examples=25, deadline=None)
@given(nonzero_scalars)
def test_inverse_property(a: int) -> None:
    assert a * inverse(a) % R == 1


def test_batch_inverse_matches_galois(GF: Any) -> None:
    rng = random.Random(2)
    xs = [rng.randrange(1, R) for _ in range(64)]
    assert batch_inverse(xs) == [int(v) for v in GF(xs) ** -1]


def test_batch_inverse_tampered_input_differs() -> None:
    rng = random.Random(3)
    xs = [rng.randrange(1, R) for _ in range(8)]
    ys = list(xs)
    ys[5] += 1
    out_x, out_y = batch_inverse(xs), batch_inverse(ys)
    assert out_x[5] != out_y[5]
    assert out_x[:5] == out_y[:5] and out_x[6:] == out_y[6:]


def test_batch_inverse_edge_sizes() -> None:
    assert batch_inverse([]) == []
    assert batch_inverse([7]) == [inverse(7)]
    assert batch_inverse([R + 3, -1]) == [inverse(3), R - 1]


@pytest.mark.parametrize("index", [0, 3, 6])
def test_batch_inverse_names_the_zero_index(index: int) -> None:
    xs = [2, 3, 4, 5, 6, 7, 8]
    xs[index] = R  # zero mod R
    with pytest.raises(ZeroDivisionError, match=f"index {index} is zero"):
        batch_inverse(xs)


@settings(max_examples=25, deadline=None)
@given(st.lists(nonzero_scalars, max_size=12))
def test_batch_inverse_property(xs: list[int]) -> None:
    assert batch_inverse(xs) == [pow(x, -1, R) for x in xs]


def test_powers_matches_galois(GF: Any) -> None:
    x = 0x1234567890ABCDEF
    expected = [int(GF(x) ** i) for i in range(10)]
    assert powers(x, 10) == expected
    assert powers(x + 1, 10) != expected
    assert powers(x, 0) == []
    assert powers(0, 3) == [1, 0, 0]
    with pytest.raises(ValueError, match="non-negative"):
        powers(x, -1)


@pytest.mark.parametrize("k", [0, 1, 2, 5, 16, 27, 28])
def test_root_of_unity_has_exact_order(k: int, GF: Any) -> None:
    w = root_of_unity(k)
    assert pow(w, 1 << k, R) == 1
    if k > 0:
        assert pow(w, 1 << (k - 1), R) != 1  # primitive: order is exactly 2^k
    assert w == int(GF(MULTIPLICATIVE_GENERATOR) ** ((R - 1) >> k))


def test_roots_of_unity_are_compatible() -> None:
    for k in range(TWO_ADICITY):
        assert root_of_unity(k + 1) ** 2 % R == root_of_unity(k)


@pytest.mark.parametrize("k", [-1, TWO_ADICITY + 1, 64])
def test_root_of_unity_out_of_range(k: int) -> None:
    with pytest.raises(ValueError, match=r"k \(log2 of the order\) must be in 0\.\.28"):
        root_of_unity(k)


@settings(max_examples=25, deadline=None)
@given(scalars)
def test_bytes_round_trip(a: int) -> None:
    b = fr_to_bytes(a)
    assert len(b) == 32
    assert fr_from_bytes(b) == a
    assert int.from_bytes(b, "big") == a  # big-endian EVM word


def test_fr_to_bytes_reduces() -> None:
    assert fr_to_bytes(R + 1) == (1).to_bytes(32, "big")
    assert fr_to_bytes(-1) == (R - 1).to_bytes(32, "big")


def test_fr_from_bytes_accepts_the_largest_canonical_value() -> None:
    assert fr_from_bytes((R - 1).to_bytes(32, "big")) == R - 1


@pytest.mark.parametrize("value", [R, R + 1, 2**256 - 1])
def test_fr_from_bytes_rejects_non_canonical_values(value: int) -> None:
    with pytest.raises(NonCanonicalScalarError, match="not below the scalar field modulus"):
        fr_from_bytes(value.to_bytes(32, "big"))


@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_fr_from_bytes_rejects_wrong_length(length: int) -> None:
    with pytest.raises(NonCanonicalScalarError, match=f"expected 32 bytes, got {length}"):
        fr_from_bytes(b"\x01" * length)


def test_non_canonical_error_is_a_value_error() -> None:
    assert issubclass(NonCanonicalScalarError, ValueError)
