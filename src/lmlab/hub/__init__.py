"""Hugging Face interop from and to local files (nothing is downloaded).

    import_hf_gpt2(HF_DIR, RUN_DIR)   a Hugging Face GPT-2 directory → an lmlab run dir      (lmlab.hub.gpt2)
    export_hf(RUN_DIR, HF_DIR)        any GPT run → GPT-2 or GPT-NeoX + tokenizer files     (lmlab.hub.export)
    export_hf_gpt2(RUN_DIR, HF_DIR)   the same, GPT-2 only
"""

from lmlab.hub.export import ARCHITECTURES, export_hf, export_hf_gpt2, hf_architecture
from lmlab.hub.gpt2 import gpt_config_from_hf, import_hf_gpt2

__all__ = ["ARCHITECTURES", "export_hf", "export_hf_gpt2", "gpt_config_from_hf", "hf_architecture", "import_hf_gpt2"]
