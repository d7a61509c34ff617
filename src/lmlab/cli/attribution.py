"""`lmlab attribute index|count|find|trace|memorisation|knn|neighbours`: trace outputs back to training data
(lmlab.attribution)."""

from __future__ import annotations

from lmlab.cli.options import add_device, add_json, add_run_dir, dumps, int_list


def add_index_dir(p, help: str = "index location (default beside shards)") -> None:
    p.add_argument("--index-dir", default=None, metavar="DIR", help=help)


def add_data(p, help: str = "indexed shard dir (default: the run's)") -> None:
    p.add_argument("--data", default=None, metavar="DATA_DIR", help=help)


def add_sampling(p, *, temperature: float) -> None:
    """--temperature and --seed of the verbs that generate text before tracing it."""
    p.add_argument("--temperature", type=float, default=temperature,
                   help=f"sampling temperature (default {temperature:g}{': greedy' if temperature == 0 else ''})")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")


# ================================================================================================= index ===
def index_arguments(ix) -> None:
    ix.add_argument("data_dir", metavar="DATA_DIR", help="shard dir from `lmlab data prepare`")
    ix.add_argument("--splits", default="train", help="splits to index: train (default), all, or a list like "
                                                      "train,val (a held-out split should stay out)")
    add_index_dir(ix, "where to write it (default DATA_DIR/attribution-index)")


def cmd_index(args) -> int:
    """build the suffix-array index of a shard dir

    Build the exact-match index of DATA_DIR's shards, stored beside them (DATA_DIR/attribution-index) with the
    shards' fingerprint.
    """
    from lmlab.attribution import index
    from lmlab.attribution.suffix_array import describe_build

    print(describe_build(index(args.data_dir, splits=args.splits, index_dir=args.index_dir)))
    return 0


# ========================================================================================== count / find ===
def query_arguments(q) -> None:
    q.add_argument("data_dir", metavar="DATA_DIR", help="indexed shard dir")
    q.add_argument("text", metavar="TEXT", help="the text to look for")
    add_index_dir(q)
    add_json(q, "print JSON")


def find_arguments(q) -> None:
    query_arguments(q)
    q.add_argument("--limit", type=int, default=10, metavar="N", help="occurrences to show (default 10)")
    q.add_argument("--context", type=int, default=16, metavar="T", help="tokens of context either side (default 16)")


def cmd_count(args) -> int:
    """occurrences of a text in the indexed shards

    Occurrences of a text in the indexed shards (tokenized with the shards' tokenizer; build the index first).
    """
    from lmlab.attribution import count

    n = count(args.data_dir, args.text, index_dir=args.index_dir)
    print(f'{{"count": {n}}}' if args.json else n)
    return 0


def cmd_find(args) -> int:
    """where a text occurs: documents, offsets and context

    Where a text occurs: documents, offsets and context (tokenized with the shards' tokenizer; build the index
    first).
    """
    from lmlab.attribution import find
    from lmlab.attribution.reports import format_occurrences

    n, hits = find(args.data_dir, args.text, limit=args.limit, context=args.context, index_dir=args.index_dir)
    print(dumps({"count": n, "occurrences": [h.to_dict() for h in hits]}) if args.json
          else format_occurrences(n, hits))
    return 0


# ================================================================================================= trace ===
def trace_arguments(tr) -> None:
    add_run_dir(tr)
    add_data(tr)
    tr.add_argument("--prompt", default="", help="prompt text to continue")
    tr.add_argument("--text", default=None, help="trace this text as the completion instead of generating one")
    tr.add_argument("--max-new-tokens", type=int, default=48, metavar="N", help="tokens to generate (default 48)")
    add_sampling(tr, temperature=0.0)
    tr.add_argument("--min-len", type=int, default=4, metavar="T", help="shortest span in tokens (default 4)")
    tr.add_argument("--keep-fraction", type=float, default=0.05, metavar="F",
                    help="keep the ceil(F × tokens) rarest spans (default 0.05, as OLMoTrace)")
    tr.add_argument("--docs", type=int, default=10, metavar="N", help="documents per span (default 10)")
    add_index_dir(tr)
    add_json(tr, "print JSON")
    add_device(tr)


def cmd_trace(args) -> int:
    """generate, then mark the completion's verbatim training spans

    Generate a completion of --prompt with RUN_DIR's model, then mark the spans of the completion that occur
    verbatim in the training shards (OLMoTrace's procedure) and list their source documents.
    """
    from lmlab.attribution import trace
    from lmlab.attribution.reports import format_trace

    r = trace(args.run_dir, args.prompt, data_dir=args.data, index_dir=args.index_dir, text=args.text,
              max_new_tokens=args.max_new_tokens, temperature=args.temperature, seed=args.seed,
              min_len=args.min_len, keep_fraction=args.keep_fraction, docs_per_span=args.docs, device=args.device)
    print(dumps(r.to_dict()) if args.json else format_trace(r))
    return 0


