"""The circom + snarkjs peer proves the batch statement and rejects what it forbids.

Smallest size: n = 6 rows, C = 2 slots (980 R1CS constraints: Groth16 fits a 2^10 powers of
tau, PLONK's 1,945 gates a 2^11 one). Rejections go through `witness_input_unchecked`, which
skips every Python check, so only the circuit stands between the input and a proof; each
asserts HOW it is rejected (the witness calculator hits a failing constraint, or the proof
does not verify).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verifier.constants import R
from zkmeter.peers import snarkjs_peer as sp

N_ROWS = 6
N_SLOTS = 2
PAYER_A = 0x1111111111111111111111111111111111111111
PAYER_B = 0x2222222222222222222222222222222222222222
PAYER_X = 0x9999999999999999999999999999999999999999
HEADER = {
    "chain_id": 31337,
    "settlement": "0x" + "33" * 20,
    "operator": "0x" + "44" * 20,
    "batch_seq": 7,
}

needs_node = pytest.mark.skipif(
    not sp.tools_available(), reason="node_modules/.bin/snarkjs or circom2 missing (npm ci)"
)


def row(payer: int, nonce: int, tokens: int, model_id: int = 1) -> dict[str, int]:
    return {"payer": payer, "model_id": model_id, "nonce": nonce, "tokens": tokens}


def agg(payer: int, first: int, count: int, tokens: int, model_id: int = 1) -> dict[str, int]:
    return {
        "payer": payer,
        "model_id": model_id,
        "first_nonce": first,
        "count": count,
        "tokens": tokens,
    }


# Channel A settles nonces 5..7 (3 x 800 tokens), channel B nonces 1..2.
HONEST_ROWS = [row(PAYER_B, 2, 101), row(PAYER_A, 5, 800), row(PAYER_A, 6, 800)]
HONEST_ROWS += [row(PAYER_B, 1, 100), row(PAYER_A, 7, 800)]
HONEST_AGGS = [agg(PAYER_A, 5, 3, 2400), agg(PAYER_B, 1, 2, 201)]

# Each forbidden batch: (rows, aggregates) in the order the malicious prover hands them over.
FORBIDDEN: dict[str, tuple[list[dict[str, int]], list[dict[str, int]]]] = {
    "wrong_total": (
        [row(PAYER_A, 5, 800), row(PAYER_A, 6, 800), row(PAYER_B, 1, 100)],
        [agg(PAYER_A, 5, 2, 1601), agg(PAYER_B, 1, 1, 100)],
    ),
    "tokens_2_pow_32": (
        [row(PAYER_A, 5, 2**32), row(PAYER_A, 6, 800)],
        [agg(PAYER_A, 5, 2, 2**32 + 800)],
    ),
    "tokens_negative": (  # R - 100 is -100 in the field: the pair sums to 700
        [row(PAYER_A, 5, R - 100), row(PAYER_A, 6, 800)],
        [agg(PAYER_A, 5, 2, 700)],
    ),
    "nonce_gap": (
        [row(PAYER_A, 5, 800), row(PAYER_A, 6, 800), row(PAYER_A, 8, 800)],
        [agg(PAYER_A, 5, 3, 2400)],
    ),
    "unlisted_channel": (
        [row(PAYER_A, 5, 800), row(PAYER_X, 1, 50), row(PAYER_A, 6, 800)],
        [agg(PAYER_A, 5, 2, 1600)],
    ),
    "split_channel": (
        [row(PAYER_A, 5, 800), row(PAYER_A, 6, 800), row(PAYER_B, 1, 100), row(PAYER_A, 7, 800)],
        [agg(PAYER_A, 5, 3, 2400), agg(PAYER_B, 1, 1, 100)],
    ),
    "split_channel_restarting": (  # the second run of A starts over at firstNonce
        [row(PAYER_A, 5, 800), row(PAYER_B, 1, 100), row(PAYER_A, 5, 800)],
        [agg(PAYER_A, 5, 2, 1600), agg(PAYER_B, 1, 1, 100)],
    ),
}


# ---------------------------------------------------------------- pure Python: the builder


def test_witness_input_pads_sorts_and_assigns_slots() -> None:
    circuit_input = sp.witness_input(N_ROWS, N_SLOTS, HONEST_ROWS, HONEST_AGGS, HEADER)
    key_a = sp.channel_key(PAYER_A, 1)
    key_b = sp.channel_key(PAYER_B, 1)
    assert circuit_input["rowKey"] == [str(k) for k in [key_a] * 3 + [key_b] * 2] + ["0"]
    assert circuit_input["rowNonce"] == ["5", "6", "7", "1", "2", "0"]
    assert circuit_input["rowSlot"] == [["1", "0"]] * 3 + [["0", "1"]] * 2 + [["0", "0"]]
    assert circuit_input["rowStart"] == ["1", "0", "0", "1", "0", "0"]
    assert circuit_input["numChannels"] == "2"
    assert circuit_input["settlement"] == str(int("33" * 20, 16))


def test_unchecked_builder_agrees_with_checked_on_honest_input() -> None:
    checked = sp.witness_input(N_ROWS, N_SLOTS, HONEST_ROWS, HONEST_AGGS, HEADER)
    unchecked = sp.witness_input_unchecked(
        N_ROWS, N_SLOTS, HONEST_ROWS, HONEST_AGGS, HEADER, sort_rows=True
    )
    assert unchecked == checked


@pytest.mark.parametrize("case", sorted(set(FORBIDDEN) - {"split_channel"}))
def test_witness_input_refuses_forbidden_batch(case: str) -> None:
    rows, aggs = FORBIDDEN[case]
    with pytest.raises(sp.StatementViolationError):
        sp.witness_input(N_ROWS, N_SLOTS, rows, aggs, HEADER)


def test_witness_input_sorts_a_split_channel_into_one_run() -> None:
    """A split run is only a row order; the honest builder sorts it away."""
    rows, aggs = FORBIDDEN["split_channel"]
    circuit_input = sp.witness_input(N_ROWS, N_SLOTS, rows, aggs, HEADER)
    assert circuit_input["rowSlot"][:4] == [["1", "0"]] * 3 + [["0", "1"]]
    assert circuit_input["rowStart"][:4] == ["1", "0", "0", "1"]


def test_witness_input_refuses_unsorted_keys_and_overflow() -> None:
    with pytest.raises(sp.StatementViolationError, match="strictly increasing"):
        sp.witness_input(
            N_ROWS, N_SLOTS, [], [agg(PAYER_B, 1, 1, 1), agg(PAYER_A, 1, 1, 1)], HEADER
        )
    with pytest.raises(sp.StatementViolationError, match="do not fit"):
        sp.witness_input(2, N_SLOTS, HONEST_ROWS, HONEST_AGGS, HEADER)


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 3), st.integers(0, 2**32 - 1)), min_size=1, max_size=N_ROWS),
    st.integers(1, 2**40),
)
def test_witness_input_accepts_any_honest_batch(draws: list[tuple[int, int]], first: int) -> None:
    """Rows of up to C channels with consecutive nonces: the builder's slot sums match."""
    channels = sorted({payer for payer, _ in draws})[:N_SLOTS]
    rows = []
    for payer in channels:
        tokens = [t for p, t in draws if p == payer]
        rows += [row(payer, first + k, t) for k, t in enumerate(tokens)]
    aggs = [
        agg(
            p,
            first,
            sum(1 for r in rows if r["payer"] == p),
            sum(r["tokens"] for r in rows if r["payer"] == p),
        )
        for p in channels
    ]
    circuit_input = sp.witness_input(N_ROWS, N_SLOTS, rows[::-1], aggs, HEADER)
    for j in range(len(channels)):
        selected = [i for i in range(N_ROWS) if circuit_input["rowSlot"][i][j] == "1"]
        assert len(selected) == aggs[j]["count"]
        assert sum(int(circuit_input["rowTokens"][i]) for i in selected) == aggs[j]["tokens"]
        assert sum(int(circuit_input["rowStart"][i]) for i in selected) == 1


