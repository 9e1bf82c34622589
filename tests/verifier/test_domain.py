"""Evaluation domains: Lagrange basis, vanishing polynomial, barycentric evaluation."""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prover.ntt import evaluate, intt
from verifier.constants import TWO_ADICITY, R
from verifier.domain import Domain, DomainSizeError, DomainValuesLengthError
from verifier.fr import root_of_unity


def naive_lagrange(xs: list[int], i: int, z: int) -> int:
    """L_i(z) = prod_{j != i} (z - x_j) / (x_i - x_j), straight from the definition."""
    num, den = 1, 1
    for j, xj in enumerate(xs):
        if j != i:
            num = num * (z - xj) % R
            den = den * (xs[i] - xj) % R
    return num * pow(den, -1, R) % R


def test_of_size_and_fields() -> None:
    d = Domain.of_size(8)
    assert d == Domain(3)
    assert d.size == 8
    assert d.omega == root_of_unity(3)
    assert d.omega * d.omega_inv % R == 1
    assert d.size * d.size_inv % R == 1
    assert Domain.of_size(1).size == 1


@pytest.mark.parametrize("n", [0, -4, 3, 6, 12, 2**29, 2**28 + 1])
def test_of_size_rejects_non_powers_of_two(n: int) -> None:
    with pytest.raises(DomainSizeError):
        Domain.of_size(n)


@pytest.mark.parametrize("k", [-1, TWO_ADICITY + 1, 40])
def test_domain_rejects_log_size_out_of_range(k: int) -> None:
    with pytest.raises(DomainSizeError, match=r"k \(log2 of the size\) must be an int in 0\.\.28"):
        Domain(k)


def test_domain_is_frozen() -> None:
    d = Domain(2)
    with pytest.raises(AttributeError):
        d.k = 3  # type: ignore[misc]


@pytest.mark.parametrize("k", [0, 1, 3, 5])
def test_elements_form_the_subgroup(k: int) -> None:
    d = Domain(k)
    xs = d.elements()
    assert len(xs) == d.size == len(set(xs))
    assert all(pow(x, d.size, R) == 1 for x in xs)
    assert xs[0] == 1
    assert xs[-1] == d.omega_inv


def test_vanishing_at() -> None:
    d = Domain(4)
    assert all(d.vanishing_at(x) == 0 for x in d.elements())
    z = 123456789
    assert d.vanishing_at(z) == (pow(z, 16, R) - 1) % R != 0
    assert d.vanishing_at(root_of_unity(5)) != 0  # a 32nd root of unity is not in H


@pytest.mark.parametrize("k", [0, 1, 3, 4])
def test_lagrange_at_matches_definition(k: int) -> None:
    d = Domain(k)
    xs = d.elements()
    z = random.Random(k).randrange(R)
    got = d.lagrange_at(z)
    assert got == [naive_lagrange(xs, i, z) for i in range(d.size)]
    assert sum(got) % R == 1  # partition of unity
    if d.size > 1:  # for N = 1, L_0 = 1 everywhere
        assert d.lagrange_at(z + 1) != got  # negative twin


def test_lagrange_at_on_the_domain_is_a_unit_vector() -> None:
    d = Domain(3)
    for j, x in enumerate(d.elements()):
        assert d.lagrange_at(x) == [int(i == j) for i in range(8)]
        assert d.lagrange_at(x + R) == d.lagrange_at(x)


@pytest.mark.parametrize("k", [0, 2, 5])
def test_lagrange_first_and_last(k: int) -> None:
    d = Domain(k)
    rng = random.Random(10 + k)
    points = [rng.randrange(R) for _ in range(3)] + d.elements()[:2] + [d.omega_inv]
    for z in points:
        all_l = d.lagrange_at(z)
        assert d.lagrange_first_at(z) == all_l[0]
        assert d.lagrange_last_at(z) == all_l[-1]
    assert d.lagrange_first_at(1) == 1
    assert d.lagrange_last_at(d.omega_inv) == 1
    if d.size > 1:
        assert d.lagrange_first_at(d.omega) == 0
        assert d.lagrange_last_at(1) == 0


@settings(max_examples=25, deadline=None)
@given(
    st.integers(min_value=0, max_value=4).flatmap(
        lambda k: st.tuples(
            st.just(k),
            st.lists(st.integers(min_value=0, max_value=R - 1), min_size=1 << k, max_size=1 << k),
            st.integers(min_value=0, max_value=R - 1),
        )
    )
)
def test_barycentric_matches_coefficient_form(case: tuple[int, list[int], int]) -> None:
    k, values, z = case
    d = Domain(k)
    assert d.evaluate_lagrange_form(values, z) == int(evaluate(intt(values, k), z))


def test_barycentric_on_the_domain_and_tampered_values() -> None:
    d = Domain(3)
    rng = random.Random(5)
    values = [rng.randrange(R) for _ in range(8)]
    for j, x in enumerate(d.elements()):
        assert d.evaluate_lagrange_form(values, x) == values[j]
    z = rng.randrange(R)
    good = d.evaluate_lagrange_form(values, z)
    assert good == sum(v * li for v, li in zip(values, d.lagrange_at(z), strict=True)) % R
    tampered = list(values)
    tampered[3] = (tampered[3] + 1) % R
    assert d.evaluate_lagrange_form(tampered, z) != good


@pytest.mark.parametrize("length", [0, 7, 9, 16])
def test_barycentric_rejects_wrong_length(length: int) -> None:
    with pytest.raises(DomainValuesLengthError, match=f"expected 8 values.*got {length}"):
        Domain(3).evaluate_lagrange_form([1] * length, 5)
