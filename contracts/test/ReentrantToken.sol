// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title ReentrantToken — TEST ONLY, a hostile ERC-20
/// @notice On every transfer out of `target` it calls `target` back with `callbackData` (e.g.
///         `withdrawEarnings()`), records whether that re-entrant call succeeded, and lets the
///         outer transfer finish either way. Used to show settlement's token paths cannot be
///         re-entered.
contract ReentrantToken is ERC20 {
    address public target;
    bytes public callbackData;
    bool public attempted;
    bool public reentered;
    bytes public reentryRevertData;

    constructor() ERC20("Reentrant", "REE") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function arm(address target_, bytes calldata callbackData_) external {
        target = target_;
        callbackData = callbackData_;
    }

    function _update(address from, address to, uint256 value) internal override {
        super._update(from, to, value);
        if (from == target && target != address(0) && !attempted) {
            attempted = true;
            (bool ok, bytes memory data) = target.call(callbackData);
            reentered = ok;
            reentryRevertData = data;
        }
    }
}