# ---------------------------------------------------------------- the circuit (node)


@pytest.fixture(scope="module")
def honest_groth16() -> sp.PeerResult:
    return sp.prove(N_ROWS, N_SLOTS, "groth16", HONEST_ROWS, HONEST_AGGS, HEADER)


@needs_node
@pytest.mark.node
def test_groth16_honest_batch_proves_and_verifies(honest_groth16: sp.PeerResult) -> None:
    assert honest_groth16.ok
    public = 5 + 5 * N_SLOTS
    assert len(honest_groth16.public_signals) == public
    # verifyProof(uint[2] a, uint[2][2] b, uint[2] c, uint[15] pub): measured from calldata.
    assert honest_groth16.proof_only_bytes == 8 * 32
    assert honest_groth16.proof_bytes == 4 + 32 * (8 + public)
    assert honest_groth16.proof is not None
    assert sp.verify(
        N_ROWS, N_SLOTS, "groth16", honest_groth16.proof, honest_groth16.public_signals
    )


@needs_node
@pytest.mark.node
@pytest.mark.parametrize("index", [3, 5, 5 + 4 * N_SLOTS])  # batchSeq, payer[0], tokens[0]
def test_groth16_proof_rejects_tampered_public_input(
    honest_groth16: sp.PeerResult, index: int
) -> None:
    assert honest_groth16.proof is not None
    public = list(honest_groth16.public_signals)
    public[index] = str(int(public[index]) + 1)
    assert not sp.verify(N_ROWS, N_SLOTS, "groth16", honest_groth16.proof, public)


