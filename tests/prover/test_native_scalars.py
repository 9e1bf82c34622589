"""prover.native / zkmeter_native: scalar buffers at the boundary, batch inversion against
verifier.fr.batch_inverse, and the backend switch."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prover import native
from verifier import backend
from verifier.constants import R
from verifier.fr import NonCanonicalScalarError, batch_inverse

needs_native = pytest.mark.skipif(
    not native.available(), reason=f"zkmeter_native not built: {native.unavailable_reason()}"
)

scalars = st.one_of(st.integers(0, R - 1), st.sampled_from([0, 1, 2, R - 2, R - 1]))


def test_native_core_is_built() -> None:
    """`make setup` builds zkmeter_native; a run that has not is a broken set-up unless the
    python backend was asked for explicitly."""
    if os.environ.get(backend.BACKEND_ENV, "auto") == "python":
        pytest.skip("ZKMETER_BACKEND=python")
    assert native.available(), native.unavailable_reason()


@needs_native
@settings(max_examples=50, deadline=None)
@given(st.lists(scalars, max_size=40))
def test_buffer_round_trip(values: list[int]) -> None:
    buf = native.scalars_to_buffer(values)
    assert len(buf) == 32 * len(values)
    assert native.scalars_from_buffer(buf) == values
    assert native.scalars_from_buffer_mpz(buf) == values
    assert native.check_scalars(buf) == len(values)


def test_words_are_little_endian() -> None:
    assert native.scalars_to_buffer([1, 256]) == (b"\x01" + bytes(31) + b"\x00\x01" + bytes(30))
    assert native.scalar_to_word(-1) == (R - 1).to_bytes(32, "little")


def test_reduce_takes_values_mod_r() -> None:
    values = [R, -1, 2 * R + 5, 7]
    assert native.scalars_from_buffer(native.scalars_to_buffer(values, reduce=True)) == [
        0,
        R - 1,
        5,
        7,
    ]
    with pytest.raises(NonCanonicalScalarError):
        native.scalars_to_buffer([-1])
    with pytest.raises(NonCanonicalScalarError):
        native.scalars_to_buffer([1 << 256])


def test_numpy_columns_widen_to_words() -> None:
    column = np.array([0, 1, 65535, 2**63 - 1], dtype=np.int64)
    assert native.scalars_to_buffer(column) == native.scalars_to_buffer(column.tolist())
    assert native.small_values_to_buffer(column.astype(np.uint64)) == native.scalars_to_buffer(
        column.tolist()
    )
    with pytest.raises(NonCanonicalScalarError):
        native.small_values_to_buffer(np.array([3, -1]))
    assert native.scalars_from_buffer(native.scalars_to_buffer(np.array([-1, 2]), reduce=True)) == [
        R - 1,
        2,
    ]
    numpy_scalars = list(np.array([7, 9], dtype=np.int64))  # NumPy integers, not ints
    assert native.scalars_to_buffer(numpy_scalars) == native.scalars_to_buffer([7, 9])
    assert native.scalars_to_buffer(numpy_scalars, reduce=True) == native.scalars_to_buffer([7, 9])


@needs_native
def test_non_canonical_word_is_refused_by_index() -> None:
    buf = native.scalars_to_buffer([5, R - 1]) + R.to_bytes(32, "little")
    with pytest.raises(ValueError, match=r"values\[2\].*not below"):
        native.check_scalars(buf)
    with pytest.raises(ValueError, match="whole number of 32-byte words"):
        native.check_scalars(buf[:-1])


@needs_native
def test_every_buffer_type_is_accepted() -> None:
    values = [3, R - 1, 1, 12345]
    raw = native.scalars_to_buffer(values)
    expected = native.scalars_to_buffer(batch_inverse(values))
    forms = [
        raw,
        bytearray(raw),
        memoryview(raw),
        np.frombuffer(raw, dtype=np.uint8),
        np.frombuffer(raw, dtype=np.uint8).reshape(-1, 32),
        np.frombuffer(raw, dtype="<u8").reshape(-1, 4).view(np.uint8),
    ]
    for form in forms:
        assert native.batch_inverse(form) == expected
    with pytest.raises(TypeError, match="expected bytes"):
        native.batch_inverse([1, 2, 3])  # type: ignore[arg-type]
    with pytest.raises((TypeError, ValueError)):
        native.batch_inverse(np.arange(4, dtype=np.uint64))  # uint64 items, not bytes


@needs_native
@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.integers(1, R - 1), st.sampled_from([1, 2, R - 1])), max_size=70))
def test_batch_inverse_matches_verifier(values: list[int]) -> None:
    got = native.scalars_from_buffer(native.batch_inverse(native.scalars_to_buffer(values)))
    assert got == batch_inverse(values)
    assert all(v * w % R == 1 for v, w in zip(values, got, strict=True))


@needs_native
def test_batch_inverse_refuses_zero_naming_it() -> None:
    values = [4, 9, 0, 0]
    with pytest.raises(ZeroDivisionError, match=r"values\[2\]"):
        native.batch_inverse(native.scalars_to_buffer(values))
    with pytest.raises(ZeroDivisionError, match="index 2"):
        batch_inverse(values)


@needs_native
def test_batch_inverse_large() -> None:
    rng = random.Random(7)
    values = [rng.randrange(1, R) for _ in range(5000)]
    got = native.scalars_from_buffer(native.batch_inverse(native.scalars_to_buffer(values)))
    assert got == batch_inverse(values)


# ------------------------------------------------------------------------- backend switch


def test_use_backend_python_turns_native_off() -> None:
    with backend.use_backend("python"):
        assert not backend.use_native()
        assert backend.native_module() is None
    assert backend.requested() in backend.BACKENDS


@needs_native
def test_use_backend_native_and_auto_turn_it_on() -> None:
    with backend.use_backend("native"):
        assert backend.use_native()
        with backend.use_backend("python"):  # nests
            assert not backend.use_native()
        assert backend.use_native()
    with backend.use_backend("auto"):
        assert backend.use_native()


def test_unknown_backend_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(backend.BackendChoiceError), backend.use_backend("gpu"):  # type: ignore[arg-type]
        pass
    monkeypatch.setenv(backend.BACKEND_ENV, "fast")
    with pytest.raises(backend.BackendChoiceError, match="ZKMETER_BACKEND='fast'"):
        backend.requested()
    monkeypatch.setenv(backend.BACKEND_ENV, "python")
    assert not backend.use_native()


def test_native_required_but_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backend, "_NATIVE", None)
    monkeypatch.setattr(backend, "_IMPORT_ERROR", "ImportError: simulated")
    monkeypatch.setenv(backend.BACKEND_ENV, "native")
    with pytest.raises(backend.NativeUnavailableError, match="simulated"):
        backend.use_native()
    monkeypatch.setenv(backend.BACKEND_ENV, "auto")
    assert not backend.use_native()  # auto falls back to the pure-Python path
    with pytest.raises(native.NativeUnavailableError, match="make setup"):
        native.ntt(b"", 0)
