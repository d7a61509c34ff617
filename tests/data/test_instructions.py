"""Instruction files and the prompt template (lmlab.data.instructions)."""

from __future__ import annotations

import pytest

from lmlab.data.instructions import PromptTemplate, load_template, read_instructions, save_template
from lmlab.errors import LmlabError


def test_template_renders_prompts_documents_and_chats(tmp_path):
    t = PromptTemplate()
    assert t.prompt("Reverse it.", "cat") == "Reverse it.\ncat\nAnswer:<bos>"
    assert t.prompt("Hi?", marked=False) == "Hi?\nAnswer:"
    [ex] = read_instructions(_write(tmp_path, '{"instruction": "Reverse it.", "input": "cat", "response": "tac"}'))
    assert t.document(ex) == "Reverse it.\ncat\nAnswer:<bos> tac"
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"},
            {"role": "assistant", "content": "4"}, {"role": "user", "content": "3+3?"}]
    assert t.chat_prompt(chat, eos="<eos>") == "Be brief.\n2+2?\nAnswer:<bos> 4<eos>3+3?\nAnswer:<bos>"
    with pytest.raises(LmlabError, match="must end with a user message"):
        t.chat_prompt(chat[:3], eos="<eos>")
    save_template(tmp_path, t)
    assert load_template(tmp_path) == t and load_template(tmp_path / "nothing") is None


@pytest.mark.parametrize("line, message", [
    ('{"response": "x"}', 'needs a non-empty string field "instruction"'),
    ('{"instruction": "a", "response": 3}', 'needs a string field "response"'),
    ('{"instruction": "a", "input": [1], "response": "x"}', '"input" must be a string'),
    ("", "holds no examples"),
])
def test_bad_lines_are_named(tmp_path, line, message):
    with pytest.raises(LmlabError, match=message):
        read_instructions(_write(tmp_path, line))


def _write(tmp_path, text):
    path = tmp_path / "ex.jsonl"
    path.write_text(text + "\n")
    return path
