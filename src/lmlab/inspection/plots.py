"""Figure output shared by the inspection plots.

Figures are built as `matplotlib.figure.Figure` objects, never through pyplot, so no display and no global backend
switch are needed (a notebook's backend is left alone), and PNGs are written atomically.
"""

from __future__ import annotations

import os
from pathlib import Path

from lmlab.errors import LmlabError
from lmlab.utils import atomic_output


def new_figure(width: float, height: float):
    """A pyplot-free matplotlib Figure of the given size in inches."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def save_figure(fig, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Save `fig` as a PNG at `path` (temp file + rename, so no half-written image)."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise LmlabError(f"figure path {path} must end in .png")
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return path
