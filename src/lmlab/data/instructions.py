"""Instruction data and the prompt template that turns it into text (supervised fine-tuning, "instruct" models).

An instruction file is JSONL, one example per line:

    {"instruction": "Which city is the capital of Braria?", "response": "Grunalgrad"}
    {"instruction": "Unscramble the letters into a word.", "input": "aivod", "response": "avoid"}

`input` is optional; other fields (the world's `type`, `phrasing`, ...) are kept and ignored here.

The template renders an example as one document of the token stream:

    prompt  = "{instruction}\\n{input}\\nAnswer:"        ("{instruction}\\nAnswer:" without input)
    text    = prompt + "<bos>" + " " + response,  then <eos>

`<bos>` marks where the response starts. lmlab's GPT training never puts `<bos>` in its shards (a document starts
after the previous one's `<eos>`), so the token is free, and it is what a seq2seq decoder starts its output with:
the instruction-tuned model reads `... Answer:<bos>` and writes ` response<eos>`. Fine-tuning puts the loss on the
response and its `<eos>` only (lmlab.training.instruct); generation stops at `<eos>`. The tokenizer and its ids stay
the base model's, so shards, perplexity and every other tool work on the tuned run unchanged. The prompt without
`<bos>` is the plain prompt a base model is asked zero- or few-shot.

A tuned run dir records its template as `template.json`; `load_template(run_dir)` reads it (None: no template).
Chat messages (OpenAI format) render as one template prompt per user turn, each earlier assistant turn written as
its response and `<eos>` (the document boundary the model knows), ending with the last user turn's prompt.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Sequence

from lmlab.errors import LmlabError
from lmlab.utils import atomic_write_json, iter_jsonl

TEMPLATE_FILE = "template.json"  # in a run dir: the prompt template the run was tuned with
TEMPLATE_FORMAT = 1


@dataclass(frozen=True)
class InstructionExample:
    """One instruction → response pair; `input` is "" when the example has none; `fields` holds the whole record."""

    instruction: str
    response: str
    input: str = ""
    fields: dict | None = None


@dataclass(frozen=True)
class PromptTemplate:
    """How an instruction (and its input) becomes a prompt, and where the response goes (see the module docstring)."""

    with_input: str = "{instruction}\n{input}\nAnswer:"  # format string: the prompt of an example with input
    without_input: str = "{instruction}\nAnswer:"        # ... and of one without
    response_start: str = "<bos>"    # special token written between prompt and response: the loss starts after it
    response_prefix: str = " "       # written before the response (BPE words carry their leading space)

    def prompt(self, instruction: str, input: str = "", *, marked: bool = True) -> str:
        """The prompt text; `marked=False` leaves out `response_start` (the plain prompt a base model is asked)."""
        text = (self.with_input if input else self.without_input).format(instruction=instruction, input=input)
        return text + self.response_start if marked else text

    def document(self, example: InstructionExample) -> str:
        """The training text of an example (its `<eos>` is added as an id by the caller)."""
        return self.prompt(example.instruction, example.input) + self.response_prefix + example.response

    def chat_prompt(self, messages: Sequence[dict[str, str]], eos: str) -> str:
        """The prompt of an OpenAI-style conversation [{"role", "content"}, ...], ending with a user turn.

        System messages go, one per line, before the first user turn's instruction; each assistant turn is written
        as a response followed by `eos` (the tokenizer's end-of-document token string). LmlabError for an empty
        conversation, an unknown role, or one that does not end with a user message."""
        system = [m["content"] for m in messages if m["role"] == "system"]
        turns = [m for m in messages if m["role"] != "system"]
        if not turns or turns[-1]["role"] != "user":
            raise LmlabError("the conversation must end with a user message (the instruction to answer)")
        parts: list[str] = []
        for m in turns:
            if m["role"] == "user":
                instruction = "\n".join(system + [m["content"]]) if not parts else m["content"]
                parts.append(self.prompt(instruction))
            elif m["role"] == "assistant":
                parts.append(self.response_prefix + m["content"] + eos)
            else:
                raise LmlabError(f"unknown message role {m['role']!r}; use system, user or assistant")
        return "".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"format": TEMPLATE_FORMAT, **asdict(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PromptTemplate":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known - {"format"})
        if d.get("format", TEMPLATE_FORMAT) != TEMPLATE_FORMAT or unknown:
            raise LmlabError(f"prompt template of format {d.get('format')!r} with fields {unknown or 'as expected'}"
                             f" is not one this lmlab reads (format {TEMPLATE_FORMAT}: {', '.join(sorted(known))})")
        if not all(isinstance(d.get(k, ""), str) for k in known):
            raise LmlabError(f"prompt template fields must be strings: {', '.join(sorted(known))}")
        return cls(**{k: d[k] for k in known if k in d})


def save_template(run_dir: str | os.PathLike, template: PromptTemplate) -> Path:
    """Write RUN_DIR/template.json atomically; returns its path."""
    path = Path(run_dir) / TEMPLATE_FILE
    atomic_write_json(path, template.to_dict())
    return path


def load_template(run_dir: str | os.PathLike) -> PromptTemplate | None:
    """The template recorded in a run dir, or None when the run has none (it was not instruction-tuned)."""
    path = Path(run_dir) / TEMPLATE_FILE
    if not path.is_file():
        return None
    import json

    try:
        return PromptTemplate.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except ValueError as e:
        raise LmlabError(f"{path} is not valid JSON ({e}); re-run the fine-tuning") from None


def read_instructions(path: str | os.PathLike) -> list[InstructionExample]:
    """The examples of an instruction JSONL file, in file order. LmlabError (file:line) for a missing file, a line
    without a non-empty string `instruction` or a string `response`, a non-string `input`, or an empty file."""
    out: list[InstructionExample] = []
    for lineno, rec in iter_jsonl(path, missing=f"instruction file {path} does not exist"):
        instruction, response, given = rec.get("instruction"), rec.get("response"), rec.get("input", "")
        if not isinstance(instruction, str) or not instruction.strip():
            raise LmlabError(f"{path}:{lineno}: needs a non-empty string field \"instruction\"")
        if not isinstance(response, str):
            raise LmlabError(f"{path}:{lineno}: needs a string field \"response\"")
        if given is None:
            given = ""
        if not isinstance(given, str):
            raise LmlabError(f"{path}:{lineno}: \"input\" must be a string when present")
        out.append(InstructionExample(instruction, response, given, rec))
    if not out:
        raise LmlabError(f"instruction file {path} holds no examples")
    return out
