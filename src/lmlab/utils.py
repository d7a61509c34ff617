"""Small helpers shared by every floor: atomic writes (files and directories), file hashing, human-readable sizes, JSONL reading."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import json
import os
import re
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

from lmlab.errors import LmlabError


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` so a reader sees either the old file or the whole new one, never half of it."""
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path next to `path` (same filesystem, so the rename is atomic) for a writer that wants a file
    name (torch.save, safetensors); when the block ends without error the temp file is fsynced and renamed onto
    `path`, otherwise removed. LmlabError when `path` is a directory or its parent is a file."""
    path = Path(path)
    if path.is_dir():
        raise LmlabError(f"{path} is a directory; give the path of a file to write (e.g. {path / 'NAME'})")
    if path.parent.exists() and not path.parent.is_dir():
        raise LmlabError(f"{path.parent} is a file, so {path} cannot be written; choose another path")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """UTF-8 text version of `atomic_write_bytes`."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write `obj` as indented, key-sorted JSON, atomically (stable bytes for the same object)."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def new_sibling_dir(out: Path) -> Path:
    """Create and return a fresh hidden directory beside `out`, `.NAME.tmp-PID-RANDOM` (same filesystem, so it can
    be renamed onto `out`; the PID lets a later writer see that its owner is gone)."""
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir()
    return tmp


def swap_into_place(tmp_dir: Path, out_dir: Path) -> None:
    """Make directory `tmp_dir` become `out_dir`. An existing `out_dir` is exchanged atomically where possible
    (readers see the old or the new directory, never neither), otherwise moved aside first; the old one is then
    deleted."""
    if not out_dir.exists():
        os.rename(tmp_dir, out_dir)
    elif _rename_exchange(tmp_dir, out_dir):
        shutil.rmtree(tmp_dir)  # now holds the old directory
    else:
        old = tmp_dir.with_name(tmp_dir.name.replace(".tmp-", ".old-"))
        os.rename(out_dir, old)
        os.rename(tmp_dir, out_dir)
        shutil.rmtree(old)
    fsync_dir(out_dir.parent)


@contextlib.contextmanager
def staged_directory(out: Path) -> Iterator[Path]:
    """Yield a fresh hidden temp dir beside `out` (`new_sibling_dir`); when the block ends without error it
    replaces `out` (`swap_into_place`), otherwise it is deleted and `out` is left as it was. The directory-level
    `atomic_output`."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = new_sibling_dir(out)
    try:
        yield tmp
        swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _rename_exchange(a: Path, b: Path) -> bool:
    """Atomically exchange two paths (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    AT_FDCWD, RENAME_EXCHANGE = -100, 2
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0:
        return True
    if ctypes.get_errno() in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()), str(b))


def read_json_object(path: str | os.PathLike, *, damaged: str = "") -> dict[str, Any]:
    """The JSON object in the file `path`; LmlabError naming the file when it is not valid UTF-8 JSON or not an
    object. `damaged`: what a broken file means, appended to the message (e.g. "; the run dir is damaged")."""
    path = Path(path)
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise LmlabError(f"{path} is not valid JSON ({e}){damaged}") from None
    if not isinstance(value, dict):
        raise LmlabError(f"{path} must hold a JSON object{damaged}")
    return value


def sha256_file(path: str | os.PathLike, chunk_bytes: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks so large files need no memory."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_bytes):
            h.update(chunk)
    return h.hexdigest()


_SIZE_UNITS = {"": 1, "B": 1, "K": 1000, "KB": 1000, "M": 1000**2, "MB": 1000**2, "G": 1000**3, "GB": 1000**3,
               "KIB": 1024, "MIB": 1024**2, "GIB": 1024**3}


def parse_size(text: str | int) -> int:
    """'5MB' → 5_000_000 bytes (decimal units; KiB/MiB/GiB are binary). Plain integers are bytes."""
    if isinstance(text, int):
        return text
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*", str(text))
    unit = m.group(2).upper() if m else None
    if not m or unit not in _SIZE_UNITS:
        raise LmlabError(f"cannot read size {text!r}: write a number with an optional unit, e.g. 500KB, 5MB, 1GB")
    return int(float(m.group(1)) * _SIZE_UNITS[unit])


def human_bytes(n: float) -> str:
    """1234567 → '1.2 MB' (decimal units, as in parse_size)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def parse_json_line(line: str, where: str, *, hint: str = "") -> Any:
    """The JSON value on one line of a JSONL file; a one-line LmlabError starting with `where` ("FILE:LINE")
    when the line is not valid JSON, `hint` appended (e.g. "; regenerate the world")."""
    try:
        return json.loads(line)
    except json.JSONDecodeError as e:
        raise LmlabError(f"{where}: not a valid JSON line ({e.msg} at column {e.colno}); each line of a .jsonl "
                         f"file must be one JSON object{hint}") from None


def iter_jsonl(path: str | os.PathLike, *, missing: str | None = None, hint: str = "") -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line of a JSONL file; every line must be one JSON object.

    Errors are one-line `LmlabError`s in the `file:line: problem` form; `missing` replaces the message for a file
    that does not exist, `hint` is appended to parse errors (e.g. "; regenerate the world").
    """
    path = Path(path)
    if not path.is_file():
        raise LmlabError(missing or f"{path} does not exist")
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            rec = parse_json_line(line, f"{path}:{lineno}", hint=hint)
            if not isinstance(rec, dict):
                raise LmlabError(f"{path}:{lineno}: expected a JSON object per line{hint}")
            yield lineno, rec


def fsync_dir(path: str | os.PathLike) -> None:
    """Make renames and new entries in directory `path` durable (POSIX: they are data of the directory); a no-op
    where directories cannot be opened (Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
