"""`lmlab export hf`: a GPT run dir as a directory that transformers' `AutoModelForCausalLM.from_pretrained(DIR)`
and `AutoTokenizer.from_pretrained(DIR)` load, giving the same logits and the same token ids (local files only).

Which Hugging Face architecture each GPTConfig maps to, option by option:
  pos_embedding   "learned" → GPT2LMHeadModel; "sinusoidal" → GPT2LMHeadModel with the fixed table as its (then
                  trainable) position embedding `wpe`; "rotary" → GPTNeoXForCausalLM (lmlab.hub.neox)
  rotary_pct      GPT-NeoX's partial_rotary_factor (our even-rounded rotary_dims / head_dim); rotary_base → rope_theta
  activation      gelu (tanh) → "gelu_new", gelu_exact → "gelu", relu, silu (both architectures take any of them)
  bias=False      zero biases (GPT-2's and GPT-NeoX's layers always have them: the same function)
  tie_embeddings  tie_word_embeddings (the output matrix is written only when untied)
  layer_norm_eps, mlp_ratio, n_layer, n_head, n_embd, block_size, vocab_size: their HF fields; dropout: the HF
                  dropout probabilities (no effect on inference)
  norm_position="post"  refused: neither architecture has post-LN blocks
The tokenizer goes through lmlab.hub.tokenizer_files (bpe and char; word tokenizers are refused, with the reason).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn as nn
from safetensors.torch import save_file

from lmlab.checkpoint import is_run_dir, load_run
from lmlab.errors import LmlabError
from lmlab.hub.gpt2 import gpt2_config, gpt2_tensors
from lmlab.hub.neox import neox_config, neox_tensors
from lmlab.hub.tokenizer_files import write_hf_tokenizer
from lmlab.models.gpt import GPT, GPTConfig
from lmlab.tokenization import Tokenizer
from lmlab.utils import atomic_output, atomic_write_json

ARCHITECTURES = ("auto", "gpt2", "gpt-neox")
# Files an earlier export into the same directory may have left that this one might not rewrite.
_OPTIONAL_FILES = ("vocab.json", "merges.txt")


def hf_architecture(c: GPTConfig) -> str:
    """"gpt2" or "gpt-neox": the Hugging Face architecture that computes the same function as a GPT with config c."""
    return "gpt-neox" if c.pos_embedding == "rotary" else "gpt2"


def _problems(model_type: str, c: GPTConfig | None, tokenizer: Tokenizer, architecture: str) -> list[str]:
    """Why this run cannot be exported as `architecture` (empty when it can)."""
    if model_type != "gpt":
        return [f"its model type is {model_type!r}; only GPT runs map to a Hugging Face causal LM"]
    problems = []
    if c.norm_position != "pre":
        problems.append(f"norm_position={c.norm_position!r}: neither GPT-2 nor GPT-NeoX has post-LN blocks")
    natural = hf_architecture(c)
    if architecture not in ("auto", natural):
        problems.append(f"pos_embedding={c.pos_embedding!r} does not fit {architecture} (it needs {natural}); "
                        f"`lmlab export hf` picks the right architecture")
    try:
        tokenizer.to_hf_tokenizer()
    except LmlabError as e:
        problems.append(str(e))
    return problems


def _full_state(model: GPT) -> dict[str, torch.Tensor]:
    """The model's tensors as the HF layouts want them: lm_head only when untied, the sinusoidal table as learned
    positions `wpe.weight`, and zeros for every bias a bias=False model lacks."""
    c = model.config
    state = {name: t.detach() for name, t in model.state_dict().items()}
    if c.tie_embeddings:
        state.pop("lm_head.weight")  # the same matrix as wte.weight; HF re-ties it
    if c.pos_embedding == "sinusoidal":
        state["wpe.weight"] = model.pos_table.detach()
    for name, module in model.named_modules():
        if isinstance(module, (nn.Linear, nn.LayerNorm)) and name != "lm_head" and module.bias is None:
            state[f"{name}.bias"] = torch.zeros(module.weight.shape[0], dtype=module.weight.dtype)
    return state


def _check_out_dir(run_dir: Path, out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise LmlabError(f"--out {out} is an existing file; give a directory to write the export into")
    if is_run_dir(out) or out.resolve() == run_dir.resolve():  # an earlier export's HF config.json is no run
        raise LmlabError(f"--out {out} is an lmlab run dir; the export's config.json and tokenizer.json would "
                         "overwrite the run's own, so give another directory")


def export_hf(run_dir: str | os.PathLike, out_hf_dir: str | os.PathLike, *, architecture: str = "auto") -> Path:
    """Write the GPT in `run_dir` and its tokenizer as a Hugging Face model directory: config.json,
    model.safetensors and the tokenizer files (lmlab.hub.tokenizer_files), so that `AutoModelForCausalLM` and
    `AutoTokenizer` load it with the same logits (float rounding apart) and the same token ids.

    architecture: "auto" (GPT-2 for learned or sinusoidal positions, GPT-NeoX for rotary), "gpt2" or "gpt-neox"
    (refused when the run does not fit it). Raises LmlabError listing every reason a run cannot be exported (see
    the module docstring). Files of the same names in `out_hf_dir` are replaced, and a vocab.json / merges.txt
    this export does not write is removed (an earlier export's, which GPT2Tokenizer would read). Returns the path.
    """
    if architecture not in ARCHITECTURES:
        raise LmlabError(f"unknown architecture {architecture!r}; choose one of {', '.join(ARCHITECTURES)}")
    run_dir, out = Path(run_dir), Path(out_hf_dir)
    _check_out_dir(run_dir, out)
    run = load_run(run_dir)
    c = run.model_config if run.model_type == "gpt" else None
    problems = _problems(run.model_type, c, run.tokenizer, architecture)
    if problems:
        raise LmlabError(f"{run_dir} cannot be exported to Hugging Face: " + "; ".join(problems))

    state = _full_state(run.model)
    if hf_architecture(c) == "gpt-neox":
        config, tensors = neox_config(c), neox_tensors(state, c)
    else:
        config, tensors = gpt2_config(c), gpt2_tensors(state)
    tok = run.tokenizer
    config.update({"vocab_size": c.vocab_size, "tie_word_embeddings": c.tie_embeddings, "use_cache": True,
                   "bos_token_id": tok.eos_id, "eos_token_id": tok.eos_id, "pad_token_id": tok.pad_id,
                   "torch_dtype": str(run.model.wte.weight.dtype).removeprefix("torch.")})

    out.mkdir(parents=True, exist_ok=True)
    written = write_hf_tokenizer(tok, out, model_max_length=c.block_size)
    for name in _OPTIONAL_FILES:
        if name not in written:
            (out / name).unlink(missing_ok=True)  # stale from an earlier export; GPT2Tokenizer would read it
    with atomic_output(out / "model.safetensors") as tmp:
        save_file({k: t.contiguous() for k, t in tensors.items()}, str(tmp), metadata={"format": "pt"})
    atomic_write_json(out / "config.json", config)  # last: a directory without it is visibly incomplete
    return out


def export_hf_gpt2(run_dir: str | os.PathLike, out_hf_dir: str | os.PathLike) -> Path:
    """`export_hf` restricted to GPT-2 (`GPT2LMHeadModel`): runs with rotary positions are refused, pointing to
    `export_hf`, which writes them as GPT-NeoX."""
    return export_hf(run_dir, out_hf_dir, architecture="gpt2")

