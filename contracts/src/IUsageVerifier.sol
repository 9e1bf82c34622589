// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// One channel's total in a batch: (payer, operator, modelId) with the operator implied by the
/// batch. Its ordering key is `uint256(uint160(payer)) | (uint256(modelId) << 160)`.
struct Aggregate {
    address payer;
    uint64 modelId;
    uint64 firstNonce;
    uint64 count;
    uint64 tokens;
}

/// The verifier of the batch statement (docs/PROTOCOL.md) for one domain size N = 2^logDomainSize.
interface IUsageVerifier {
    /// Log2 of the domain size N this verifier's key is for.
    function logDomainSize() external view returns (uint8);

    /// True iff `proof` proves the batch statement for these public inputs. Reverts on malformed input.
    function verifyBatch(
        uint256 chainId,
        address settlement,
        address operator,
        uint64 batchSeq,
        Aggregate[] calldata aggregates,
        bytes calldata proof
    ) external view returns (bool);

    /// The proof's witness commitments (the bytes settlement emits so anyone can audit the batch).
    function witnessCommitments(bytes calldata proof) external pure returns (bytes memory);
}
