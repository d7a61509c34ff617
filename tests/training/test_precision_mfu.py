"""Precision choice and the MFU arithmetic/probe."""

import pytest
import torch

from lmlab.errors import LmlabError
from lmlab.training.mfu import measure_peak_flops, mfu, nominal_peak_flops
from lmlab.training.precision import resolve_precision


def test_explicit_dtypes_and_scaler_only_for_float16():
    cpu = torch.device("cpu")
    p32, pbf, p16 = (resolve_precision(n, cpu) for n in ("float32", "bfloat16", "float16"))
    assert (p32.dtype, pbf.dtype, p16.dtype) == (torch.float32, torch.bfloat16, torch.float16)
    assert p32.make_scaler() is None and pbf.make_scaler() is None and p16.make_scaler() is not None
    with pbf.autocast():
        assert (torch.ones(4, 4) @ torch.ones(4, 4)).dtype == torch.bfloat16
    with p32.autocast():
        assert (torch.ones(4, 4) @ torch.ones(4, 4)).dtype == torch.float32
    assert resolve_precision("auto", cpu).name in ("float32", "bfloat16")
    with pytest.raises(LmlabError):
        resolve_precision("int8", cpu)


def test_mfu_is_model_flops_over_peak():
    assert mfu(6e6, 1000.0, 1e10) == pytest.approx(0.6)
    assert mfu(6e6, 1000.0, None) is None
    assert nominal_peak_flops(torch.device("cpu"), torch.float32) is None


def test_matmul_probe_measures_a_plausible_peak_quickly():
    import time

    t0 = time.perf_counter()
    peak = measure_peak_flops(torch.device("cpu"), torch.float32, seconds=0.1)
    assert time.perf_counter() - t0 < 2.0
    assert 1e8 < peak < 1e14  # between 0.1 GFLOP/s and 100 TFLOP/s on any CPU
