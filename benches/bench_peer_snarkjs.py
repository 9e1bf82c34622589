"""Side-by-side peer: the batch statement in circom, proven by snarkjs (Groth16 and PLONK).

`pytest benches/bench_peer_snarkjs.py -k small --benchmark-disable` checks the bench runs;
the lead measures `-k "n64 or n256"` on a quiet machine. Wall time includes node start-up;
the in-node witness/prove/verify seconds, gate counts and calldata bytes go to extra_info.
"""

from __future__ import annotations

from typing import Any

import pytest

from zkmeter.peers import snarkjs_peer as sp

SIZES = [
    pytest.param(6, 2, id="small-n6-C2"),
    pytest.param(64, 4, id="n64-C4", marks=pytest.mark.slow),
    pytest.param(256, 4, id="n256-C4", marks=pytest.mark.slow),
]

pytestmark = [
    pytest.mark.node,
    pytest.mark.skipif(not sp.tools_available(), reason="node_modules/.bin/snarkjs missing"),
]


@pytest.mark.parametrize("protocol", sp.PROTOCOLS)
@pytest.mark.parametrize(("n", "C"), SIZES)
def test_peer_prove(benchmark: Any, n: int, C: int, protocol: sp.Protocol) -> None:
    rows, aggregates, header = sp.example_batch(n, C, seed=n)
    keys = sp.setup(n, C, protocol)  # cached; not timed
    result = benchmark.pedantic(
        sp.prove, args=(n, C, protocol, rows, aggregates, header), rounds=1, iterations=1
    )
    assert result.ok
    benchmark.extra_info.update(
        {
            "r1cs_constraints": keys.circuit.constraints,
            "gates": keys.gates,
            "witness_seconds": result.witness_seconds,
            "prove_seconds": result.prove_seconds,
            "verify_seconds": result.verify_seconds,
            "calldata_bytes": result.proof_bytes,
        }
    )
