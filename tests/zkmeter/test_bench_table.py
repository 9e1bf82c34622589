"""The benchmark table: medians, linear scaling of the py_ecc baseline, speed-ups."""

from __future__ import annotations

from zkmeter.bench_table import render_table


def bench(name: str, median: float, group: str | None = None, **extra: object) -> dict[str, object]:
    return {
        "name": name,
        "fullname": f"benches/{'bench_msm.py' if 'msm' in name else 'bench_x.py'}::{name}",
        "group": group,
        "stats": {"median": median},
        "extra_info": extra,
    }


def test_msm_speed_up_scales_the_py_ecc_baseline_linearly() -> None:
    report = {
        "benchmarks": [
            bench("test_msm_py_ecc_baseline[n1024]", 5.0),
            bench("test_msm_pippenger[n65536-b254-p1]", 2.0),
        ]
    }
    text = render_table(report)
    # py_ecc at 2^10 took 5 s, so 2^16 would take 64 * 5 = 320 s: 160x.
    assert "| MSM 2^16 254-bit vs py_ecc (scaled) | 2.00 s | 320.00 s | 160.0x |" in text


def test_missing_pairs_are_left_out_and_proofs_listed() -> None:
    report = {
        "benchmarks": [
            bench("test_ntt[4096-ours]", 0.01),
            bench(
                "test_prove[rows1024]",
                1.5,
                group="prove",
                rows=1024,
                calls_per_second=682.7,
                proof_bytes=1856,
                seconds_msm=1.0,
                seconds_ntt=0.3,
                seconds_gates=0.05,
                seconds_witness=0.01,
                seconds_other=0.19,
            ),
            bench("test_verify[rows1024]", 0.6, group="verify"),
        ]
    }
    text = render_table(report)
    assert "NTT 2^12 vs galois" not in text  # no galois twin in the report
    assert (
        "| 1024 | 1.50 s | 683 | 1.00 s | 300.00 ms | 50.00 ms | 10.00 ms | 190.00 ms | 600.00 ms "
        "| 1856 |" in text
    )


def test_native_rows_read_the_in_rust_baseline_from_extra_info() -> None:
    report = {
        "benchmarks": [
            bench(
                "test_msm_native_vs_arkworks[n65536]",
                0.050,
                arkworks_median=0.045,
            ),
            bench("test_msm_python_2_processes", 1.5),
            bench("test_msm_native_vs_arkworks[n1048576]", 0.5),  # no arkworks timing: no row
        ]
    }
    text = render_table(report)
    assert "| native MSM 2^16 binding vs arkworks in Rust | 50.00 ms | 45.00 ms | 0.9x |" in text
    assert "| native MSM 2^16 vs Python Pippenger (2 proc) | 50.00 ms | 1.50 s | 30.0x |" in text
    assert "2^20 binding" not in text
