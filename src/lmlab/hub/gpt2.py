"""Hugging Face GPT-2 checkpoints ↔ lmlab run dirs, from and to local files only (nothing is downloaded).

An HF GPT-2 directory holds `config.json`, `model.safetensors` (or `pytorch_model.bin`), `vocab.json` and
`merges.txt`. Our GPT with learned positions, tanh-GELU, pre-LN, biases and tied embeddings is the same network;
only names differ (`transformer.h.{i}` ↔ `blocks.{i}`) and HF's `Conv1D` layers store weights as (in, out), the
transpose of `nn.Linear`'s (out, in).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from lmlab.checkpoint import load_run, load_state, save_run
from lmlab.errors import LmlabError
from lmlab.models.gpt import GPT, GPTConfig
from lmlab.tokenization import BPETokenizer, Tokenizer
from lmlab.utils import atomic_output, atomic_write_json, atomic_write_text

# HF's Conv1D layers: weight stored as (in_features, out_features).
_CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
# Both spell GELU with the tanh approximation; "gelu" (exact erf) would give slightly different logits.
_TANH_GELU = ("gelu_new", "gelu_pytorch_tanh", "gelu_fast")
_GPT2_EOT = "<|endoftext|>"


# ===================================================================================================== import ===
def _read_hf_config(hf_dir: Path) -> dict[str, Any]:
    path = hf_dir / "config.json"
    if not path.is_file():
        raise LmlabError(f"{hf_dir} has no config.json; expected a Hugging Face GPT-2 directory "
                         "(config.json, model.safetensors or pytorch_model.bin, vocab.json, merges.txt)")
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise LmlabError(f"{path} is not valid JSON ({e})") from None
    if cfg.get("model_type") != "gpt2":
        raise LmlabError(f"{path} describes model_type {cfg.get('model_type')!r}; only 'gpt2' can be imported")
    for flag in ("scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn"):
        if cfg.get(flag):
            raise LmlabError(f"{path} sets {flag}=true, which lmlab's GPT does not implement")
    if cfg.get("scale_attn_weights") is False:
        raise LmlabError(f"{path} sets scale_attn_weights=false, which lmlab's GPT does not implement")
    act = cfg.get("activation_function", "gelu_new")
    if act not in _TANH_GELU:
        raise LmlabError(f"{path}: activation_function {act!r} is not supported (need one of {_TANH_GELU})")
    return cfg


def gpt_config_from_hf(cfg: dict[str, Any]) -> GPTConfig:
    """Our GPTConfig for an HF GPT-2 config.json dict."""
    n_embd = cfg.get("n_embd", 768)
    n_inner = cfg.get("n_inner") or 4 * n_embd
    if n_inner % n_embd:
        raise LmlabError(f"n_inner={n_inner} is not a multiple of n_embd={n_embd}; lmlab needs an integer mlp_ratio")
    return GPTConfig(n_layer=cfg.get("n_layer", 12), n_head=cfg.get("n_head", 12), n_embd=n_embd,
                     block_size=cfg.get("n_positions", 1024), vocab_size=cfg.get("vocab_size", 50257),
                     dropout=0.0, bias=True, pos_embedding="learned", norm_position="pre", activation="gelu",
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
def _check_exportable(run_dir: Path, model_type: str, c: GPTConfig, tokenizer: Tokenizer) -> None:
    problems = []
    if model_type != "gpt":
        problems.append(f"model type is {model_type!r}, not 'gpt'")
    else:
        if c.pos_embedding != "learned":
            problems.append(f"pos_embedding={c.pos_embedding!r} (GPT-2 has 'learned')")
        if c.activation != "gelu":
            problems.append(f"activation={c.activation!r} (GPT-2 has 'gelu')")
        if c.norm_position != "pre":
            problems.append(f"norm_position={c.norm_position!r} (GPT-2 has 'pre')")
        if not c.bias:
            problems.append("bias=false (GPT-2 has biases)")
    if tokenizer.kind != "bpe" or getattr(tokenizer, "numbers", None) != "gpt2" \
            or tokenizer.special_roles.get("<eos>") != _GPT2_EOT:
        problems.append("its tokenizer is not a GPT-2 byte-level BPE read from vocab.json/merges.txt")
    if problems:
        raise LmlabError(f"{run_dir} cannot be exported as Hugging Face GPT-2: " + "; ".join(problems))


def _gpt2_files(tokenizer: BPETokenizer) -> tuple[str, str]:
    """vocab.json and merges.txt text of a GPT-2-style BPE tokenizer."""
    model = tokenizer.to_dict()["hf"]["model"]
    vocab = json.dumps(model["vocab"], ensure_ascii=False)
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    return vocab, "#version: 0.2\n" + "\n".join(merges) + "\n"


def export_hf_gpt2(run_dir: str | os.PathLike, out_hf_dir: str | os.PathLike) -> Path:
    """Write a run dir as a Hugging Face GPT-2 directory (config.json, model.safetensors, vocab.json, merges.txt)
    that `transformers.GPT2LMHeadModel.from_pretrained(out_hf_dir)` loads. Only GPT-2-shaped runs qualify (learned
    positions, tanh-GELU, pre-LN, biases, GPT-2 byte-level BPE); others raise LmlabError saying why."""
    run = load_run(run_dir)
    c = run.model_config
    _check_exportable(Path(run_dir), run.model_type, c, run.tokenizer)
    out = Path(out_hf_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for name, t in run.model.state_dict().items():
        if name == "lm_head.weight" and c.tie_embeddings:
            continue  # HF re-ties it from wte
        if name.startswith("blocks."):
            name = "h." + name[len("blocks."):]
        if name.endswith(_CONV1D):
            t = t.t()
        tensors[name if name == "lm_head.weight" else "transformer." + name] = t.contiguous()
    with atomic_output(out / "model.safetensors") as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt"})
    eos = run.tokenizer.eos_id
    atomic_write_json(out / "config.json", {
        "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
        "n_layer": c.n_layer, "n_head": c.n_head, "n_embd": c.n_embd, "n_positions": c.block_size,
        "n_ctx": c.block_size, "vocab_size": c.vocab_size, "n_inner": c.mlp_ratio * c.n_embd,
        "activation_function": "gelu_new", "layer_norm_epsilon": c.layer_norm_eps,
        "resid_pdrop": c.dropout, "embd_pdrop": c.dropout, "attn_pdrop": c.dropout,
        "initializer_range": 0.02, "scale_attn_weights": True, "use_cache": True,
        "tie_word_embeddings": c.tie_embeddings, "bos_token_id": eos, "eos_token_id": eos,
    })
    vocab, merges = _gpt2_files(run.tokenizer)
    atomic_write_text(out / "vocab.json", vocab)
    atomic_write_text(out / "merges.txt", merges)
    return out
