"""The Solidity UsageVerifier agrees with the Python verifier on every proof (differential tests).

Each case is a proof (bytes) and public inputs; the Python verdict (decode with
``Proof.from_bytes``, then ``verify_batch_proof``) and the Solidity verdict (``verifyBatch`` on
py-evm) must be the same: accept, reject, or malformed — a Python ``MalformedProofError`` /
public-input error against a Solidity revert whose custom error names the same problem.
"""

from __future__ import annotations

import dataclasses
import json
import random
import shutil
from dataclasses import dataclass
from typing import Any

import pytest
from eth_utils.address import to_checksum_address
from py_ecc.optimized_bn128 import FQ, G1, add, normalize

from circuits.constants import P, R
from circuits.public_inputs import Aggregate, PublicInputs
from circuits.usage_batch import Layout
from contracts.build import ARTIFACTS_DIR
from contracts.client import ChainClient, ContractRevertError
from prover.witness import UsageRow, build_witness
from tests.support import REPO_ROOT
from tests.support.anvil import anvil_keys, requires_anvil
from tests.support.proofs import (
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
from verifier.challenges import absorb_public_inputs, proof_challenges
from verifier.domain import Domain
from verifier.keys import VerificationKey
from verifier.proof import QUOTIENT_COLUMNS, MalformedProofError, Proof, proof_size
from verifier.transcript import Transcript
from verifier.usage_verifier import verify_batch_proof

REPO_ROOT = REPO_ROOT

pytestmark = [
    pytest.mark.node,
    pytest.mark.skipif(
        shutil.which("node") is None or not (REPO_ROOT / "node_modules" / "solc").is_dir(),
        reason="needs node and node_modules (run `npm ci --no-audit --no-fund`)",
    ),
]

GAS_DEPLOY = 6_000_000


# ---------------------------------------------------------------- verdicts


@dataclass(frozen=True)
class Verdict:
    outcome: str  # "accept", "reject" or "malformed"
    detail: str = ""  # Python: the error message; Solidity: the custom error and its arguments


def python_verdict(vk: VerificationKey, public: PublicInputs, raw: bytes) -> Verdict:
    try:
        proof = Proof.from_bytes(vk.k, raw)
    except MalformedProofError as error:
        return Verdict("malformed", str(error))
    verdict = verify_batch_proof(vk, public, proof)
    if verdict.check == "public inputs":
        return Verdict("malformed", verdict.message)
    return Verdict("accept" if verdict.accepted else "reject", verdict.message)


def call_args(public: PublicInputs, raw: bytes) -> tuple[Any, ...]:
    h = public.header
    aggregates = [
        (_address(a.payer), a.model_id, a.first_nonce, a.count, a.tokens) for a in public.aggregates
    ]
    return (h.chain_id, _address(h.settlement), _address(h.operator), h.batch_seq, aggregates, raw)


def _address(value: int) -> str:
    return to_checksum_address(f"0x{value:040x}")


def solidity_verdict(
    chain: ChainClient, verifier: Any, public: PublicInputs, raw: bytes
) -> Verdict:
    fn = verifier.functions.verifyBatch(*call_args(public, raw))
    try:
        accepted = chain.call(fn)
    except ContractRevertError as error:
        return Verdict("malformed", f"{error.error}{tuple(error.args_)}")
    return Verdict("accept" if accepted else "reject")


def same_problem(py: Verdict, sol: Verdict, layout: Layout) -> bool:
    """The Solidity custom error names what the Python message names."""
    name, _, rest = sol.detail.partition("(")
    args = [int(a) for a in rest.rstrip(")").split(",") if a.strip()]
    points = [f"commitment [{c}]" for c in layout.round1_columns + layout.round2_columns]
    points += [f"commitment [{c}]" for c in QUOTIENT_COLUMNS]
    points += ["opening proof W_zeta", "opening proof W_omega_zeta"]
    evals = [f"{c}(zeta)" for c in layout.opened_at_zeta]
    evals += [f"{c}(omega*zeta)" for c in layout.opened_at_omega_zeta]
    expected = {
        "ProofLengthInvalid": lambda: "proof has",
        "PointNotOnCurve": lambda: points[args[0]] + ":",
        "EvaluationNotCanonical": lambda: evals[args[0]] + ":",
        "NoAggregates": lambda: "at least one aggregate",
        "TooManyAggregates": lambda: "aggregates exceed the domain size",
        "CountOutOfRange": lambda: f"aggregate {args[0]}: count",
        "NonceOutOfRange": lambda: f"aggregate {args[0]}: nonces",
        "TokensOutOfRange": lambda: f"aggregate {args[0]}: tokens",
        "KeysNotIncreasing": lambda: f"aggregate {args[0]}: keys are not strictly increasing",
        "TooManyRows": lambda: "rows in all exceed",
    }
    return name in expected and expected[name]() in py.detail


# ---------------------------------------------------------------- fixtures


@dataclass
class Deployed:
    chain: ChainClient
    verifiers: dict[int, Any]  # log size -> UsageVerifier8 contract

    def check(self, public: PublicInputs, raw: bytes, k: int = 8) -> Verdict:
        """Both verdicts; fail the test unless they agree."""
        vk = proving_key(k).vk
        py = python_verdict(vk, public, raw)
        sol = solidity_verdict(self.chain, self.verifiers[k], public, raw)
        assert py.outcome == sol.outcome, f"Python {py} but Solidity {sol}"
        if py.outcome == "malformed":
            assert same_problem(py, sol, Layout(k)), f"Python {py.detail!r}, Solidity {sol}"
        return py


def deploy_verifier(chain: ChainClient, k: int, name: str = "UsageVerifier8") -> Any:
    vk = proving_key(k).vk
    table = list(vk.table_commitment)
    return chain.deploy_contract(name, k, table, vk.g2_tau_words(), gas=GAS_DEPLOY)


@pytest.fixture(scope="module")
def deployed() -> Deployed:
    chain = ChainClient.embedded()
    return Deployed(chain, {8: deploy_verifier(chain, 8), 10: deploy_verifier(chain, 10)})


@pytest.fixture(scope="module")
def deployed_on_anvil(anvil_url: str) -> Deployed:
    """The same verifiers on anvil, where the whole mutation corpus runs: py-evm's pairing
    precompile is py_ecc (about half a second a call); py-evm keeps a sample of the corpus
    (``test_a_few_mutations_agree``) and every accepted proof."""
    chain = ChainClient.connect(anvil_url, anvil_keys(1)[0])
    return Deployed(chain, {8: deploy_verifier(chain, 8), 10: deploy_verifier(chain, 10)})


@pytest.fixture(scope="module")
def worked() -> Any:
    return prove(worked_example_rows())


@pytest.fixture(scope="module")
def multi() -> Any:
    return prove(random_rows(seeded(8), channels=5, max_calls=40), k=8)


def with_aggregate(public: PublicInputs, index: int = 0, **changes: int) -> PublicInputs:
    aggregates = list(public.aggregates)
    aggregates[index] = dataclasses.replace(aggregates[index], **changes)
    return dataclasses.replace(public, aggregates=tuple(aggregates))


def with_header(public: PublicInputs, **changes: int) -> PublicInputs:
    return dataclasses.replace(public, header=dataclasses.replace(public.header, **changes))


def replace_word(raw: bytes, offset: int, value: int) -> bytes:
    return raw[:offset] + value.to_bytes(32, "big") + raw[offset + 32 :]


def shifted_point(raw: bytes, offset: int) -> bytes:
    """The point at ``offset`` plus the generator: still on the curve, but a different point."""
    x = int.from_bytes(raw[offset : offset + 32], "big")
    y = int.from_bytes(raw[offset + 32 : offset + 64], "big")
    point = (FQ(x), FQ(y), FQ(1)) if (x, y) != (0, 0) else (FQ(1), FQ(1), FQ(0))
    nx, ny = normalize(add(point, G1))
    return (
        raw[:offset]
        + int(nx).to_bytes(32, "big")
        + int(ny).to_bytes(32, "big")
        + raw[offset + 64 :]
    )


# ---------------------------------------------------------------- honest proofs


def test_worked_example_accepted_by_both(deployed: Deployed, worked: Any) -> None:
    assert worked.public.aggregates == (Aggregate(PAYER_A, 1, 1, 12, 9600),)
    assert deployed.check(worked.public, worked.proof.to_bytes()).outcome == "accept"


def test_worked_example_with_9601_tokens_rejected_by_both(deployed: Deployed, worked: Any) -> None:
    public = with_aggregate(worked.public, tokens=9601)
    assert deployed.check(public, worked.proof.to_bytes()).outcome == "reject"


def test_multi_channel_proof_accepted_and_tampered_twin_rejected(
    deployed: Deployed, multi: Any
) -> None:
    raw = multi.proof.to_bytes()
    assert len(multi.public.aggregates) == 5
    assert deployed.check(multi.public, raw).outcome == "accept"
    assert deployed.check(with_aggregate(multi.public, 3, tokens=0), raw).outcome in (
        "reject",
        "malformed",
    )


def test_domain_2_10_accepted_and_rejected(deployed: Deployed) -> None:
    result = prove(random_rows(seeded(10), channels=3, max_calls=30), k=10)
    raw = result.proof.to_bytes()
    assert deployed.check(result.public, raw, k=10).outcome == "accept"
    flipped = replace_word(raw, proof_size(Layout(10)) - 160, 5)  # phi(omega*zeta) := 5
    assert deployed.check(result.public, flipped, k=10).outcome == "reject"


# ---------------------------------------------------------------- transcript and key


def test_transcript_challenges_and_state_match_python(deployed: Deployed, multi: Any) -> None:
    vk = proving_key(8).vk
    fn = deployed.verifiers[8].functions.transcriptChallenges(
        *call_args(multi.public, multi.proof.to_bytes())
    )
    challenges, state = fn.call()
    py = proof_challenges(vk, multi.public, multi.proof)
    assert challenges == [py.beta, py.gamma, py.delta, py.alpha, py.zeta, py.v, py.u]
    # the final state: replay the Python transcript and squeeze once more from both sides
    transcript = Transcript()
    absorb_public_inputs(transcript, vk, multi.public)
    layout = multi.proof.layout
    for names, count in ((layout.round1_columns, 3), (layout.round2_columns, 1)):
        for name in names:
            transcript.absorb_g1(multi.proof.commitments[name])
        transcript.challenges(count)
    for name in QUOTIENT_COLUMNS:
        transcript.absorb_g1(multi.proof.commitments[name])
    transcript.challenge()
    transcript.absorb_scalars(multi.proof.evals_zeta[n] for n in layout.opened_at_zeta)
    transcript.absorb_scalars(multi.proof.evals_omega_zeta[n] for n in layout.opened_at_omega_zeta)
    transcript.challenge()
    transcript.absorb_g1(multi.proof.w_zeta)
    transcript.absorb_g1(multi.proof.w_omega_zeta)
    assert transcript.challenge() == py.u
    assert bytes(state) == transcript.state


def test_transcript_differs_for_another_batch_seq(deployed: Deployed, multi: Any) -> None:
    raw = multi.proof.to_bytes()
    fn = deployed.verifiers[8].functions.transcriptChallenges
    first, _ = fn(*call_args(multi.public, raw)).call()
    other, _ = fn(*call_args(with_header(multi.public, batch_seq=1), raw)).call()
    assert all(a != b for a, b in zip(first, other, strict=True))


@pytest.mark.parametrize("k", [8, 10])
def test_verification_key_and_derived_domain(deployed: Deployed, k: int) -> None:
    vk = proving_key(k).vk
    verifier = deployed.verifiers[k]
    k, n, omega, table, g2_tau = verifier.functions.verificationKey().call()
    assert (k, n, omega) == (k, 1 << k, Domain(k).omega)
    assert tuple(table) == tuple(vk.table_commitment)
    assert list(g2_tau) == vk.g2_tau_words()
    assert verifier.functions.logDomainSize().call() == k
    assert verifier.functions.proofLength().call() == proof_size(Layout(k))


def test_witness_commitments_are_the_round_1_bytes(deployed: Deployed, worked: Any) -> None:
    raw = worked.proof.to_bytes()
    out = deployed.verifiers[8].functions.witnessCommitments(raw).call()
    assert out == raw[: 64 * len(Layout(8).round1_columns)]
    with pytest.raises(ContractRevertError) as info:
        deployed.chain.call(deployed.verifiers[8].functions.witnessCommitments(raw[:-1]))
    assert info.value.error == "ProofLengthInvalid"


def test_constructor_rejects_a_domain_outside_the_supported_sizes(deployed: Deployed) -> None:
    vk = proving_key(8).vk
    with pytest.raises(ContractRevertError) as info:
        deployed.chain.deploy_contract(
            "UsageVerifier8", 21, list(vk.table_commitment), vk.g2_tau_words(), gas=GAS_DEPLOY
        )
    assert info.value.error == "UnsupportedDomainSize"
    with pytest.raises(ContractRevertError) as info:
        deployed.chain.deploy_contract(
            "UsageVerifier8", 8, [1, 3], vk.g2_tau_words(), gas=GAS_DEPLOY
        )
    assert info.value.error == "InvalidTableCommitment"


@pytest.mark.parametrize("k", [16, 20])
def test_one_verifier_deploys_for_large_domains_with_the_same_proof_size(
    deployed: Deployed, k: int
) -> None:
    vk = proving_key(8).vk  # any valid points: no 2^16 or 2^20 proof is made here
    verifier = deployed.chain.deploy_contract(
        "UsageVerifier8", k, list(vk.table_commitment), vk.g2_tau_words(), gas=GAS_DEPLOY
    )
    assert verifier.functions.logDomainSize().call() == k
    assert verifier.functions.proofLength().call() == proof_size(Layout(k)) == 2080


def test_verifier_code_fits_eip_170() -> None:
    """The one verifier (2^8..2^20) stays below the 24,576-byte code size limit (EIP-170)."""
    artefact = json.loads((ARTIFACTS_DIR / "UsageVerifier8.json").read_text())
    code = bytes.fromhex(artefact["deployedBytecode"].removeprefix("0x"))
    assert 0 < len(code) <= 24_576


@pytest.mark.parametrize(("harness", "k"), [("GatesHarness8", 8), ("GatesHarness8", 16)])
def test_generated_gates_equal_the_python_compilation(
    deployed: Deployed, harness: str, k: int
) -> None:
    """Random values for every variable: the Yul gate code and compile_gates agree (and a
    changed value changes both)."""
    layout = Layout(k)
    vk = proving_key(8).vk
    contract = deployed.chain.deploy_contract(
        harness, k, list(vk.table_commitment), vk.g2_tau_words(), gas=GAS_DEPLOY
    )
    rng = random.Random(k)
    compiled = layout.compiled()
    for trial in range(4):
        evals_zeta = {c: rng.randrange(R) for c in layout.opened_at_zeta}
        evals_next = {c: rng.randrange(R) for c in layout.opened_at_omega_zeta}
        if trial == 0:  # edge values: zeros and R - 1
            evals_zeta = {c: (0 if i % 2 else R - 1) for i, c in enumerate(evals_zeta)}
        scalars = [rng.randrange(R) for _ in range(7)]
        names = ["beta", "gamma", "delta", "alpha", "A_over_N", "L0", "X_minus_last"]
        values = dict(evals_zeta)
        values.update({f"{c}_next": v for c, v in evals_next.items()})
        values.update(dict(zip(names, scalars, strict=True)))
        fake = Proof(
            k,
            {c: (0, 0) for c in layout.witness_columns + QUOTIENT_COLUMNS},
            evals_zeta,
            evals_next,
            (0, 0),
            (0, 0),
        )
        expected = compiled.evaluate(values)
        got = contract.functions.gatesAtZeta(fake.to_bytes(), scalars).call()
        assert got == expected
        scalars[3] = (scalars[3] + 1) % R  # alpha + 1
        assert contract.functions.gatesAtZeta(fake.to_bytes(), scalars).call() != expected


# ---------------------------------------------------------------- malformed input


def _malformed_public_cases(worked: Any, multi: Any) -> list[tuple[str, Any, bytes]]:
    w, wraw = worked.public, worked.proof.to_bytes()
    m, mraw = multi.public, multi.proof.to_bytes()
    a0, a1 = m.aggregates[0], m.aggregates[1]
    swapped = dataclasses.replace(m, aggregates=(a1, a0, *m.aggregates[2:]))
    duplicate = dataclasses.replace(m, aggregates=(a0, a0, *m.aggregates[2:]))
    big = [Aggregate(PAYER_A + k, 1, 1, 1, 1) for k in range(257)]
    rows = (Aggregate(PAYER_A, 1, 1, 200, 0), Aggregate(PAYER_B, 1, 1, 57, 0))
    return [
        ("no aggregates", dataclasses.replace(w, aggregates=()), wraw),
        ("count 0", with_aggregate(w, count=0), wraw),
        ("count N+1", with_aggregate(w, count=257), wraw),
        ("first nonce 0", with_aggregate(w, first_nonce=0), wraw),
        ("nonce overflow", with_aggregate(w, first_nonce=2**64 - 11), wraw),
        ("tokens > count*(2^32-1)", with_aggregate(w, tokens=12 * (2**32 - 1) + 1), wraw),
        ("keys swapped", swapped, mraw),
        ("keys repeated", duplicate, mraw),
        ("too many aggregates", dataclasses.replace(w, aggregates=tuple(big)), wraw),
        ("too many rows", dataclasses.replace(w, aggregates=rows), wraw),
        ("count 0 in a later aggregate", with_aggregate(m, 4, count=0), mraw),
    ]


def _malformed_proof_cases(worked: Any) -> list[tuple[str, Any, bytes]]:
    raw = worked.proof.to_bytes()
    layout = Layout(8)
    evals = 64 * (len(layout.witness_columns) + len(QUOTIENT_COLUMNS))
    w_zeta = len(raw) - 128
    return [
        ("short proof", worked.public, raw[:-1]),
        ("long proof", worked.public, raw + bytes(32)),
        ("empty proof", worked.public, b""),
        ("evaluation = R", worked.public, replace_word(raw, evals, R)),
        ("evaluation = 2^256-1", worked.public, replace_word(raw, evals + 96, 2**256 - 1)),
        ("shifted evaluation = R", worked.public, replace_word(raw, w_zeta - 32, R)),
        ("commitment off the curve", worked.public, replace_word(raw, 96, 5)),
        ("x >= P", worked.public, replace_word(raw, 0, P + 1)),
        ("W_zeta off the curve", worked.public, replace_word(raw, w_zeta + 32, 7)),
        ("W_omega_zeta off the curve", worked.public, replace_word(raw, w_zeta + 96, 7)),
    ]


def test_malformed_inputs_revert_naming_the_python_error(
    deployed: Deployed, worked: Any, multi: Any
) -> None:
    for what, public, raw in _malformed_public_cases(worked, multi) + _malformed_proof_cases(
        worked
    ):
        assert deployed.check(public, raw).outcome == "malformed", what


def test_infinity_is_accepted_as_a_point_but_the_proof_fails(
    deployed: Deployed, worked: Any
) -> None:
    """(0, 0) decodes (the point at infinity) on both sides; the opening then fails."""
    raw = worked.proof.to_bytes()
    zeroed = raw[:128] + bytes(64) + raw[192:]  # [q] := infinity
    assert deployed.check(worked.public, zeroed).outcome == "reject"


# ---------------------------------------------------------------- the mutation corpus


def _mutations(result: Any) -> list[tuple[str, PublicInputs, bytes]]:
    layout = result.proof.layout
    raw = result.proof.to_bytes()
    public = result.public
    cases: list[tuple[str, PublicInputs, bytes]] = []
    commitments = layout.witness_columns + QUOTIENT_COLUMNS
    for i, name in enumerate(commitments):
        cases.append((f"[{name}] + G", public, shifted_point(raw, 64 * i)))
    q, s = layout.round1_columns.index("q"), layout.round1_columns.index("s")
    swapped = bytearray(raw)
    swapped[64 * q : 64 * q + 64], swapped[64 * s : 64 * s + 64] = (
        raw[64 * s : 64 * s + 64],
        raw[64 * q : 64 * q + 64],
    )
    cases.append(("[q] <-> [s]", public, bytes(swapped)))
    t0 = 64 * len(layout.witness_columns)
    t_swapped = raw[:t0] + raw[t0 + 64 : t0 + 128] + raw[t0 : t0 + 64] + raw[t0 + 128 :]
    cases.append(("[t_0] <-> [t_1]", public, t_swapped))
    evals_at = 64 * len(commitments)
    names = [f"{c}(zeta)" for c in layout.opened_at_zeta]
    names += [f"{c}(omega zeta)" for c in layout.opened_at_omega_zeta]
    for j, name in enumerate(names):
        offset = evals_at + 32 * j
        value = int.from_bytes(raw[offset : offset + 32], "big")
        cases.append((f"{name} + 1", public, replace_word(raw, offset, (value + 1) % R)))
    w_zeta = len(raw) - 128
    cases.append(("W_zeta + G", public, shifted_point(raw, w_zeta)))
    cases.append(("W_omega_zeta + G", public, shifted_point(raw, w_zeta + 64)))
    cases.append(("W_zeta <-> W_omega_zeta", public, raw[:w_zeta] + raw[-64:] + raw[w_zeta:-64]))
    agg = public.aggregates[0]
    for field, delta in (("tokens", 1), ("tokens", -1), ("count", 1), ("count", -1)):
        changed = with_aggregate(public, **{field: getattr(agg, field) + delta})
        cases.append((f"{field} {delta:+d}", changed, raw))
    cases.append(("first nonce + 1", with_aggregate(public, first_nonce=agg.first_nonce + 1), raw))
    for field in ("operator", "batch_seq", "chain_id", "settlement"):
        value = getattr(public.header, field)
        cases.append((f"{field} + 1", with_header(public, **{field: value + 1}), raw))
    return cases


def _cheating_proofs() -> list[tuple[str, PublicInputs, bytes]]:
    """The malicious-prover proofs of tests/prover/test_usage_proof.py."""
    out: list[tuple[str, PublicInputs, bytes]] = []

    def add(what: str, result: Any) -> None:
        out.append((what, result.public, result.proof.to_bytes()))

    witness = build_witness(worked_example_rows(), 8)
    add("total 9601", cheat(witness, [dataclasses.replace(witness.aggregates[0], tokens=9601)]))

    rows = [*worked_example_rows(), UsageRow(PAYER_B, 1, 1, 500)]
    witness = build_witness(rows, 8)
    add("unlisted channel", cheat(witness, [a for a in witness.aggregates if a.payer == PAYER_A]))

    rows = [UsageRow(PAYER_A, 1, k, 10) for k in range(1, 5)]
    rows += [UsageRow(PAYER_B, 1, k, 10) for k in range(1, 3)]
    witness = build_witness(rows, 8)
    order = [0, 1, 4, 5, 2, 3]
    columns = {
        name: [witness.columns[name][i] for i in order] + witness.columns[name][6:]
        for name in ("key", "nonce", *witness.layout.limb_columns)
    }
    s = [1, 0, 1, 0, 1, 0] + [0] * (witness.layout.size - 6)
    add("split run", cheat(witness_with_columns(witness, **columns, s=s), witness.aggregates))

    witness = build_witness(worked_example_rows(), 8)
    nonce = list(witness.columns["nonce"])
    for i in range(6, 12):
        nonce[i] += 1
    add("nonce gap", cheat(witness_with_columns(witness, nonce=nonce), witness.aggregates))

    witness = build_witness([UsageRow(PAYER_A, 1, 1, 5), UsageRow(PAYER_A, 1, 2, 0)], 8)
    limb_3 = list(witness.columns["limb_3"])
    limb_3[0] = 256
    claimed = [dataclasses.replace(witness.aggregates[0], tokens=2**32 + 5)]
    add("limb of 256", cheat(witness_with_columns(witness, limb_3=limb_3), claimed))

    witness = build_witness([UsageRow(PAYER_A, 1, 1, 5), UsageRow(PAYER_A, 1, 2, 7)], 8)
    limb_0 = list(witness.columns["limb_0"])
    limb_0[0], limb_0[1] = R - 1, 13
    add("negative limb", cheat(witness_with_columns(witness, limb_0=limb_0), witness.aggregates))

    witness = build_witness(worked_example_rows(), 8)
    q = list(witness.columns["q"])
    q[12] = 1
    claimed = [dataclasses.replace(witness.aggregates[0], count=13)]
    add("padding row counted", cheat(witness_with_columns(witness, q=q), claimed))

    # Protocol v2's continuation flag: a cont that switches a transition off at a nonce gap,
    # and the wrap exploit (row 0 a replayed call, cont[N-1] = 0).
    witness = build_witness(worked_example_rows(), 8)
    nonce = list(witness.columns["nonce"])
    for i in range(6, 12):
        nonce[i] += 1
    cont = list(witness.columns["cont"])
    cont[5] = 0
    forged = witness_with_columns(witness, nonce=nonce, cont=cont)
    add("cont hides a gap", cheat(forged, witness.aggregates))

    columns = rotated(witness, -1)
    columns["key"][0], columns["nonce"][0], columns["q"][0] = columns["key"][1], 12, 1
    for j, name in enumerate(witness.layout.limb_columns):
        columns[name][0] = (800 >> (8 * j)) & 0xFF
    cont = [columns["q"][i + 1] * (1 - columns["s"][i + 1]) for i in range(255)] + [0]
    claimed = [dataclasses.replace(witness.aggregates[0], count=13, tokens=13 * 800)]
    forged = witness_with_columns(witness, **columns, cont=cont)
    add("replayed call at the wrap", cheat(forged, claimed))
    return out


def test_a_few_mutations_agree(deployed: Deployed, worked: Any) -> None:
    """A fast sample of the corpus below: one commitment, one evaluation, one header field."""
    cases = _mutations(worked)
    sample = [c for c in cases if c[0] in ("[limb_0] + G", "phi(omega zeta) + 1", "operator + 1")]
    assert len(sample) == 3
    for what, public, raw in sample:
        assert deployed.check(public, raw).outcome == "reject", what


@requires_anvil
@pytest.mark.parametrize("which", ["worked", "multi"])
def test_every_mutation_rejected_by_both(
    deployed_on_anvil: Deployed, worked: Any, multi: Any, which: str
) -> None:
    result = worked if which == "worked" else multi
    verdicts = {
        what: deployed_on_anvil.check(public, raw).outcome
        for what, public, raw in _mutations(result)
    }
    # count - 1 on the worked example is a well-formed false claim; all must be rejected
    assert set(verdicts.values()) <= {"reject", "malformed"}, verdicts
    assert sum(v == "reject" for v in verdicts.values()) >= len(verdicts) - 2


@requires_anvil
def test_cheating_prover_proofs_rejected_by_both(deployed_on_anvil: Deployed) -> None:
    for what, public, raw in _cheating_proofs():
        assert deployed_on_anvil.check(public, raw).outcome in ("reject", "malformed"), what


# ---------------------------------------------------------------- gas


GasCase = tuple[int, int]  # (log size, aggregates)


def _gas_proof(k: int, channels: int) -> Any:
    rng = seeded(1000 * k + channels)
    rows = random_rows(rng, channels=channels, max_calls=2)
    # random_rows may give two channels the same key only with negligible probability
    return prove(rows, k=k)


def measure_gas(deployed: Deployed, result: Any, k: int) -> tuple[bool, int, int]:
    """(accepted, gas inside verifyBatch, gas of the whole transaction)."""
    chain = deployed.chain
    harness = _harness(chain)
    fn = harness.functions.measure(
        deployed.verifiers[k].address, *call_args(result.public, result.proof.to_bytes())
    )
    sender = chain.w3.eth.accounts[0]
    tx_hash = fn.transact({"from": sender, "gas": 10_000_000})
    receipt = chain.w3.eth.wait_for_transaction_receipt(tx_hash)
    (event,) = harness.events.Measured().process_receipt(receipt)
    return bool(event["args"]["accepted"]), int(event["args"]["gasUsed"]), int(receipt["gasUsed"])


_HARNESS: dict[int, Any] = {}


def _harness(chain: ChainClient) -> Any:
    if id(chain) not in _HARNESS:
        _HARNESS[id(chain)] = chain.deploy_contract("VerifierGasHarness", gas=GAS_DEPLOY)
    return _HARNESS[id(chain)]


def test_gas_of_one_aggregate_under_350k(deployed: Deployed, worked: Any) -> None:
    accepted, inner, total = measure_gas(deployed, worked, 8)
    print(f"\nverifyBatch gas, 2^8, 1 aggregate: {inner:,} (transaction {total:,})")
    assert accepted
    assert inner < 350_000
    tampered = dataclasses.replace(worked, public=with_aggregate(worked.public, tokens=9599))
    assert measure_gas(deployed, tampered, 8)[0] is False


@pytest.mark.slow
def test_gas_table(deployed: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    table: dict[GasCase, tuple[int, int]] = {}
    for k in (8, 10):
        for channels in (1, 10, 100):
            result = _gas_proof(k, channels)
            assert len(result.public.aggregates) == channels
            accepted, inner, total = measure_gas(deployed, result, k)
            assert accepted
            table[(k, channels)] = (inner, total)
    lines = ["", "| N | aggregates | verifyBatch gas | transaction gas |", "|---|---:|---:|---:|"]
    lines += [
        f"| 2^{n} | {c} | {inner:,} | {total:,} |" for (n, c), (inner, total) in table.items()
    ]
    with capsys.disabled():
        print("\n".join(lines))
    assert table[(8, 1)][0] < 350_000
    for channels in (1, 10, 100):  # independent of N up to the log N squarings of zeta
        assert abs(table[(10, channels)][0] - table[(8, channels)][0]) < 2_000


# ---------------------------------------------------------------- settlement with the real verifier


@pytest.mark.slow
def test_settlement_pays_the_worked_example_through_the_real_verifier() -> None:
    """UsageSettlement + UsageVerifier8: the worked example's proof moves exactly 0.0192 OPEN;
    the same proof with 9,601 tokens claimed is refused (InvalidProof) and changes nothing, even
    with the payer's signature on 9,601 tokens."""
    from circuits.public_inputs import BatchHeader
    from tests.support.chain import (
        EXAMPLE_ROYALTY,
        EXAMPLE_TOKENS,
        VERIFIER_CHANGE_DELAY,
        build_world,
    )

    w = build_world()
    c = w.client
    verifier = deploy_verifier(c, 8)
    c.propose_verifier(8, verifier.address)
    c.advance_time(VERIFIER_CHANGE_DELAY)
    c.apply_verifier(8)
    header = BatchHeader(
        chain_id=c.chain_id,
        settlement=int(w.deployment.settlement, 16),
        operator=int(w.operator.address, 16),
        batch_seq=0,
    )
    payer = int(w.payer.address, 16)
    rows = [UsageRow(payer, w.model_id, nonce, 800) for nonce in range(1, 13)]
    result = prove(rows, k=8, header=header)
    raw = result.proof.to_bytes()
    (agg,) = result.public.aggregates
    assert agg.tokens == EXAMPLE_TOKENS

    before = w.state()
    forged = w.aggregate(tokens=EXAMPLE_TOKENS + 1)
    with pytest.raises(ContractRevertError) as info:
        c.settle(w.operator, 0, 8, [forged], [w.consent(forged)], raw)
    assert info.value.error == "InvalidProof"
    assert w.state() == before

    receipt = c.settle(w.operator, 0, 8, [w.aggregate()], [w.consent(w.aggregate())], raw)
    print(f"\nsettle with UsageVerifier8 (1 channel, 2^8): {receipt['gasUsed']:,} gas")
    assert c.earnings(w.owner.address) == EXAMPLE_ROYALTY
    (batch,) = c.batch_events()
    assert batch.witness_commitments == raw[: 64 * len(Layout(8).round1_columns)]
