// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

/// @title ModelRegistry: licensed models, their owners and their royalty rates
/// @notice A model is registered by its hash with a royalty rate in token base units per 1,000
///         tokens of usage. Its owner may change the rate, but a new rate only takes effect
///         `RATE_NOTICE_PERIOD` seconds after it was proposed, so payers always have notice.
///         Model ids count from 1.
contract ModelRegistry {
    using SafeCast for uint256;

    /// A rate and the first timestamp from which it applies. Packed into one storage slot.
    struct RateCheckpoint {
        uint64 effectiveFrom;
        uint192 ratePerKTokens;
    }

    struct Model {
        bytes32 modelHash;
        address owner;
        uint64 registeredAt;
        string metadataURI;
        /// Strictly increasing `effectiveFrom`; at most the last one lies in the future.
        RateCheckpoint[] rates;
    }

    /// What `modelOf` returns.
    struct ModelInfo {
        uint64 modelId;
        bytes32 modelHash;
        address owner;
        uint64 registeredAt;
        uint256 currentRate;
        uint256 pendingRate;
        uint64 pendingRateEffectiveFrom;
        string metadataURI;
    }

    /// Seconds between a rate proposal and the moment the new rate applies.
    uint256 public immutable RATE_NOTICE_PERIOD;
    /// The longest notice period (also keeps every timestamp sum far below 2^64).
    uint256 public constant MAX_PERIOD = 365 days;

    uint64 private _modelCount;
    mapping(uint64 modelId => Model) private _models;
    mapping(bytes32 modelHash => uint64 modelId) private _idOfHash;

    event ModelRegistered(
        uint64 indexed modelId, address indexed owner, bytes32 indexed modelHash, uint256 ratePerKTokens, string metadataURI
    );
    event RateProposed(uint64 indexed modelId, uint256 oldRate, uint256 newRate, uint64 effectiveFrom);
    event ModelOwnershipTransferred(uint64 indexed modelId, address indexed previousOwner, address indexed newOwner);

    error ZeroModelHash();
    error ModelHashTaken(bytes32 modelHash, uint64 modelId);
    error RateTooLarge(uint256 ratePerKTokens, uint256 maxRate);
    error UnknownModel(uint64 modelId);
    error NotModelOwner(uint64 modelId, address caller, address owner);
    error ZeroAddressOwner(uint64 modelId);
    error NoRateAt(uint64 modelId, uint256 timestamp, uint64 registeredAt);
    error PeriodTooLong(uint256 period, uint256 maxPeriod);

    constructor(uint256 rateNoticePeriod) {
        if (rateNoticePeriod > MAX_PERIOD) revert PeriodTooLong(rateNoticePeriod, MAX_PERIOD);
        RATE_NOTICE_PERIOD = rateNoticePeriod;
    }

    modifier onlyModelOwner(uint64 modelId) {
        address owner = _existing(modelId).owner;
        if (msg.sender != owner) revert NotModelOwner(modelId, msg.sender, owner);
        _;
    }

    /// @notice Register a model owned by the caller, with its rate applying from now.
    /// @return modelId the new model's id (1, 2, ...).
    function register(bytes32 modelHash, uint256 ratePerKTokens, string calldata metadataURI)
        external
        returns (uint64 modelId)
    {
        if (modelHash == bytes32(0)) revert ZeroModelHash();
        uint64 taken = _idOfHash[modelHash];
        if (taken != 0) revert ModelHashTaken(modelHash, taken);
        uint192 rate = _checkedRate(ratePerKTokens);

        modelId = ++_modelCount;
        _idOfHash[modelHash] = modelId;
        Model storage m = _models[modelId];
        m.modelHash = modelHash;
        m.owner = msg.sender;
        uint64 now64 = block.timestamp.toUint64();
        m.registeredAt = now64;
        m.metadataURI = metadataURI;
        m.rates.push(RateCheckpoint(now64, rate));
        emit ModelRegistered(modelId, msg.sender, modelHash, ratePerKTokens, metadataURI);
    }

    /// @notice Propose a new rate; it applies from `block.timestamp + RATE_NOTICE_PERIOD`.
    ///         A proposal still pending is replaced (and the new one gets the full notice).
    function proposeRate(uint64 modelId, uint256 newRate) external onlyModelOwner(modelId) returns (uint64 effectiveFrom) {
        uint192 rate = _checkedRate(newRate);
        Model storage m = _models[modelId];
        uint256 oldRate = _rateAt(m, modelId, block.timestamp);
        effectiveFrom = (block.timestamp + RATE_NOTICE_PERIOD).toUint64();
        RateCheckpoint[] storage rates = m.rates;
        if (rates[rates.length - 1].effectiveFrom > block.timestamp) rates.pop();
        if (rates[rates.length - 1].effectiveFrom == effectiveFrom) {
            // Zero notice period: the new rate replaces the one set in this very block.
            rates[rates.length - 1].ratePerKTokens = rate;
        } else {
            rates.push(RateCheckpoint(effectiveFrom, rate));
        }
        emit RateProposed(modelId, oldRate, newRate, effectiveFrom);
    }

    /// @notice Hand a model (and its future royalties) to `newOwner`.
    function transferModelOwnership(uint64 modelId, address newOwner) external onlyModelOwner(modelId) {
        if (newOwner == address(0)) revert ZeroAddressOwner(modelId);
        _models[modelId].owner = newOwner;
        emit ModelOwnershipTransferred(modelId, msg.sender, newOwner);
    }

    /// @notice The rate (base units per 1,000 tokens) in force at `timestamp`.
    function rateAt(uint64 modelId, uint256 timestamp) external view returns (uint256) {
        return _rateAt(_existing(modelId), modelId, timestamp);
    }

    /// @notice The rate in force now.
    function currentRate(uint64 modelId) external view returns (uint256) {
        return _rateAt(_existing(modelId), modelId, block.timestamp);
    }

    /// @notice Owner and current rate in one call (what settlement needs per channel).
    function settlementTerms(uint64 modelId) external view returns (address owner, uint256 ratePerKTokens) {
        Model storage m = _existing(modelId);
        return (m.owner, _rateAt(m, modelId, block.timestamp));
    }

    function ownerOf(uint64 modelId) external view returns (address) {
        return _existing(modelId).owner;
    }

    function modelCount() external view returns (uint64) {
        return _modelCount;
    }

    /// @notice The id registered for `modelHash`, or 0 if none.
    function modelIdOf(bytes32 modelHash) external view returns (uint64) {
        return _idOfHash[modelHash];
    }

    function exists(uint64 modelId) external view returns (bool) {
        return modelId != 0 && modelId <= _modelCount;
    }

    function modelOf(uint64 modelId) external view returns (ModelInfo memory info) {
        Model storage m = _existing(modelId);
        RateCheckpoint storage last = m.rates[m.rates.length - 1];
        info.modelId = modelId;
        info.modelHash = m.modelHash;
        info.owner = m.owner;
        info.registeredAt = m.registeredAt;
        info.currentRate = _rateAt(m, modelId, block.timestamp);
        if (last.effectiveFrom > block.timestamp) {
            info.pendingRate = last.ratePerKTokens;
            info.pendingRateEffectiveFrom = last.effectiveFrom;
        }
        info.metadataURI = m.metadataURI;
    }

    function _existing(uint64 modelId) private view returns (Model storage m) {
        if (modelId == 0 || modelId > _modelCount) revert UnknownModel(modelId);
        m = _models[modelId];
    }

    function _checkedRate(uint256 ratePerKTokens) private pure returns (uint192) {
        if (ratePerKTokens > type(uint192).max) revert RateTooLarge(ratePerKTokens, type(uint192).max);
        return ratePerKTokens.toUint192();
    }

    /// The rate of the last checkpoint with effectiveFrom <= timestamp: the newest checkpoint
    /// first (the common case: the current rate costs one or two reads), then a binary search.
    /// The first checkpoint starts at registration, so a timestamp before it has no rate.
    function _rateAt(Model storage m, uint64 modelId, uint256 timestamp) private view returns (uint256) {
        RateCheckpoint[] storage rates = m.rates;
        uint256 n = rates.length;
        RateCheckpoint storage last = rates[n - 1];
        if (last.effectiveFrom <= timestamp) return last.ratePerKTokens;
        if (timestamp < rates[0].effectiveFrom) revert NoRateAt(modelId, timestamp, m.registeredAt);
        // Invariant: rates[lo].effectiveFrom <= timestamp < rates[hi].effectiveFrom.
        uint256 lo = 0;
        uint256 hi = n - 1;
        while (hi - lo > 1) {
            uint256 mid = (lo + hi) / 2;
            if (rates[mid].effectiveFrom <= timestamp) lo = mid;
            else hi = mid;
        }
        return rates[lo].ratePerKTokens;
    }
}
