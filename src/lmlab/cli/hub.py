"""`lmlab import hf-gpt2` and `lmlab export hf|hf-gpt2`: run dirs to and from Hugging Face's formats."""

from __future__ import annotations

from lmlab.cli.options import add_run_dir


def import_hf_gpt2_arguments(ih) -> None:
    ih.add_argument("hf_dir", metavar="HF_DIR", help="Hugging Face GPT-2 directory")
    ih.add_argument("--out", required=True, metavar="RUN_DIR", help="run dir to write")


def cmd_import_hf_gpt2(args) -> int:
    """Hugging Face GPT-2 directory → run dir

    Convert a local Hugging Face GPT-2 directory (config.json, model.safetensors or pytorch_model.bin, vocab.json,
    merges.txt) into a run dir.
    """
    from lmlab.hub import import_hf_gpt2

    out = import_hf_gpt2(args.hf_dir, args.out)
    print(f"imported {args.hf_dir} → {out}")
    return 0


def export_hf_arguments(ea) -> None:
    add_run_dir(ea, "run dir of a GPT")
    ea.add_argument("--out", required=True, metavar="HF_DIR", help="directory to write")
    ea.add_argument("--architecture", default="auto", choices=("auto", "gpt2", "gpt-neox"),
                    help="Hugging Face architecture (default auto: GPT-NeoX for rotary positions, else GPT-2)")


def cmd_export_hf(args) -> int:
    """GPT run dir → Hugging Face model dir (GPT-2 or GPT-NeoX) + tokenizer

    Write a GPT run dir as a directory that transformers' AutoModelForCausalLM and AutoTokenizer load (same logits,
    same token ids): learned or sinusoidal positions as GPT-2, rotary (full or partial) as GPT-NeoX; BPE and char
    tokenizers as tokenizer.json. Runs that cannot map (post-LN, word tokenizer, non-GPT models) are refused with
    the reason.
    """
    from lmlab.hub import export_hf

    out = export_hf(args.run_dir, args.out, architecture=args.architecture)
    print(f"exported {args.run_dir} → {out} (AutoModelForCausalLM.from_pretrained and AutoTokenizer load it)")
    return 0


def export_hf_gpt2_arguments(eh) -> None:
    add_run_dir(eh)
    eh.add_argument("--out", required=True, metavar="HF_DIR", help="directory to write")


def cmd_export_hf_gpt2(args) -> int:
    """run dir → Hugging Face GPT-2 directory (`export hf` restricted to GPT-2)

    Write a run dir as a directory that transformers' GPT2LMHeadModel (and AutoModelForCausalLM / AutoTokenizer)
    load; runs with rotary positions are refused (use `lmlab export hf`, which writes them as GPT-NeoX).
    """
    from lmlab.hub import export_hf_gpt2

    out = export_hf_gpt2(args.run_dir, args.out)
    print(f"exported {args.run_dir} → {out}")
    return 0
