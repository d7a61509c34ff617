"""Model definitions: GPT (decoder-only transformer) first; a registry maps type names to (config, model)."""

from lmlab.models.gpt import GPT, FrozenPrefix, GPTConfig, HookPoint, KVCache
from lmlab.models.presets import PRESETS, get_preset, preset_names
from lmlab.models.registry import build_config, build_model, get_model_type, model_types, register_model

__all__ = ["GPT", "FrozenPrefix", "GPTConfig", "HookPoint", "KVCache", "PRESETS", "get_preset", "preset_names",
           "build_config", "build_model", "get_model_type", "model_types", "register_model"]
