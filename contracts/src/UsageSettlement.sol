// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";

import {Aggregate, IUsageVerifier} from "./IUsageVerifier.sol";
import {ModelRegistry} from "./ModelRegistry.sol";

/// @title UsageSettlement: payers' escrow and proof-checked royalty settlement in one contract
/// @notice Payers deposit the royalty token, authorise operators, and sign one EIP-712
///         `UsageReceipt` per call (domain "zkmeter", "1", chain id, this contract). An operator
///         settles a batch of receipts with one proof of its per-channel totals: the contract
///         checks the batch, fills each channel's first nonce from its own state, asks the
///         verifier for the batch's domain size, and only then debits each payer
///         `tokens * rate / 1000` (rounded down) and credits the model's owner. A settlement is
///         all or nothing. Withdrawals from escrow and operator revocations wait
///         `THAWING_PERIOD` seconds, during which the funds still back settlements, so an
///         operator always has time to settle the calls it has served.
contract UsageSettlement is EIP712, Ownable, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    struct WithdrawalRequest {
        uint192 amount;
        uint64 readyAt;
    }

    /// keccak256 of the receipt type a payer signs for each call.
    bytes32 public constant RECEIPT_TYPEHASH =
        keccak256("UsageReceipt(address operator,uint64 modelId,uint64 nonce,uint32 tokens,bytes32 requestHash)");
    /// Rates are in token base units per this many tokens of usage.
    uint256 public constant TOKENS_PER_RATE_UNIT = 1000;
    /// `authorizedUntil` value of an operator authorised without end.
    uint64 private constant FOREVER = type(uint64).max;

    IERC20 public immutable token;
    ModelRegistry public immutable registry;
    uint256 public immutable THAWING_PERIOD;

    mapping(address payer => uint256) public escrowOf;
    mapping(address payer => WithdrawalRequest) public withdrawalRequestOf;
    /// An operator may settle a payer's channels while block.timestamp < authorizedUntil.
    mapping(address payer => mapping(address operator => uint64)) public authorizedUntil;
    mapping(uint8 logDomainSize => IUsageVerifier) public verifierFor;
    mapping(address operator => uint64) public nextBatchSeq;
    mapping(address payer => mapping(address operator => mapping(uint64 modelId => uint64))) public lastNonce;
    /// Royalties credited to a model owner and not yet withdrawn (pull payments).
    mapping(address owner => uint256) public earnings;

    event Deposited(address indexed payer, uint256 amount, uint256 balance);
    event WithdrawalRequested(address indexed payer, uint256 amount, uint64 readyAt);
    event WithdrawalCancelled(address indexed payer);
    event Withdrawn(address indexed payer, uint256 amount, uint256 balance);
    event OperatorAuthorized(address indexed payer, address indexed operator);
    event OperatorRevoked(address indexed payer, address indexed operator, uint64 effectiveAt);
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
    error WithdrawalExceedsBalance(address payer, uint256 requested, uint256 balance);
    error AmountTooLarge(uint256 amount);
    error NoWithdrawalRequested(address payer);
    error StillThawing(address payer, uint64 readyAt, uint256 nowTimestamp);
    error NothingToWithdraw(address owner);
    error NotAuthorized(address payer, address operator);
    error VerifierDomainMismatch(address verifier, uint8 logDomainSize);
    error NoVerifier(uint8 logDomainSize);
    error EmptyBatch();
    error WrongBatchSeq(address operator, uint64 expected, uint64 given);
    error KeysNotIncreasing(uint256 index, uint256 previousKey, uint256 key);
    error DuplicateChannel(uint256 index, address payer, uint64 modelId);
    error OperatorNotAuthorized(address payer, address operator);
    error UnknownModel(uint256 index, uint64 modelId);
    error ZeroCount(uint256 index, address payer, uint64 modelId);
    error NonceOverflow(address payer, uint64 modelId, uint64 lastNonce, uint64 count);
    error InsufficientEscrow(address payer, uint256 needed, uint256 available);
    error InvalidProof();

    constructor(IERC20 token_, ModelRegistry registry_, uint256 thawingPeriod, address initialOwner)
        EIP712("zkmeter", "1")
        Ownable(initialOwner)
    {
        if (address(token_) == address(0) || address(registry_) == address(0)) revert ZeroAddress();
        token = token_;
        registry = registry_;
        THAWING_PERIOD = thawingPeriod;
    }

    // ----------------------------------------------------------------------------------------
    // EIP-712: receipts are bound to this chain and this contract
    // ----------------------------------------------------------------------------------------

    /// @notice The EIP-712 domain separator ("zkmeter", "1", chain id, this contract).
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    /// @notice The EIP-712 digest a payer signs for one call (the same bytes off-chain code hashes).
    function receiptDigest(address operator, uint64 modelId, uint64 nonce, uint32 tokens, bytes32 requestHash)
        external
        view
        returns (bytes32)
    {
        return _hashTypedDataV4(keccak256(abi.encode(RECEIPT_TYPEHASH, operator, modelId, nonce, tokens, requestHash)));
    }

    // ----------------------------------------------------------------------------------------
    // Escrow
    // ----------------------------------------------------------------------------------------

    /// @notice Move `amount` base units of the token from the caller into the caller's escrow.
    function deposit(uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        uint256 balance = escrowOf[msg.sender] + amount;
        escrowOf[msg.sender] = balance;
        emit Deposited(msg.sender, amount, balance);
        token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @notice Start thawing `amount`; `withdraw()` may pay it out after `THAWING_PERIOD`.
    ///         Replaces any earlier request (and restarts the clock). Thawing funds still back
    ///         settlements until they are withdrawn.
    function requestWithdrawal(uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        uint256 balance = escrowOf[msg.sender];
        if (amount > balance) revert WithdrawalExceedsBalance(msg.sender, amount, balance);
        if (amount > type(uint192).max) revert AmountTooLarge(amount);
        uint64 readyAt = uint64(block.timestamp + THAWING_PERIOD);
        withdrawalRequestOf[msg.sender] = WithdrawalRequest(uint192(amount), readyAt);
        emit WithdrawalRequested(msg.sender, amount, readyAt);
    }

    function cancelWithdrawal() external {
        if (withdrawalRequestOf[msg.sender].readyAt == 0) revert NoWithdrawalRequested(msg.sender);
        delete withdrawalRequestOf[msg.sender];
        emit WithdrawalCancelled(msg.sender);
    }

    /// @notice Pay out the thawed request: min(requested, current balance), since settlements
    ///         during the thawing period may have spent some of it.
    function withdraw() external nonReentrant returns (uint256 paid) {
        WithdrawalRequest memory request = withdrawalRequestOf[msg.sender];
        if (request.readyAt == 0) revert NoWithdrawalRequested(msg.sender);
        if (block.timestamp < request.readyAt) revert StillThawing(msg.sender, request.readyAt, block.timestamp);
        uint256 balance = escrowOf[msg.sender];
        paid = request.amount < balance ? request.amount : balance;
        delete withdrawalRequestOf[msg.sender];
        escrowOf[msg.sender] = balance - paid;
        emit Withdrawn(msg.sender, paid, balance - paid);
        if (paid != 0) token.safeTransfer(msg.sender, paid);
    }

    /// @notice Let `operator` settle the caller's usage (until revoked and thawed).
    function authorizeOperator(address operator) external {
        if (operator == address(0)) revert ZeroAddress();
        authorizedUntil[msg.sender][operator] = FOREVER;
        emit OperatorAuthorized(msg.sender, operator);
    }

    /// @notice Withdraw `operator`'s authorisation after `THAWING_PERIOD`, leaving it the time to
    ///         settle calls it has already served.
    function revokeOperator(address operator) external {
        uint64 until = authorizedUntil[msg.sender][operator];
        if (until <= block.timestamp) revert NotAuthorized(msg.sender, operator);
        uint64 effectiveAt = uint64(block.timestamp + THAWING_PERIOD);
        if (effectiveAt < until) {
            authorizedUntil[msg.sender][operator] = effectiveAt;
        } else {
            effectiveAt = until;
        }
        emit OperatorRevoked(msg.sender, operator, effectiveAt);
    }

    function isAuthorized(address payer, address operator) public view returns (bool) {
        return block.timestamp < authorizedUntil[payer][operator];
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
    // Settlement
    // ----------------------------------------------------------------------------------------

    /// @notice Install the verifier for domain size 2^v.logDomainSize() (owner only).
    function setVerifier(IUsageVerifier v) external onlyOwner {
        if (address(v) == address(0)) revert ZeroAddress();
        uint8 logN = v.logDomainSize();
        verifierFor[logN] = v;
        emit VerifierSet(logN, address(v));
    }

    /// @notice The ordering key of channel (payer, modelId): payer + 2^160 * modelId (the operator
    ///         is the same for the whole batch, so it is not part of the key).
    function channelKey(address payer, uint64 modelId) public pure returns (uint256) {
        return uint256(uint160(payer)) | (uint256(modelId) << 160);
    }

    /// @notice Settle batch `batchSeq` of the calling operator: one aggregate per channel, keys
    ///         strictly increasing. Each aggregate's `firstNonce` is ignored and replaced by the
    ///         channel's last settled nonce + 1. Reverts (changing nothing) unless every check and
    ///         the proof pass.
    function settle(uint64 batchSeq, uint8 logDomainSize, Aggregate[] calldata aggregates, bytes calldata proof)
        external
        nonReentrant
    {
        IUsageVerifier verifier = verifierFor[logDomainSize];
        if (address(verifier) == address(0)) revert NoVerifier(logDomainSize);
        if (aggregates.length == 0) revert EmptyBatch();
        uint64 expectedSeq = nextBatchSeq[msg.sender];
        if (batchSeq != expectedSeq) revert WrongBatchSeq(msg.sender, expectedSeq, batchSeq);
        nextBatchSeq[msg.sender] = expectedSeq + 1;

        // Checks and effects per channel; the whole batch reverts if the proof fails below.
        (Aggregate[] memory filled, uint256[2] memory totals) = _applyBatch(aggregates, batchSeq);

        // The proof: a static call, so it cannot re-enter and change state.
        _verify(verifier, batchSeq, filled, proof);
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
    function _applyBatch(Aggregate[] calldata aggregates, uint64 batchSeq)
        private
        returns (Aggregate[] memory filled, uint256[2] memory totals)
    {
        filled = aggregates;
        uint64 modelCount = registry.modelCount();
        for (uint256 i = 0; i < filled.length; ++i) {
            _checkChannel(filled, i, modelCount);
            totals[0] += filled[i].tokens;
            totals[1] += _settleChannel(filled[i], batchSeq);
        }
    }

    function _verify(IUsageVerifier verifier, uint64 batchSeq, Aggregate[] memory filled, bytes calldata proof)
        private
        view
    {
        if (!verifier.verifyBatch(block.chainid, address(this), msg.sender, batchSeq, filled, proof)) {
            revert InvalidProof();
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

    /// Fill `a.firstNonce`, advance the channel's nonce, debit the payer and credit the model's
    /// owner. Returns the amount moved.
    function _settleChannel(Aggregate memory a, uint64 batchSeq) private returns (uint256 amount) {
        if (!isAuthorized(a.payer, msg.sender)) revert OperatorNotAuthorized(a.payer, msg.sender);
        uint64 last = lastNonce[a.payer][msg.sender][a.modelId];
        if (a.count > type(uint64).max - last) revert NonceOverflow(a.payer, a.modelId, last, a.count);
        a.firstNonce = last + 1;
        lastNonce[a.payer][msg.sender][a.modelId] = last + a.count;

        (address modelOwner, uint256 rate) = registry.settlementTerms(a.modelId);
        amount = uint256(a.tokens) * rate / TOKENS_PER_RATE_UNIT;
        uint256 available = escrowOf[a.payer];
        if (amount > available) revert InsufficientEscrow(a.payer, amount, available);
        escrowOf[a.payer] = available - amount;
        earnings[modelOwner] += amount;
        emit ChannelSettled(
            msg.sender, a.payer, a.modelId, batchSeq, a.firstNonce, a.count, a.tokens, rate, amount, modelOwner
        );
    }
}