# ========================================================================================== memorisation ===
def memorisation_arguments(mem) -> None:
    add_run_dir(mem)
    add_data(mem)
    mem.add_argument("--samples", type=int, default=32, metavar="N", help="texts to sample (default 32)")
    mem.add_argument("--max-new-tokens", type=int, default=64, metavar="N", help="tokens per sample (default 64)")
    mem.add_argument("--k", default="2,4,8,16,32", help="span lengths, comma-separated (default 2,4,8,16,32)")
    add_sampling(mem, temperature=1.0)
    mem.add_argument("--held-out", default="val", metavar="SPLIT", help="baseline split (default val)")
    add_index_dir(mem)
    add_json(mem, "print JSON")
    add_device(mem)


def cmd_memorisation(args) -> int:
    """share of sampled tokens inside training spans of ≥ k tokens

    Sample texts from RUN_DIR's model and report, per span length k, the share of their tokens inside verbatim
    training spans of at least k tokens, beside the same share for held-out documents (the baseline).
    """
    from lmlab.attribution import memorisation
    from lmlab.attribution.reports import format_memorisation

    ks = int_list(args.k, f"--k must be comma-separated integers, got {args.k!r}")
    r = memorisation(args.run_dir, data_dir=args.data, index_dir=args.index_dir, samples=args.samples,
                     max_new_tokens=args.max_new_tokens, ks=ks, temperature=args.temperature,
                     seed=args.seed, held_out_split=args.held_out, device=args.device)
    print(dumps(r.to_dict()) if args.json else format_memorisation(r))
    return 0


# =================================================================================================== knn ===
def knn_arguments(kn) -> None:
    add_run_dir(kn)
    add_data(kn, "shard dir (default: the run's)")
    kn.add_argument("--out", required=True, metavar="DATASTORE", help="directory to write")
    kn.add_argument("--layer", type=int, default=-1, help="block whose MLP input is the key (default -1: last)")
    kn.add_argument("--splits", default="train", help="splits to store (default train)")
    kn.add_argument("--index", dest="kind", default="flat", choices=["flat", "ivf"],
                    help="faiss index: flat (exact, default) or ivf (approximate, inverted lists)")
    kn.add_argument("--nlist", type=int, default=None, metavar="N", help="IVF lists (default ~4·√keys, at most 4096)")
    kn.add_argument("--max-tokens", type=int, default=None, metavar="N", help="store only the first N tokens")
    kn.add_argument("--batch-size", type=int, default=8, metavar="N", help="windows per forward pass (default 8)")
    add_device(kn)


def cmd_knn(args) -> int:
    """build a kNN-LM datastore of (MLP input, next token) over training shards

    Stream the training shards through RUN_DIR's model and store, for every position, the input of a block's MLP
    (after its LayerNorm) as the key and the next token as the value, in a faiss index (for kNN-LM and
    `neighbours`).
    """
    from lmlab.attribution import knn
    from lmlab.attribution.datastore import describe_datastore

    meta = knn(args.run_dir, args.out, data_dir=args.data, layer=args.layer, splits=args.splits, kind=args.kind,
               nlist=args.nlist, max_tokens=args.max_tokens, batch_size=args.batch_size, device=args.device)
    print(f"{describe_datastore(meta)} -> {args.out}")
    return 0


# ============================================================================================ neighbours ===
def neighbours_arguments(nb) -> None:
    add_run_dir(nb, "run dir the datastore was built with")
    nb.add_argument("--datastore", required=True, metavar="DIR", help="kNN datastore (`lmlab attribute knn`)")
    nb.add_argument("--prompt", required=True, help="the text")
    nb.add_argument("--position", type=int, default=-1, help="token position in the text (default -1: last)")
    nb.add_argument("--generate", type=int, default=0, metavar="N",
                    help="first extend the text by N greedy tokens (default 0)")
    nb.add_argument("--k", type=int, default=8, help="neighbours to show (default 8)")
    add_json(nb, "print JSON")
    add_device(nb)


def cmd_neighbours(args) -> int:
    """the training contexts nearest to one position of a text

    Explain a prediction by example: the k stored training contexts whose keys lie nearest to the key at --position
    of the text, with their documents and the token that came next in each.
    """
    from lmlab.attribution import neighbours
    from lmlab.attribution.reports import format_neighbours

    r = neighbours(args.run_dir, args.datastore, args.prompt, position=args.position, k=args.k,
                   max_new_tokens=args.generate, device=args.device)
    print(dumps(r.to_dict()) if args.json else format_neighbours(r))
    return 0