def _malicious_input(case: str) -> dict[str, Any]:
    rows, aggs = FORBIDDEN[case]
    return sp.witness_input_unchecked(N_ROWS, N_SLOTS, rows, aggs, HEADER)


@needs_node
@pytest.mark.node
@pytest.mark.parametrize("case", sorted(FORBIDDEN))
def test_groth16_witness_generation_rejects(case: str, honest_groth16: sp.PeerResult) -> None:
    """Every forbidden batch fails a constraint in the witness calculator: no proof exists."""
    # Token counts fail in the range check; everything else in UsageBatch's own constraints.
    template = "RangeBits" if case.startswith("tokens") else "UsageBatch"
    with pytest.raises(sp.WitnessGenerationError, match=f"Assert Failed.*{template}"):
        sp.prove_input(N_ROWS, N_SLOTS, "groth16", _malicious_input(case))


@needs_node
@pytest.mark.node
def test_groth16_rejects_unlisted_row_disguised_as_padding(honest_groth16: sp.PeerResult) -> None:
    """Marking the stranger row as padding breaks the prefix of active rows instead."""
    circuit_input = _malicious_input("unlisted_channel")
    circuit_input["rowSlot"][1] = ["0"] * N_SLOTS
    circuit_input["rowStart"][1] = "0"
    circuit_input["rowStart"][2] = "1"  # and restart A so that continuity is not the reason
    circuit_input["rowNonce"][2] = "5"
    with pytest.raises(sp.WitnessGenerationError, match="Assert Failed"):
        sp.prove_input(N_ROWS, N_SLOTS, "groth16", circuit_input)


@needs_node
@pytest.mark.node
def test_groth16_rejects_split_run_claimed_as_continuation(honest_groth16: sp.PeerResult) -> None:
    """The second run of A cannot claim to continue B's row: the slot would change."""
    circuit_input = _malicious_input("split_channel")
    assert circuit_input["rowStart"][3] == "1"
    circuit_input["rowStart"][3] = "0"
    with pytest.raises(sp.WitnessGenerationError, match="Assert Failed"):
        sp.prove_input(N_ROWS, N_SLOTS, "groth16", circuit_input)


@needs_node
@pytest.mark.node
def test_groth16_honest_input_via_malicious_path_proves(honest_groth16: sp.PeerResult) -> None:
    """Twin of the rejections: the unchecked path itself is not what makes them fail."""
    circuit_input = sp.witness_input_unchecked(
        N_ROWS, N_SLOTS, HONEST_ROWS, HONEST_AGGS, HEADER, sort_rows=True
    )
    result = sp.prove_input(N_ROWS, N_SLOTS, "groth16", copy.deepcopy(circuit_input))
    assert result.ok


@needs_node
@pytest.mark.node
@pytest.mark.slow
def test_plonk_honest_proves_and_tampered_rejected() -> None:
    result = sp.prove(N_ROWS, N_SLOTS, "plonk", HONEST_ROWS, HONEST_AGGS, HEADER)
    assert result.ok
    public = 5 + 5 * N_SLOTS
    # verifyProof(uint256[24] proof, uint256[15] pub): 18 G1 coordinates + 6 evaluations.
    assert result.proof_only_bytes == 24 * 32
    assert result.proof_bytes == 4 + 32 * (24 + public)
    assert result.proof is not None
    tampered = list(result.public_signals)
    tampered[5 + 4 * N_SLOTS] = str(int(tampered[5 + 4 * N_SLOTS]) - 1)
    assert not sp.verify(N_ROWS, N_SLOTS, "plonk", result.proof, tampered)
    with pytest.raises(sp.WitnessGenerationError, match="Assert Failed"):
        sp.prove_input(N_ROWS, N_SLOTS, "plonk", _malicious_input("split_channel"))
