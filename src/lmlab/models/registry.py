"""Model type name → (config class, model class). Run dirs record the type name, so loading knows what to build.

Later model families (lstm, bert, ngram, …) register themselves here with `register_model`.
"""

from __future__ import annotations

from typing import Any

import torch.nn as nn

from lmlab.errors import LmlabError
from lmlab.models.gpt import GPT, GPTConfig

_MODEL_TYPES: dict[str, tuple[type, type[nn.Module]]] = {}
# Named model settings of the non-GPT types (GPT's are in lmlab.models.presets): preset name → (type, settings).
_TYPE_PRESETS: dict[str, tuple[str, dict[str, Any]]] = {}
# The preset `lmlab train --model TYPE` uses when no --preset is given (types without presets are absent).
_DEFAULT_PRESETS: dict[str, str] = {}


def register_model(model_type: str, config_cls: type, model_cls: type[nn.Module], *,
                   presets: dict[str, dict[str, Any]] | None = None, default: str | None = None) -> None:
    """Make `model_type` buildable. config_cls needs `from_dict`/`to_dict`; model_cls(config) builds the model.
    presets: named config settings of this type; names are global. default: the preset used when none is named
    (required when there are several, so that no dict order decides what a user gets; with one, that one)."""
    presets = presets or {}
    if default is None and len(presets) > 1:
        raise ValueError(f"model type {model_type!r} registers {len(presets)} presets: name its default")
    if default is not None and default not in presets:
        raise ValueError(f"default preset {default!r} of model type {model_type!r} is not one of its presets")
    _MODEL_TYPES[model_type] = (config_cls, model_cls)
    for name, settings in presets.items():
        _TYPE_PRESETS[name] = (model_type, dict(settings))
    if presets:
        _DEFAULT_PRESETS[model_type] = default or next(iter(presets))


def preset_model_type(name: str | None) -> str | None:
    """The model type a registered preset name belongs to (None for GPT presets and unknown names)."""
    return _TYPE_PRESETS[name][0] if name in _TYPE_PRESETS else None


def type_presets(model_type: str) -> dict[str, dict[str, Any]]:
    """{preset name: settings} registered for `model_type`, in registration order."""
    return {name: dict(s) for name, (t, s) in _TYPE_PRESETS.items() if t == model_type}


def default_preset(model_type: str) -> str | None:
    """The preset `model_type` is trained with when none is named (None for a type without presets)."""
    return _DEFAULT_PRESETS.get(model_type)


def type_preset(model_type: str, name: str | None) -> dict[str, Any]:
    """Settings of preset `name` of `model_type` (its default preset when name is None; {} for a type without
    presets). A name that belongs to no preset of this type is an error listing the type's presets."""
    presets = type_presets(model_type)
    if not presets:
        return {}
    if name is None:
        return presets[_DEFAULT_PRESETS[model_type]]
    if name not in presets:
        raise LmlabError(f"{name!r} is not a preset of model type {model_type!r}; choose one of: "
                         f"{', '.join(presets)}")
    return presets[name]


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

# Classic language models (docs/models-classic.md). Imported after register_model exists, like the embeddings below.
from lmlab.models.lstm import BILSTM_PRESETS, LSTM_PRESETS, BiLSTMLM, LSTMConfig, LSTMLM  # noqa: E402
from lmlab.models.ngram import NGRAM_PRESETS, NGramConfig, NGramLM  # noqa: E402

# Default order 3 (NGramConfig's default and the docs'): the presets run ngram1…ngram5, so "the first preset"
# would silently be a unigram model.
register_model("ngram", NGramConfig, NGramLM, presets=NGRAM_PRESETS, default="ngram3")
register_model("lstm", LSTMConfig, LSTMLM, presets=LSTM_PRESETS)
register_model("bilstm", LSTMConfig, BiLSTMLM, presets=BILSTM_PRESETS)

# Word embeddings (docs/embeddings.md). Imported here, after register_model exists, so the registry stays the one
# place that knows every type name.
from lmlab.models.embeddings import CoocConfig, CountEmbeddings, PPMIConfig, Word2Vec, Word2VecConfig  # noqa: E402

register_model("cooc", CoocConfig, CountEmbeddings)
register_model("ppmi", PPMIConfig, CountEmbeddings)
# The type's default preset: the model keeps Word2VecConfig's defaults; its training settings (SGD-like lr, no
# weight decay) are in the recipe that names it (lmlab.recipes).
register_model("word2vec", Word2VecConfig, Word2Vec, presets={"word2vec-100": {}})

# BERT-style encoder with masked-LM pre-training (docs/models-bert.md).
from lmlab.models.bert import BERT, BERT_PRESETS, BERTConfig  # noqa: E402

register_model("bert", BERTConfig, BERT, presets=BERT_PRESETS)

# Encoder-decoder transformer: translation and T5 span corruption (docs/models-seq2seq.md).
from lmlab.models.seq2seq import SEQ2SEQ_PRESETS, Seq2Seq, Seq2SeqConfig  # noqa: E402

register_model("seq2seq", Seq2SeqConfig, Seq2Seq, presets=SEQ2SEQ_PRESETS)

# Text classifiers (docs/classification.md): trained by `lmlab finetune` on labelled documents.
from lmlab.models.classifiers import BERTClassifier, BERTClassifierConfig, BOWClassifier, BOWConfig, \
    GPTClassifier, GPTClassifierConfig, LSTMClassifier, LSTMClassifierConfig  # noqa: E402

register_model("bow", BOWConfig, BOWClassifier)
register_model("lstm_classifier", LSTMClassifierConfig, LSTMClassifier)
register_model("gpt_classifier", GPTClassifierConfig, GPTClassifier)
register_model("bert_classifier", BERTClassifierConfig, BERTClassifier)
