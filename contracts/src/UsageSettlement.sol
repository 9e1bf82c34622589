// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

import {Aggregate, IUsageVerifier} from "./IUsageVerifier.sol";
import {ModelRegistry} from "./ModelRegistry.sol";

/// The payer's consent to one channel's new state: the fields of its last receipt in the batch
/// that the contract cannot derive itself, and the payer's (or its signer's) signature.
struct SignedState {
    uint256 maxRatePerKTokens;
    bytes32 requestHash;
    bytes signature;
}

/// @title UsageSettlement: payment channels per (payer, operator, model), escrow per
///        (payer, operator), and proof-checked royalty settlement in one contract
/// @notice A payer funds an escrow account for one operator and signs, for every call, an
///         EIP-712 `UsageReceipt` (domain "zkmeter", "1", chain id, this contract) stating the
///         channel's new state: its nonce and the cumulative tokens of the channel through that
///         call, and the highest rate per 1,000 tokens the payer accepts. The latest receipt is
///         the payer's consent to everything before it. An operator settles a batch with, per
///         channel, its aggregate (count and token sum, proven in zero knowledge from the
///         committed per-call rows) and the payer's signature on the state that ends the run:
///         nonce = settled nonce + count, cumulative = settled cumulative + tokens. The contract
///         rebuilds that digest itself, so an operator can bill only what a payer signed, charges
///         `tokens * min(current rate, signed cap) / 1000` from the (payer, operator) account
///         only, and credits the model's owner. A settlement is all or nothing.
///
///         Waiting periods, all bounded at construction:
///         - escrow withdrawals and signer revocations thaw for `THAWING_PERIOD`, during which the
///           funds and the signer still back settlements, so an operator that settles within it
///           is paid for every receipt it admitted;
///         - `THAWING_PERIOD < registry.RATE_NOTICE_PERIOD()`, so a payer who leaves when a rate
///           rise is announced is gone before it applies;
///         - verifier changes wait `VERIFIER_CHANGE_DELAY > THAWING_PERIOD`, so payers can leave
///           before a new verifier applies.
contract UsageSettlement is EIP712, Ownable, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;
    using SafeCast for uint256;

    /// One payer's escrow for one operator. `thawing` of `balance` may be withdrawn from
    /// `thawEndsAt` on; until then it still backs settlements.
    struct EscrowAccount {
        uint256 balance;
        uint192 thawing;
        uint64 thawEndsAt;
    }

    /// One channel (payer, operator, model) as settled so far: the last settled nonce and the
    /// cumulative tokens the payer signed for it. One storage slot.
    struct Channel {
        uint64 nonce;
        uint128 cumulativeTokens;
    }

    /// A verifier change waiting for its delay: `verifier` (zero to remove) from `readyAt` on.
    struct VerifierProposal {
        IUsageVerifier verifier;
        uint64 readyAt;
    }

    /// keccak256 of the receipt type a payer signs for each call.
    bytes32 public constant RECEIPT_TYPEHASH = keccak256(
        "UsageReceipt(address payer,address operator,uint64 modelId,uint64 nonce,"
        "uint128 cumulativeTokens,uint256 maxRatePerKTokens,bytes32 requestHash)"
    );
    /// Rates are in token base units per this many tokens of usage.
    uint256 public constant TOKENS_PER_RATE_UNIT = 1000;
    /// The longest any waiting period may be (also keeps every timestamp sum far below 2^64).
    uint256 public constant MAX_PERIOD = 365 days;
    /// `signerAuthorizedUntil` value of a signer authorised without end.
    uint64 private constant FOREVER = type(uint64).max;

    IERC20 public immutable token;
    ModelRegistry public immutable registry;
    uint256 public immutable THAWING_PERIOD;
    uint256 public immutable VERIFIER_CHANGE_DELAY;

    mapping(address payer => mapping(address operator => EscrowAccount)) private _accounts;
    mapping(address payer => mapping(address operator => mapping(uint64 modelId => Channel))) private _channels;
    /// A signer may sign a payer's receipts while block.timestamp < signerAuthorizedUntil.
    mapping(address payer => mapping(address signer => uint64)) public signerAuthorizedUntil;
    mapping(uint8 logDomainSize => IUsageVerifier) public verifierFor;
    mapping(uint8 logDomainSize => VerifierProposal) public verifierProposalFor;
    mapping(address operator => uint64) public nextBatchSeq;
    /// Royalties credited to a model owner and not yet withdrawn (pull payments).
    mapping(address owner => uint256) public earnings;

    event Deposited(address indexed payer, address indexed operator, uint256 amount, uint256 balance);
    event WithdrawalRequested(address indexed payer, address indexed operator, uint256 amount, uint64 readyAt);
    event WithdrawalCancelled(address indexed payer, address indexed operator);
    event Withdrawn(address indexed payer, address indexed operator, uint256 amount, uint256 balance);
    event SignerAuthorized(address indexed payer, address indexed signer);
    event SignerRevoked(address indexed payer, address indexed signer, uint64 effectiveAt);
    event VerifierProposed(uint8 indexed logDomainSize, address indexed verifier, uint64 readyAt);
    event VerifierProposalCancelled(uint8 indexed logDomainSize, address indexed verifier);
    event VerifierSet(uint8 indexed logDomainSize, address indexed verifier);
    event EarningsWithdrawn(address indexed owner, uint256 amount);
    event ChannelSettled(
        address indexed operator,
        address indexed payer,
        uint64 indexed modelId,
        uint64 batchSeq,
        uint64 firstNonce,
        uint64 count,
        uint64 tokens,
        uint128 cumulativeTokens,
        uint256 ratePerKTokens,
        uint256 amount,
        address modelOwner
    );
    event BatchSettled(
        address indexed operator,
        uint64 indexed batchSeq,
        uint8 logDomainSize,
        bytes32 proofHash,
        bytes witnessCommitments,
        uint256 totalTokens,
        uint256 totalAmount
    );

    error ZeroAmount();
    error ZeroAddress();
    error PeriodTooLong(uint256 period, uint256 maxPeriod);
    error ZeroThawingPeriod();
    error ThawingNotShorterThanRateNotice(uint256 thawingPeriod, uint256 rateNoticePeriod);
    error VerifierDelayTooShort(uint256 verifierChangeDelay, uint256 thawingPeriod);
    error WithdrawalExceedsBalance(address payer, address operator, uint256 requested, uint256 balance);
    error NoWithdrawalRequested(address payer, address operator);
    error StillThawing(address payer, address operator, uint64 readyAt, uint256 nowTimestamp);
    error NothingToWithdraw(address owner);
    error SignerIsPayer(address payer);
    error SignerNotAuthorized(address payer, address signer);
    error VerifierDomainMismatch(address verifier, uint8 logDomainSize, uint8 verifierLogDomainSize);
    error DuplicateVerifier(uint8 logDomainSize);
    error NoVerifierProposal(uint8 logDomainSize);
    error VerifierChangeNotReady(uint8 logDomainSize, uint64 readyAt, uint256 nowTimestamp);
    error NoVerifier(uint8 logDomainSize);
    error EmptyBatch();
    error StatesLengthMismatch(uint256 aggregates, uint256 states);
    error WrongBatchSeq(address operator, uint64 expected, uint64 given);
    error KeysNotIncreasing(uint256 index, uint256 previousKey, uint256 key);
    error DuplicateChannel(uint256 index, address payer, uint64 modelId);
    error UnknownModel(uint256 index, uint64 modelId);
    error ZeroCount(uint256 index, address payer, uint64 modelId);
    error NonceOverflow(address payer, uint64 modelId, uint64 lastNonce, uint64 count);
    error InvalidSignature(uint256 index, address payer);
    error InsufficientEscrow(address payer, uint256 needed, uint256 available);
    error InvalidProof();

    /// @param thawingPeriod seconds withdrawals and signer revocations wait; 0 < it < the
    ///        registry's rate notice period
    /// @param verifierChangeDelay seconds a verifier change waits; > thawingPeriod, <= MAX_PERIOD
    /// @param initialVerifiers verifiers in force from deployment (at most one per domain size)
    constructor(
        IERC20 token_,
        ModelRegistry registry_,
        uint256 thawingPeriod,
        uint256 verifierChangeDelay,
        IUsageVerifier[] memory initialVerifiers,
        address initialOwner
    ) EIP712("zkmeter", "1") Ownable(initialOwner) {
        if (address(token_) == address(0) || address(registry_) == address(0)) revert ZeroAddress();
        if (thawingPeriod == 0) revert ZeroThawingPeriod();
        if (verifierChangeDelay > MAX_PERIOD) revert PeriodTooLong(verifierChangeDelay, MAX_PERIOD);
        uint256 notice = registry_.RATE_NOTICE_PERIOD();
        if (thawingPeriod >= notice) revert ThawingNotShorterThanRateNotice(thawingPeriod, notice);
        if (verifierChangeDelay <= thawingPeriod) revert VerifierDelayTooShort(verifierChangeDelay, thawingPeriod);
        token = token_;
        registry = registry_;
        THAWING_PERIOD = thawingPeriod;
        VERIFIER_CHANGE_DELAY = verifierChangeDelay;
        for (uint256 i = 0; i < initialVerifiers.length; ++i) {
            IUsageVerifier v = initialVerifiers[i];
            if (address(v) == address(0)) revert ZeroAddress();
            uint8 logN = v.logDomainSize();
            if (address(verifierFor[logN]) != address(0)) revert DuplicateVerifier(logN);
            verifierFor[logN] = v;
            emit VerifierSet(logN, address(v));
        }
    }

    // ----------------------------------------------------------------------------------------
    // EIP-712: receipts are bound to this chain and this contract
    // ----------------------------------------------------------------------------------------

    /// @notice The EIP-712 domain separator ("zkmeter", "1", chain id, this contract).
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    /// @notice The EIP-712 digest a payer signs for one call (the same bytes off-chain code hashes).
    function receiptDigest(
        address payer,
        address operator,
        uint64 modelId,
        uint64 nonce,
        uint128 cumulativeTokens,
        uint256 maxRatePerKTokens,
        bytes32 requestHash
    ) public view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    RECEIPT_TYPEHASH, payer, operator, modelId, nonce, cumulativeTokens, maxRatePerKTokens, requestHash
                )
            )
        );
    }

    // ----------------------------------------------------------------------------------------
    // Escrow: one account per (payer, operator)
    // ----------------------------------------------------------------------------------------

    /// @notice Move `amount` base units of the token from the caller into its account for `operator`.
    function deposit(address operator, uint256 amount) external nonReentrant {
        if (operator == address(0)) revert ZeroAddress();
        if (amount == 0) revert ZeroAmount();
        EscrowAccount storage account = _accounts[msg.sender][operator];
        uint256 balance = account.balance + amount;
        account.balance = balance;
        emit Deposited(msg.sender, operator, amount, balance);
        token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @notice Start thawing `amount` of the caller's account for `operator`; `withdraw` may pay
    ///         it out after `THAWING_PERIOD`. Replaces any earlier request (and restarts the
    ///         clock). Thawing funds still back that operator's settlements until withdrawn.
    function requestWithdrawal(address operator, uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        EscrowAccount storage account = _accounts[msg.sender][operator];
        uint256 balance = account.balance;
        if (amount > balance) revert WithdrawalExceedsBalance(msg.sender, operator, amount, balance);
        uint64 readyAt = (block.timestamp + THAWING_PERIOD).toUint64();
        account.thawing = amount.toUint192();
        account.thawEndsAt = readyAt;
        emit WithdrawalRequested(msg.sender, operator, amount, readyAt);
    }

    function cancelWithdrawal(address operator) external {
        EscrowAccount storage account = _accounts[msg.sender][operator];
        if (account.thawEndsAt == 0) revert NoWithdrawalRequested(msg.sender, operator);
        account.thawing = 0;
        account.thawEndsAt = 0;
        emit WithdrawalCancelled(msg.sender, operator);
    }

    /// @notice Pay out the thawed request: min(requested, current balance), since settlements
    ///         during the thawing period may have spent some of it.
    function withdraw(address operator) external nonReentrant returns (uint256 paid) {
        EscrowAccount storage account = _accounts[msg.sender][operator];
        uint64 readyAt = account.thawEndsAt;
        if (readyAt == 0) revert NoWithdrawalRequested(msg.sender, operator);
        if (block.timestamp < readyAt) revert StillThawing(msg.sender, operator, readyAt, block.timestamp);
        uint256 balance = account.balance;
        paid = account.thawing < balance ? account.thawing : balance;
        account.balance = balance - paid;
        account.thawing = 0;
        account.thawEndsAt = 0;
        emit Withdrawn(msg.sender, operator, paid, balance - paid);
        if (paid != 0) token.safeTransfer(msg.sender, paid);
    }

    /// @notice The (payer, operator) account: balance, amount thawing, and when it may be withdrawn.
    function accountOf(address payer, address operator) external view returns (EscrowAccount memory) {
        return _accounts[payer][operator];
    }

    /// @notice What the (payer, operator) account backs for usage not yet admitted: the balance
    ///         net of the amount thawing (an operator admitting new receipts counts only this).
    function availableEscrow(address payer, address operator) external view returns (uint256) {
        EscrowAccount storage account = _accounts[payer][operator];
        uint256 balance = account.balance;
        return account.thawing < balance ? balance - account.thawing : 0;
    }

    // ----------------------------------------------------------------------------------------
    // Signers: keys a payer lets sign its receipts
    // ----------------------------------------------------------------------------------------

    /// @notice Let `signer` sign receipts on the caller's behalf (until revoked and thawed).
    function authorizeSigner(address signer) external {
        if (signer == address(0)) revert ZeroAddress();
        if (signer == msg.sender) revert SignerIsPayer(msg.sender);
        signerAuthorizedUntil[msg.sender][signer] = FOREVER;
        emit SignerAuthorized(msg.sender, signer);
    }

    /// @notice Withdraw `signer`'s authorisation after `THAWING_PERIOD`, leaving operators the
    ///         time to settle receipts it signed before.
    function revokeSigner(address signer) external {
        uint64 until = signerAuthorizedUntil[msg.sender][signer];
        if (until <= block.timestamp) revert SignerNotAuthorized(msg.sender, signer);
        uint64 effectiveAt = (block.timestamp + THAWING_PERIOD).toUint64();
        if (effectiveAt < until) {
            signerAuthorizedUntil[msg.sender][signer] = effectiveAt;
        } else {
            effectiveAt = until;
        }
        emit SignerRevoked(msg.sender, signer, effectiveAt);
    }

    /// @notice True if `signer` may sign `payer`'s receipts now (the payer itself always may).
    function isAuthorizedSigner(address payer, address signer) public view returns (bool) {
        return signer == payer || block.timestamp < signerAuthorizedUntil[payer][signer];
    }

    /// @notice Pay the caller's accumulated royalties.
    function withdrawEarnings() external nonReentrant returns (uint256 amount) {
        amount = earnings[msg.sender];
        if (amount == 0) revert NothingToWithdraw(msg.sender);
        earnings[msg.sender] = 0;
        emit EarningsWithdrawn(msg.sender, amount);
        token.safeTransfer(msg.sender, amount);
    }

    // ----------------------------------------------------------------------------------------
    // Verifiers: changed only after VERIFIER_CHANGE_DELAY
    // ----------------------------------------------------------------------------------------

    /// @notice Announce that `v` (zero to remove) will verify batches of 2^logDomainSize rows
    ///         from `VERIFIER_CHANGE_DELAY` seconds on (owner only). Replaces a pending proposal.
    function proposeVerifier(uint8 logDomainSize, IUsageVerifier v) external onlyOwner returns (uint64 readyAt) {
        if (address(v) != address(0)) {
            uint8 logN = v.logDomainSize();
            if (logN != logDomainSize) revert VerifierDomainMismatch(address(v), logDomainSize, logN);
        }
        readyAt = (block.timestamp + VERIFIER_CHANGE_DELAY).toUint64();
        verifierProposalFor[logDomainSize] = VerifierProposal(v, readyAt);
        emit VerifierProposed(logDomainSize, address(v), readyAt);
    }

    /// @notice Withdraw a pending verifier proposal (owner only).
    function cancelVerifierProposal(uint8 logDomainSize) external onlyOwner {
        VerifierProposal memory p = verifierProposalFor[logDomainSize];
        if (p.readyAt == 0) revert NoVerifierProposal(logDomainSize);
        delete verifierProposalFor[logDomainSize];
        emit VerifierProposalCancelled(logDomainSize, address(p.verifier));
    }

    /// @notice Put a proposal whose delay has passed into force (owner only).
    function applyVerifier(uint8 logDomainSize) external onlyOwner {
        VerifierProposal memory p = verifierProposalFor[logDomainSize];
        if (p.readyAt == 0) revert NoVerifierProposal(logDomainSize);
        if (block.timestamp < p.readyAt) revert VerifierChangeNotReady(logDomainSize, p.readyAt, block.timestamp);
        delete verifierProposalFor[logDomainSize];
        verifierFor[logDomainSize] = p.verifier;
        emit VerifierSet(logDomainSize, address(p.verifier));
    }

    // ----------------------------------------------------------------------------------------
    // Settlement
    // ----------------------------------------------------------------------------------------

    /// @notice The ordering key of channel (payer, modelId): payer + 2^160 * modelId (the operator
    ///         is the same for the whole batch, so it is not part of the key).
    function channelKey(address payer, uint64 modelId) public pure returns (uint256) {
        return uint256(uint160(payer)) | (uint256(modelId) << 160);
    }

    /// @notice Channel (payer, operator, modelId) as settled so far.
    function channelOf(address payer, address operator, uint64 modelId) external view returns (Channel memory) {
        return _channels[payer][operator][modelId];
    }

    /// @notice Settle batch `batchSeq` of the calling operator: one aggregate per channel, keys
    ///         strictly increasing, and for each the payer's signed state ending the run. Each
    ///         aggregate's `firstNonce` is ignored and replaced by the channel's settled nonce + 1.
    ///         Reverts (changing nothing) unless every signature, every check and the proof pass.
    function settle(
        uint64 batchSeq,
        uint8 logDomainSize,
        Aggregate[] calldata aggregates,
        SignedState[] calldata states,
        bytes calldata proof
    ) external nonReentrant {
        IUsageVerifier verifier = _startBatch(batchSeq, logDomainSize, aggregates.length, states.length);
        // Checks and effects per channel; the whole batch reverts if the proof fails below.
        (Aggregate[] memory filled, uint256[2] memory totals) = _applyBatch(aggregates, states, batchSeq);
        _verifyAndRecord(verifier, batchSeq, logDomainSize, filled, totals, proof);
    }

    /// The batch-level checks (a verifier for the domain size, a non-empty batch with one signed
    /// state per aggregate, the operator's next sequence number), and the sequence advanced.
    function _startBatch(uint64 batchSeq, uint8 logDomainSize, uint256 aggregateCount, uint256 stateCount)
        private
        returns (IUsageVerifier verifier)
    {
        verifier = verifierFor[logDomainSize];
        if (address(verifier) == address(0)) revert NoVerifier(logDomainSize);
        if (aggregateCount == 0) revert EmptyBatch();
        if (stateCount != aggregateCount) revert StatesLengthMismatch(aggregateCount, stateCount);
        uint64 expectedSeq = nextBatchSeq[msg.sender];
        if (batchSeq != expectedSeq) revert WrongBatchSeq(msg.sender, expectedSeq, batchSeq);
        nextBatchSeq[msg.sender] = expectedSeq + 1;
    }

    /// The proof, by a static call (so it cannot re-enter and change state), then the batch's event.
    function _verifyAndRecord(
        IUsageVerifier verifier,
        uint64 batchSeq,
        uint8 logDomainSize,
        Aggregate[] memory filled,
        uint256[2] memory totals,
        bytes calldata proof
    ) private {
        if (!verifier.verifyBatch(block.chainid, address(this), msg.sender, batchSeq, filled, proof)) {
            revert InvalidProof();
        }
        emit BatchSettled(
            msg.sender,
            batchSeq,
            logDomainSize,
            keccak256(proof),
            verifier.witnessCommitments(proof),
            totals[0],
            totals[1]
        );
    }

    /// Settle every channel; returns the aggregates with first nonces filled in and
    /// [total tokens, total amount].
    function _applyBatch(Aggregate[] calldata aggregates, SignedState[] calldata states, uint64 batchSeq)
        private
        returns (Aggregate[] memory filled, uint256[2] memory totals)
    {
        filled = aggregates;
        uint64 modelCount = registry.modelCount();
        for (uint256 i = 0; i < filled.length; ++i) {
            _checkChannel(filled, i, modelCount);
            totals[0] += filled[i].tokens;
            totals[1] += _settleChannel(filled[i], states[i], i, batchSeq);
        }
    }

    /// The checks on aggregate i that need no state: key order, model id range, non-zero count.
    function _checkChannel(Aggregate[] memory aggs, uint256 i, uint64 modelCount) private pure {
        Aggregate memory a = aggs[i];
        if (i != 0) {
            uint256 key = channelKey(a.payer, a.modelId);
            uint256 previousKey = channelKey(aggs[i - 1].payer, aggs[i - 1].modelId);
            if (key == previousKey) revert DuplicateChannel(i, a.payer, a.modelId);
            if (key < previousKey) revert KeysNotIncreasing(i, previousKey, key);
        }
        if (a.modelId == 0 || a.modelId > modelCount) revert UnknownModel(i, a.modelId);
        if (a.count == 0) revert ZeroCount(i, a.payer, a.modelId);
    }

    /// Fill `a.firstNonce`, check the payer's signature on the channel's new state, advance the
    /// channel, debit the (payer, operator) account and credit the model's owner. Returns the
    /// amount moved.
    function _settleChannel(Aggregate memory a, SignedState calldata state, uint256 i, uint64 batchSeq)
        private
        returns (uint256 amount)
    {
        uint128 cumulative = _advanceChannel(a, state, i);
        (address modelOwner, uint256 rate) = registry.settlementTerms(a.modelId);
        if (state.maxRatePerKTokens < rate) rate = state.maxRatePerKTokens;
        amount = uint256(a.tokens) * rate / TOKENS_PER_RATE_UNIT;
        EscrowAccount storage account = _accounts[a.payer][msg.sender];
        uint256 available = account.balance;
        if (amount > available) revert InsufficientEscrow(a.payer, amount, available);
        account.balance = available - amount;
        earnings[modelOwner] += amount;
        _emitChannelSettled(a, batchSeq, cumulative, rate, amount, modelOwner);
    }

    /// Fill `a.firstNonce` from the channel, check the payer's consent to the state that ends the
    /// run (nonce + count, cumulative + tokens) and store it. Returns the new cumulative.
    function _advanceChannel(Aggregate memory a, SignedState calldata state, uint256 i)
        private
        returns (uint128 cumulative)
    {
        Channel storage channel = _channels[a.payer][msg.sender][a.modelId];
        Channel memory before = channel;
        if (a.count > type(uint64).max - before.nonce) {
            revert NonceOverflow(a.payer, a.modelId, before.nonce, a.count);
        }
        a.firstNonce = before.nonce + 1;
        uint64 lastNonce = before.nonce + a.count;
        cumulative = (uint256(before.cumulativeTokens) + a.tokens).toUint128();
        _checkConsent(a.payer, a.modelId, lastNonce, cumulative, state, i);
        channel.nonce = lastNonce;
        channel.cumulativeTokens = cumulative;
    }

    function _emitChannelSettled(
        Aggregate memory a,
        uint64 batchSeq,
        uint128 cumulative,
        uint256 rate,
        uint256 amount,
        address modelOwner
    ) private {
        emit ChannelSettled(
            msg.sender, a.payer, a.modelId, batchSeq, a.firstNonce, a.count, a.tokens, cumulative, rate, amount, modelOwner
        );
    }

    /// Revert unless `state.signature` is a low-s signature, by the payer or a signer it has
    /// authorised, of the receipt (payer, this operator, modelId, nonce, cumulative, cap,
    /// requestHash): the payer consented to this channel state with this operator.
    function _checkConsent(
        address payer,
        uint64 modelId,
        uint64 nonce,
        uint128 cumulative,
        SignedState calldata state,
        uint256 i
    ) private view {
        bytes32 digest =
            receiptDigest(payer, msg.sender, modelId, nonce, cumulative, state.maxRatePerKTokens, state.requestHash);
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecoverCalldata(digest, state.signature);
        if (err != ECDSA.RecoverError.NoError) revert InvalidSignature(i, payer);
        if (!isAuthorizedSigner(payer, signer)) revert SignerNotAuthorized(payer, signer);
    }
}
