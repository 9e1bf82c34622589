"""Property tests: honest proofs of random batches verify; one mutated field never does."""

from __future__ import annotations

import dataclasses

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from circuits.constants import R
from prover.witness import UsageRow
from tests.support.proofs import prove, proving_key
from verifier.proof import Proof
from verifier.usage_verifier import verify_batch_proof

channel = st.tuples(
    st.integers(min_value=1, max_value=(1 << 160) - 1),  # payer
    st.integers(min_value=0, max_value=(1 << 64) - 1),  # model id
    st.integers(min_value=1, max_value=(1 << 63)),  # first nonce
    st.lists(st.integers(min_value=0, max_value=(1 << 32) - 1), min_size=1, max_size=12),
)
batches = st.lists(channel, min_size=1, max_size=4, unique_by=lambda c: (c[0], c[1]))
SETTINGS = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def rows_of(spec: list[tuple[int, int, int, list[int]]]) -> list[UsageRow]:
    return [
        UsageRow(payer, model, first + k, tokens)
        for payer, model, first, calls in spec
        for k, tokens in enumerate(calls)
    ]


@SETTINGS
@given(spec=batches, seed=st.integers(min_value=0, max_value=2**32))
def test_honest_proofs_of_random_batches_verify(spec, seed: int) -> None:  # type: ignore[no-untyped-def]
    result = prove(rows_of(spec), seed=seed)
    assert sum(a.count for a in result.public.aggregates) == sum(len(c[3]) for c in spec)
    assert verify_batch_proof(proving_key(8).vk, result.public, result.proof).accepted


@SETTINGS
@given(spec=batches, data=st.data())
def test_one_mutated_field_never_verifies(spec, data) -> None:  # type: ignore[no-untyped-def]
    result = prove(rows_of(spec))
    public, proof = result.public, result.proof
    vk = proving_key(8).vk
    target = data.draw(st.sampled_from(["aggregate", "header", "evaluation", "commitment"]))
    if target == "aggregate":
        index = data.draw(st.integers(0, len(public.aggregates) - 1))
        field = data.draw(st.sampled_from(["first_nonce", "count", "tokens", "model_id"]))
        delta = data.draw(st.sampled_from([1, -1]))
        value = getattr(public.aggregates[index], field) + delta
        aggregates = list(public.aggregates)
        aggregates[index] = dataclasses.replace(aggregates[index], **{field: value})
        public = dataclasses.replace(public, aggregates=tuple(aggregates))
    elif target == "header":
        field = data.draw(st.sampled_from(["chain_id", "settlement", "operator", "batch_seq"]))
        header = dataclasses.replace(public.header, **{field: getattr(public.header, field) + 1})
        public = dataclasses.replace(public, header=header)
    elif target == "evaluation":
        name = data.draw(st.sampled_from(sorted(proof.evals_zeta)))
        evals = dict(proof.evals_zeta)
        evals[name] = (evals[name] + data.draw(st.integers(1, R - 1))) % R
        proof = dataclasses.replace(proof, evals_zeta=evals)
    else:
        a, b = data.draw(
            st.lists(
                st.sampled_from(sorted(proof.commitments)), min_size=2, max_size=2, unique=True
            )
        )
        commitments = dict(proof.commitments)
        commitments[a], commitments[b] = commitments[b], commitments[a]
        proof = dataclasses.replace(proof, commitments=commitments)
    assert not verify_batch_proof(vk, public, proof).accepted
    # and the mutation survives the byte encoding unchanged (nothing is silently repaired)
    assert Proof.from_bytes(proof.k, proof.to_bytes()) == proof
