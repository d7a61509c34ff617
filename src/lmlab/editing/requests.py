"""Edit requests: one normal form, read from the three shapes they come in.

An `EditRequest` is what every method and every metric reads:

    prompt        "The capital of {} is"   ('{}' marks where the subject goes)
    subject       "Vorland"
    target_new    "Gutaiholm"              (the object the model should say after the edit)
    target_true   "Batreiton" | None       (the object it says now; needed by the metrics, optional for editing)
    paraphrase_prompts, neighborhood_prompts, neighborhood_targets, generation_prompts: evaluation material
    case_id, kind                          bookkeeping from the source file

Accepted inputs (`request_from_record`, `load_requests`):
- simple records: {"prompt", "subject", "target_new" | "target", "target_true"?} (JSONL, one per line);
- the world's `edits.jsonl` (ROME's counterfact.json layout: requested_rewrite {prompt, subject, target_new {str},
  target_true {str}}, paraphrase_prompts, neighborhood_prompts, neighborhood_targets);
- EasyEdit's CounterFact JSON list (prompt with the subject written out, target_new, ground_truth,
  rephrase_prompt, locality_prompt, locality_ground_truth): the subject's first occurrence becomes '{}'.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

from lmlab.errors import LmlabError
from lmlab.utils import iter_jsonl


@dataclass
class EditRequest:
    """One fact to rewrite (see the module docstring for the fields)."""

    prompt: str
    subject: str
    target_new: str
    target_true: str | None = None
    paraphrase_prompts: list[str] = field(default_factory=list)
    neighborhood_prompts: list[str] = field(default_factory=list)
    neighborhood_targets: list[str] = field(default_factory=list)   # true answer per neighbourhood prompt
    generation_prompts: list[str] = field(default_factory=list)
    case_id: Any = None
    kind: str | None = None

    def __post_init__(self) -> None:
        check_request_fields(self.prompt, self.subject, self.target_new, self.target_true)
        if self.neighborhood_prompts and not self.neighborhood_targets and self.target_true:
            # CounterFact's convention: neighbours share the edited fact's true object.
            self.neighborhood_targets = [self.target_true] * len(self.neighborhood_prompts)
        if len(self.neighborhood_targets) != len(self.neighborhood_prompts):
            raise LmlabError(f"edit request {self.case_id}: {len(self.neighborhood_prompts)} neighbourhood prompts "
                             f"but {len(self.neighborhood_targets)} neighbourhood targets")

    @property
    def filled_prompt(self) -> str:
        """The edit prompt with the subject filled in."""
        return self.prompt.replace("{}", self.subject, 1)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_request_fields(prompt: Any, subject: Any, target_new: Any, target_true: Any = None) -> None:
    """LmlabError (one line, saying how to fix it) for an unusable prompt/subject/target."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise LmlabError("the prompt is empty; give a prompt with '{}' where the subject goes, "
                         "e.g. --prompt 'The capital of {} is'")
    if not isinstance(subject, str) or not subject.strip():
        raise LmlabError("the subject is empty; give the entity whose fact changes, e.g. --subject Vorland")
    if prompt.count("{}") != 1:
        raise LmlabError(f"the prompt {prompt!r} must contain '{{}}' exactly once, where the subject "
                         f"{subject!r} goes (e.g. 'The capital of {{}} is')")
    if not isinstance(target_new, str) or not target_new.strip():
        raise LmlabError("the target is empty; give the new object, e.g. --target Paris")
    if target_true is not None and (not isinstance(target_true, str) or not target_true.strip()):
        raise LmlabError("target_true is empty; leave it out or give the object the model says now")


def prompt_template(prompt: str, subject: str) -> str:
    """The edit prompt with '{}' where the subject goes: a prompt that has '{}' already is returned as it is, else
    the subject's first occurrence becomes '{}' ('The mother tongue of Danielle Darrieux is' + 'Danielle Darrieux'
    → 'The mother tongue of {} is'). LmlabError when the subject is not in the prompt."""
    if "{}" in prompt:
        return prompt
    if not isinstance(subject, str) or not subject or subject not in prompt:
        raise LmlabError(f"subject {subject!r} is not in the prompt {prompt!r}; write '{{}}' where the subject "
                         "goes, e.g. --prompt 'The capital of {} is'")
    return prompt.replace(subject, "{}", 1)


