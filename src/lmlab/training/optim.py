"""AdamW with weight decay on matrices only, and the learning-rate schedule (linear warmup, cosine decay).

Why decay only ≥2-D parameters: weight decay is a prior that pulls weights towards zero; for matrices (linear layers,
embeddings) that curbs large activations, but for biases and LayerNorm gains it only fights the model (pulling a
gain to zero silences a channel). This is the split used by GPT-2/nanoGPT/minGPT.
"""

from __future__ import annotations

import inspect
import math

import torch

from lmlab.training.config import TrainConfig


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups: ≥2-D tensors (decayed) and the rest (biases, norm gains; not decayed).

    Tied weights (e.g. embedding = unembedding) appear once: `named_parameters` yields a shared tensor only once.
    """
    decay, no_decay = [], []
    for _, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (decay if p.dim() >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def fused_adamw_available(device_type: str) -> bool:
    """True when this torch build has a fused AdamW kernel for `device_type` ('cpu', 'cuda', 'mps')."""
    if "fused" not in inspect.signature(torch.optim.AdamW).parameters:
        return False
    # Fused AdamW exists for CUDA since torch 2.0, for CPU since 2.4 and for MPS since 2.5; ask rather than guess.
    try:
        probe = torch.nn.Parameter(torch.zeros(1, device=device_type))
        torch.optim.AdamW([probe], fused=True)
        return True
    except (RuntimeError, TypeError, ValueError):
        return False


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig, device_type: str) -> torch.optim.AdamW:
    """AdamW over `model`'s parameters with decay only on ≥2-D tensors, fused when the device supports it.

    The lr given here is a placeholder: the training loop sets each group's lr from `lr_at(step, cfg)` every step.
    """
    extra = {"fused": True} if fused_adamw_available(device_type) else {}
    return torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2),
                             **extra)


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate for optimizer step `step` (0-based): linear warmup, then cosine decay to min_lr, then flat.

    step < warmup_iters:        lr · (step + 1) / (warmup_iters + 1)   (never exactly 0, so step 0 learns)
    warmup ≤ step ≤ decay_iters: min_lr + ½(1 + cos(π · progress)) · (lr − min_lr)
    step > decay_iters:          min_lr
    """
    if step < cfg.warmup_iters:
        return cfg.lr * (step + 1) / (cfg.warmup_iters + 1)
    decay_iters = cfg.decay_iters
    if step > decay_iters:
        return cfg.min_lr
    span = decay_iters - cfg.warmup_iters
    progress = 1.0 if span <= 0 else (step - cfg.warmup_iters) / span
    coeff = 0.5 * (1.0 + math.cos(math.pi * progress))  # 1 → 0
    return cfg.min_lr + coeff * (cfg.lr - cfg.min_lr)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set every parameter group's learning rate."""
    for group in optimizer.param_groups:
        group["lr"] = lr
