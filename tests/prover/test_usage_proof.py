"""The usage-batch proof: honest proofs verify, every forgery is rejected (PROTOCOL §8)."""

from __future__ import annotations

import dataclasses

import pytest

from circuits.public_inputs import Aggregate
from prover.witness import BatchError, UsageRow, build_witness
from tests.support.proofs import (
    HEADER,
    PAYER_A,
    PAYER_B,
    cheat,
    prove,
    proving_key,
    random_rows,
    rotated,
    seeded,
    witness_with_columns,
    worked_example_rows,
)
from verifier.proof import Proof, proof_size
from verifier.usage_verifier import verify_batch_proof


def accepted(result) -> bool:  # type: ignore[no-untyped-def]
    vk = proving_key(result.proof.k).vk
    return verify_batch_proof(vk, result.public, result.proof).accepted


def with_aggregate(result, index: int = 0, **changes: int):  # type: ignore[no-untyped-def]
    aggregates = list(result.public.aggregates)
    aggregates[index] = dataclasses.replace(aggregates[index], **changes)
    return dataclasses.replace(result.public, aggregates=tuple(aggregates))


def verdict(result, public=None, proof=None):  # type: ignore[no-untyped-def]
    vk = proving_key(result.proof.k).vk
    return verify_batch_proof(vk, public or result.public, proof or result.proof)


@pytest.fixture(scope="module")
def worked() -> object:
    return prove(worked_example_rows())


# -- honest proofs ---------------------------------------------------------------------


def test_worked_example_proves_9600_tokens(worked) -> None:  # type: ignore[no-untyped-def]
    assert worked.public.aggregates == (Aggregate(PAYER_A, 1, 1, 12, 9600),)
    assert accepted(worked)
    assert len(worked.proof.to_bytes()) == proof_size(worked.proof.layout)


@pytest.mark.parametrize("k", [8, 9, 10])
def test_many_channels_round_trip(k: int) -> None:
    rows = random_rows(seeded(k), channels=5, max_calls=40)
    result = prove(rows, k=k)
    assert len(result.public.aggregates) == 5
    assert accepted(result)


def test_full_domain_every_row_active() -> None:
    rows = [UsageRow(PAYER_A, 3, k + 1, k) for k in range(200)]
    rows += [UsageRow(PAYER_B, 3, k + 7, 2**32 - 1) for k in range(56)]
    result = prove(rows, k=8)
    assert sum(a.count for a in result.public.aggregates) == 256
    assert accepted(result)


def test_proof_bytes_round_trip(worked) -> None:  # type: ignore[no-untyped-def]
    raw = worked.proof.to_bytes()
    assert Proof.from_bytes(worked.proof.k, raw) == worked.proof
    assert Proof.from_json(worked.proof.to_json()) == worked.proof


# -- wrong public inputs for an honest proof ---------------------------------------------


def test_total_off_by_one_rejected(worked) -> None:  # type: ignore[no-untyped-def]
    assert not verdict(worked, with_aggregate(worked, tokens=9601)).accepted


def test_count_off_by_one_rejected(worked) -> None:  # type: ignore[no-untyped-def]
    assert not verdict(worked, with_aggregate(worked, count=11)).accepted


def test_wrong_first_nonce_rejected(worked) -> None:  # type: ignore[no-untyped-def]
    assert not verdict(worked, with_aggregate(worked, first_nonce=2)).accepted


@pytest.mark.parametrize("field", ["operator", "batch_seq", "chain_id", "settlement"])
def test_proof_for_another_header_rejected(worked, field: str) -> None:  # type: ignore[no-untyped-def]
    header = dataclasses.replace(HEADER, **{field: getattr(HEADER, field) + 1})
    public = dataclasses.replace(worked.public, header=header)
    assert not verdict(worked, public).accepted


# -- tampered proofs ---------------------------------------------------------------------


def test_swapped_commitments_rejected(worked) -> None:  # type: ignore[no-untyped-def]
    commitments = dict(worked.proof.commitments)
    commitments["q"], commitments["s"] = commitments["s"], commitments["q"]
    proof = dataclasses.replace(worked.proof, commitments=commitments)
    assert not verdict(worked, proof=proof).accepted


def test_changed_evaluation_rejected(worked) -> None:  # type: ignore[no-untyped-def]
    evals = dict(worked.proof.evals_zeta)
    evals["limb_0"] = (evals["limb_0"] + 1) % (1 << 253)
    proof = dataclasses.replace(worked.proof, evals_zeta=evals)
    assert not verdict(worked, proof=proof).accepted


