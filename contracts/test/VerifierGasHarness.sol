// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Aggregate, IUsageVerifier} from "../src/IUsageVerifier.sol";

/// @title VerifierGasHarness — TEST ONLY: measures the gas of one `verifyBatch` call in a transaction
contract VerifierGasHarness {
    event Measured(bool accepted, uint256 gasUsed);

    function measure(
        IUsageVerifier verifier,
        uint256 chainId,
        address settlement,
        address operator,
        uint64 batchSeq,
        Aggregate[] calldata aggregates,
        bytes calldata proof
    ) external returns (bool accepted, uint256 gasUsed) {
        uint256 before = gasleft();
        accepted = verifier.verifyBatch(chainId, settlement, operator, batchSeq, aggregates, proof);
        gasUsed = before - gasleft();
        emit Measured(accepted, gasUsed);
    }
}
