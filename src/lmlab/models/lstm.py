"""Recurrent language models: a stacked LSTM LM, and a bidirectional ELMo-style LSTM LM.

Layout (one direction):

    idx (B,T) ──► wte ─► dropout ─► LSTM layer 1 ─► dropout ─► … ─► LSTM layer L ─► dropout
              ──► [proj: Linear(n_hidden → proj_size), a smaller softmax input] ─► lm_head (tied to wte or not)

Objectives (nats, mean over predicted tokens):
    lstm:    L = −(1/T) Σ_t log p(x_{t+1} | x_{≤t})                          (forward LM, Zaremba et al. 2014)
    bilstm:  L = ½ [ −(1/T) Σ_t log p(x_{t+1} | x_{≤t})  −  (1/(T−1)) Σ_{t≥1} log p(x_{t−1} | x_{≥t}) ]
             forward and backward LSTM stacks with their own weights; the token embedding and the softmax
             (proj + lm_head) are shared by both directions (Peters et al. 2018, "Deep contextualized word
             representations", §3.1). Within a training window the backward LM predicts x_{t−1} for t = 1..T−1.

`forward(idx, targets)` returns (logits (B,T,V) of the forward LM, loss). For `bilstm` the logits — hence
`lmlab score`, `lmlab sample` and `lmlab eval ppl` — are the forward direction's; the loss (what training
optimises and reports as train/val loss) is the mean of both directions.

Truncated BPTT with carried state (`carry_state=True`, lstm only): in training mode the model keeps the final
(h, c) of each batch row, detached (gradients stop at the batch boundary), and starts the next batch from it. The
trainer sees `wants_contiguous_streams` and feeds contiguous streams (`lmlab.training.streams`), so row i of each
batch continues row i of the previous one. In eval mode (evaluation, scoring, generation) every call starts from
a zero state and the carried training state is left alone. The carried state is not saved: a resumed run restarts
it from zeros.

Contextual vectors: `contextual_vectors(idx)` returns one (B,T,D) tensor per LSTM layer: for `bilstm` D = 2·n_hidden,
the concatenation [forward state at t (saw x_{≤t}); backward state at t (saw x_{≥t})] — ELMo's layer
representations; for `lstm` D = n_hidden (forward only). `export_contextual_vectors(run, text)` does it for a
loaded run dir.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from lmlab.errors import LmlabError
from lmlab.models.config_dict import ConfigDictMixin, check_sizes, check_unit_interval


# ========================================================================================================= config ===
@dataclass
class LSTMConfig(ConfigDictMixin):
    """Shape of an LSTM LM (type `lstm`) or a bidirectional LSTM LM (type `bilstm`)."""

    config_label = "LSTM config"  # names this config in error messages

    vocab_size: int = 256        # rows of the embedding and the softmax (the trainer sets it to the tokenizer's)
    n_embd: int = 128            # token embedding width (the input of the first LSTM layer)
    n_hidden: int = 256          # LSTM hidden/cell size of every layer (per direction)
    n_layer: int = 2             # stacked LSTM layers (per direction)
    dropout: float = 0.2         # dropout on the embedding, between layers and before the softmax (training only)
    proj_size: int = 0           # >0: project the last layer's state to this width before the softmax (cheaper)
    tie_embeddings: bool = False  # share wte with lm_head; needs the softmax input width (proj_size or n_hidden)
                                  # to equal n_embd
    block_size: int = 128        # training window = BPTT length; also the scoring/generation context
    carry_state: bool = False    # truncated BPTT: carry (h, c) across consecutive training batches (lstm only)

    def __post_init__(self) -> None:
        check_sizes("LSTM config", self, "vocab_size", "n_embd", "n_hidden", "n_layer", "block_size")
        if not isinstance(self.proj_size, int) or self.proj_size < 0:
            raise LmlabError(f"LSTM config: proj_size must be 0 (none) or a positive integer, got {self.proj_size!r}")
        check_unit_interval("LSTM config", self, "dropout")
        if self.tie_embeddings and self.softmax_dim != self.n_embd:
            raise LmlabError(f"LSTM config: tie_embeddings needs the softmax input width ({self.softmax_dim} = "
                             f"{'proj_size' if self.proj_size else 'n_hidden'}) to equal n_embd ({self.n_embd}); "
                             f"set --proj_size {self.n_embd} or --tie_embeddings false")

    @property
    def softmax_dim(self) -> int:
        """Width of the vector the softmax layer reads."""
        return self.proj_size or self.n_hidden


State = list[tuple[torch.Tensor, torch.Tensor]]  # per layer: (h, c), each (1, B, n_hidden)


# ========================================================================================================= stack ===
class LSTMStack(nn.Module):
    """L single-layer LSTMs with dropout between them; one module per layer so every layer's states are visible."""

    def __init__(self, config: LSTMConfig):
        super().__init__()
        sizes = [config.n_embd] + [config.n_hidden] * config.n_layer
        self.layers = nn.ModuleList(nn.LSTM(sizes[i], sizes[i + 1], batch_first=True)
                                    for i in range(config.n_layer))
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, state: State | None = None) -> tuple[list[torch.Tensor], State]:
        """x (B,T,n_embd) → (each layer's outputs (B,T,n_hidden) before dropout, each layer's final (h, c))."""
        outputs, final = [], []
        for i, layer in enumerate(self.layers):
            if i:
                x = self.drop(x)
            x, hc = layer(x, None if state is None else state[i])
            outputs.append(x)
            final.append(hc)
        return outputs, final


