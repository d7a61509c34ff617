"""lmlab: the whole life of a small language model, readable end to end.

text → tokenizer → token shards → model → training → generation → evaluation → inspection → editing.
"""

__version__ = "0.1.0"
