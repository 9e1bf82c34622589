"""`zkmeter bench throughput`: the table, the skip rule, and one real side-by-side run."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from zkmeter.cli import main
from zkmeter.throughput import Measurement, render_table


def test_table_gives_zkmeter_over_peer_and_shows_skips() -> None:
    text = render_table(
        [
            Measurement(64, "zkmeter", 0.5, 0.9, 1856, 349_000),
            Measurement(64, "groth16", 1.0, 0.02, 1060, 378_000),
            Measurement(64, "plonk", skipped="needs a 2^18 powers of tau"),
        ]
    )
    assert "| 64 | groth16 | 1.00 | 0.020 | 1060 | 378,000 | 64 | 2.00x |" in text
    assert "| 64 | plonk | skipped: needs a 2^18 powers of tau |" in text


def test_bad_sizes_are_refused() -> None:
    result = CliRunner().invoke(main, ["bench", "throughput", "--sizes", "64,abc"])
    assert result.exit_code == 2 and "not a list of integers" in result.output


@pytest.mark.node
@pytest.mark.slow
def test_side_by_side_run_on_the_same_receipts(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        # 4 rows: the peer needs 2^11 powers of tau, as the circuit tests do (cached once a run;
        # written natively in well under a second, the setups are what cost).
        ["bench", "throughput", "--sizes", "4", "--protocol", "groth16", "--out", str(tmp_path)],
    )
    assert result.exit_code == 0, result.output
    assert "| 4 | zkmeter |" in result.output and "| 4 | groth16 |" in result.output
    assert (tmp_path / "throughput.json").stat().st_size > 0
    assert (tmp_path / "throughput.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
