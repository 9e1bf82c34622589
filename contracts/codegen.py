"""Generate the layout-specific Solidity verifiers from the circuit's own gate expressions.

`python -m contracts.codegen` renders, from one template, one contract per limb size of
`circuits/usage_batch.py`; since protocol v2 every domain size has 8-bit limbs, so there is
one: `contracts/src/UsageVerifier8.sol` (2^8..2^20 rows). It is a small contract on top of
the hand-written `contracts/src/UsageVerifier.sol` that holds:

- the proof's byte offsets as named constants (`PROOF_COMMIT_<COLUMN>`, `PROOF_EVAL_<COLUMN>`,
  `PROOF_EVAL_<COLUMN>_NEXT` at omega*zeta), in the order of `verifier/proof.py`;
- `_gatesAtZeta`: sum_i alpha^i gate_i at zeta, folded by Horner exactly as
  `circuits.expr.compile_gates` folds them (gate i gets alpha^i), written in Yul from the same
  `Layout(...).gates()` expression trees. Each distinct product is computed once into a
  memory temporary, as in the Python compilation; sums are `addmod`, negation is `R - x`
  (operands are always in [0, R], which `addmod`/`mulmod` accept).

`python -m contracts.codegen --check` exits 1 when a committed file differs from a fresh
render (`tests/contracts/test_solidity_verifier.py` runs the same comparison).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from circuits.expr import Col, Const, Expr, Neg, Product, Scalar, Sum, compile_gates
from circuits.usage_batch import MAX_LOG_SIZE, MIN_LOG_SIZE, Layout
from verifier.proof import QUOTIENT_COLUMNS

SRC_DIR = Path(__file__).resolve().parent / "src"

#: Gate-expression names the base contract supplies in its scalar array (`GS_*` offsets).
SCALAR_SLOTS: dict[str, str] = {
    "beta": "GS_BETA",
    "gamma": "GS_GAMMA",
    "delta": "GS_DELTA",
    "alpha": "GS_ALPHA",
    "A_over_N": "GS_A_OVER_N",
    "L0": "GS_L0",  # a Col in the expressions, computed by the verifier
    "X_minus_last": "GS_X_MINUS_LAST",
}

#: What UsageVerifier.sol assumes about the columns opened at omega*zeta.
SHIFTED_COLUMNS = ("key", "nonce", "q", "s", "phi")


class CodegenError(Exception):
    """The circuit's layout does not have the shape the Solidity base contract assumes."""


@dataclass(frozen=True)
class Variant:
    """One generated contract: a limb layout and the range of domain sizes it serves."""

    contract: str
    limb_bits: int
    min_log: int
    max_log: int

    @property
    def path(self) -> Path:
        return SRC_DIR / f"{self.contract}.sol"

    @property
    def layout(self) -> Layout:
        return Layout(self.min_log)


def variants() -> list[Variant]:
    """The layouts of circuits/usage_batch.py grouped by limb size (their gates coincide)."""
    groups: dict[int, list[int]] = {}
    for k in range(MIN_LOG_SIZE, MAX_LOG_SIZE + 1):
        groups.setdefault(Layout(k).limb_bits, []).append(k)
    out = []
    for bits, sizes in sorted(groups.items()):
        variant = Variant(f"UsageVerifier{bits}", bits, min(sizes), max(sizes))
        reference = compile_gates(Layout(variant.min_log).gates()).source
        for k in sizes:
            if compile_gates(Layout(k).gates()).source != reference:
                raise CodegenError(f"gates of 2^{k} differ from 2^{variant.min_log}")
        out.append(variant)
    return out


def constant_name(column: str) -> str:
    return column.upper()


def _check_shape(layout: Layout) -> None:
    if layout.opened_at_omega_zeta != SHIFTED_COLUMNS:
        raise CodegenError(f"columns at omega*zeta are {layout.opened_at_omega_zeta}")
    if layout.round1_columns[:4] != SHIFTED_COLUMNS[:4] or layout.round2_columns[-1] != "phi":
        raise CodegenError("key, nonce, q, s must open round 1 and phi must close round 2")
    if layout.fixed_columns != ("T",) or layout.opened_at_zeta[-1] != "T":
        raise CodegenError("the one fixed column T must be the last opened at zeta")


