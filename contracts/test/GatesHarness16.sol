// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {UsageVerifier16} from "../src/UsageVerifier16.sol";

/// @title GatesHarness16 — TEST ONLY: exposes the generated gate polynomial of UsageVerifier16
contract GatesHarness16 is UsageVerifier16 {
    constructor(uint8 logN, uint256[2] memory tableCommitment, uint256[4] memory g2Tau)
        UsageVerifier16(logN, tableCommitment, g2Tau)
    {}

    /// sum_i alpha^i gate_i for the evaluations in `proof` and the scalars `s` (GS_* order).
    function gatesAtZeta(bytes calldata proof, uint256[7] memory s) external pure returns (uint256) {
        return _gatesAtZeta(proof, s);
    }
}
