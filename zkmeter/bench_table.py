"""One table of benchmark medians and speed-ups from a pytest-benchmark JSON report.

Every comparison sets our implementation against the baseline the issue names, measured in
the same run: galois for the NTT, py_ecc multiply-and-add for the MSM (timed at 2^10 points
and scaled linearly to n, since py_ecc at 2^16 points takes minutes), a single process for
two processes, 254-bit scalars for 32-bit scalars; and for the native core
(``benches/bench_native.py``) the pure-Python code, py_ecc, and arkworks' own MSM timed inside
Rust in the same benchmark (its median read from ``extra_info``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PY_ECC_MSM = "bench_msm.py::test_msm_py_ecc_baseline[n1024]"


@dataclass(frozen=True)
class Comparison:
    label: str
    ours: str
    baseline: str
    baseline_scale: float = 1.0  # multiply the baseline's median by this (linear scaling)
    # When set, the baseline is this extra_info field of the ``ours`` benchmark (a timing
    # taken inside the same benchmark, e.g. arkworks' MSM in Rust) and ``baseline`` is unused.
    baseline_field: str | None = None


def _comparisons() -> list[Comparison]:
    rows = [
        Comparison("Fr mul x4096: mpz vs int", "test_fr_mul_4096[mpz]", "test_fr_mul_4096[int]"),
        Comparison(
            "invert x4096: batch vs pow(a,-1,R)",
            "test_inverse_4096[batch_inverse]",
            "test_inverse_4096[pow_each]",
        ),
    ]
    for n in (4096, 16384, 65536):
        rows.append(
            Comparison(
                f"NTT 2^{n.bit_length() - 1} vs galois",
                f"test_ntt[{n}-ours]",
                f"test_ntt[{n}-galois]",
            )
        )
    for k in range(10, 17):
        n = 1 << k
        rows.append(
            Comparison(
                f"MSM 2^{k} 254-bit vs py_ecc (scaled)",
                f"test_msm_pippenger[n{n}-b254-p1]",
                PY_ECC_MSM,
                n / 1024,
            )
        )
    for k in (12, 14, 16):
        n = 1 << k
        rows.append(
            Comparison(
                f"MSM 2^{k} 32-bit vs 254-bit",
                f"test_msm_pippenger[n{n}-b32-p1]",
                f"test_msm_pippenger[n{n}-b254-p1]",
            )
        )
        rows.append(
            Comparison(
                f"MSM 2^{k} 254-bit, 2 processes vs 1",
                f"test_msm_pippenger[n{n}-b254-p2]",
                f"test_msm_pippenger[n{n}-b254-p1]",
            )
        )
    rows.append(
        Comparison("G1 add: Jacobian mpz vs py_ecc", "test_g1_add_jacobian", "test_g1_add_py_ecc")
    )
    rows += _native_comparisons()
    return rows


def _native_comparisons() -> list[Comparison]:
    """benches/bench_native.py: the native core against arkworks-in-Rust and pure Python."""
    rows = []
    for k in (16, 20):
        rows.append(
            Comparison(
                f"native MSM 2^{k} binding vs arkworks in Rust",
                f"test_msm_native_vs_arkworks[n{1 << k}]",
                "",
                baseline_field="arkworks_median",
            )
        )
    rows.append(
        Comparison(
            "native MSM 2^16 vs Python Pippenger (2 proc)",
            "test_msm_native_vs_arkworks[n65536]",
            "test_msm_python_2_processes",
        )
    )
    for k in (16, 20):
        n = 1 << k
        rows.append(
            Comparison(
                f"native NTT 2^{k} vs Python NTT",
                f"test_ntt_native[n{n}]",
                f"test_ntt_python[n{n}]",
            )
        )
        rows.append(
            Comparison(
                f"native NTT 2^{k} from int list vs Python NTT",
                f"test_ntt_native_from_ints[n{n}]",
                f"test_ntt_python[n{n}]",
            )
        )
    rows.append(
        Comparison(
            "prove 2^10 rows: native rounds vs Python rounds (2 proc)",
            "test_prove_backend[native]",
            "test_prove_backend[python]",
        )
    )
    rows.append(
        Comparison(
            "pairing check, 2 pairs: native vs py_ecc",
            "test_pairing_check[native]",
            "test_pairing_check[py_ecc]",
        )
    )
    return rows


def _by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Benchmarks keyed by 'file.py::test[id]' and by 'test[id]' alone."""
    table: dict[str, dict[str, Any]] = {}
    for bench in report.get("benchmarks", []):
        fullname = str(bench.get("fullname", bench["name"]))
        short = fullname.split("/")[-1]
        table[short] = bench
        table.setdefault(str(bench["name"]), bench)
    return table


def _seconds(value: float) -> str:
    if value >= 1:
        return f"{value:.2f} s"
    if value >= 1e-3:
        return f"{value * 1e3:.2f} ms"
    return f"{value * 1e6:.2f} us"


def render_table(report: dict[str, Any]) -> str:
    """Markdown tables: comparisons (median, baseline median, speed-up), then the proofs."""
    benches = _by_name(report)
    lines = [
        "| comparison | ours (median) | baseline (median) | speed-up |",
        "| --- | ---: | ---: | ---: |",
    ]
    for row in _comparisons():
        ours = benches.get(row.ours)
        if ours is None:
            continue
        if row.baseline_field is not None:
            base_value = ours.get("extra_info", {}).get(row.baseline_field)
            if base_value is None:
                continue
            base_s = float(base_value) * row.baseline_scale
        else:
            base = benches.get(row.baseline)
            if base is None:
                continue
            base_s = float(base["stats"]["median"]) * row.baseline_scale
        ours_s = float(ours["stats"]["median"])
        lines.append(
            f"| {row.label} | {_seconds(ours_s)} | {_seconds(base_s)} | {base_s / ours_s:.1f}x |"
        )
    proofs = [
        b
        for b in report.get("benchmarks", [])
        if b.get("group") == "prove" and "rows" in b.get("extra_info", {})
    ]
    if proofs:
        lines += [
            "",
            "| rows | prove | calls/s | MSM | NTT | gates | witness | other | verify "
            "| proof bytes |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        verifies = {
            str(b["name"]).split("[")[-1]: b
            for b in report.get("benchmarks", [])
            if b.get("group") == "verify"
        }
        for bench in sorted(proofs, key=lambda b: int(b["extra_info"]["rows"])):
            info = bench["extra_info"]
            verify = verifies.get(str(bench["name"]).split("[")[-1])
            verify_text = _seconds(float(verify["stats"]["median"])) if verify else "-"
            lines.append(
                f"| {info['rows']} | {_seconds(float(bench['stats']['median']))} "
                f"| {info['calls_per_second']:.0f} "
                f"| {_seconds(info['seconds_msm'])} | {_seconds(info['seconds_ntt'])} "
                f"| {_seconds(info.get('seconds_gates', 0.0))} "
                f"| {_seconds(info['seconds_witness'])} | {_seconds(info['seconds_other'])} "
                f"| {verify_text} | {info['proof_bytes']} |"
            )
    machine = report.get("machine_info", {})
    lines += [
        "",
        f"machine: {machine.get('cpu', {}).get('brand_raw', '?')}, "
        f"python {machine.get('python_version', '?')}",
    ]
    return "\n".join(lines)


def load_report(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data
