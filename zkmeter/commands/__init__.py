"""The `zkmeter` commands, one module per user: proofs (provers and verifiers), payer, operator,
creator, admin (chain administration) and bench; options holds what they share."""
