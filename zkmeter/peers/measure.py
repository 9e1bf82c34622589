"""Measure the circom/snarkjs peer once per size: `python -m zkmeter.peers.measure 64 256`.

Prints one JSON line per (n, protocol): constraints, gates, setup/witness/prove/verify
seconds and calldata bytes. Setups and powers of tau come from the cache (made on first use).
"""

from __future__ import annotations

import argparse
import json
import sys

from zkmeter.peers import snarkjs_peer as sp


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("sizes", type=int, nargs="+", help="rows n")
    parser.add_argument("--slots", type=int, default=4, help="aggregate slots C")
    parser.add_argument("--protocols", nargs="+", default=list(sp.PROTOCOLS))
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args(argv)
    for n in args.sizes:
        rows, aggregates, header = sp.example_batch(n, args.slots, seed=n)
        for protocol in args.protocols:
            keys = sp.setup(n, args.slots, protocol)
            for _ in range(args.rounds):
                result = sp.prove(n, args.slots, protocol, rows, aggregates, header)
                record = {
                    "n": n,
                    "C": args.slots,
                    "protocol": protocol,
                    "r1cs_constraints": keys.circuit.constraints,
                    "gates": keys.gates,
                    "domain_power": keys.domain_power,
                    "setup_seconds": round(keys.setup_seconds, 2),
                    "witness_seconds": round(result.witness_seconds, 3),
                    "prove_seconds": round(result.prove_seconds, 3),
                    "verify_seconds": round(result.verify_seconds, 3),
                    "calldata_bytes": result.proof_bytes,
                    "proof_only_bytes": result.proof_only_bytes,
                    "ok": result.ok,
                }
                print(json.dumps(record), flush=True)
                if not result.ok:
                    return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
