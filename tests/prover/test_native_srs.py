"""SRS checks at scale: the one-MSM pairing check of the powers (B derived from A), its
memory per digest, and G1Points (an SRS kept as bytes)."""

from __future__ import annotations

import warnings

import pytest

from prover import srs as srs_module
from prover.srs import (
    SRS,
    G1Points,
    InsecureSRSWarning,
    SRSError,
    insecure_development_with_tau,
)


def _development(n: int, seed: int) -> SRS:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureSRSWarning)
        return insecure_development_with_tau(n, seed=seed)[0]


def test_pairing_check_passes_is_remembered_and_skipped_next_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    srs = _development(33, seed=401)
    assert not srs_module._validated_before(srs.digest)
    srs.validate()
    assert srs_module._validated_before(srs.digest)

    def no_msm(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the check ran again")

    monkeypatch.setattr(srs_module, "msm", no_msm)
    srs.validate()  # remembered: no MSM


def test_swapped_powers_fail_the_one_msm_check() -> None:
    """Negative twin: two powers exchanged (a different digest) fail and are not remembered."""
    srs = _development(33, seed=402)
    powers = list(srs.g1_powers)
    powers[5], powers[6] = powers[6], powers[5]
    bad = SRS(powers, srs.g2_one, srs.g2_tau)
    with pytest.raises(SRSError, match="not successive powers"):
        bad.validate()
    assert not srs_module._validated_before(bad.digest)


def test_g1_points_behave_as_a_sequence() -> None:
    srs = _development(9, seed=403)
    points = G1Points(srs_module.g1_points_bytes(list(srs.g1_powers)))
    assert len(points) == 9 and points[0] == (1, 2) and points[-1] == srs.g1_powers[8]
    assert points[2:5] == list(srs.g1_powers)[2:5] and isinstance(points[2:5], G1Points)
    assert points[::2] == list(srs.g1_powers)[::2]
    assert points != list(srs.g1_powers)[:8]
    with pytest.raises(IndexError):
        points[9]
    with pytest.raises(SRSError):
        G1Points(b"\x00" * 63)