def test_changed_shifted_evaluation_rejected(worked) -> None:  # type: ignore[no-untyped-def]
    evals = dict(worked.proof.evals_omega_zeta)
    evals["phi"] = (evals["phi"] + 1) % (1 << 253)
    proof = dataclasses.replace(worked.proof, evals_omega_zeta=evals)
    assert not verdict(worked, proof=proof).accepted


@pytest.mark.slow
def test_every_single_byte_flip_in_a_word_rejected(worked) -> None:  # type: ignore[no-untyped-def]
    raw = bytearray(worked.proof.to_bytes())
    for offset in range(31, len(raw), 32):  # the last byte of every word
        mutated = bytearray(raw)
        mutated[offset] ^= 1
        try:
            proof = Proof.from_bytes(worked.proof.k, bytes(mutated))
        except ValueError:
            continue  # not a curve point / not canonical: rejected at decoding
        assert not verdict(worked, proof=proof).accepted, f"flip at byte {offset} accepted"


# -- a cheating prover -------------------------------------------------------------------


def test_cheating_total_rejected() -> None:
    witness = build_witness(worked_example_rows(), 8)
    claimed = [dataclasses.replace(witness.aggregates[0], tokens=9601)]
    assert not accepted(cheat(witness, claimed))


def test_extra_row_from_unlisted_channel_rejected() -> None:
    rows = [*worked_example_rows(), UsageRow(PAYER_B, 1, 1, 500)]
    witness = build_witness(rows, 8)
    listed = [a for a in witness.aggregates if a.payer == PAYER_A]
    assert len(listed) == 1
    assert not accepted(cheat(witness, listed))


def test_channel_split_into_two_runs_rejected() -> None:
    rows = [UsageRow(PAYER_A, 1, k, 10) for k in range(1, 5)]
    rows += [UsageRow(PAYER_B, 1, k, 10) for k in range(1, 3)]
    witness = build_witness(rows, 8)
    order = [0, 1, 4, 5, 2, 3]  # A1 A2 B1 B2 A3 A4: channel A in two runs
    columns = {
        name: [witness.columns[name][i] for i in order] + witness.columns[name][6:]
        for name in ("key", "nonce", *witness.layout.limb_columns)
    }
    s = [1, 0, 1, 0, 1, 0] + [0] * (witness.layout.size - 6)
    forged = witness_with_columns(witness, **columns, s=s)
    assert not accepted(cheat(forged, witness.aggregates))


def test_nonce_gap_rejected() -> None:
    witness = build_witness(worked_example_rows(), 8)
    nonce = list(witness.columns["nonce"])
    for i in range(6, 12):
        nonce[i] += 1  # 1..6, 8..13: a gap, same count
    forged = witness_with_columns(witness, nonce=nonce)
    assert not accepted(cheat(forged, witness.aggregates))


def test_token_count_of_2_32_plus_x_with_summing_limbs_rejected() -> None:
    """tokens = 2^32 + 5 written as limbs (5, 0, 0, 256): limbs 'sum' but 256 is no byte."""
    witness = build_witness([UsageRow(PAYER_A, 1, 1, 5)], 8)
    limb_3 = list(witness.columns["limb_3"])
    limb_3[0] = 256
    forged = witness_with_columns(witness, limb_3=limb_3)
    claimed = [dataclasses.replace(witness.aggregates[0], tokens=2**32 + 5)]
    with pytest.raises(ValueError, match="uint32"):
        # the public input itself is impossible, and the verifier says so ...
        from circuits.public_inputs import PublicInputs, check_public_inputs

        check_public_inputs(PublicInputs(HEADER, 8, tuple(claimed)))
    # ... and hiding the overflow inside a larger channel total fails the range lookup.
    rows = [UsageRow(PAYER_A, 1, 1, 5), UsageRow(PAYER_A, 1, 2, 0)]
    witness = build_witness(rows, 8)
    limb_3 = list(witness.columns["limb_3"])
    limb_3[0] = 256
    forged = witness_with_columns(witness, limb_3=limb_3)
    claimed = [dataclasses.replace(witness.aggregates[0], tokens=2**32 + 5)]
    assert not accepted(cheat(forged, claimed))