def _str_field(value: Any) -> Any:
    """ROME's {"str": "Paris"} or a plain string → the string."""
    return value.get("str") if isinstance(value, dict) else value


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def request_from_record(rec: Any) -> EditRequest:
    """An EditRequest from a simple record, a world/CounterFact edits.jsonl case or an EasyEdit CounterFact item."""
    if not isinstance(rec, dict):
        raise LmlabError("an edit request must be a JSON object with prompt, subject and target_new")
    if "requested_rewrite" in rec:  # ROME counterfact.json / the world's edits.jsonl
        rw = rec["requested_rewrite"]
        if not isinstance(rw, dict):
            raise LmlabError("'requested_rewrite' must be an object with prompt, subject, target_new, target_true")
        subject = rw.get("subject")
        return EditRequest(
            prompt=prompt_template(rw.get("prompt") or "", subject or ""), subject=subject,
            target_new=_str_field(rw.get("target_new")), target_true=_str_field(rw.get("target_true")),
            paraphrase_prompts=_as_list(rec.get("paraphrase_prompts")),
            neighborhood_prompts=_as_list(rec.get("neighborhood_prompts")),
            neighborhood_targets=_as_list(rec.get("neighborhood_targets")),
            generation_prompts=_as_list(rec.get("generation_prompts")),
            case_id=rec.get("case_id"), kind=rec.get("kind"))
    if "ground_truth" in rec or "rephrase_prompt" in rec:  # EasyEdit's CounterFact
        subject = rec.get("subject")
        loc = _as_list(rec.get("locality_prompt"))
        return EditRequest(
            prompt=prompt_template(rec.get("prompt") or "", subject or ""), subject=subject,
            target_new=_str_field(rec.get("target_new")), target_true=_str_field(rec.get("ground_truth")),
            paraphrase_prompts=_as_list(rec.get("rephrase_prompt")), neighborhood_prompts=loc,
            neighborhood_targets=_as_list(rec.get("locality_ground_truth")) if loc else [],
            case_id=rec.get("case_id"), kind="counterfact")
    target_new = rec.get("target_new", rec.get("target"))
    subject = rec.get("subject")
    prompt = rec.get("prompt")
    if isinstance(prompt, str) and "{}" not in prompt and isinstance(subject, str) and subject:
        prompt = prompt_template(prompt, subject)
    return EditRequest(prompt=prompt, subject=subject, target_new=_str_field(target_new),
                       target_true=_str_field(rec.get("target_true")),
                       paraphrase_prompts=_as_list(rec.get("paraphrase_prompts")),
                       neighborhood_prompts=_as_list(rec.get("neighborhood_prompts")),
                       neighborhood_targets=_as_list(rec.get("neighborhood_targets")),
                       generation_prompts=_as_list(rec.get("generation_prompts")),
                       case_id=rec.get("case_id"), kind=rec.get("kind"))


def as_requests(requests: Any) -> list[EditRequest]:
    """One request or many (EditRequest objects or records) → a non-empty list of EditRequest."""
    if isinstance(requests, (EditRequest, dict)):
        requests = [requests]
    out = [r if isinstance(r, EditRequest) else request_from_record(r) for r in requests]
    if not out:
        raise LmlabError("no edit requests given")
    return out


def requests_from_options(requests: str | os.PathLike | None = None, *, prompt: str | None = None,
                          subject: str | None = None, target: str | None = None, target_true: str | None = None,
                          limit: int | None = None) -> list[EditRequest]:
    """The requests of `lmlab edit`: the first `limit` of a requests file (`load_requests`), or one request from
    `prompt` (with '{}' where the subject goes, or with the subject written out), `subject`, `target` (the new
    object) and optionally `target_true`. LmlabError when both or neither are given."""
    if requests is not None:
        if prompt or subject or target:
            raise LmlabError("give either --requests FILE or --prompt/--subject/--target, not both")
        return load_requests(requests, limit=limit)
    if prompt is None or subject is None or target is None:
        raise LmlabError("give --prompt 'The capital of {} is' --subject S --target O (or --requests FILE)")
    return [EditRequest(prompt=prompt_template(prompt, subject), subject=subject, target_new=target,
                        target_true=target_true)]


def load_requests(path: str | os.PathLike, *, limit: int | None = None) -> list[EditRequest]:
    """Edit requests from a file: JSONL (one record per line) or a JSON list (CounterFact files).

    Errors name the file and line (JSONL) or item index (JSON list) of the first malformed record.
    A world directory is accepted too and means its edits.jsonl.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "edits.jsonl"
    if not path.is_file():
        raise LmlabError(f"requests file {path} does not exist; give a .jsonl of edit requests (e.g. a world's "
                         "edits.jsonl) or a CounterFact .json file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise LmlabError(f"{path} is not UTF-8 text") from None
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as e:
            raise LmlabError(f"{path}: not valid JSON (line {e.lineno}: {e.msg})") from None
        records: Iterable[tuple[str, Any]] = ((f"{path} item {i}", r) for i, r in enumerate(items))
    else:
        records = ((f"{path}:{lineno}", rec) for lineno, rec in iter_jsonl(path))
    out = []
    for where, rec in records:
        if limit is not None and len(out) >= limit:
            break
        try:
            out.append(request_from_record(rec))
        except LmlabError as e:
            raise LmlabError(f"{where}: {e}") from None
    if not out:
        raise LmlabError(f"{path} holds no edit requests")
    return out