def offsets(layout: Layout) -> list[tuple[str, int, str]]:
    """(constant name, byte offset, comment) of every field of the proof, in proof order."""
    rows: list[tuple[str, int, str]] = []
    at = 0
    for column in layout.round1_columns + layout.round2_columns + QUOTIENT_COLUMNS:
        if column == layout.round2_columns[0]:
            rows.append(("PROOF_ROUND1_END", at, "end of the round-1 commitments"))
        rows.append((f"PROOF_COMMIT_{constant_name(column)}", at, f"[{column}]_1"))
        at += 64
    for column in layout.opened_at_zeta:
        rows.append((f"PROOF_EVAL_{constant_name(column)}", at, f"{column}(zeta)"))
        at += 32
    for column in layout.opened_at_omega_zeta:
        rows.append((f"PROOF_EVAL_{constant_name(column)}_NEXT", at, f"{column}(omega*zeta)"))
        at += 32
    rows.append(("PROOF_COMMIT_W_ZETA", at, "[W_zeta]_1"))
    rows.append(("PROOF_COMMIT_W_OMEGA_ZETA", at + 64, "[W_omega_zeta]_1"))
    rows.append(("PROOF_SIZE", at + 128, "bytes in a proof"))
    return rows


class _YulEmitter:
    """Yul for gate expressions; products become memory temporaries shared between gates."""

    def __init__(self) -> None:
        self.temporaries: dict[str, int] = {}
        self.lines: list[str] = []

    def emit(self, expr: Expr) -> str:
        if isinstance(expr, Sum):
            return f"addmod({self.emit(expr.left)}, {self.emit(expr.right)}, R)"
        if isinstance(expr, Neg):
            return f"sub(R, {self.emit(expr.inner)})"
        if isinstance(expr, Product):
            text = f"mulmod({self.emit(expr.left)}, {self.emit(expr.right)}, R)"
            if text not in self.temporaries:
                index = len(self.temporaries)
                self.temporaries[text] = index
                self.lines.append(f"mstore({_slot(index)}, {text})")
            return f"mload({_slot(self.temporaries[text])})"
        if isinstance(expr, Const):
            return str(expr.value)
        if isinstance(expr, Col) and expr.name in SCALAR_SLOTS:
            return f"mload(add(s, {SCALAR_SLOTS[expr.name]}))"
        if isinstance(expr, Col):
            suffix = "_NEXT" if expr.rot == 1 else ""
            if expr.rot not in (0, 1):
                raise CodegenError(f"rotation {expr.rot} of {expr.name} is not supported")
            return f"calldataload(add(p, PROOF_EVAL_{constant_name(expr.name)}{suffix}))"
        if isinstance(expr, Scalar):
            if expr.name not in SCALAR_SLOTS:
                raise CodegenError(f"scalar {expr.name} has no slot in the base contract")
            return f"mload(add(s, {SCALAR_SLOTS[expr.name]}))"
        raise CodegenError(f"cannot render {type(expr).__name__}")


def _slot(index: int) -> str:
    return f"add(t, {hex(32 * index)})"


