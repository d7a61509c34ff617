"""Where an attribution index or datastore may be written: never over a user's other files (the writing itself,
old directory or whole new one, is `lmlab.utils.staged_directory`)."""

from __future__ import annotations

import os
from pathlib import Path

from lmlab.errors import LmlabError


def absolute_output(out_dir: str | os.PathLike, marker: str, what: str) -> Path:
    """`out_dir` made absolute, after refusing anything but a missing or empty directory or an earlier `what`
    (recognised by its `marker` file): a user's other files are never replaced."""
    out = Path(os.path.abspath(out_dir))
    if out.exists() and not (out / marker).is_file() and (not out.is_dir() or any(out.iterdir())):
        raise LmlabError(f"{out} exists and is not {what}; choose a new or empty directory")
    return out
