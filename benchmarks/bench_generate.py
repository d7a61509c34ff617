"""Greedy decoding speed: lmlab's KV-cache `generate` with fp32, bf16 and int8 weight storage vs Hugging Face
`GPT2LMHeadModel.generate()` (fp32), same weights, with the machine's read bandwidth measured in the same run.

A GPT-2-124M-shaped model with random weights is built by `transformers`, saved, and imported through
`lmlab.hub.import_hf_gpt2` (so both sides run the very same numbers). A synthetic GPT-2-format vocab.json/merges.txt
(256 byte symbols, 50,000 two-byte merges, <|endoftext|> = 50256) stands in for GPT-2's files, which are not
downloaded. Every side decodes 128 new tokens greedily after the same 16-token prompts, at batch 1, 8 and 32, on the
same device; the script checks that our fp32 tokens agree with HF's (and reports how many bf16/int8 tokens agree
with fp32: the weights are random, so this says little about quality — see bench_weight_quality.py) and prints
tokens/s and our/their ratio. Each setting is timed `--repeats` times with all sides alternating and the best of
each kept (on a shared machine the load changes within seconds; alternating gives every side the same chances).

Bandwidth: the best of 5 reads (a sum, a dot product) of a 1 GiB fp32 vector with the same threads. Each decode's share of it is
(bytes of Linear weights read per step × steps/s) / bandwidth, steps/s = tokens/s ÷ batch: 100% means the decode
streams the weights as fast as the machine reads memory. Memory: the bytes of Linear weights each storage reads per
step, the conversion time (once per loaded model), and the process's resident memory after each storage's runs
(the fp32 model stays loaded beside the copies; see docs/generation.md, "Weight storage").

    python benchmarks/bench_generate.py [--new-tokens 128] [--repeats 3] [--batches 1,8,32] [--device cpu]

The last line is `RESULT bw_gb_s=... hf_tok_s_b1=... fp32_tok_s_b1=... bf16_tok_s_b1=... int8_tok_s_b1=...
int8_ratio_b1=... ... int8_weight_shrink=...` (tokens/s counts new tokens of all rows; ratios are against HF fp32).
"""

from __future__ import annotations

import argparse
import copy
import ctypes
import json
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

import torch


def gpt2_byte_symbols() -> list[str]:
    """GPT-2's printable stand-ins for the 256 byte values (bytes_to_unicode in OpenAI's encoder.py)."""
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for _, c in sorted(zip(bs, cs))]


