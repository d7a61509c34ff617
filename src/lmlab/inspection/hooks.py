"""Read and replace named activations of a GPT: `run_with_cache`, `run_with_hooks` and the `hooked` context.

Every hook name of ARCHITECTURE.md is the module path of a `HookPoint` in the model (`model.hook_names()`), so
hooks here are ordinary torch forward hooks on those modules. A hook function has the signature

    fn(activation: Tensor, name: str) -> Tensor | None

Returning None only reads the activation; returning a tensor of the same shape replaces it for the rest of the
forward pass (activation patching). Hooks are registered for the duration of a `with hooked(...)` block (or one
call of `run_with_hooks` / `run_with_cache`) and always removed afterwards, also when the forward pass raises.

Shapes are those of `lmlab.models.gpt` (B batch, T tokens, D width, H heads): resid/attn.out/mlp.out (B,T,D),
mlp.pre/post (B,T,4D), attn.q|k|v (B,H,T,d), attn.pattern (B,H,T,T), logits (B,T,V). Hooking
`blocks.{l}.attn.pattern` switches that layer to explicit attention (same numbers up to float rounding).
"""

from __future__ import annotations

import contextlib
import re
from typing import Callable, Iterable, Iterator, Mapping, Sequence, Union

import torch
import torch.nn as nn

from lmlab.errors import LmlabError

HookFn = Callable[[torch.Tensor, str], Union[torch.Tensor, None]]
NameFilter = Union[None, str, Sequence[str], Callable[[str], bool]]


def describe_hook_names(names: Iterable[str]) -> str:
    """A compact listing of hook names: per-layer names are folded into one pattern with a layer range,
    e.g. 'embed, blocks.{0..3}.resid_pre, ..., final_norm, logits' (an error message lists every valid name
    without printing hundreds of lines)."""
    folded: dict[str, list[int]] = {}
    for n in names:
        m = re.fullmatch(r"blocks\.(\d+)\.(.+)", n)
        key = f"blocks.{{l}}.{m.group(2)}" if m else n
        folded.setdefault(key, [])
        if m:
            folded[key].append(int(m.group(1)))
    parts = []
    for key, layers in folded.items():
        if layers:
            key = key.replace("{l}", f"{{{min(layers)}..{max(layers)}}}" if len(layers) > 1 else str(layers[0]))
        parts.append(key)
    return ", ".join(parts)


def resolve_hook_names(model: nn.Module, names: NameFilter = None) -> list[str]:
    """The hook names selected by `names`, in the model's data-flow order.

    names: None (every hook point), one name, a list of names, or a predicate `fn(name) -> bool`.
    Raises LmlabError for a name the model does not have, listing the valid ones.
    """
    valid = hook_names_of(model)
    if names is None:
        return valid
    if callable(names):
        return [n for n in valid if names(n)]
    wanted = [names] if isinstance(names, str) else list(names)
    known = set(valid)
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise LmlabError(f"unknown hook name(s) {', '.join(map(repr, unknown))}; this model's hook names are: "
                         f"{describe_hook_names(valid)}")
    order = {n: i for i, n in enumerate(valid)}
    return sorted(set(wanted), key=order.__getitem__)


def hook_names_of(model: nn.Module) -> list[str]:
    """`model.hook_names()` (all hook points in data-flow order); LmlabError for a model without hook points."""
    if not hasattr(model, "hook_names"):
        raise LmlabError(f"{type(model).__name__} has no hook points; inspection needs a GPT run dir")
    return model.hook_names()


@contextlib.contextmanager
def hooked(model: nn.Module, hooks: Mapping[str, HookFn | Sequence[HookFn]]) -> Iterator[nn.Module]:
    """Register `{hook name: fn or [fn, ...]}` on `model` for the duration of the block; always removed after.

    Several functions on one name run in the given order, each seeing the previous one's result. Use this to
    keep hooks in place over your own forward passes (e.g. generation with a patched activation).
    """
    resolve_hook_names(model, list(hooks))  # unknown names → LmlabError before anything is registered
    handles = []
    try:
        for name, fns in hooks.items():
            point = model.get_submodule(name)
            for fn in ([fns] if callable(fns) else list(fns)):
                handles.append(point.register_forward_hook(_adapter(fn, name)))
        yield model
    finally:
        for h in handles:
            h.remove()


def _adapter(fn: HookFn, name: str):
    """torch forward hook (module, inputs, output) → our fn(activation, name)."""
    def hook(module, inputs, output):
        new = fn(output, name)
        if new is not None and new.shape != output.shape:
            raise ValueError(f"hook on {name} returned shape {tuple(new.shape)}, expected {tuple(output.shape)}")
        return new
    return hook