TEMPLATE = """\
// SPDX-License-Identifier: Apache-2.0
// GENERATED by contracts/codegen.py from circuits/usage_batch.py: do not edit by hand.
// Regenerate with `python -m contracts.codegen`.
pragma solidity ^0.8.28;

import {{UsageVerifier}} from "./UsageVerifier.sol";

/// @title {contract} — the usage-batch verifier for 2^{min_log}..2^{max_log} rows
/// ({limb_bits}-bit token limbs)
/// @notice Layout: round 1 {round1}; round 2 {round2}; quotient {quotient}.
contract {contract} is UsageVerifier {{
    uint8 internal constant MIN_LOG_N = {min_log};
    uint8 internal constant MAX_LOG_N = {max_log};
    uint256 internal constant LIMB_BITS = {limb_bits};
    uint256 internal constant ROUND1_COUNT = {round1_count};
    uint256 internal constant ROUND2_COUNT = {round2_count};

    // Byte offsets of the proof's fields (verifier/proof.py order).
{offsets}

    /// @param logN log2 of the domain size N ({min_log}..{max_log})
    /// @param tableCommitment [T(tau)]_1 (x, y) from the verification key
    /// @param g2Tau [tau]_2 in EIP-197 order (x_im, x_re, y_im, y_re)
    constructor(uint8 logN, uint256[2] memory tableCommitment, uint256[4] memory g2Tau)
        UsageVerifier(
            logN,
            tableCommitment,
            g2Tau,
            MIN_LOG_N,
            MAX_LOG_N,
            ProofLayout({{
                round1Count: ROUND1_COUNT,
                witnessCount: ROUND1_COUNT + ROUND2_COUNT,
                round2: PROOF_ROUND1_END,
                quotient: PROOF_COMMIT_{first_quotient},
                evalsZeta: PROOF_EVAL_{first_at_zeta},
                evalsOmegaZeta: PROOF_EVAL_{first_at_omega_zeta}_NEXT,
                wZeta: PROOF_COMMIT_W_ZETA,
                wOmegaZeta: PROOF_COMMIT_W_OMEGA_ZETA,
                length: PROOF_SIZE
            }})
        )
    {{}}

    /// The round-1 commitments of `proof` ({round1}), as they appear in it.
    function witnessCommitments(bytes calldata proof) external pure returns (bytes memory) {{
        if (proof.length != PROOF_SIZE) revert ProofLengthInvalid(proof.length, PROOF_SIZE);
        return proof[:PROOF_ROUND1_END];
    }}

    /// sum_i alpha^i gate_i(zeta), gate i as in circuits/usage_batch.py:
{gate_list}
    function _gatesAtZeta(bytes calldata proof, uint256[7] memory s)
        internal
        pure
        override
        returns (uint256 acc)
    {{
        uint256[{temp_count}] memory t;
        assembly ("memory-safe") {{
            let p := proof.offset
{body}
        }}
    }}
}}
"""


def render(variant: Variant) -> str:
    """The Solidity source of one generated verifier."""
    layout = variant.layout
    _check_shape(layout)
    gates = layout.gates()
    emitter = _YulEmitter()
    gate_sources = [emitter.emit(gate.expr) for gate in gates]
    body = list(emitter.lines)
    body.append(f"acc := mod({gate_sources[-1]}, R) // {gates[-1].name}")
    for gate, text in zip(reversed(gates[:-1]), reversed(gate_sources[:-1]), strict=True):
        body.append(
            f"acc := addmod(mulmod(acc, mload(add(s, GS_ALPHA)), R), {text}, R) // {gate.name}"
        )
    offset_lines = [
        f"    uint256 internal constant {name} = {hex(value)}; // {comment}"
        for name, value, comment in offsets(layout)
    ]
    gate_list = [f"    ///   {i:2d} {gate.name}: {gate.note}" for i, gate in enumerate(gates)]
    return TEMPLATE.format(
        contract=variant.contract,
        min_log=variant.min_log,
        max_log=variant.max_log,
        limb_bits=variant.limb_bits,
        round1=", ".join(layout.round1_columns),
        round2=", ".join(layout.round2_columns),
        quotient=", ".join(QUOTIENT_COLUMNS),
        round1_count=len(layout.round1_columns),
        round2_count=len(layout.round2_columns),
        first_quotient=constant_name(QUOTIENT_COLUMNS[0]),
        first_at_zeta=constant_name(layout.opened_at_zeta[0]),
        first_at_omega_zeta=constant_name(layout.opened_at_omega_zeta[0]),
        offsets="\n".join(offset_lines),
        gate_list="\n".join(gate_list),
        temp_count=max(1, len(emitter.temporaries)),
        body="\n".join("            " + line for line in body),
    )


def rendered() -> dict[Path, str]:
    return {variant.path: render(variant) for variant in variants()}


def stale_files() -> list[Path]:
    """Generated files whose committed text differs from a fresh render."""
    return [
        path
        for path, text in rendered().items()
        if not path.is_file() or path.read_text(encoding="utf-8") != text
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m contracts.codegen", description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if a file is out of date")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files()
        for path in stale:
            print(f"out of date: {path}", file=sys.stderr)
        return 1 if stale else 0
    for path, text in rendered().items():
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
