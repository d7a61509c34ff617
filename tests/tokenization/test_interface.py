"""What every kind promises alike: special ids 0..3, ids as numpy arrays, range checks."""

import numpy as np
import pytest

from lmlab.errors import LmlabError
from lmlab.tokenization import train_tokenizer


@pytest.mark.parametrize("kind", ["char", "word", "bpe"])
def test_common_contract(kind, corpus):
    tok = train_tokenizer(kind, corpus, special_tokens=["<extract>"], progress=False)
    assert (tok.pad_id, tok.unk_id, tok.bos_id, tok.eos_id) == (0, 1, 2, 3)
    assert tok.token_to_id("<extract>") == 4 and tok.id_to_token(4) == "<extract>"
    text = "the cat sat on a mat."
    ids = tok.encode(text)
    assert all(0 <= i < tok.vocab_size for i in ids)
    assert tok.decode(np.array(ids, dtype=np.uint16)) == text  # shards hold numpy ids
    assert tok.encode_batch([text, ""]) == [ids, []]
    with pytest.raises(LmlabError, match="outside this tokenizer's vocabulary"):
        tok.decode([tok.vocab_size])
    with pytest.raises(LmlabError, match="outside"):
        tok.id_to_token(tok.vocab_size)
