"""Hugging Face GPT-2 checkpoints ↔ lmlab: importing a local GPT-2 directory as a run dir, and the GPT-2 half of
`lmlab export hf` (config.json keys and tensor names; nothing is downloaded).

An HF GPT-2 directory holds `config.json`, `model.safetensors` (or `pytorch_model.bin`), `vocab.json` and
`merges.txt`. Our GPT with learned positions, pre-LN, biases and tied embeddings is the same network; only names
differ (`transformer.h.{i}` ↔ `blocks.{i}`) and HF's `Conv1D` layers store weights as (in, out), the transpose of
`nn.Linear`'s (out, in).
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from lmlab.checkpoint import load_state, save_run
from lmlab.errors import LmlabError
from lmlab.models.gpt import GPT, GPTConfig
from lmlab.tokenization import BPETokenizer
from lmlab.utils import read_json_object

# HF's Conv1D layers: weight stored as (in_features, out_features).
_CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
# Our MLP nonlinearity → the name transformers' ACT2FN (GPT-2's `activation_function`, GPT-NeoX's `hidden_act`)
# gives the same function. "gelu" in HF is the exact erf form, our "gelu_exact"; our "gelu" is the tanh form.
HF_ACTIVATION = {"gelu": "gelu_new", "gelu_exact": "gelu", "relu": "relu", "silu": "silu"}
# HF names read back on import: every spelling of the tanh GELU, and the others one to one.
_ACTIVATION_FROM_HF = {"gelu_new": "gelu", "gelu_pytorch_tanh": "gelu", "gelu_fast": "gelu", "gelu": "gelu_exact",
                       "relu": "relu", "silu": "silu"}


# ===================================================================================================== import ===
def _read_hf_config(hf_dir: Path) -> dict[str, Any]:
    path = hf_dir / "config.json"
    if not path.is_file():
        raise LmlabError(f"{hf_dir} has no config.json; expected a Hugging Face GPT-2 directory "
                         "(config.json, model.safetensors or pytorch_model.bin, vocab.json, merges.txt)")
    cfg = read_json_object(path)
    if cfg.get("model_type") != "gpt2":
        raise LmlabError(f"{path} describes model_type {cfg.get('model_type')!r}; only 'gpt2' can be imported")
    for flag in ("scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn"):
        if cfg.get(flag):
            raise LmlabError(f"{path} sets {flag}=true, which lmlab's GPT does not implement")
    if cfg.get("scale_attn_weights") is False:
        raise LmlabError(f"{path} sets scale_attn_weights=false, which lmlab's GPT does not implement")
    act = cfg.get("activation_function", "gelu_new")
    if act not in _ACTIVATION_FROM_HF:
        raise LmlabError(f"{path}: activation_function {act!r} is not supported "
                         f"(need one of {', '.join(_ACTIVATION_FROM_HF)})")
    return cfg


def gpt_config_from_hf(cfg: dict[str, Any]) -> GPTConfig:
    """Our GPTConfig for an HF GPT-2 config.json dict."""
    n_embd = cfg.get("n_embd", 768)
    n_inner = cfg.get("n_inner") or 4 * n_embd
    if n_inner % n_embd:
        raise LmlabError(f"n_inner={n_inner} is not a multiple of n_embd={n_embd}; lmlab needs an integer mlp_ratio")
    return GPTConfig(n_layer=cfg.get("n_layer", 12), n_head=cfg.get("n_head", 12), n_embd=n_embd,
                     block_size=cfg.get("n_positions", 1024), vocab_size=cfg.get("vocab_size", 50257),
                     dropout=0.0, bias=True, pos_embedding="learned", norm_position="pre",
                     activation=_ACTIVATION_FROM_HF[cfg.get("activation_function", "gelu_new")],
                     tie_embeddings=cfg.get("tie_word_embeddings", True),
                     layer_norm_eps=cfg.get("layer_norm_epsilon", 1e-5), mlp_ratio=n_inner // n_embd)


def _read_hf_weights(hf_dir: Path) -> dict[str, torch.Tensor]:
    st, binary = hf_dir / "model.safetensors", hf_dir / "pytorch_model.bin"
    try:
        if st.is_file():
            return load_file(str(st))
        if binary.is_file():
            # weights_only: tensors and plain containers only, so a malicious pickle cannot run code.
            return torch.load(binary, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # torch's weights-only unpickler met something other than tensors: possibly code that would run.
        raise LmlabError(f"{binary} holds objects other than tensors, which lmlab refuses to unpickle (they could "
                         "run code); convert the weights to model.safetensors with a tool you trust") from None
    except (SafetensorError, OSError, RuntimeError, ValueError) as e:
        raise LmlabError(f"cannot read the weights in {hf_dir} ({type(e).__name__}: {e})") from None
    raise LmlabError(f"{hf_dir} has neither model.safetensors nor pytorch_model.bin")


def _hf_to_ours(hf: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename (and transpose Conv1D weights of) an HF GPT2LMHeadModel / GPT2Model state dict."""
    out = {}
    for name, t in hf.items():
        name = name.removeprefix("transformer.")
        if name.endswith((".attn.bias", ".attn.masked_bias")):
            continue  # old checkpoints store the causal mask as a buffer; we do not need it
        if name.startswith("h."):
            name = "blocks." + name[2:]
        if name.endswith(_CONV1D):
            t = t.t()
        out[name] = t.contiguous()
    return out


