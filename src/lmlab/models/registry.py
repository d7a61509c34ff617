"""Model type name → (config class, model class). Run dirs record the type name, so loading knows what to build.

Later model families (lstm, bert, ngram, …) register themselves here with `register_model`.
"""

from __future__ import annotations

from typing import Any

import torch.nn as nn

from lmlab.errors import LmlabError
from lmlab.models.gpt import GPT, GPTConfig

_MODEL_TYPES: dict[str, tuple[type, type[nn.Module]]] = {}


def register_model(model_type: str, config_cls: type, model_cls: type[nn.Module]) -> None:
    """Make `model_type` buildable. config_cls needs `from_dict`/`to_dict`; model_cls(config) builds the model."""
    _MODEL_TYPES[model_type] = (config_cls, model_cls)


def model_types() -> list[str]:
    return sorted(_MODEL_TYPES)


def get_model_type(model_type: str) -> tuple[type, type[nn.Module]]:
    """(config class, model class) of a registered type name."""
    if model_type not in _MODEL_TYPES:
        raise LmlabError(f"unknown model type {model_type!r}; known: {', '.join(model_types())}")
    return _MODEL_TYPES[model_type]


def build_config(model_type: str, config_dict: dict[str, Any]):
    """The typed config of `model_type` from a plain dict (unknown keys are an error)."""
    config_cls, _ = get_model_type(model_type)
    return config_cls.from_dict(dict(config_dict))


def build_model(model_type: str, config_dict: dict[str, Any]) -> nn.Module:
    """A freshly initialised model of `model_type` with the given config dict."""
    _, model_cls = get_model_type(model_type)
    return model_cls(build_config(model_type, config_dict))


register_model("gpt", GPTConfig, GPT)

# Word embeddings (docs/embeddings.md). Imported here, after register_model exists, so the registry stays the one
# place that knows every type name.
from lmlab.models.embeddings import CoocConfig, CountEmbeddings, PPMIConfig, Word2Vec, Word2VecConfig  # noqa: E402

register_model("cooc", CoocConfig, CountEmbeddings)
register_model("ppmi", PPMIConfig, CountEmbeddings)
register_model("word2vec", Word2VecConfig, Word2Vec)