def write_synthetic_gpt2_tokenizer(out: Path, n_merges: int = 50_000) -> None:
    symbols = gpt2_byte_symbols()
    vocab = {s: i for i, s in enumerate(symbols)}
    merges = []
    for a in symbols:
        for b in symbols:
            if len(merges) == n_merges:
                break
            merges.append(f"{a} {b}")
            vocab[a + b] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)  # 50256, as in GPT-2
    (out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")


def interleaved_best(fns: dict, rounds: int) -> dict[str, tuple[float, object]]:
    """Best wall time (s) and last result of each function, run in `rounds` alternating rounds (one call of each per
    round), so a change in the machine's load (other tenants) falls on all of them alike."""
    best: dict[str, tuple[float, object]] = {name: (float("inf"), None) for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            t = time.perf_counter()
            result = fn()
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            best[name] = (min(best[name][0], time.perf_counter() - t), result)
    return best


def read_bandwidth(gib: float = 1.0, rounds: int = 5) -> float:
    """The machine's read bandwidth in bytes/s with torch's current threads: the best of `rounds` reads of a `gib` GiB
    fp32 vector (far larger than any cache) by two streaming kernels, a sum and a dot product with itself (MKL's
    sdot), whichever reads faster (a one-thread sum can be compute-bound)."""
    x = torch.ones(int(gib * 2**30) // 4)
    best = float("inf")
    for _ in range(rounds):
        for read in (x.sum, lambda: torch.dot(x, x)):
            t = time.perf_counter()
            read()
            best = min(best, time.perf_counter() - t)
    return x.numel() * 4 / best


def resident_mb() -> float:
    """The process's resident memory now, in MB (Linux /proc; 0 elsewhere), after handing freed heap memory back
    to the OS (glibc keeps a conversion's temporaries otherwise, which would count as the copies' size)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except OSError:
        return 0.0


def linear_products_s(model, rows: int, new_tokens: int, rounds: int = 5) -> float:
    """Seconds for one decode step's Linear products alone (every nn.Linear once on `rows` one-token rows, with the
    weights as a decode of `new_tokens` tokens holds them): best of `rounds`. The rest of a step is attention,
    normalisation, sampling and Python."""
    from lmlab.generation import eval_mode
    from lmlab.generation.cpu_kernels import decode_rows, onednn_linears

    linears = [m for m in model.modules() if type(m) is torch.nn.Linear]
    inputs = {m.in_features: torch.randn(rows, 1, m.in_features) for m in linears}
    best = float("inf")
    with eval_mode(model), onednn_linears(model, rows=decode_rows(rows, new_tokens)):
        for _ in range(rounds + 1):  # the first round converts / warms up
            t = time.perf_counter()
            for m in linears:
                m(inputs[m.in_features])
            best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--prompt-tokens", type=int, default=16)
    ap.add_argument("--batches", default="1,8,32", help="batch sizes, comma-separated (default 1,8,32)")
    ap.add_argument("--repeats", type=int, default=3,
                    help="timed runs per setting, all sides alternating (the best of each is kept; default 3)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()

    import transformers

    from lmlab.checkpoint import load_run
    from lmlab.generation import STORAGES, generate, set_weight_storage
    from lmlab.generation.weight_storage import linear_weight_bytes
    from lmlab.hub import import_hf_gpt2

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        hf = transformers.GPT2LMHeadModel(transformers.GPT2Config()).eval()  # 12 layers, 12 heads, 768, 50257
        hf.save_pretrained(tmp / "hf")
        write_synthetic_gpt2_tokenizer(tmp / "hf")
        run = load_run(import_hf_gpt2(tmp / "hf", tmp / "run"), device=args.device)
    hf = hf.to(args.device)
    model, tok = run.model, run.tokenizer
    bandwidth = read_bandwidth()
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads, CPU capability {torch.backends.cpu.get_cpu_capability()}), "
          f"transformers {transformers.__version__}, device {args.device}; read bandwidth {bandwidth / 1e9:.1f} GB/s")
    print(f"model: GPT-2 124M shape, {model.num_params(non_embedding=False) / 1e6:.1f}M params, random weights")

    # One model per storage, sharing the fp32 parameters (the modules are copies, so each has its own converted
    # weights): the storages alternate within a setting without converting between calls.
    models, weight_mb = {}, {}
    for storage in STORAGES:
        m = model if storage == "fp32" else copy.deepcopy(model, memo={id(p): p for p in model.parameters()})
        before, t = resident_mb(), time.perf_counter()
        set_weight_storage(m, storage)
        models[storage] = m
        weight_mb[storage] = linear_weight_bytes(m, storage) / 1e6
        if storage != "fp32":
            print(f"{storage}: Linear weights {weight_mb[storage]:.0f} MB (fp32 {weight_mb['fp32']:.0f} MB, "
                  f"{weight_mb['fp32'] / weight_mb[storage]:.2f}x smaller); converted in "
                  f"{time.perf_counter() - t:.1f} s, resident memory +{resident_mb() - before:.0f} MB")

    results: dict[tuple[str, int], float] = {}
    for batch in [int(b) for b in args.batches.split(",")]:
        g = torch.Generator().manual_seed(batch)
        prompts = torch.randint(0, 50256, (batch, args.prompt_tokens), generator=g)
        n_new = args.new_tokens

        def ours(storage):
            return lambda: generate(models[storage], tok, prompts.tolist(), max_new_tokens=n_new, temperature=0)

        def theirs():
            with torch.inference_mode():
                ids = prompts.to(args.device)
                return hf.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=n_new,
                                   min_new_tokens=n_new, pad_token_id=tok.eos_id)

        # warm-up (allocators, kernels, the oneDNN copies) on a short run of each
        for storage in STORAGES:
            generate(models[storage], tok, prompts.tolist(), max_new_tokens=n_new if batch == 1 else 32,
                     temperature=0)
        with torch.inference_mode():
            hf.generate(prompts.to(args.device), attention_mask=torch.ones_like(prompts.to(args.device)),
                        do_sample=False, max_new_tokens=4, pad_token_id=tok.eos_id)
        timings = interleaved_best({"hf": theirs, **{s: ours(s) for s in STORAGES}}, args.repeats)
        t_hf, hf_out = timings["hf"]
        hf_tps = batch * n_new / t_hf
        results["hf", batch] = hf_tps
        hf_new = hf_out[:, args.prompt_tokens:].tolist()
        fp32_out = timings["fp32"][1]
        if not all(c.tokens == h[:len(c.tokens)] for c, h in zip(fp32_out, hf_new)):
            raise SystemExit(f"greedy tokens differ from HF's at batch {batch}: the comparison is invalid")
        print(f"batch {batch}: HF generate (fp32) {hf_tps:7.1f} tok/s ({t_hf:.2f} s), "
              f"{weight_mb['fp32'] * 1e6 * hf_tps / batch / bandwidth:.0%} of bandwidth; fp32 tokens agree with HF")
        for storage in STORAGES:
            t, out = timings[storage]
            tps = batch * n_new / t
            results[storage, batch] = tps
            agree = sum(a == b for c, f in zip(out, fp32_out) for a, b in zip(c.tokens, f.tokens))
            total = sum(len(f.tokens) for f in fp32_out)
            products = linear_products_s(models[storage], batch, n_new)
            print(f"  ours {storage}: {tps:7.1f} tok/s ({t:.2f} s) | {tps / hf_tps:.2f}x HF | "
                  f"{weight_mb[storage] * 1e6 * tps / batch / bandwidth:.0%} of bandwidth | "
                  f"{agree}/{total} tokens as fp32 | Linear products alone {products * 1e3:.1f} ms/step "
                  f"({products * tps / batch:.0%} of a step; "
                  f"{weight_mb[storage] * 1e6 / products / bandwidth:.0%} of bandwidth)")

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3
    print(f"peak resident memory of the process (HF model and all storages loaded together): {peak:.0f} MB; "
          f"now {resident_mb():.0f} MB")
    fields = [f"bw_gb_s={bandwidth / 1e9:.1f}"]
    for batch in sorted({b for _, b in results}):
        fields.append(f"hf_tok_s_b{batch}={results['hf', batch]:.1f}")
        fields += [f"{s}_tok_s_b{batch}={results[s, batch]:.1f}" for s in STORAGES]
        fields += [f"{s}_ratio_b{batch}={results[s, batch] / results['hf', batch]:.2f}" for s in STORAGES]
    fields.append(f"int8_weight_shrink={weight_mb['fp32'] / weight_mb['int8']:.2f}")
    print("RESULT " + " ".join(fields))


if __name__ == "__main__":
    main()
