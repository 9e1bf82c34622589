// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// @title OPEN, the demo and test royalty token
/// @notice A plain 18-decimal ERC-20 whose owner can mint. Real deployments point settlement at an
///         existing token instead.
contract OpenToken is ERC20, Ownable {
    constructor(address initialOwner) ERC20("Open Token", "OPEN") Ownable(initialOwner) {}

    /// @notice Mint `amount` base units to `to` (owner only; tests and the demo).
    function mint(address to, uint256 amount) external onlyOwner {
        _mint(to, amount);
    }
}
