"""What the experiment scripts share: running an lmlab command and recording it for the write-up."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LMLAB = [sys.executable, "-m", "lmlab"]


def shown(cmd: list) -> str:
    """The command as a user would type it: `lmlab ...` for `python -m lmlab ...`."""
    cmd = [str(c) for c in cmd]
    if cmd[:len(LMLAB)] == LMLAB:
        return "lmlab " + " ".join(shlex.quote(c) for c in cmd[len(LMLAB):])
    return " ".join(shlex.quote(c) for c in cmd)


def sh(cmd: list, log: list[str], *, capture: bool = False) -> str:
    """Run a command (strings or paths) from the repository root, stopping the experiment if it fails; append it
    to `log`. With `capture`, return its standard output (otherwise it goes to the terminal, and "" is returned)."""
    log.append(shown(cmd))
    print(f"$ {log[-1]}", file=sys.stderr, flush=True)
    done = subprocess.run([str(c) for c in cmd], check=True, cwd=REPO, stdout=subprocess.PIPE if capture else None, text=True)
    return done.stdout if capture else ""
