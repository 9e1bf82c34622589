// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Aggregate, IUsageVerifier} from "../src/IUsageVerifier.sol";

/// @title MockUsageVerifier — TEST ONLY, never deploy it to a real chain
/// @notice Accepts or rejects every proof as told, so settlement can be tested without a real
///         proof. If `expectedInputsHash` is set, it also rejects unless the public inputs it is
///         given hash to it — letting tests check what settlement passes to the verifier
///         (chain id, settlement address, operator, batch sequence, filled-in first nonces).
contract MockUsageVerifier is IUsageVerifier {
    uint8 private immutable _logDomainSize;
    bool public accept;
    bytes32 public expectedInputsHash;

    constructor(uint8 logDomainSize_, bool accept_) {
        _logDomainSize = logDomainSize_;
        accept = accept_;
    }

    function setAccept(bool accept_) external {
        accept = accept_;
    }

    function setExpectedInputsHash(bytes32 h) external {
        expectedInputsHash = h;
    }

    function logDomainSize() external view returns (uint8) {
        return _logDomainSize;
    }

    /// keccak256(abi.encode(chainId, settlement, operator, batchSeq, aggregates)).
    function inputsHash(
        uint256 chainId,
        address settlement,
        address operator,
        uint64 batchSeq,
        Aggregate[] calldata aggregates
    ) public pure returns (bytes32) {
        return keccak256(abi.encode(chainId, settlement, operator, batchSeq, aggregates));
    }

    function verifyBatch(
        uint256 chainId,
        address settlement,
        address operator,
        uint64 batchSeq,
        Aggregate[] calldata aggregates,
        bytes calldata
    ) external view returns (bool) {
        if (expectedInputsHash != bytes32(0)
            && inputsHash(chainId, settlement, operator, batchSeq, aggregates) != expectedInputsHash) {
            return false;
        }
        return accept;
    }

    /// The mock's "commitments" are the proof bytes themselves.
    function witnessCommitments(bytes calldata proof) external pure returns (bytes memory) {
        return proof;
    }
}