def test_negative_limb_rejected() -> None:
    """A limb of R - 1 (i.e. -1) would let tokens wrap around; the lookup refuses it."""
    from circuits.constants import R

    rows = [UsageRow(PAYER_A, 1, 1, 5), UsageRow(PAYER_A, 1, 2, 7)]
    witness = build_witness(rows, 8)
    limb_0 = list(witness.columns["limb_0"])
    limb_0[0], limb_0[1] = R - 1, 13  # -1 + 13 = 12: the same total
    forged = witness_with_columns(witness, limb_0=limb_0)
    assert not accepted(cheat(forged, witness.aggregates))


def test_run_across_the_wrap_row_rejected() -> None:
    """A channel's run laid out across the wrap, rows N-3 .. N-1 then 0 .. 8: every
    transition holds cyclically and the aggregates are right, with cont[N-1] = q[0](1 - s[0])
    = 1 as its gate demands; first_row_starts (row 0 active but not a start) rejects it."""
    witness = build_witness(worked_example_rows(), 8)
    forged = witness_with_columns(witness, **rotated(witness, 3))
    n = witness.layout.size
    assert forged.columns["s"][n - 3] == 1 and forged.columns["cont"][n - 1] == 1
    assert forged.columns["q"][0] == 1 and forged.columns["s"][0] == 0
    assert not accepted(cheat(forged, witness.aggregates))


@pytest.mark.parametrize("backend", ["native", "python"])
def test_row_0_continuing_nothing_with_cont_off_at_the_wrap_rejected(backend: str) -> None:
    """The wrap exploit: row 0 an active non-start row of the channel with any nonce (here a
    replayed nonce 12, billed twice), cont[N-1] = 0 so no transition gate looks at it. Count,
    tokens, one start and the first nonce all match; the lie in cont at the wrap row (the gate
    continue_flag wants q[0](1 - s[0]) = 1) and first_row_starts reject it."""
    from verifier.backend import use_backend

    rows = worked_example_rows()
    witness = build_witness(rows, 8)
    columns = rotated(witness, -1)  # rows move down by one: row 0 is free, the run is 1..12
    columns["key"][0] = columns["key"][1]
    columns["nonce"][0] = 12
    columns["q"][0] = 1
    for j, name in enumerate(witness.layout.limb_columns):
        columns[name][0] = (800 >> (8 * j)) & 0xFF
    cont = [columns["q"][i + 1] * (1 - columns["s"][i + 1]) for i in range(255)] + [0]
    forged = witness_with_columns(witness, **columns, cont=cont)
    claimed = [dataclasses.replace(witness.aggregates[0], count=13, tokens=13 * 800)]
    with use_backend(backend):
        assert not accepted(cheat(forged, claimed))


@pytest.mark.parametrize("backend", ["native", "python"])
def test_cont_that_lies_about_a_nonce_gap_rejected(backend: str) -> None:
    """Nonces 1..6, 8..13 (a gap, same count) with cont = 0 on the row before the gap, so
    that continue_next_nonce is switched off there: continue_flag rejects the lie."""
    from verifier.backend import use_backend

    witness = build_witness(worked_example_rows(), 8)
    nonce = list(witness.columns["nonce"])
    for i in range(6, 12):
        nonce[i] += 1
    cont = list(witness.columns["cont"])
    assert cont[5] == 1
    cont[5] = 0
    forged = witness_with_columns(witness, nonce=nonce, cont=cont)
    with use_backend(backend):
        assert not accepted(cheat(forged, witness.aggregates))
    # Twin: the same gap with the honest cont fails continue_next_nonce instead.
    honest_cont = witness_with_columns(witness, nonce=nonce)
    assert honest_cont.columns["cont"][5] == 1
    assert not accepted(cheat(honest_cont, witness.aggregates))


@pytest.mark.parametrize("backend", ["native", "python"])
def test_honest_prover_refuses_a_witness_that_breaks_a_gate(backend: str) -> None:
    """The self-checks: a nonce gap (lookups balance, a gate breaks) is refused as a quotient
    that is not a polynomial (the native prover checks G(zeta) = t(zeta) Z_H(zeta), the
    Python one the degree of t), a wrong total as a running sum that does not close."""
    from prover.prover import ProverError, prove_witness
    from verifier.backend import use_backend

    witness = build_witness(worked_example_rows(), 8)
    nonce = list(witness.columns["nonce"])
    nonce[11] += 1
    gap = witness_with_columns(witness, nonce=nonce)
    claimed = [dataclasses.replace(witness.aggregates[0], tokens=9601)]
    with use_backend(backend):
        with pytest.raises(ProverError, match="not a polynomial"):
            prove_witness(proving_key(8), cheat_public(gap, gap.aggregates), gap, processes=1)
        with pytest.raises(ProverError, match="does not close"):
            prove_witness(proving_key(8), cheat_public(witness, claimed), witness, processes=1)


