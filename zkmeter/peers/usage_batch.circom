pragma circom 2.1.0;

// zkmeter peer circuit: the batch statement of docs/DESIGN.md ("The statement proven for a
// batch") written directly as an R1CS for circom 2 / snarkjs (Groth16 and PLONK).
//
// Public (in this order): chainId, settlement, operator, batchSeq, numChannels, then per
// aggregate slot j < C: payer[j], modelId[j], firstNonce[j], count[j], tokens[j].
// Slots j < numChannels are the channels of the batch (keys strictly increasing,
// key = payer + 2^160 * modelId); slots j >= numChannels are unused and all zero.
//
// Private: n rows (key, nonce, tokens), a one-hot slot selector per row (all zero on a
// padding row) and a start flag per row (1 on the first row of each channel).
//
// The soundness argument is in benches/peers/README.md.

// Little-endian bits of x; constrains 0 <= x < 2^nb (nb < 253, so 2^nb < r and the
// decomposition is unique).
template RangeBits(nb) {
    signal input x;
    signal output bits[nb];
    var acc = 0;
    var weight = 1;
    for (var k = 0; k < nb; k++) {
        bits[k] <-- (x >> k) & 1;
        bits[k] * (bits[k] - 1) === 0;
        acc += bits[k] * weight;
        weight += weight;
    }
    acc === x;
}

template UsageBatch(n, C) {
    // ---- public inputs ----
    signal input chainId;
    signal input settlement;
    signal input operator;
    signal input batchSeq;
    signal input numChannels;
    signal input payer[C];
    signal input modelId[C];
    signal input firstNonce[C];
    signal input count[C];
    signal input tokens[C];

    // ---- private inputs (the rows) ----
    signal input rowKey[n];
    signal input rowNonce[n];
    signal input rowTokens[n];
    signal input rowSlot[n][C];   // one-hot over the C slots; all zero on a padding row
    signal input rowStart[n];     // 1 on the first row of a channel's run

    // The header is only bound: a square per header input keeps each one in the
    // constraint system whatever the optimiser does.
    signal headerSquare[4];
    headerSquare[0] <== chainId * chainId;
    headerSquare[1] <== settlement * settlement;
    headerSquare[2] <== operator * operator;
    headerSquare[3] <== batchSeq * batchSeq;

    // ---- slots: act[j] = 1 iff j < numChannels (a prefix of ones summing to numChannels)
    signal act[C];
    var activeSlots = 0;
    for (var j = 0; j < C; j++) {
        act[j] <-- j < numChannels ? 1 : 0;
        act[j] * (act[j] - 1) === 0;
        if (j > 0) {
            act[j] * (1 - act[j - 1]) === 0;
        }
        activeSlots += act[j];
    }
    activeSlots === numChannels;

    // Keys are well formed (payer < 2^160, modelId < 2^64), unused slots are all zero, and
    // the keys of the used slots strictly increase: key[j] - key[j-1] - 1 in [0, 2^224).
    var key[C];
    component payerRange[C];
    component modelRange[C];
    component keyGap[C];
    signal gap[C];
    for (var j = 0; j < C; j++) {
        payerRange[j] = RangeBits(160);
        payerRange[j].x <== payer[j];
        modelRange[j] = RangeBits(64);
        modelRange[j].x <== modelId[j];
        key[j] = payer[j] + (1 << 160) * modelId[j];
        (1 - act[j]) * payer[j] === 0;
        (1 - act[j]) * modelId[j] === 0;
        (1 - act[j]) * firstNonce[j] === 0;
        (1 - act[j]) * count[j] === 0;
        (1 - act[j]) * tokens[j] === 0;
        if (j > 0) {
            gap[j] <== act[j] * (key[j] - key[j - 1] - 1);
            keyGap[j] = RangeBits(224);
            keyGap[j].x <== gap[j];
        } else {
            gap[j] <== 0;
        }
    }

    // ---- rows ----
    signal q[n];          // active row (sum of the selector), a prefix of ones
    signal cont[n];       // active and not a start: continues the previous row's channel
    signal startAt[n][C]; // rowStart * rowSlot: the row starts slot j's run
    signal tokensAt[n][C];// rowSlot * rowTokens: the row's tokens credited to slot j
    component tokenRange[n];
    var rowsIn[C];
    var startsIn[C];
    var tokensIn[C];
    for (var j = 0; j < C; j++) {
        rowsIn[j] = 0;
        startsIn[j] = 0;
        tokensIn[j] = 0;
    }
    for (var i = 0; i < n; i++) {
        // 1) tokens in [0, 2^32)
        tokenRange[i] = RangeBits(32);
        tokenRange[i].x <== rowTokens[i];

        // selector one-hot or zero; q boolean and a prefix
        var selected = 0;
        for (var j = 0; j < C; j++) {
            rowSlot[i][j] * (rowSlot[i][j] - 1) === 0;
            selected += rowSlot[i][j];
        }
        q[i] <== selected;
        q[i] * (q[i] - 1) === 0;
        if (i > 0) {
            q[i] * (1 - q[i - 1]) === 0;
        }

        // start flag: boolean, only on active rows; the first row, if active, is a start
        rowStart[i] * (rowStart[i] - 1) === 0;
        rowStart[i] * (1 - q[i]) === 0;
        cont[i] <== q[i] - rowStart[i];
        if (i == 0) {
            cont[i] === 0;
        }

        for (var j = 0; j < C; j++) {
            // 4) an active row's key is the key of its (public) slot
            rowSlot[i][j] * (key[j] - rowKey[i]) === 0;
            // 2) a continuing row stays in the previous row's slot ...
            if (i > 0) {
                cont[i] * (rowSlot[i][j] - rowSlot[i - 1][j]) === 0;
            }
            // ... and a start row opens its slot at firstNonce
            startAt[i][j] <== rowStart[i] * rowSlot[i][j];
            startAt[i][j] * (rowNonce[i] - firstNonce[j]) === 0;
            tokensAt[i][j] <== rowSlot[i][j] * rowTokens[i];
            rowsIn[j] += rowSlot[i][j];
            startsIn[j] += startAt[i][j];
            tokensIn[j] += tokensAt[i][j];
        }
        // 2) ... with the next nonce
        if (i > 0) {
            cont[i] * (rowNonce[i] - rowNonce[i - 1] - 1) === 0;
        }
    }

    for (var j = 0; j < C; j++) {
        // 2) exactly one start per used slot, none in an unused one
        startsIn[j] === act[j];
        // 3) row count and token sum per channel
        rowsIn[j] === count[j];
        tokensIn[j] === tokens[j];
    }
}
