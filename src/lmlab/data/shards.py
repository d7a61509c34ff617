"""Token shards on disk: the writer (temp dir, then an atomic swap into place), the manifest, and validated loading.

A data dir holds
    train.bin, val.bin   raw little-endian token ids (uint16 when vocab_size ≤ 65535, else uint32), one flat
                         stream per split, `<eos>` after every document
    tokenizer.json       the tokenizer that made them (same file format as `Tokenizer.save`)
    manifest.json        written last; describes everything above (see `docs/data.md`)

Atomicity: `ShardWriter` writes into a hidden sibling temp dir `.NAME.tmp-PID-RANDOM`, writes the manifest last,
then swaps the temp dir into place with one rename (an atomic exchange where the OS offers it). A killed prepare
therefore leaves only a hidden temp dir (removed by the next prepare), never a manifest pointing at half-written
shards, and an existing data dir stays valid until the new one replaces it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from lmlab.errors import LmlabError
from lmlab.tokenization import Tokenizer
from lmlab.utils import atomic_write_json, fsync_dir, new_sibling_dir, sha256_file, swap_into_place

MANIFEST_NAME = "manifest.json"
TOKENIZER_NAME = "tokenizer.json"
FORMAT_VERSION = 1
SPLITS = ("train", "val")
DTYPES = {"uint16": np.dtype("<u2"), "uint32": np.dtype("<u4")}


def dtype_for_vocab(vocab_size: int) -> str:
    """'uint16' when every id fits in 16 bits with room to spare (vocab_size ≤ 65535), else 'uint32'."""
    return "uint16" if vocab_size <= 65535 else "uint32"


# ================================================================================================== writing ===
class ShardWriter:
    """Appends token ids per split into a temp dir; `commit(manifest_fields)` makes it the data dir atomically.

    Use as a context manager: leaving the block with an exception removes the temp dir and leaves any existing
    data dir untouched.
    """

    def __init__(self, out_dir: str | os.PathLike, tokenizer: Tokenizer):
        # absolute: `--out .` or `--out data/` must still have a real name and parent for the sibling temp dir
        self.out_dir = Path(os.path.abspath(out_dir))
        check_replaceable(self.out_dir)
        self.out_dir.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temp_dirs(self.out_dir)
        self.tokenizer = tokenizer
        self.dtype_name = dtype_for_vocab(tokenizer.vocab_size)
        self.dtype = DTYPES[self.dtype_name]
        self.tmp_dir = new_sibling_dir(self.out_dir)
        self._files = {s: open(self.tmp_dir / f"{s}.bin", "wb") for s in SPLITS}
        self._hash = {s: hashlib.sha256() for s in SPLITS}
        self.stats = {s: {"file": f"{s}.bin", "tokens": 0, "documents": 0, "text_bytes": 0} for s in SPLITS}

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()

    def write(self, split: str, ids: np.ndarray, *, documents: int, text_bytes: int) -> None:
        """Append `ids` (1-D integer array, `<eos>` already placed after each document) to `split`;
        `documents` and `text_bytes` (UTF-8 bytes of those documents' text, eos excluded) are tallied for the
        manifest."""
        data = np.ascontiguousarray(ids, dtype=self.dtype).tobytes()
        self._files[split].write(data)
        self._hash[split].update(data)
        st = self.stats[split]
        st["tokens"] += len(ids)
        st["documents"] += documents
        st["text_bytes"] += text_bytes

    def commit(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Finish the shards, write tokenizer.json and (last) manifest.json, and swap the temp dir into place.
        `fields` are extra manifest entries (dedup counts, sources, options). Returns the manifest."""
        for s, f in self._files.items():
            f.flush()
            os.fsync(f.fileno())
            f.close()
            self.stats[s]["sha256"] = self._hash[s].hexdigest()
        self.tokenizer.save(self.tmp_dir / TOKENIZER_NAME)
        manifest = {
            **fields,
            "lmlab_shards": FORMAT_VERSION,
            "dtype": self.dtype_name,
            "eos_id": self.tokenizer.eos_id,
            "tokenizer": {"kind": self.tokenizer.kind, "fingerprint": self.tokenizer.fingerprint,
                          "vocab_size": self.tokenizer.vocab_size, "file": TOKENIZER_NAME},
            "splits": self.stats,
        }
        atomic_write_json(self.tmp_dir / MANIFEST_NAME, manifest)
        fsync_dir(self.tmp_dir)
        swap_into_place(self.tmp_dir, self.out_dir)
        return manifest

    def abort(self) -> None:
        for f in self._files.values():
            f.close()
        shutil.rmtree(self.tmp_dir, ignore_errors=True)


def check_replaceable(out_dir: Path) -> None:
    """Refuse to replace anything but an empty directory or an lmlab data dir (never delete a user's files)."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise LmlabError(f"output {out_dir} exists and is not a directory; choose another --out")
    if (out_dir / MANIFEST_NAME).is_file() or not any(out_dir.iterdir()):
        return
    raise LmlabError(f"output directory {out_dir} is not empty and is not an lmlab data dir (no {MANIFEST_NAME}); "
                     "choose a new or empty --out directory")


_TEMP_RE = re.compile(r"\.(?P<name>.+)\.(tmp|old)-(?P<pid>\d+)-[0-9a-f]+$")


def remove_stale_temp_dirs(out_dir: Path) -> None:
    """Delete temp/old dirs of earlier prepares into `out_dir` whose process is gone (killed or crashed)."""
    for p in out_dir.parent.glob(f".{out_dir.name}.*-*-*"):
        m = _TEMP_RE.match(p.name)
        if not m or m["name"] != out_dir.name or _pid_alive(int(m["pid"])):
            continue
        shutil.rmtree(p, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ================================================================================================== loading ===
def load_manifest(data_dir: str | os.PathLike) -> dict[str, Any]:
    """Read and validate `DATA_DIR/manifest.json`; raises LmlabError when missing, unreadable or incomplete."""
    data_dir = Path(data_dir)
    path = data_dir / MANIFEST_NAME
    if data_dir.is_file():
        raise LmlabError(f"{data_dir} is a file, not a shard directory (made by `lmlab data prepare`); to train on "
                         f"raw text, use --text {data_dir}")
    if not data_dir.is_dir():
        raise LmlabError(f"data dir not found: {data_dir}; "
                         f"make one with `lmlab data prepare INPUT... --out {data_dir}`")
    if not path.is_file():
        raise LmlabError(f"no {MANIFEST_NAME} in {data_dir}: not a finished shard directory; "
                         f"(re-)run `lmlab data prepare INPUT... --out {data_dir}`")
    try:
        m = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise LmlabError(f"{path} is corrupted ({e}); re-run `lmlab data prepare`") from None
    if not isinstance(m, dict) or m.get("lmlab_shards") != FORMAT_VERSION:
        raise LmlabError(f"{path} is not an lmlab shard manifest of format {FORMAT_VERSION}; "
                         "re-run `lmlab data prepare`")
    try:
        ok = (m["dtype"] in DTYPES and isinstance(m["tokenizer"]["fingerprint"], str)
              and all(isinstance(m["splits"][s]["tokens"], int) and isinstance(m["splits"][s]["file"], str)
                      for s in m["splits"]))
    except (KeyError, TypeError):
        ok = False
    if not ok:
        raise LmlabError(f"{path} is missing fields or has wrong types; re-run `lmlab data prepare`")
    return m


def check_tokenizer(data_dir: str | os.PathLike, manifest: dict[str, Any], tokenizer: Tokenizer | str) -> None:
    """Raise LmlabError unless `tokenizer` (a Tokenizer or its fingerprint) is the one the shards were made with."""
    want = manifest["tokenizer"]["fingerprint"]
    got = tokenizer if isinstance(tokenizer, str) else tokenizer.fingerprint
    if got != want:
        raise LmlabError(f"shards in {data_dir} were made with tokenizer {want} but the model uses {got}; prepare "
                         "the text again with the model's tokenizer into a new directory (`lmlab data prepare "
                         "INPUT... --tokenizer RUN_DIR/tokenizer.json --out NEW_DIR`, leaving shards that other "
                         "runs use alone) and pass --data NEW_DIR")


def load_split(data_dir: str | os.PathLike, split: str = "train",
               tokenizer: Tokenizer | str | None = None) -> np.ndarray:
    """The token ids of one split as a read-only 1-D memmap (dtype from the manifest; no data read yet).

    Checks: the manifest is valid, the split exists, the .bin size equals tokens × dtype size (a truncated or
    overwritten shard is detected), and — when `tokenizer` (a Tokenizer or fingerprint string) is given — that it
    is the tokenizer the shards were made with.
    """
    data_dir = Path(data_dir)
    m = load_manifest(data_dir)
    if tokenizer is not None:
        check_tokenizer(data_dir, m, tokenizer)
    if split not in m["splits"]:
        raise LmlabError(f"{data_dir} has no split {split!r} (it has: {', '.join(m['splits'])})")
    entry = m["splits"][split]
    dtype = DTYPES[m["dtype"]]
    path = data_dir / entry["file"]
    if not path.is_file():
        raise LmlabError(f"shard {path} is missing; re-run `lmlab data prepare ... --out {data_dir}`")
    expected = entry["tokens"] * dtype.itemsize
    actual = path.stat().st_size
    if actual != expected:
        raise LmlabError(f"shard {path} is corrupted: {actual} bytes, but the manifest says {entry['tokens']} "
                         f"{m['dtype']} tokens = {expected} bytes; re-run `lmlab data prepare ... --out {data_dir}`")
    if entry["tokens"] == 0:  # mmap cannot map an empty file
        empty = np.zeros(0, dtype=dtype)
        empty.flags.writeable = False
        return empty
    return np.memmap(path, dtype=dtype, mode="r", shape=(entry["tokens"],))


def verify_shards(data_dir: str | os.PathLike) -> None:
    """Full check: every shard's SHA-256 equals the manifest's (reads all shards; `load_split` only checks sizes)."""
    data_dir = Path(data_dir)
    m = load_manifest(data_dir)
    for split, entry in m["splits"].items():
        load_split(data_dir, split)  # size check first: clearer message for truncation
        if "sha256" in entry:
            if sha256_file(data_dir / entry["file"]) != entry["sha256"]:
                raise LmlabError(f"shard {data_dir / entry['file']} is corrupted (SHA-256 differs from the manifest); "
                                 f"re-run `lmlab data prepare ... --out {data_dir}`")


def load_tokenizer_of(data_dir: str | os.PathLike) -> Tokenizer:
    """The tokenizer stored with the shards (checked against the manifest's fingerprint)."""
    data_dir = Path(data_dir)
    m = load_manifest(data_dir)
    tok = Tokenizer.load(data_dir / m["tokenizer"].get("file", TOKENIZER_NAME))
    if tok.fingerprint != m["tokenizer"]["fingerprint"]:
        raise LmlabError(f"{data_dir / TOKENIZER_NAME} does not match the manifest (fingerprint {tok.fingerprint}, "
                         f"expected {m['tokenizer']['fingerprint']}); re-run `lmlab data prepare`")
    return tok
