"""zkmeter verifier package."""
