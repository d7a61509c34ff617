"""Writing a directory of files so that readers see the old one or the whole new one, never half of it."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from pathlib import Path
from typing import Iterator

from lmlab.data.shards import _swap_into_place
from lmlab.errors import LmlabError


def absolute_output(out_dir: str | os.PathLike, marker: str, what: str) -> Path:
    """`out_dir` made absolute, after refusing anything but a missing or empty directory or an earlier `what`
    (recognised by its `marker` file): a user's other files are never replaced."""
    out = Path(os.path.abspath(out_dir))
    if out.exists() and not (out / marker).is_file() and (not out.is_dir() or any(out.iterdir())):
        raise LmlabError(f"{out} exists and is not {what}; choose a new or empty directory")
    return out


@contextlib.contextmanager
def staged_directory(out: Path) -> Iterator[Path]:
    """Yield a fresh hidden temp dir beside `out`; when the block ends without error it replaces `out` (an atomic
    exchange where the OS offers one), otherwise it is deleted and `out` is left as it was."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        yield tmp
        _swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
