"""What `lmlab inspect memories|lens|attention` and `lmlab locate` print: text reports of the results of
`lmlab.inspection.commands` (the JSON-ready dicts those functions return)."""

from __future__ import annotations

from typing import Any


def _percent(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def format_memories(r: dict[str, Any]) -> str:
    """`inspect_memories`' result: per layer the strongest keys, the tokens their values promote and their top
    trigger prefixes; then, given a corpus, the per-layer agreement rates beside their baselines."""
    pos = r["position"]
    lines = [f"prompt {r['prompt']!r}: {len(r['tokens'])} tokens; keys read at position {pos} "
             f"{repr(r['tokens'][pos])}",
             "coefficient m_i of key i (blocks.L.mlp.post); tokens its value v_i promotes (E·v_i, top 5)"]
    for entry in r["layers"]:
        lines.append(f"layer {entry['layer']}:")
        for k in entry["keys"]:
            promoted = " ".join(repr(p["token"]) for p in k["promotes"])
            lines.append(f"  key {k['key']:>5}  m={k['coefficient']:7.3f}  |v|={k['value_norm']:.3f}  "
                         f"promotes {promoted}")
            for t in k.get("triggers", []):
                prefix = t["prefix"][-60:].replace("\n", " ")
                lines.append(f"      trigger m={t['activation']:6.3f}  ...{prefix!r} → {repr(t['next_token'])}")
    if r["corpus"] is None:
        lines.append(f"({r['corpus_note']})")
        return "\n".join(lines)
    c = r["corpus"]
    lines.append(f"agreement: value top token = next token after the key's top trigger ({c['windows']} windows × "
                 f"{c['window']} tokens of the {c['split']} split)")
    lines.append(f"  {'layer':>5}  {'keys':>6}  {'agreement':>9}  {'shuffled':>8}  {'uniform':>8}")
    for a in r["agreement"]:
        lines.append(f"  {a['layer']:>5}  {a['n_keys']:>6}  {_percent(a['agreement']):>9}  "
                     f"{_percent(a['baseline_shuffled']):>8}  {_percent(a['baseline_uniform']):>8}")
    return "\n".join(lines)


def format_lens(r: dict[str, Any]) -> str:
    """`inspect_lens`' result: per position, the top next tokens after each layer."""
    lines = [f"logit lens on {r['prompt']!r} ({len(r['tokens'])} tokens): final norm + unembedding after each layer"]
    for i, p in enumerate(r["positions"]):
        lines.append(f"position {p} {repr(r['tokens'][p])} → next token:")
        for st in r["stages"]:
            tops = "  ".join(f"{repr(t['token'])} {t['prob']:.3f}" for t in st["positions"][i]["top"])
            lines.append(f"  {st['stage']:>9}  {tops}")
    return "\n".join(lines)


def format_attention(r: dict[str, Any]) -> str:
    """`inspect_attention`' result: the figure written, and the key each head's last query attends to most."""
    toks = r["tokens"]
    lines = [f"attention on {r['prompt']!r} ({len(toks)} tokens); heatmaps written to {r['figure']}",
             f"key each head's last query ({repr(toks[-1])}) attends to most:"]
    for i, layer in enumerate(r["layers"]):
        heads = "  ".join(f"H{h} {repr(toks[am[-1]])} {r['patterns'][i][h][-1][am[-1]]:.2f}"
                          for h, am in enumerate(r["argmax"][i]))
        lines.append(f"  layer {layer}: {heads}")
    return "\n".join(lines)


def format_locate(r: dict[str, Any]) -> str:
    """`locate`'s result: one fact's probabilities and peak indirect effects, or the average over facts as a
    table of indirect effects by token bucket and layer; then the files written."""
    lines = _one_trace_lines(r) if "subject_range" in r else _average_trace_lines(r)
    lines.append("wrote " + ", ".join(r["files"]))
    return "\n".join(lines)


def _one_trace_lines(r: dict[str, Any]) -> list[str]:
    s, e = r["subject_range"]
    lines = [f"causal trace of {r['prompt']!r} → {repr(r['target_token'])} (subject tokens {s}..{e - 1}: "
             f"{''.join(r['tokens'][s:e])!r}; {r['samples']} noise samples, ν={r['noise_std']:.4f}, "
             f"window {r['window']})",
             f"  P_clean {r['clean_prob']:.4f}   P_corrupted {r['corrupted_prob']:.4f}   "
             f"total effect {r['total_effect']:.4f}" + ("" if r["known"] else "   (not the model's top prediction)")]
    for kind, pk in r["peaks"].items():
        lines.append(f"  {kind:>5}: largest indirect effect {pk['ie']:.4f} at layer {pk['layer']}, token "
                     f"{pk['token']} {repr(pk['token_text'])}")
    return lines


def _average_trace_lines(r: dict[str, Any]) -> list[str]:
    used = "known facts" if r["known_only"] and r["n_known"] else "facts"
    lines = [f"average causal trace over {r['n_used']} {used} ({r['n_known']} of {r['n_facts']} predicted "
             f"correctly; {r['samples']} noise samples, ν={r['noise_std']:.4f}, window {r['window']})",
             f"  P_clean {r['clean_prob']:.4f}   P_corrupted {r['corrupted_prob']:.4f}   "
             f"total effect {r['total_effect']:.4f}"]
    n_layers = len(next(iter(r["indirect_effect"].values()))[0])
    for kind, table in r["indirect_effect"].items():
        lines.append(f"  {kind} indirect effect by token bucket (columns: layers 0..{n_layers - 1}):")
        for name, row in zip(r["buckets"], table):
            cells = " ".join("     -" if v is None else f"{v:6.3f}" for v in row)
            lines.append(f"    {name:>23} {cells}")
        pk = r["peaks"][kind]
        lines.append(f"    peak: {pk['ie']:.4f} at layer {pk['layer']}, {pk['bucket']}")
    return lines