def cheat_public(witness, aggregates):  # type: ignore[no-untyped-def]
    from circuits.public_inputs import PublicInputs

    return PublicInputs(HEADER, witness.layout.k, tuple(aggregates))


def test_limb_of_256_rejected() -> None:
    """tokens 800 = 32 + 3 * 256 written as limbs (288, 2, 0, 0): 288 + 2 * 256 = 800 sums
    right, but 288 is no byte; the prover commits the limb (and its helper) from its values,
    and the range lookup rejects it."""
    witness = build_witness(worked_example_rows(), 8)
    limb_0, limb_1 = list(witness.columns["limb_0"]), list(witness.columns["limb_1"])
    assert (limb_0[0], limb_1[0]) == (32, 3)
    limb_0[0], limb_1[0] = 288, 2
    forged = witness_with_columns(witness, limb_0=limb_0, limb_1=limb_1)
    assert not accepted(cheat(forged, witness.aggregates))


def test_padding_row_counted_rejected() -> None:
    witness = build_witness(worked_example_rows(), 8)
    q = list(witness.columns["q"])
    q[12] = 1  # a padding row pretends to be a 13th call of the channel
    forged = witness_with_columns(witness, q=q)
    claimed = [dataclasses.replace(witness.aggregates[0], count=13)]
    assert not accepted(cheat(forged, claimed))


# -- the honest prover refuses what it cannot prove ----------------------------------------


def test_refuses_tokens_of_2_32() -> None:
    with pytest.raises(BatchError, match=r"not in \[0, 2\^32\)"):
        build_witness([UsageRow(PAYER_A, 1, 1, 2**32)])


def test_refuses_nonce_gap() -> None:
    with pytest.raises(BatchError, match="gap"):
        build_witness([UsageRow(PAYER_A, 1, 1, 1), UsageRow(PAYER_A, 1, 3, 1)])


def test_refuses_repeated_nonce() -> None:
    with pytest.raises(BatchError, match="repeats"):
        build_witness([UsageRow(PAYER_A, 1, 1, 1), UsageRow(PAYER_A, 1, 1, 1)])


def test_refuses_empty_batch() -> None:
    with pytest.raises(BatchError, match="empty"):
        build_witness([])


def test_refuses_more_rows_than_the_domain() -> None:
    rows = [UsageRow(PAYER_A, 1, k, 1) for k in range(1, 258)]
    with pytest.raises(BatchError, match="do not fit"):
        build_witness(rows, 8)


# -- zero knowledge, as far as a test can show it ------------------------------------------


def test_same_aggregates_different_witnesses_both_verify_with_different_openings() -> None:
    first = [UsageRow(PAYER_A, 1, k, t) for k, t in zip(range(1, 4), (100, 200, 300), strict=True)]
    second = [UsageRow(PAYER_A, 1, k, t) for k, t in zip(range(1, 4), (300, 100, 200), strict=True)]
    a, b = prove(first, seed=5), prove(second, seed=5)
    assert a.public == b.public
    assert accepted(a) and accepted(b)
    assert a.proof.evals_zeta != b.proof.evals_zeta


def test_proving_twice_gives_different_proofs(worked) -> None:  # type: ignore[no-untyped-def]
    again = prove(worked_example_rows(), seed=99)
    assert again.proof.to_bytes() != worked.proof.to_bytes()
    assert accepted(again)
    assert again.proof.commitments["limb_0"] != worked.proof.commitments["limb_0"]


def test_two_processes_give_the_same_proof_as_one() -> None:
    """Work is dealt to forked workers, randomness drawn in the parent: same bytes."""
    import random

    from prover.prover import prove_batch

    rows = random_rows(seeded(77), channels=4, max_calls=30)
    proofs = []
    for processes in (1, 2):
        rng = random.Random(5)
        result = prove_batch(
            proving_key(9),
            HEADER,
            rows,
            processes=processes,
            randomness=lambda rng=rng: rng.getrandbits(253),
        )
        proofs.append(result.proof.to_bytes())
    assert proofs[0] == proofs[1]
