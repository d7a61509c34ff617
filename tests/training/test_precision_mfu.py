"""Precision choice and the MFU arithmetic/probe."""

import pytest
import torch

from lmlab.errors import LmlabError
from lmlab.training.mfu import measure_peak_flops, mfu, nominal_peak_flops
from lmlab.training.precision import cpu_flags, resolve_precision


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


def test_auto_picks_bf16_where_the_cpu_has_bf16_instructions(tmp_path):
    """The flags line of a cpuinfo file is read; on CPU `auto` means bfloat16 with AMX (every model) or
    AVX512-BF16 (the GPT, the model measured faster there), float32 without bf16 instructions."""
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2 avx512f avx512_bf16\n")
    zen4 = cpu_flags(str(info))
    assert {"avx512_bf16", "avx2"} <= zen4 and "amx_bf16" not in zen4
    assert cpu_flags(str(tmp_path / "missing")) == frozenset()
    cpu = torch.device("cpu")
    spr = frozenset({"avx512f", "avx512_bf16", "amx_bf16"})
    plain = frozenset({"avx512f", "avx2"})
    assert resolve_precision("auto", cpu, flags=zen4).dtype == torch.bfloat16
    assert resolve_precision("auto", cpu, model_type="lstm", flags=zen4).dtype == torch.float32
    assert resolve_precision("auto", cpu, model_type="lstm", flags=spr).dtype == torch.bfloat16
    assert resolve_precision("auto", cpu, flags=plain).dtype == torch.float32
    assert resolve_precision("float32", cpu, flags=spr).dtype == torch.float32  # an explicit choice wins


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
