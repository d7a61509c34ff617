"""Memory planner: what training a GPT takes per device, for each way of splitting the work over N devices.

Per device, in bytes (P parameters, N devices, AdamW with float32 master weights and moments):

    strategy            weights      gradients    optimizer (2 moments)  extra
    ddp                 4P           4P           8P                     4P   DDP's gradient buckets
    zero1               4P           4P           8P/N                   —    optimizer state sharded
    zero2               4P           4P/N         8P/N                   —    + gradients sharded
    fsdp (= ZeRO-3)     4P/N         4P/N         8P/N                   full weights of the root (embeddings,
                                                                         head) + 2 blocks (current + prefetched)
                                                                         + 1 block's full gradients

lmlab runs `ddp` and `fsdp` (`--strategy`); zero1/zero2 are shown as the ZeRO paper's intermediate stages.
bf16 autocast adds a bf16 copy of the weights the matmuls use (2P, or 2 blocks' worth under FSDP).

Activations per micro-batch (what backward keeps), counted from lmlab's GPT forward (models/gpt.py) with the fused
attention kernel (no T×T matrix is stored) and no dropout, per token and per block, in elements of D = n_embd:

    resid_pre 1 · ln_1 out 1 · qkv 3 · attention out 1 · c_proj input 1 · resid_mid 1 · ln_2 out 1 ·
    mlp.pre r · mlp.post r                                                       = 9 + 2r  (r = mlp_ratio; 17 for 4)

the same count as Korthikanti et al. 2022 ("Reducing activation recomputation", 34·s·b·h bytes in 16-bit, less the
dropout masks) plus the residual-stream tensors. Plus, per token: ln_f input and output (2D), and for the loss the
logits, their log-softmax and, at the start of backward, the gradients of both (4V, float32). Under bf16 autocast the
matmul outputs are bf16 (2 bytes), the residual stream and LayerNorm inputs stay float32. With activation
checkpointing a block keeps only its input, and one block's activations exist at a time during recompute, after
the loss's tensors are gone.

The peak is not the sum of everything: backward frees a block's activations as it creates that block's gradients,
so the high point is either the start of backward (all activations + the embedding's gradient, made first by the
tied output layer) or its end (all gradients, plus — with activation checkpointing — the block inputs and the
recomputed block that are still there when the last blocks' gradients are made):

    peak = weights + optimizer + extra + max(activations + gradient of the parts outside the blocks,
                                             gradients + [checkpointing: block inputs + one block's activations])

Measured against this on CPU: `lmlab.training.memory_probe.measure_peak_memory` (tests/training/test_plan.py,
benchmarks/RESULTS.md).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence

from lmlab.errors import LmlabError
from lmlab.training.config import TrainConfig

PLAN_STRATEGIES = ("ddp", "zero1", "zero2", "fsdp")
RUNNABLE = {"ddp": "ddp", "fsdp": "fsdp"}  # planner name → lmlab --strategy
_ACT_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
GIB = 2**30


@dataclass
class StrategyPlan:
    """Memory per device for one strategy, in bytes; `max_micro_batch` sequences fit beside the model states."""

    strategy: str
    weights: int
    gradients: int
    optimizer: int
    extra: int  # DDP buckets, FSDP's gathered blocks, autocast's bf16 weight copies
    activations: int  # for the planned micro-batch
    peak: int  # estimated high point of one training step (module docstring)
    fits: bool  # peak ≤ device memory
    max_micro_batch: int  # largest micro-batch (sequences per device) whose peak fits in device memory
    tokens_per_step: int  # with max_micro_batch: max_micro_batch × grad_accum × devices × block_size
    runnable_as: str | None  # the lmlab --strategy that trains this way, or None


@dataclass
class MemoryPlan:
    """`plan`'s answer: the model's size and one StrategyPlan per strategy."""

    n_params: int
    devices: int
    device_mem_bytes: int
    dtype: str
    activation_checkpointing: bool
    micro_batch: int
    block_size: int
    activations_per_sequence: int  # bytes of activations per sequence of block_size tokens
    strategies: list[StrategyPlan]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parameter_counts(config: Any) -> tuple[int, int, int]:
    """(all parameters, parameters of one block, parameters outside the blocks) of a GPTConfig, tied embeddings
    counted once."""
    d, r, v, t = config.n_embd, config.mlp_ratio, config.vocab_size, config.block_size
    bias = 1 if config.bias else 0
    norm = d * (1 + bias)
    block = (2 * norm + d * 3 * d + bias * 3 * d + d * d + bias * d
             + d * r * d + bias * r * d + r * d * d + bias * d)
    outside = v * d + (t * d if config.pos_embedding == "learned" else 0)
    outside += norm if config.norm_position == "pre" else 0
    outside += 0 if config.tie_embeddings else v * d
    return block * config.n_layer + outside, block, outside


def _per_token(config: Any, dtype: str) -> tuple[int, int]:
    """(bytes one block keeps per token, bytes the final norm, head and loss keep per token)."""
    if dtype not in _ACT_BYTES:
        raise LmlabError(f"dtype must be one of {', '.join(_ACT_BYTES)} (got {dtype!r})")
    low = _ACT_BYTES[dtype]  # matmul outputs
    d, r, v = config.n_embd, config.mlp_ratio, config.vocab_size
    # residual stream (resid_pre, resid_mid) and nothing else stays float32 under autocast; the rest are matmul
    # outputs or their bf16 casts.
    block = 2 * d * 4 + (7 + 2 * r) * d * low
    head = 2 * d * 4 + 4 * v * 4 + (v * low if low != 4 else 0)  # bf16 logits are copied to float32 for the loss
    return block, head


def activation_bytes(config: Any, micro_batch: int, *, dtype: str = "float32",
                     activation_checkpointing: bool = False) -> int:
    """Bytes of activations kept for backward by one micro-batch of `micro_batch` sequences of block_size tokens
    (see the module docstring for the count)."""
    d = config.n_embd
    block, head = _per_token(config, dtype)
    if activation_checkpointing:
        # Blocks are recomputed one at a time after the loss's tensors are freed: the larger of the two phases.
        per_token = config.n_layer * d * 4 + max(block, head)
    else:
        per_token = config.n_layer * block + head
    return micro_batch * config.block_size * per_token


def plan(model_config: Any = None, *, preset: str | None = None, config_file: str | os.PathLike | None = None,
         overrides: Mapping[str, Any] | list[str] | None = None, devices: int = 1, device_mem_gb: float = 80.0,
         dtype: str | None = None, activation_checkpointing: bool | None = None, micro_batch: int | None = None,
         grad_accum: int | None = None, strategies: Sequence[str] = PLAN_STRATEGIES,
         base_settings: Mapping[str, Any] | None = None) -> MemoryPlan:
    """Memory per device of training a GPT on `devices` devices of `device_mem_gb` GiB each, per strategy.

    The model: `model_config` (a GPTConfig), or as `lmlab train` would build it: preset (default "tiny") <
    base_settings (the preset's recipe settings: `lmlab.recipes.preset_settings`) < config_file < overrides
    ({key: value} or ['--key', 'value']). The training settings of that preset/file
    supply what is not given here: micro_batch (= batch_size, sequences per device per micro-step), grad_accum,
    dtype (the compute dtype; "auto" is planned as bfloat16, what it picks on current GPUs; weights, gradients
    and moments are float32 either way) and activation_checkpointing. Every strategy also gets the largest
    micro-batch that fits (`max_micro_batch`) and its tokens per optimizer step.
    """
    if model_config is None:
        model_config, train_config = _resolve(preset, config_file, overrides, base_settings)
    else:
        train_config = TrainConfig()
    dtype = dtype or train_config.dtype
    dtype = "bfloat16" if dtype == "auto" else {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}.get(
        dtype, dtype)
    if activation_checkpointing is None:
        activation_checkpointing = train_config.activation_checkpointing
    micro_batch = train_config.batch_size if micro_batch is None else micro_batch
    grad_accum = train_config.grad_accum if grad_accum is None else grad_accum
    for name in ("n_layer", "n_embd", "vocab_size", "block_size", "mlp_ratio"):
        if not hasattr(model_config, name):
            raise LmlabError("lmlab plan knows the GPT's memory (a config with n_layer, n_embd, ...); "
                             f"a {type(model_config).__name__} is not one")
    if devices < 1:
        raise LmlabError(f"--devices must be ≥ 1 (got {devices})")
    if not device_mem_gb > 0:
        raise LmlabError(f"--device-mem must be a positive number of GiB (got {device_mem_gb})")
    if micro_batch < 1 or grad_accum < 1:
        raise LmlabError("--batch-size and --grad-accum must be ≥ 1")
    strategies = PLAN_STRATEGIES if list(strategies) == ["all"] else tuple(strategies)
    unknown = [s for s in strategies if s not in PLAN_STRATEGIES]
    if unknown:
        raise LmlabError(f"unknown strategy {unknown[0]!r}; choose from {', '.join(PLAN_STRATEGIES)} or all")
    p, p_block, p_outside = parameter_counts(model_config)
    low_weights = dtype != "float32"
    mem = int(device_mem_gb * GIB)
    per_seq = activation_bytes(model_config, 1, dtype=dtype, activation_checkpointing=activation_checkpointing)
    # what is alive beside all gradients at the end of backward, per sequence
    late = (model_config.block_size * (model_config.n_layer * model_config.n_embd * 4
                                       + _per_token(model_config, dtype)[0]) if activation_checkpointing else 0)
    rows = []
    n = devices
    for s in strategies:
        if s == "fsdp":
            weights, grads, optim = 4 * p // n, 4 * p // n, 8 * p // n
            gathered_bytes = 2 if low_weights else 4
            extra = (p_outside + 2 * p_block) * gathered_bytes + 4 * p_block
        else:
            weights = 4 * p
            grads = 4 * p if s in ("ddp", "zero1") else 4 * p // n
            optim = 8 * p if s == "ddp" else 8 * p // n
            extra = (4 * p if s == "ddp" and n > 1 else 0) + (2 * p if low_weights else 0)
        grads_outside = grads * p_outside // p  # the share of the gradients made before the blocks' backward

        def peak_at(batch: int) -> int:
            return weights + optim + extra + max(per_seq * batch + grads_outside, grads + late * batch)

        room = mem - weights - optim - extra
        max_mb = max(0, (room - grads_outside) // per_seq)
        if room < grads:  # the end of backward alone does not fit
            max_mb = 0
        elif late:
            max_mb = min(max_mb, (room - grads) // late)
        act = per_seq * micro_batch
        rows.append(StrategyPlan(
            strategy=s, weights=weights, gradients=grads, optimizer=optim, extra=extra, activations=act,
            peak=peak_at(micro_batch), fits=peak_at(micro_batch) <= mem, max_micro_batch=int(max_mb),
            tokens_per_step=int(max_mb) * grad_accum * n * model_config.block_size, runnable_as=RUNNABLE.get(s)))
    return MemoryPlan(n_params=p, devices=n, device_mem_bytes=mem, dtype=dtype,
                      activation_checkpointing=activation_checkpointing, micro_batch=micro_batch,
                      block_size=model_config.block_size, activations_per_sequence=per_seq, strategies=rows)


def _resolve(preset: str | None, config_file, overrides, base_settings) -> tuple[Any, TrainConfig]:
    """The GPT config and training settings `lmlab train` would use for these options."""
    from lmlab.models.presets import get_preset
    from lmlab.training.config import load_config_file, resolve_configs

    file_values = load_config_file(config_file) if config_file is not None else {}
    if file_values.get("model_type", "gpt") != "gpt":
        raise LmlabError(f"lmlab plan knows the GPT's memory; {config_file} is a {file_values['model_type']} "
                         "config")
    preset = preset or file_values.get("preset") or "tiny"
    model_config, train_config = resolve_configs(get_preset(preset), TrainConfig(), overrides=dict(base_settings or {}))
    return resolve_configs(model_config, train_config, config_file=config_file, overrides=overrides)


def format_plan(result: MemoryPlan) -> str:
    """A table of `result` for the terminal, GiB per device."""
    def g(x: int) -> str:
        return f"{x / GIB:.2f}"

    lines = [f"{result.n_params / 1e6:.1f}M parameters, {result.devices} device(s) × "
             f"{result.device_mem_bytes / GIB:.0f} GiB, compute {result.dtype}"
             + (", activation checkpointing" if result.activation_checkpointing else "")
             + f"; activations {result.activations_per_sequence / 2**20:.1f} MiB per sequence of "
             f"{result.block_size} tokens",
             f"{'strategy':<10}{'weights':>9}{'grads':>9}{'optim':>9}{'extra':>9}"
             f"{'act@' + str(result.micro_batch):>9}{'peak':>9}  fits  {'max micro-batch':>15}  tokens/step"]
    for r in result.strategies:
        name = r.strategy + ("" if r.runnable_as else "*")
        lines.append(f"{name:<10}{g(r.weights):>9}{g(r.gradients):>9}{g(r.optimizer):>9}{g(r.extra):>9}"
                     f"{g(r.activations):>9}{g(r.peak):>9}  {'yes' if r.fits else 'NO ':<4}  "
                     f"{r.max_micro_batch:>15}  {r.tokens_per_step}")
    lines.append("GiB per device; * = ZeRO stage shown for comparison, not an lmlab --strategy "
                 "(ddp and fsdp are)")
    return "\n".join(lines)