class _StopForward(Exception):
    """Raised by `forward_until`'s hook to end a forward pass once the activation it needs has been read."""


def forward_until(model: nn.Module, idx: torch.Tensor, name: str, **forward_kwargs) -> None:
    """Run `model(idx, **forward_kwargs)` only as far as hook point `name`, then stop.

    For reading activations: hooks already registered (e.g. by an enclosing `hooked` block) on `name` and on the
    points before it fire as usual; the layers after `name` and the output layer are skipped, which is most of
    the work when a statistic needs one early layer (ROME's keys at layer 0 of a 4-layer model: ~1/4 of the
    blocks). Nothing is returned: read what you need with hooks. The stopping hook is always removed.
    """
    resolve_hook_names(model, [name])

    def stop(module, inputs, output):
        raise _StopForward

    handle = model.get_submodule(name).register_forward_hook(stop)
    try:
        model(idx, **forward_kwargs)
    except _StopForward:
        pass
    finally:
        handle.remove()


def as_token_batch(model: nn.Module, tokens) -> torch.Tensor:
    """Token ids (list, 1-D or 2-D tensor/array) → a (B,T) int64 tensor on the model's device."""
    device = next(model.parameters()).device
    t = torch.as_tensor(tokens, dtype=torch.long, device=device)
    if t.dim() == 1:
        t = t.unsqueeze(0)
    if t.dim() != 2 or t.shape[1] == 0:
        raise LmlabError(f"tokens must be a non-empty sequence of ids or a (batch, tokens) array, got shape "
                         f"{tuple(t.shape)}")
    return t


def run_with_hooks(model: nn.Module, tokens, hooks: Mapping[str, HookFn | Sequence[HookFn]], *,
                   grad: bool = False, **forward_kwargs) -> torch.Tensor:
    """Logits (B,T,V) of one forward pass with `hooks` ({name: fn(activation, name) -> Tensor | None}) in place.

    tokens: ids as a list / 1-D (one sequence) or (B,T) tensor. grad=False runs under no_grad; pass grad=True to
    backpropagate through patched activations (e.g. optimising a value vector). forward_kwargs go to
    `model.forward` (attention_mask, position_ids).
    """
    idx = as_token_batch(model, tokens)
    with hooked(model, hooks), torch.set_grad_enabled(grad):
        logits, _ = model(idx, **forward_kwargs)
    return logits


def run_with_cache(model: nn.Module, tokens, names: NameFilter = None, *, grad: bool = False,
                   **forward_kwargs) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(logits (B,T,V), {hook name: activation}) of one forward pass.

    names: None (every hook point: note this includes attn.pattern, which runs the explicit attention path),
    a list of names, or a predicate. Cached tensors are detached unless grad=True.
    """
    selected = resolve_hook_names(model, names)
    cache: dict[str, torch.Tensor] = {}

    def save(activation: torch.Tensor, name: str) -> None:
        cache[name] = activation if grad else activation.detach()

    logits = run_with_hooks(model, tokens, {n: save for n in selected}, grad=grad, **forward_kwargs)
    return logits, cache


def read_activations(model: nn.Module, tokens, names: NameFilter, **forward_kwargs) -> dict[str, torch.Tensor]:
    """{hook name: activation, detached} of one no-grad forward pass that stops after the last of `names`.

    Like `run_with_cache` without the logits: the layers after the last requested hook point are not run (see
    `forward_until`), so reading an early layer's activations costs only the layers up to it.
    """
    selected = resolve_hook_names(model, names)
    if not selected:
        raise LmlabError("no hook names selected to read")
    cache: dict[str, torch.Tensor] = {}

    def save(activation: torch.Tensor, name: str) -> None:
        cache[name] = activation.detach()

    with hooked(model, {n: save for n in selected}), torch.no_grad():
        forward_until(model, as_token_batch(model, tokens), selected[-1], **forward_kwargs)
    return cache


def patch_positions(values: torch.Tensor, positions: torch.Tensor | Sequence[int] | int) -> HookFn:
    """A hook fn that writes `values` at token `positions` of every batch row (the rest untouched).

    values: (len(positions), ...) or broadcastable to activation[:, positions]. For (B,T,D) activations.
    """
    pos = torch.as_tensor(positions, dtype=torch.long).reshape(-1)

    def fn(activation: torch.Tensor, name: str) -> torch.Tensor:
        out = activation.clone()
        out[:, pos.to(out.device)] = values.to(out.dtype)
        return out
    return fn