class _Softmax(nn.Module):
    """Dropout → optional projection → vocabulary logits (shared by both directions of the bilstm)."""

    def __init__(self, config: LSTMConfig, wte: nn.Embedding):
        super().__init__()
        self.drop = nn.Dropout(config.dropout)
        self.proj = nn.Linear(config.n_hidden, config.proj_size) if config.proj_size else nn.Identity()
        self.lm_head = nn.Linear(config.softmax_dim, config.vocab_size)
        if config.tie_embeddings:
            self.lm_head.weight = wte.weight

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.lm_head(self.proj(self.drop(h)))


def _cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-100)


# ======================================================================================================== LSTM LM ===
class _ParamCounts:
    """Parameter and FLOP counts shared by both LSTM language models (they have `config.tie_embeddings`, `wte`)."""

    def num_params(self, non_embedding: bool = True) -> int:
        """Parameter count; non_embedding leaves out the input embedding when it is not also the output layer."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding and not self.config.tie_embeddings:
            n -= self.wte.weight.numel()
        return n

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """Training FLOPs per token, 6·N (N = num_params(non_embedding=True)): every gate, projection and output
        weight is used once per token in one multiply-add (2 FLOPs) forward, twice that backward. The recurrence
        adds no term that grows with the sequence (unlike attention), so seq_len is unused."""
        return 6.0 * self.num_params(non_embedding=True)


class LSTMLM(_ParamCounts, nn.Module):
    """Stacked LSTM language model (type `lstm`); see the module docstring for the objective and options."""

    def __init__(self, config: LSTMConfig):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.rnn = LSTMStack(config)
        # wte keeps torch's N(0, 1) init: on char-level Shakespeare it leaves the unigram plateau in about half the
        # steps that the word-LM example's U(−0.1, 0.1) needs (docs/models-classic.md).
        self.head = _Softmax(config, self.wte)
        self._carried: State | None = None  # training state carried between batches (carry_state only)

    @property
    def wants_contiguous_streams(self) -> bool:
        """Tells the trainer to feed contiguous streams (truncated BPTT with a carried state)."""
        return self.config.carry_state

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None) -> tuple[torch.Tensor,
                                                                                       torch.Tensor | None]:
        """idx (B,T) int64 → (logits (B,T,V), mean cross-entropy in nats or None); targets (B,T), -100 = ignore."""
        carry = self.training and self.config.carry_state
        state = self._carried if carry and self._carried is not None and \
            self._carried[0][0].shape[1] == idx.shape[0] else None
        outputs, final = self.rnn(self.drop(self.wte(idx)), state)
        if carry:
            self._carried = [(h.detach(), c.detach()) for h, c in final]
        logits = self.head(outputs[-1])
        return logits, (_cross_entropy(logits, targets) if targets is not None else None)

    @torch.no_grad()
    def contextual_vectors(self, idx: torch.Tensor) -> list[torch.Tensor]:
        """Each layer's states (B,T,n_hidden) for idx (B,T), from a zero state (dropout off in eval mode)."""
        outputs, _ = self.rnn(self.drop(self.wte(idx)))
        return outputs


