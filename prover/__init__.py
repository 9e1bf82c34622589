"""zkmeter prover package."""
