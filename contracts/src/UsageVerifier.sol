// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Aggregate, IUsageVerifier} from "./IUsageVerifier.sol";

/// @title UsageVerifier — the on-chain verifier of the zkmeter usage-batch proof
/// @notice Mirrors `verifier/usage_verifier.py` step for step (docs/PROTOCOL.md §7):
///   1. decode the proof: exact length, every point on BN254, every evaluation below R;
///   2. check the public inputs exactly as `circuits.public_inputs.check_public_inputs`;
///   3. replay the keccak256 transcript (docs/PROTOCOL.md §5): beta, gamma, delta, alpha, zeta, v, u;
///   4. the public sum A = sum_c (count + delta*tokens + delta^2*firstNonce + delta^3)/(gamma - key);
///   5. G(zeta) = sum_i alpha^i gate_i(zeta) (generated code, `_gatesAtZeta`) and
///      t(zeta) = G(zeta) / Z_H(zeta), computed here, never read from the proof;
///   6. [t]_1 = [t_0]_1 + zeta^N [t_1]_1;
///   7. the batched two-point KZG check (PLONK, GWC19 §3) as one two-pairing product:
///      e(W + u W', [tau]_2) = e(zeta W + u omega zeta W' + F - E, [1]_2).
/// The layout-dependent parts (column counts, the gate polynomial) come from a contract generated
/// by `contracts/codegen.py` from the same expressions the Python prover and verifier use.
/// Malformed input reverts with a named error; a well-formed proof that does not verify returns
/// false.
abstract contract UsageVerifier is IUsageVerifier {
    // ---------------------------------------------------------------- field and curve constants

    /// Order of G1, G2 (the scalar field Fr of BN254; EIP-196 "q").
    uint256 internal constant R = 21888242871839275222246405745257275088548364400416034343698204186575808495617;
    /// Base field modulus of BN254.
    uint256 internal constant P = 21888242871839275222246405745257275088696311157297823662689037894645226208583;
    /// A primitive 2^28-th root of unity of Fr: 5^((R - 1) / 2^28) (circuits/constants.py).
    uint256 internal constant ROOT_OF_UNITY_2_28 =
        19103219067921713944291392827692070036145651957329286315305642004821462161904;
    uint256 internal constant TWO_ADICITY = 28;

    /// [1]_2, the EIP-197 generator of G2, in precompile order (x_im, x_re, y_im, y_re).
    uint256 internal constant G2_X_IM = 11559732032986387107991004021392285783925812861821192530917403151452391805634;
    uint256 internal constant G2_X_RE = 10857046999023057135944570762232829481370756359578518086990519993285655852781;
    uint256 internal constant G2_Y_IM = 4082367875863433681332203403145435568316851327593401208105741076214120093531;
    uint256 internal constant G2_Y_RE = 8495653923123431417604973247489272438418190587263600148770280649306958101930;

    // ---------------------------------------------------------------- statement constants

    uint256 internal constant TOKEN_MAX = 0xffffffff; // a row's tokens are a uint32
    uint256 internal constant NONCE_BOUND = 1 << 64; // nonces are uint64, counted from 1
    uint256 internal constant QUOTIENT_CHUNKS = 2; // t = t_0 + X^N t_1
    /// Columns opened at omega*zeta: key, nonce, q, s (round-1 commitments 0..3) and phi (the
    /// last round-2 commitment); `contracts/codegen.py` checks the layout has this shape.
    uint256 internal constant SHIFTED_COUNT = 5;

    // ---------------------------------------------------------------- Fiat–Shamir

    /// keccak256("zkmeter.usage.v2"), the initial transcript state.
    bytes32 internal constant FS_STATE_0 = 0x891898b3cc9475321a2f6c651e3f52b07f75e4e09f7c0b00dad940ce57ec4ca0;
    /// Words absorbed before the aggregates: chain id, settlement, operator, batch seq, log N,
    /// [T]_1 (2), [tau]_2 (4), number of aggregates.
    uint256 internal constant FS_HEADER_WORDS = 12;
    uint256 internal constant FS_WORDS_PER_AGGREGATE = 4; // key, firstNonce, count, tokens

    /// Indices into the scalars handed to the generated gate code (`uint256[7] memory s`).
    uint256 internal constant GS_BETA = 0x00;
    uint256 internal constant GS_GAMMA = 0x20;
    uint256 internal constant GS_DELTA = 0x40;
    uint256 internal constant GS_ALPHA = 0x60;
    uint256 internal constant GS_A_OVER_N = 0x80;
    uint256 internal constant GS_L0 = 0xa0;
    uint256 internal constant GS_X_MINUS_LAST = 0xc0;

    // ---------------------------------------------------------------- verification key

    uint8 internal immutable VK_LOG_N;
    uint256 internal immutable VK_N;
    uint256 internal immutable VK_N_INV; // N^-1 mod R
    uint256 internal immutable VK_OMEGA; // generator of H, omega = ROOT_OF_UNITY_2_28^(2^(28 - log N))
    uint256 internal immutable VK_OMEGA_INV; // omega^-1 = omega^(N-1)
    uint256 internal immutable VK_T_X; // [T(tau)]_1, the range table's commitment
    uint256 internal immutable VK_T_Y;
    uint256 internal immutable VK_G2_TAU_X_IM; // [tau]_2 in EIP-197 order
    uint256 internal immutable VK_G2_TAU_X_RE;
    uint256 internal immutable VK_G2_TAU_Y_IM;
    uint256 internal immutable VK_G2_TAU_Y_RE;

    // ---------------------------------------------------------------- proof layout (bytes)

    uint256 internal immutable PROOF_ROUND1_COUNT; // round-1 commitments
    uint256 internal immutable PROOF_WITNESS_COUNT; // round-1 + round-2 commitments
    uint256 internal immutable PROOF_ROUND2; // offset of the round-2 commitments
    uint256 internal immutable PROOF_QUOTIENT; // offset of [t_0], [t_1]
    uint256 internal immutable PROOF_EVALS_ZETA; // witness columns then T, at zeta
    uint256 internal immutable PROOF_EVALS_OMEGA_ZETA; // key, nonce, q, s, phi at omega*zeta
    uint256 internal immutable PROOF_W_ZETA; // [W_zeta]_1
    uint256 internal immutable PROOF_W_OMEGA_ZETA; // [W_omega_zeta]_1
    uint256 internal immutable PROOF_LENGTH;

    // ---------------------------------------------------------------- errors

    error UnsupportedDomainSize(uint8 logN, uint8 minLogN, uint8 maxLogN);
    error InvalidTableCommitment();
    /// Proof decoding (mirrors verifier.proof.MalformedProofError).
    error ProofLengthInvalid(uint256 length, uint256 expected);
    /// Point `index` in proof order (commitments, then W_zeta, W_omega_zeta) is not on the curve.
    error PointNotOnCurve(uint256 index);
    /// Evaluation `index` in proof order (at zeta, then at omega*zeta) is not below R.
    error EvaluationNotCanonical(uint256 index);
    /// Public inputs (mirror circuits.public_inputs.PublicInputError).
    error NoAggregates();
    error TooManyAggregates(uint256 count, uint256 domainSize);
    error CountOutOfRange(uint256 index, uint64 count, uint256 domainSize);
    error NonceOutOfRange(uint256 index, uint64 firstNonce, uint64 count);
    error TokensOutOfRange(uint256 index, uint64 tokens, uint64 count);
    error KeysNotIncreasing(uint256 index);
    error TooManyRows(uint256 rows, uint256 domainSize);
    /// A BN254 precompile failed on validated input (cannot happen on a conforming chain).
    error PrecompileFailed();

    /// Where a proof's parts start, in bytes (PROTOCOL §8). The generated verifier computes
    /// them once, from the column layout in circuits/usage_batch.py (contracts/codegen.py),
    /// and passes them here: the base contract does no offset arithmetic of its own.
    struct ProofLayout {
        uint256 round1Count; // round-1 commitments
        uint256 witnessCount; // round-1 + round-2 commitments
        uint256 round2; // the first round-2 commitment
        uint256 quotient; // [t_0]_1
        uint256 evalsZeta; // the first evaluation at zeta
        uint256 evalsOmegaZeta; // the first evaluation at omega * zeta
        uint256 wZeta; // [W_zeta]_1
        uint256 wOmegaZeta; // [W_omega_zeta]_1
        uint256 length; // bytes in a proof
    }

    constructor(
        uint8 logN,
        uint256[2] memory tableCommitment,
        uint256[4] memory g2Tau,
        uint8 minLogN,
        uint8 maxLogN,
        ProofLayout memory layout
    ) {
        if (logN < minLogN || logN > maxLogN) revert UnsupportedDomainSize(logN, minLogN, maxLogN);
        if (!_onCurve(tableCommitment[0], tableCommitment[1])) revert InvalidTableCommitment();
        uint256 n = uint256(1) << logN;
        uint256 omega = ROOT_OF_UNITY_2_28;
        for (uint256 i = logN; i < TWO_ADICITY; ++i) {
            omega = mulmod(omega, omega, R);
        }
        VK_LOG_N = logN;
        VK_N = n;
        VK_N_INV = _modExp(n, R - 2);
        VK_OMEGA = omega;
        VK_OMEGA_INV = _modExp(omega, n - 1);
        VK_T_X = tableCommitment[0];
        VK_T_Y = tableCommitment[1];
        VK_G2_TAU_X_IM = g2Tau[0];
        VK_G2_TAU_X_RE = g2Tau[1];
        VK_G2_TAU_Y_IM = g2Tau[2];
        VK_G2_TAU_Y_RE = g2Tau[3];

        PROOF_ROUND1_COUNT = layout.round1Count;
        PROOF_WITNESS_COUNT = layout.witnessCount;
        PROOF_ROUND2 = layout.round2;
        PROOF_QUOTIENT = layout.quotient;
        PROOF_EVALS_ZETA = layout.evalsZeta;
        PROOF_EVALS_OMEGA_ZETA = layout.evalsOmegaZeta;
        PROOF_W_ZETA = layout.wZeta;
        PROOF_W_OMEGA_ZETA = layout.wOmegaZeta;
        PROOF_LENGTH = layout.length;
    }

    // ---------------------------------------------------------------- IUsageVerifier

    function logDomainSize() external view returns (uint8) {
        return VK_LOG_N;
    }

    /// The verification key: log N, N, omega, [T]_1, [tau]_2 (EIP-197 order).
    function verificationKey()
        external
        view
        returns (uint8 logN, uint256 n, uint256 omega, uint256[2] memory table, uint256[4] memory g2Tau)
    {
        return (
            VK_LOG_N,
            VK_N,
            VK_OMEGA,
            [VK_T_X, VK_T_Y],
            [VK_G2_TAU_X_IM, VK_G2_TAU_X_RE, VK_G2_TAU_Y_IM, VK_G2_TAU_Y_RE]
        );
    }

    /// Bytes of a proof for this verifier's domain size.
    function proofLength() external view returns (uint256) {
        return PROOF_LENGTH;
    }

    function verifyBatch(
        uint256 chainId,
        address settlement,
        address operator,
        uint64 batchSeq,
        Aggregate[] calldata aggregates,
        bytes calldata proof
    ) external view returns (bool) {
        // 1-2. encodings and public inputs (revert when malformed)
        _checkProofEncoding(proof);
        _checkPublicInputs(aggregates);
        // 3. transcript
        uint256[8] memory ch = _challenges(chainId, settlement, operator, batchSeq, aggregates, proof);
        // 4-5. public sum, Lagrange and vanishing terms; the gates at zeta
        (bool ok, uint256[7] memory s, uint256 zhInv, uint256 zetaN) = _gateScalars(aggregates, ch);
        if (!ok) return false; // zeta in H, or gamma equals a key
        uint256 quotientAtZeta = mulmod(_gatesAtZeta(proof, s), zhInv, R);
        // 6-7. the quotient's commitment and the batched openings
        return _checkOpenings(proof, ch, quotientAtZeta, zetaN);
    }

    /// The transcript of a proof: [beta, gamma, delta, alpha, zeta, v, u] and the final state
    /// (for tests comparing with `verifier.challenges.proof_challenges`). Checks as verifyBatch.
    function transcriptChallenges(
        uint256 chainId,
        address settlement,
        address operator,
        uint64 batchSeq,
        Aggregate[] calldata aggregates,
        bytes calldata proof
    ) external view returns (uint256[7] memory challenges, bytes32 state) {
        _checkProofEncoding(proof);
        _checkPublicInputs(aggregates);
        uint256[8] memory ch = _challenges(chainId, settlement, operator, batchSeq, aggregates, proof);
        for (uint256 i = 0; i < 7; ++i) {
            challenges[i] = ch[i];
        }
        state = bytes32(ch[7]);
    }

    // ---------------------------------------------------------------- generated per layout

    /// sum_i alpha^i gate_i at zeta, from the proof's evaluations and the scalars `s` (GS_*).
    function _gatesAtZeta(bytes calldata proof, uint256[7] memory s) internal pure virtual returns (uint256);

    // ---------------------------------------------------------------- step 1: decoding

    /// Mirrors `Proof.from_bytes`: the length, then the commitments, the evaluations, W, W'.
    function _checkProofEncoding(bytes calldata proof) internal view {
        uint256 length = PROOF_LENGTH;
        if (proof.length != length) revert ProofLengthInvalid(proof.length, length);
        uint256 commitments = PROOF_WITNESS_COUNT + QUOTIENT_CHUNKS;
        uint256 evals = PROOF_WITNESS_COUNT + 1 + SHIFTED_COUNT;
        uint256 evalsOffset = PROOF_EVALS_ZETA;
        uint256 wOffset = PROOF_W_ZETA;
        uint256 badPoint = type(uint256).max;
        uint256 badEval = type(uint256).max;
        assembly ("memory-safe") {
            // 1 unless (x, y) is (0, 0) or a canonical point of y^2 = x^3 + 3
            function offCurve(ptr) -> bad {
                let x := calldataload(ptr)
                let y := calldataload(add(ptr, 0x20))
                if or(x, y) {
                    bad := or(
                        or(iszero(lt(x, P)), iszero(lt(y, P))),
                        iszero(eq(mulmod(y, y, P), addmod(mulmod(mulmod(x, x, P), x, P), 3, P)))
                    )
                }
            }
            let p := proof.offset
            for { let i := 0 } lt(i, commitments) { i := add(i, 1) } {
                if offCurve(add(p, mul(i, 0x40))) {
                    badPoint := i
                    break
                }
            }
            if eq(badPoint, not(0)) {
                let e := add(p, evalsOffset)
                for { let j := 0 } lt(j, evals) { j := add(j, 1) } {
                    if iszero(lt(calldataload(add(e, mul(j, 0x20))), R)) {
                        badEval := j
                        break
                    }
                }
            }
            if and(eq(badPoint, not(0)), eq(badEval, not(0))) {
                switch offCurve(add(p, wOffset))
                case 1 { badPoint := commitments }
                default { if offCurve(add(p, add(wOffset, 0x40))) { badPoint := add(commitments, 1) } }
            }
        }
        if (badPoint != type(uint256).max) revert PointNotOnCurve(badPoint);
        if (badEval != type(uint256).max) revert EvaluationNotCanonical(badEval);
    }

    /// (0, 0) (infinity) or 0 <= x, y < P with y^2 = x^3 + 3. G1 has cofactor 1: no subgroup check.
    function _onCurve(uint256 x, uint256 y) internal pure returns (bool) {
        if (x == 0 && y == 0) return true;
        if (x >= P || y >= P) return false;
        return mulmod(y, y, P) == addmod(mulmod(mulmod(x, x, P), x, P), 3, P);
    }

    // ---------------------------------------------------------------- step 2: public inputs

    /// The rules of `check_public_inputs`, in its order. Address and uint64 widths are the ABI's:
    /// a word with dirty high bits reverts without data, as Solidity's own decoder does.
    function _checkPublicInputs(Aggregate[] calldata aggregates) internal view {
        uint256 n = VK_N;
        uint256 count = aggregates.length;
        if (count == 0) revert NoAggregates();
        if (count > n) revert TooManyAggregates(count, n);
        uint256 rows = 0;
        uint256 failure = 0; // 1 count, 2 nonces, 3 tokens, 4 keys
        uint256 index = 0;
        assembly ("memory-safe") {
            let src := aggregates.offset
            let previousKey := 0
            for { let i := 0 } lt(i, count) { i := add(i, 1) } {
                let payer := calldataload(src)
                let modelId := calldataload(add(src, 0x20))
                let first := calldataload(add(src, 0x40))
                let c := calldataload(add(src, 0x60))
                let tokens := calldataload(add(src, 0x80))
                if or(or(shr(160, payer), shr(64, modelId)), or(or(shr(64, first), shr(64, c)), shr(64, tokens))) {
                    revert(0, 0)
                }
                let key := or(payer, shl(160, modelId))
                switch or(iszero(c), gt(c, n))
                case 1 { failure := 1 }
                default {
                    switch or(iszero(first), iszero(lt(add(first, sub(c, 1)), NONCE_BOUND)))
                    case 1 { failure := 2 }
                    default {
                        switch gt(tokens, mul(c, TOKEN_MAX))
                        case 1 { failure := 3 }
                        default { if and(gt(i, 0), iszero(gt(key, previousKey))) { failure := 4 } }
                    }
                }
                if failure {
                    index := i
                    break
                }
                previousKey := key
                rows := add(rows, c)
                src := add(src, 0xa0)
            }
        }
        if (failure != 0) {
            Aggregate calldata a = aggregates[index];
            if (failure == 1) revert CountOutOfRange(index, a.count, n);
            if (failure == 2) revert NonceOutOfRange(index, a.firstNonce, a.count);
            if (failure == 3) revert TokensOutOfRange(index, a.tokens, a.count);
            revert KeysNotIncreasing(index);
        }
        if (rows > n) revert TooManyRows(rows, n);
    }

    // ---------------------------------------------------------------- step 3: transcript

    /// [beta, gamma, delta, alpha, zeta, v, u, final state] (docs/PROTOCOL.md §5): each challenge is
    /// keccak256(state || pending words) mod R and the digest becomes the state.
    function _challenges(
        uint256 chainId,
        address settlement,
        address operator,
        uint64 batchSeq,
        Aggregate[] calldata aggregates,
        bytes calldata proof
    ) internal view returns (uint256[8] memory ch) {
        uint256 count = aggregates.length;
        // One buffer (after the state word) for the longest message: the public words with the
        // round-1 commitments, or at most the whole proof.
        uint256 longest = 32 * (FS_HEADER_WORDS + FS_WORDS_PER_AGGREGATE * count) + PROOF_ROUND2;
        if (longest < PROOF_LENGTH) longest = PROOF_LENGTH;
        uint256[] memory buffer = new uint256[](longest / 32 + 1);
        uint256[12] memory header = [
            chainId,
            uint256(uint160(settlement)),
            uint256(uint160(operator)),
            uint256(batchSeq),
            uint256(VK_LOG_N),
            VK_T_X,
            VK_T_Y,
            VK_G2_TAU_X_IM,
            VK_G2_TAU_X_RE,
            VK_G2_TAU_Y_IM,
            VK_G2_TAU_Y_RE,
            count
        ];
        uint256 round2 = PROOF_ROUND2;
        uint256 quotient = PROOF_QUOTIENT;
        uint256 evalsZeta = PROOF_EVALS_ZETA;
        uint256 wZeta = PROOF_W_ZETA;
        assembly ("memory-safe") {
            let b := add(buffer, 0x20)
            // 1. public inputs, domain size and verification key
            mstore(b, FS_STATE_0)
            mcopy(add(b, 0x20), header, mul(FS_HEADER_WORDS, 0x20))
            let dst := add(b, add(0x20, mul(FS_HEADER_WORDS, 0x20)))
            let src := aggregates.offset
            for { let i := 0 } lt(i, count) { i := add(i, 1) } {
                // Aggregate calldata: payer, modelId, firstNonce, count, tokens (one word each)
                mstore(dst, or(calldataload(src), shl(160, calldataload(add(src, 0x20)))))
                mstore(add(dst, 0x20), calldataload(add(src, 0x40)))
                mstore(add(dst, 0x40), calldataload(add(src, 0x60)))
                mstore(add(dst, 0x60), calldataload(add(src, 0x80)))
                dst := add(dst, 0x80)
                src := add(src, 0xa0)
            }
            // 2. round-1 commitments -> beta, gamma, delta
            // (the public words are pending too: the first challenge hashes them all)
            calldatacopy(dst, proof.offset, round2)
            let state := keccak256(b, sub(add(dst, round2), b))
            mstore(ch, mod(state, R))
            mstore(b, state)
            state := keccak256(b, 0x20)
            mstore(add(ch, 0x20), mod(state, R))
            mstore(b, state)
            state := keccak256(b, 0x20)
            mstore(add(ch, 0x40), mod(state, R))
            // 3. round-2 commitments -> alpha
            mstore(b, state)
            calldatacopy(add(b, 0x20), add(proof.offset, round2), sub(quotient, round2))
            state := keccak256(b, add(0x20, sub(quotient, round2)))
            mstore(add(ch, 0x60), mod(state, R))
            // 4. quotient chunks -> zeta
            mstore(b, state)
            calldatacopy(add(b, 0x20), add(proof.offset, quotient), mul(QUOTIENT_CHUNKS, 0x40))
            state := keccak256(b, add(0x20, mul(QUOTIENT_CHUNKS, 0x40)))
            mstore(add(ch, 0x80), mod(state, R))
            // 5. evaluations at zeta, then at omega*zeta -> v
            mstore(b, state)
            calldatacopy(add(b, 0x20), add(proof.offset, evalsZeta), sub(wZeta, evalsZeta))
            state := keccak256(b, add(0x20, sub(wZeta, evalsZeta)))
            mstore(add(ch, 0xa0), mod(state, R))
            // 6. W_zeta, W_omega_zeta -> u
            mstore(b, state)
            calldatacopy(add(b, 0x20), add(proof.offset, wZeta), 0x80)
            state := keccak256(b, 0xa0)
            mstore(add(ch, 0xc0), mod(state, R))
            mstore(add(ch, 0xe0), state)
        }
    }

    // ---------------------------------------------------------------- steps 4-5: scalars

    /// The scalars of the gate polynomial at zeta (GS_*), 1/Z_H(zeta) and zeta^N, with one
    /// inversion (Montgomery's trick) of [Z_H(zeta), N(zeta - 1), gamma - key_c ...].
    /// ok = false when a denominator is zero: zeta in H, or gamma equal to a channel key.
    function _gateScalars(Aggregate[] calldata aggregates, uint256[8] memory ch)
        internal
        view
        returns (bool ok, uint256[7] memory s, uint256 zhInv, uint256 zetaN)
    {
        uint256 zeta = ch[4];
        uint256 count = aggregates.length;
        uint256 n = VK_N;
        zetaN = zeta;
        for (uint256 i = 0; i < VK_LOG_N; ++i) {
            zetaN = mulmod(zetaN, zetaN, R);
        }
        uint256 zh = addmod(zetaN, R - 1, R); // Z_H(zeta) = zeta^N - 1
        uint256[] memory inv = new uint256[](count + 2);
        inv[0] = zh;
        inv[1] = mulmod(n, addmod(zeta, R - 1, R), R); // N (zeta - 1), the denominator of L_0
        uint256 gamma = ch[1];
        assembly ("memory-safe") {
            let src := aggregates.offset
            let dst := add(inv, 0x60)
            for { let c := 0 } lt(c, count) { c := add(c, 1) } {
                let key := or(calldataload(src), shl(160, calldataload(add(src, 0x20))))
                mstore(dst, addmod(gamma, sub(R, mod(key, R)), R)) // gamma - key
                src := add(src, 0xa0)
                dst := add(dst, 0x20)
            }
        }
        if (!_batchInvert(inv)) return (false, s, 0, zetaN);

        uint256 delta = ch[2];
        uint256 sum = _aggregateSum(aggregates, inv, delta);
        s[0] = ch[0]; // GS_BETA
        s[1] = gamma; // GS_GAMMA
        s[2] = delta; // GS_DELTA
        s[3] = ch[3]; // GS_ALPHA
        s[4] = mulmod(sum, VK_N_INV, R); // GS_A_OVER_N
        s[5] = mulmod(zh, inv[1], R); // GS_L0: L_0(zeta) = (zeta^N - 1) / (N (zeta - 1))
        s[6] = addmod(zeta, R - VK_OMEGA_INV, R); // GS_X_MINUS_LAST: zeta - omega^(N-1)
        return (true, s, inv[0], zetaN);
    }

    /// A = sum_c (count + delta tokens + delta^2 firstNonce + delta^3) / (gamma - key_c), with
    /// the inverses of (gamma - key_c) at inv[c + 2].
    function _aggregateSum(Aggregate[] calldata aggregates, uint256[] memory inv, uint256 delta)
        private
        pure
        returns (uint256 sum)
    {
        uint256 delta2 = mulmod(delta, delta, R);
        uint256 delta3 = mulmod(delta2, delta, R);
        uint256 count = aggregates.length;
        assembly ("memory-safe") {
            let src := aggregates.offset // payer, modelId, firstNonce, count, tokens
            let iv := add(inv, 0x60)
            for { let c := 0 } lt(c, count) { c := add(c, 1) } {
                let numerator := addmod(
                    addmod(calldataload(add(src, 0x60)), mulmod(delta, calldataload(add(src, 0x80)), R), R),
                    addmod(mulmod(delta2, calldataload(add(src, 0x40)), R), delta3, R),
                    R
                )
                sum := addmod(sum, mulmod(numerator, mload(iv), R), R)
                src := add(src, 0xa0)
                iv := add(iv, 0x20)
            }
        }
    }

    /// Replace every element by its inverse (one modexp); false if one of them is zero.
    function _batchInvert(uint256[] memory values) internal view returns (bool) {
        uint256 k = values.length;
        uint256[] memory prefix = new uint256[](k);
        uint256 acc = 1;
        assembly ("memory-safe") {
            let v := add(values, 0x20)
            let pr := add(prefix, 0x20)
            for { let i := 0 } lt(i, k) { i := add(i, 1) } {
                mstore(add(pr, mul(i, 0x20)), acc)
                acc := mulmod(acc, mload(add(v, mul(i, 0x20))), R)
            }
        }
        if (acc == 0) return false;
        uint256 inverse = _modExp(acc, R - 2); // Fermat: acc^(R-2) = acc^-1
        assembly ("memory-safe") {
            let v := add(values, 0x20)
            let pr := add(prefix, 0x20)
            for { let i := k } gt(i, 0) { i := sub(i, 1) } {
                let at := add(v, mul(sub(i, 1), 0x20))
                let value := mload(at)
                mstore(at, mulmod(inverse, mload(add(pr, mul(sub(i, 1), 0x20))), R))
                inverse := mulmod(inverse, value, R)
            }
        }
        return true;
    }

    /// base^exponent mod R with the EIP-198 precompile (0x05).
    function _modExp(uint256 base, uint256 exponent) internal view returns (uint256 result) {
        bool success;
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, 0x20)
            mstore(add(m, 0x20), 0x20)
            mstore(add(m, 0x40), 0x20)
            mstore(add(m, 0x60), base)
            mstore(add(m, 0x80), exponent)
            mstore(add(m, 0xa0), R)
            success := staticcall(gas(), 0x05, m, 0xc0, m, 0x20)
            result := mload(m)
        }
        if (!success) revert PrecompileFailed();
    }

    // ---------------------------------------------------------------- steps 6-7: openings

    /// One two-pairing check of every claim (verifier/kzg.py `verify_batch_two_points`).
    /// Claims at zeta, with powers v^0, v^1, ...: ([t]_1, t(zeta)), the witness columns, T.
    /// Claims at omega*zeta, with u v^0, ..., u v^4: key, nonce, q, s, phi. Every commitment's
    /// coefficients are summed first so that each costs one ecMul:
    ///   right = [t_0] + zeta^N [t_1] + sum_i c_i C_i + v^(w+1) [T] - E [1]_1
    ///           + zeta W + u omega zeta W',      left = W + u W',
    /// with c_i = v^(i+1) (+ u v^j if column i is the j-th shifted one), and
    /// e(left, [tau]_2) e(-right, [1]_2) = 1.
    function _checkOpenings(bytes calldata proof, uint256[8] memory ch, uint256 quotientAtZeta, uint256 zetaN)
        internal
        view
        returns (bool)
    {
        uint256 w = PROOF_WITNESS_COUNT;
        // MSM terms (x, y, scalar): w witness columns, T, t_1, W, W', [1]_1
        uint256[] memory msm = new uint256[](3 * (w + 5));
        uint256 u = ch[6];
        uint256 zeta = ch[4];
        (uint256 e, uint256 vi) = _witnessTerms(proof, msm, ch[5], u, quotientAtZeta);
        uint256 quotient = PROOF_QUOTIENT;
        uint256 wZeta = PROOF_W_ZETA;
        uint256 t = 3 * w;
        msm[t] = VK_T_X;
        msm[t + 1] = VK_T_Y;
        msm[t + 2] = vi;
        msm[t + 3] = _word(proof, quotient + 64);
        msm[t + 4] = _word(proof, quotient + 96);
        msm[t + 5] = zetaN;
        msm[t + 6] = _word(proof, wZeta);
        msm[t + 7] = _word(proof, wZeta + 32);
        msm[t + 8] = zeta;
        msm[t + 9] = _word(proof, wZeta + 64);
        msm[t + 10] = _word(proof, wZeta + 96);
        msm[t + 11] = mulmod(u, mulmod(VK_OMEGA, zeta, R), R);
        msm[t + 12] = 1;
        msm[t + 13] = 2;
        msm[t + 14] = R - e;
        return _pairingCheck(proof, quotient, wZeta, msm, u);
    }

    /// Fill the MSM terms of the witness columns; return E (all claimed values combined) and
    /// v^(w+1), the power of v of the table column T.
    function _witnessTerms(bytes calldata proof, uint256[] memory msm, uint256 v, uint256 u, uint256 quotientAtZeta)
        private
        view
        returns (uint256 e, uint256 vi)
    {
        uint256 w = PROOF_WITNESS_COUNT;
        uint256 evals = PROOF_EVALS_ZETA;
        uint256 shifted = PROOF_EVALS_OMEGA_ZETA;
        assembly ("memory-safe") {
            let p := proof.offset
            // at omega*zeta: y' = sum_j v^j y'_j and the coefficients u v^j (j = 0..4)
            let uv := mload(0x40) // 5 scratch words, not kept
            let shiftedValue := 0
            let vj := 1
            for { let j := 0 } lt(j, SHIFTED_COUNT) { j := add(j, 1) } {
                shiftedValue := addmod(shiftedValue, mulmod(vj, calldataload(add(p, add(shifted, mul(j, 0x20)))), R), R)
                mstore(add(uv, mul(j, 0x20)), mulmod(u, vj, R))
                vj := mulmod(vj, v, R)
            }
            // at zeta: t(zeta) with v^0, the witness columns with v^1.., then T
            e := quotientAtZeta
            vi := v
            let term := add(msm, 0x20)
            for { let i := 0 } lt(i, w) { i := add(i, 1) } {
                e := addmod(e, mulmod(vi, calldataload(add(p, add(evals, mul(i, 0x20)))), R), R)
                let c := vi
                if lt(i, 4) { c := addmod(c, mload(add(uv, mul(i, 0x20))), R) } // key, nonce, q, s
                if eq(i, sub(w, 1)) { c := addmod(c, mload(add(uv, 0x80)), R) } // phi
                calldatacopy(term, add(p, mul(i, 0x40)), 0x40)
                mstore(add(term, 0x40), c)
                term := add(term, 0x60)
                vi := mulmod(vi, v, R)
            }
            e := addmod(e, mulmod(vi, calldataload(add(p, add(evals, mul(w, 0x20)))), R), R) // T(zeta)
            e := addmod(e, mulmod(u, shiftedValue, R), R)
        }
    }

    /// right = [t_0] + sum over the MSM terms; left = W + u W'; e(left, [tau]_2) e(-right, [1]_2) = 1.
    function _pairingCheck(
        bytes calldata proof,
        uint256 quotient,
        uint256 wZeta,
        uint256[] memory msm,
        uint256 u
    ) private view returns (bool accepted) {
        uint256[4] memory tau = [VK_G2_TAU_X_IM, VK_G2_TAU_X_RE, VK_G2_TAU_Y_IM, VK_G2_TAU_Y_RE];
        bool success;
        assembly ("memory-safe") {
            // m: acc (2 words) | ecMul scratch (3 words); q: pairing input (12 words)
            let m := mload(0x40)
            let q := add(m, 0xa0)
            mstore(0x40, add(q, 0x180))
            let p := proof.offset
            // right starts at [t_0] (coefficient 1)
            calldatacopy(m, add(p, quotient), 0x40)
            success := 1
            let terms := div(mload(msm), 3)
            let term := add(msm, 0x20)
            for { let i := 0 } lt(i, terms) { i := add(i, 1) } {
                mcopy(add(m, 0x40), term, 0x60)
                success := and(success, staticcall(gas(), 0x07, add(m, 0x40), 0x60, add(m, 0x40), 0x40))
                success := and(success, staticcall(gas(), 0x06, m, 0x80, m, 0x40))
                term := add(term, 0x60)
            }
            // -right
            mstore(add(q, 0xc0), mload(m))
            mstore(add(q, 0xe0), mod(sub(P, mload(add(m, 0x20))), P))
            // left = u W' + W
            calldatacopy(add(m, 0x40), add(p, add(wZeta, 0x40)), 0x40)
            mstore(add(m, 0x80), u)
            success := and(success, staticcall(gas(), 0x07, add(m, 0x40), 0x60, add(m, 0x40), 0x40))
            calldatacopy(m, add(p, wZeta), 0x40)
            success := and(success, staticcall(gas(), 0x06, m, 0x80, q, 0x40))
            mcopy(add(q, 0x40), tau, 0x80)
            mstore(add(q, 0x100), G2_X_IM)
            mstore(add(q, 0x120), G2_X_RE)
            mstore(add(q, 0x140), G2_Y_IM)
            mstore(add(q, 0x160), G2_Y_RE)
            success := and(success, staticcall(gas(), 0x08, q, 0x180, q, 0x20))
            accepted := mload(q)
        }
        if (!success) revert PrecompileFailed();
    }

    function _word(bytes calldata proof, uint256 offset) internal pure returns (uint256 value) {
        assembly ("memory-safe") {
            value := calldataload(add(proof.offset, offset))
        }
    }
}