# ===================================================================================================== BiLSTM LM ===
class BiLSTMLM(_ParamCounts, nn.Module):
    """Bidirectional LSTM LM in the style of ELMo (type `bilstm`): a forward and a backward LSTM stack sharing the
    token embedding and the softmax; loss = mean of the forward and backward LM losses (module docstring)."""

    def __init__(self, config: LSTMConfig):
        super().__init__()
        if config.carry_state:
            raise LmlabError("bilstm cannot carry state across batches (its backward direction reads each window "
                             "from the end); set --carry_state false")
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.fwd = LSTMStack(config)
        self.bwd = LSTMStack(config)
        self.head = _Softmax(config, self.wte)  # wte: torch's N(0, 1) init, as in LSTMLM

    def _directions(self, idx: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Per-layer forward states (position t saw x_{≤t}) and backward states (position t saw x_{≥t})."""
        x = self.drop(self.wte(idx))
        fwd, _ = self.fwd(x)
        bwd, _ = self.bwd(x.flip(1))
        return fwd, [h.flip(1) for h in bwd]

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None) -> tuple[torch.Tensor,
                                                                                       torch.Tensor | None]:
        """idx (B,T) → (forward-LM logits (B,T,V), ½ (forward loss + backward loss) or None)."""
        logits, losses = self._forward(idx, targets)
        if losses is None:
            return logits, None
        if "backward" not in losses:  # a one-token window has nothing for the backward LM to predict
            return logits, losses["forward"]
        return logits, 0.5 * (losses["forward"] + losses["backward"])

    def direction_losses(self, idx: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        """{"forward": mean NLL of targets given x_{≤t}, "backward": mean NLL of x_{t−1} given x_{≥t}} (nats), the two
        terms of the training loss — for reporting each direction separately."""
        return self._forward(idx, targets)[1]

    def _forward(self, idx: torch.Tensor, targets: torch.Tensor | None):
        fwd, bwd = self._directions(idx)
        logits = self.head(fwd[-1])
        if targets is None:
            return logits, None
        losses = {"forward": _cross_entropy(logits, targets)}
        if idx.shape[1] > 1:  # backward LM: the state at t (saw x_{≥t}) predicts x_{t−1}
            losses["backward"] = _cross_entropy(self.head(bwd[-1][:, 1:]), idx[:, :-1])
        return logits, losses

    def backward_logits(self, idx: torch.Tensor) -> torch.Tensor:
        """Backward-LM logits (B,T,V): position t predicts x_{t−1} from x_{≥t} (position 0 predicts the token
        before the window)."""
        return self.head(self._directions(idx)[1][-1])

    @torch.no_grad()
    def contextual_vectors(self, idx: torch.Tensor) -> list[torch.Tensor]:
        """Each layer's [forward; backward] states (B,T,2·n_hidden) for idx (B,T) — ELMo's layer representations."""
        fwd, bwd = self._directions(idx)
        return [torch.cat([f, b], dim=-1) for f, b in zip(fwd, bwd)]


# ========================================================================================== contextual vectors ===
def export_contextual_vectors(run: Any, text: str) -> dict[str, Any]:
    """Contextual vectors of `text` under a loaded run (`lmlab.checkpoint.load_run(RUN_DIR)`) of type lstm/bilstm.

    Returns {"tokens": the token strings (T), "ids": the token ids (T), "layers": float32 tensor (L, T, D)} with
    D = 2·n_hidden for bilstm ([forward; backward] state per token), n_hidden for lstm. The text is encoded as is
    (no <eos> added) and must fit the model's context (block_size tokens).
    """
    model = run.model
    if not hasattr(model, "contextual_vectors"):
        raise LmlabError(f"{getattr(run, 'run_dir', 'this run')} is a {getattr(run, 'model_type', '?')} model; "
                         "contextual vectors come from lstm or bilstm runs")
    ids = run.tokenizer.encode(text)
    if not ids:
        raise LmlabError("the text has no tokens; give some text")
    if len(ids) > model.config.block_size:
        raise LmlabError(f"the text has {len(ids)} tokens, more than the model's context of "
                         f"{model.config.block_size}; split it into shorter pieces")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        layers = model.contextual_vectors(torch.tensor([ids], device=device))
    finally:
        model.train(was_training)
    return {"tokens": [run.tokenizer.decode([i]) for i in ids], "ids": ids,
            "layers": torch.stack([h[0] for h in layers]).float().cpu()}


# ========================================================================================================= presets ===
# Shapes that train in a minute or two on a 2-core CPU (char-level Shakespeare); training settings in
# the recipes that name them (lmlab.recipes).
LSTM_PRESETS: dict[str, dict[str, Any]] = {
    "lstm-tiny": dict(n_embd=64, n_hidden=256, n_layer=2, dropout=0.1, block_size=64),
}
BILSTM_PRESETS: dict[str, dict[str, Any]] = {
    "bilstm-tiny": dict(n_embd=64, n_hidden=192, n_layer=2, dropout=0.1, block_size=64),
}
