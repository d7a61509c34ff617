"""Precision choice and the MFU arithmetic/probe."""

import pytest
import torch

from lmlab.errors import LmlabError
from lmlab.training.mfu import measure_peak_flops, mfu, nominal_peak_flops
from lmlab.training.precision import bf16_hint, cpu_flags, resolve_precision


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


def test_cpu_flags_and_the_bf16_tip(tmp_path):
    """The flags line of a cpuinfo file is read; the tip appears only when `auto` chose float32 on a CPU with
    AVX512-BF16 (an explicit float32, a bf16 run or a CPU without the instructions get none)."""
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2 avx512f avx512_bf16\n")
    zen4 = cpu_flags(str(info))
    assert {"avx512_bf16", "avx2"} <= zen4 and "amx_bf16" not in zen4
    assert cpu_flags(str(tmp_path / "missing")) == frozenset()
    cpu = torch.device("cpu")
    p32, pbf = resolve_precision("float32", cpu), resolve_precision("bfloat16", cpu)
    assert "--dtype bfloat16" in bf16_hint(p32, "auto", zen4)
    assert bf16_hint(p32, "float32", zen4) is None
    assert bf16_hint(pbf, "auto", zen4) is None
    assert bf16_hint(p32, "auto", frozenset({"avx512f", "avx2"})) is None


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
