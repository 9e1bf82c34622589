"""Whole proofs: the prover on the native backend (arkworks MSM, NTT, pairing under the
unchanged Python rounds) and on the pure-Python backend produce byte-identical proofs from
the same randomness, and each backend's verifier accepts the other's proof."""

from __future__ import annotations

import pytest

from prover import native
from prover.prover import ProvingResult, prove_batch
from prover.proving_key import ProvingKey
from tests.support.proofs import HEADER, development_srs, random_rows, seeded
from verifier.backend import Backend, use_backend
from verifier.usage_verifier import verify_batch_proof

pytestmark = pytest.mark.skipif(
    not native.available(), reason=f"zkmeter_native not built: {native.unavailable_reason()}"
)


def prove_on(choice: Backend, k: int, seed: int) -> tuple[ProvingKey, ProvingResult]:
    with use_backend(choice):
        pk = ProvingKey.build(development_srs(), k)
        rows = random_rows(seeded(k), channels=3, max_calls=40)
        rng = seeded(seed)
        result = prove_batch(pk, HEADER, rows, processes=2, randomness=lambda: rng.getrandbits(253))
    return pk, result


@pytest.mark.parametrize("k", [8, 9])
def test_native_and_python_provers_agree_byte_for_byte(k: int) -> None:
    pk_python, on_python = prove_on("python", k, seed=7)
    pk_native, on_native = prove_on("native", k, seed=7)
    assert pk_native.vk == pk_python.vk
    assert on_native.public == on_python.public
    assert on_native.proof.to_bytes() == on_python.proof.to_bytes()
    for choice in ("native", "python"):
        with use_backend(choice):  # type: ignore[arg-type]
            assert verify_batch_proof(pk_python.vk, on_native.public, on_native.proof).accepted


def test_other_randomness_gives_another_proof_that_verifies() -> None:
    """Negative twin: the byte equality above is not a constant."""
    pk, first = prove_on("native", 8, seed=7)
    _, second = prove_on("native", 8, seed=8)
    assert first.proof.to_bytes() != second.proof.to_bytes()
    with use_backend("native"):
        assert verify_batch_proof(pk.vk, second.public, second.proof).accepted


def test_freed_memory_scope_nests_and_closes_on_errors() -> None:
    """``native.freed_memory_reused`` (native/src/heap.rs): scopes nest, an exception still
    closes them, and a proof made inside one is the proof made outside it."""
    import zkmeter_native

    class BoomError(Exception):
        pass

    with pytest.raises(BoomError), native.freed_memory_reused(), native.freed_memory_reused():
        raise BoomError
    assert zkmeter_native.heap_reuse_enter() == 1  # both scopes above were closed
    assert zkmeter_native.heap_reuse_exit() == 0
    with use_backend("native"):
        _, inside = prove_on("native", 8, seed=5)  # prove_batch opens its own scope
        with native.freed_memory_reused():
            _, nested = prove_on("native", 8, seed=5)
    assert inside.proof.to_bytes() == nested.proof.to_bytes()