def import_hf_gpt2(hf_dir: str | os.PathLike, out_run_dir: str | os.PathLike) -> Path:
    """Convert a local Hugging Face GPT-2 directory into an lmlab run dir (model, tokenizer, config).

    The tokenizer is `BPETokenizer.from_gpt2_files(vocab.json, merges.txt)`, whose `<|endoftext|>` plays <eos>.
    Returns the run dir path.
    """
    hf_dir = Path(hf_dir)
    if not hf_dir.is_dir():
        raise LmlabError(f"Hugging Face model directory {hf_dir} does not exist")
    config = gpt_config_from_hf(_read_hf_config(hf_dir))
    tokenizer = BPETokenizer.from_gpt2_files(hf_dir / "vocab.json", hf_dir / "merges.txt")
    if tokenizer.vocab_size > config.vocab_size:
        raise LmlabError(f"{hf_dir}: vocab.json has {tokenizer.vocab_size} tokens but the model only "
                         f"{config.vocab_size} embedding rows")
    tensors = _hf_to_ours(_read_hf_weights(hf_dir))
    if config.tie_embeddings:
        tensors.pop("lm_head.weight", None)  # the same matrix as wte.weight
    with torch.device("meta"):  # no need to initialise weights that are about to be overwritten
        model = GPT(config)
    model = model.to_empty(device="cpu")
    if config.tie_embeddings:
        model.lm_head.weight = model.wte.weight  # to_empty breaks the tie
    # (GPT-2 has learned positions only, so there are no computed buffers that the meta build left empty.)
    load_state(model, tensors, source=str(hf_dir), what="its config.json")
    return save_run(out_run_dir, model, tokenizer, model_type="gpt", model_config=config, training_config=None)


# ===================================================================================================== export ===
def gpt2_config(c: GPTConfig) -> dict[str, Any]:
    """The architecture keys of a transformers GPT2Config for `c` (learned or fixed absolute positions, pre-LN);
    `lmlab.hub.export` adds the vocabulary, token ids and tying."""
    return {
        "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
        "n_layer": c.n_layer, "n_head": c.n_head, "n_embd": c.n_embd, "n_positions": c.block_size,
        "n_ctx": c.block_size, "n_inner": c.mlp_ratio * c.n_embd,
        "activation_function": HF_ACTIVATION[c.activation], "layer_norm_epsilon": c.layer_norm_eps,
        "resid_pdrop": c.dropout, "embd_pdrop": c.dropout, "attn_pdrop": c.dropout,
        "initializer_range": 0.02, "scale_attn_weights": True,
    }


def gpt2_tensors(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our GPT's tensors (every bias present, `wpe.weight` holding the positions, `lm_head.weight` only when
    untied) under GPT2LMHeadModel's names, Conv1D weights transposed to (in, out)."""
    tensors = {}
    for name, t in state.items():
        if name.startswith("blocks."):
            name = "h." + name[len("blocks."):]
        if name.endswith(_CONV1D):
            t = t.t()
        tensors[name if name == "lm_head.weight" else "transformer." + name] = t.contiguous()
    return tensors
