"""Development-chain helpers: time travel, snapshots, balances (embedded chain and anvil)."""

from __future__ import annotations

from typing import Any

from contracts.client.codec import checksum
from contracts.client.connection import ChainConnection
from contracts.client.errors import ChainError


class DevNodeOps(ChainConnection):
    def advance_time(self, seconds: int) -> int:
        """Move the chain clock forward by `seconds` and mine a block; returns its timestamp."""
        if seconds < 0:
            raise ChainError("time only moves forward")
        if self.is_embedded:
            # eth-tester mines the travelling block at (target - 1).
            target = self.latest_timestamp() + seconds + 1
            pending = int(self.w3.eth.get_block("pending")["timestamp"])
            self.rpc("testing_timeTravel", [max(pending + 1, target)])
        else:
            self.rpc("evm_increaseTime", [seconds])
            self.rpc("evm_mine", [])
        return self.latest_timestamp()

    def snapshot(self) -> Any:
        """Save the chain state (for tests); `revert(snapshot_id)` returns to it."""
        return self.rpc("evm_snapshot", [])

    def revert(self, snapshot_id: Any) -> None:
        """Return to a state saved by `snapshot` (the client's `deployment` is kept as is)."""
        self.rpc("evm_revert", [snapshot_id])

    def set_balance(self, address: str, wei: int) -> None:
        """Give `address` exactly `wei` of ether (anvil's `anvil_setBalance`)."""
        if self.is_embedded:
            raise ChainError("the embedded chain funds its own test accounts only")
        self.rpc("anvil_setBalance", [checksum(address), hex(wei)])


__all__ = ["DevNodeOps"]
