"""The proof file: a proof together with the public inputs it proves (PROTOCOL §8).

Pure: dictionaries in and out; reading and writing files is the caller's business.
"""

from __future__ import annotations

from typing import Any

from circuits.public_inputs import PublicInputError, PublicInputs
from verifier.proof import MalformedProofError, Proof

PROOF_FILE_FORMAT = "zkmeter-usage-proof-v2"


def proof_file_json(public: PublicInputs, proof: Proof) -> dict[str, Any]:
    return {"format": PROOF_FILE_FORMAT, "public": public.to_json(), "proof": proof.to_json()}


def parse_proof_file(data: object) -> tuple[PublicInputs, Proof]:
    """Public inputs and proof from a proof file's JSON; MalformedProofError if unreadable."""
    if not isinstance(data, dict) or data.get("format") != PROOF_FILE_FORMAT:
        raise MalformedProofError(f"not a zkmeter proof file (expected format {PROOF_FILE_FORMAT})")
    try:
        public = PublicInputs.from_json(data["public"])
    except (KeyError, TypeError, ValueError, PublicInputError) as error:
        raise MalformedProofError(f"public inputs unreadable: {error}") from None
    proof = Proof.from_json(data.get("proof", {}))
    if proof.k != public.k:
        raise MalformedProofError(
            f"proof is for 2^{proof.k} rows but its public inputs say 2^{public.k}"
        )
    return public, proof
