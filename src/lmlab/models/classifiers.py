"""Text classifiers trained by the ordinary trainer: bag of words, (bi)LSTM, and GPT with an `<extract>` token.

Data layout (what `lmlab.training.finetune` writes): one labelled example is one document whose FIRST token is its
label token — `<label0>`, `<label1>`, … (special tokens with consecutive ids starting at `first_label_id`) —
followed by the text's tokens. Every model sets `batch_format = "documents"`, so the trainer hands it x (B, L): one
document per row, right-padded with the pad id, L ≤ block_size, longer documents cut at the end; the label sits
first and survives any truncation. `forward(x, y)` (y is x) reads the labels from x[:, 0], classifies x[:, 1:]
and returns (class logits (B, C), mean loss).

Objective of every classifier: the cross-entropy over the C labels, L = −(1/B) Σ_b log p(label_b | text_b), with
p = softmax(class logits). The GPT classifier may add its language-model loss as an auxiliary term (GPT-1).

`classify(text)` takes text ids (B, T) right-padded with the pad id (no label token) and returns class logits
(B, C): what prediction uses (`lmlab.evaluation.classification`). Texts longer than `max_text_tokens` are cut
by the caller.

Models:
    bow              logits = W · mean (or sum) of the text's one-hot token vectors + b: a linear classifier over
                     token counts (multinomial logistic regression), the baseline.
    lstm_classifier  embedding → (bi)LSTM (packed, so padding never enters a state) → mean or max over the
                     real positions → dropout → linear.
    gpt_classifier   GPT-1 fine-tuning (Radford et al. 2018, §3.2): the input is the text followed by
                     `<extract>`; the transformer's final hidden state (after ln_f) at the `<extract>` position goes
                     through a linear head; the whole model is trained. With lm_coef = λ > 0 the objective is
                     L_clf + λ·L_lm, L_lm the next-token loss over the text (GPT-1 used λ = 0.5).
    bert_classifier  BERT fine-tuning (Devlin et al. 2019, §4.1): the input is `<cls> text <sep>` (padding masked
                     out of attention); the encoder's final hidden state at `<cls>` → dropout → linear head; the
                     whole encoder is trained (its unused MLM head is kept so the run dir holds the whole BERT).

Both pre-trained kinds start from a trained run (`init_from_lm`): the tokenizer gains the label tokens (and
`<extract>`) at new ids after its last one, and their embedding rows start at the mean of the old token rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from lmlab.errors import LmlabError
from lmlab.models.config_dict import ConfigDictMixin, check_sizes, check_unit_interval
from lmlab.models.bert import BERT, BERTConfig
from lmlab.models.gpt import GPT, GPTConfig

EXTRACT_TOKEN = "<extract>"
POOLINGS = ("mean", "max")


def label_tokens(n_classes: int) -> list[str]:
    """The special tokens that mark labels 0..n_classes-1 at the start of a document: <label0>, <label1>, …"""
    return [f"<label{i}>" for i in range(n_classes)]


# ========================================================================================================= configs ===
@dataclass
class LabelSpec(ConfigDictMixin):
    """What every classifier config has: the classes and where their label tokens sit in the vocabulary."""

    label_names: tuple[str, ...] = ("negative", "positive")  # class names, in label-index order
    first_label_id: int = 4  # id of <label0>; <labelK> is first_label_id + K
    pad_id: int = 0          # the tokenizer's pad id, which fills rows after the text (0 for lmlab's tokenizers;
                             # GPT-2's imported tokenizer pads with <|endoftext|>)

    def _check_labels(self) -> None:
        self.label_names = tuple(str(n) for n in self.label_names)  # JSON gives a list
        if len(self.label_names) < 2 or len(set(self.label_names)) != len(self.label_names):
            raise LmlabError(f"classifier config: label_names must hold ≥ 2 distinct names, got {self.label_names}")
        if not isinstance(self.first_label_id, int) or self.first_label_id < 0:
            raise LmlabError(f"classifier config: first_label_id must be an id ≥ 0, got {self.first_label_id!r}")

    @property
    def n_classes(self) -> int:
        return len(self.label_names)


@dataclass
class BOWConfig(LabelSpec):
    """Bag-of-words linear classifier (type `bow`)."""

    vocab_size: int = 256    # rows of the weight table (the trainer sets it to the tokenizer's)
    block_size: int = 256    # longest document (label + text tokens) read; longer texts are cut at the end
    pooling: str = "mean"    # "mean": token frequencies (length-normalised counts); "sum": raw counts

    def __post_init__(self) -> None:
        self._check_labels()
        check_sizes(type(self).__name__, self, "vocab_size", "block_size")
        if self.pooling not in ("mean", "sum"):
            raise LmlabError(f"BOWConfig: pooling must be mean or sum, got {self.pooling!r}")


@dataclass
class LSTMClassifierConfig(LabelSpec):
    """Embedding → (bi)LSTM → pooled states → linear (type `lstm_classifier`)."""

    vocab_size: int = 256
    block_size: int = 256     # longest document (label + text tokens) read
    n_embd: int = 128         # token embedding width
    n_hidden: int = 128       # LSTM state size per direction
    n_layer: int = 1          # stacked LSTM layers
    bidirectional: bool = True  # a backward LSTM too; its states are concatenated with the forward ones
    pooling: str = "max"      # "max" or "mean" over the real (non-pad) positions of the last layer
    dropout: float = 0.2      # on the embeddings, between layers and before the head (training only)

    def __post_init__(self) -> None:
        self._check_labels()
        check_sizes(type(self).__name__, self, "vocab_size", "block_size", "n_embd", "n_hidden", "n_layer")
        if self.pooling not in POOLINGS:
            raise LmlabError(f"LSTMClassifierConfig: pooling must be one of {POOLINGS}, got {self.pooling!r}")
        check_unit_interval("LSTMClassifierConfig", self, "dropout")


@dataclass
class GPTClassifierConfig(GPTConfig, LabelSpec):
    """A GPT's config plus the classifier's fields (type `gpt_classifier`)."""

    extract_id: int = 5      # id of <extract>, appended after the text; its final state is classified
    lm_coef: float = 0.0     # λ of the auxiliary language-model loss (0: off; GPT-1: 0.5)

    def __post_init__(self) -> None:
        GPTConfig.__post_init__(self)
        self._check_labels()
        if not 0 <= self.extract_id < self.vocab_size:
            raise LmlabError(f"GPTClassifierConfig: extract_id {self.extract_id} is outside the vocabulary")
        if float(self.lm_coef) < 0:
            raise LmlabError(f"GPTClassifierConfig: lm_coef must be ≥ 0, got {self.lm_coef!r}")

    to_dict = LabelSpec.to_dict
    from_dict = classmethod(LabelSpec.from_dict.__func__)


@dataclass
class BERTClassifierConfig(BERTConfig, LabelSpec):
    """A BERT's config plus the classes (type `bert_classifier`)."""

    def __post_init__(self) -> None:
        BERTConfig.__post_init__(self)
        self._check_labels()

    to_dict = LabelSpec.to_dict
    from_dict = classmethod(LabelSpec.from_dict.__func__)


# ====================================================================================================== base class ===
class DocumentClassifier(nn.Module):
    """Shared by every classifier: labels from the first token, cross-entropy over the classes."""

    batch_format = "documents"  # the trainer gives one labelled document per row (lmlab.data.documents)

    @property
    def max_text_tokens(self) -> int:
        """The most text tokens one example may have (block_size minus the label token)."""
        return self.config.block_size - 1

    def split_labels(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, L) labelled documents → (labels (B,) int64 in 0..C-1, text (B, L-1)). LmlabError when a row
        does not start with a label token (data not prepared for this classifier)."""
        labels = x[:, 0] - self.config.first_label_id
        if bool(((labels < 0) | (labels >= self.config.n_classes)).any()):
            raise LmlabError("a training document does not start with a label token <label0>..<label"
                             f"{self.config.n_classes - 1}>; prepare labelled data with `lmlab finetune`")
        return labels, x[:, 1:]

    def classify(self, text: torch.Tensor) -> torch.Tensor:
        """text (B, T) ids right-padded with config.pad_id → class logits (B, C)."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, L) labelled documents (y is x) → (class logits (B, C), mean cross-entropy over the labels)."""
        labels, text = self.split_labels(x)
        logits = self.classify(text)
        return logits, F.cross_entropy(logits.float(), labels)


def _nonempty(text: torch.Tensor, pad_id: int) -> torch.Tensor:
    """At least one column (a document of a label alone has no text): an all-pad column changes no pooling."""
    return text if text.size(1) else F.pad(text, (0, 1), value=pad_id)


def _lengths(text: torch.Tensor, pad_id: int) -> torch.Tensor:
    """Real tokens per right-padded row, (B,) int64."""
    return (text != pad_id).sum(dim=1)


def _fine_tuning_head(width: int, n_classes: int) -> nn.Linear:
    """The linear head a fine-tuned transformer classifier puts on its final state (width → n_classes), initialised
    as the transformer's own linear layers (weights N(0, 0.02), bias 0) so it starts on the scale of the rest."""
    head = nn.Linear(width, n_classes)
    nn.init.normal_(head.weight, std=0.02)
    nn.init.zeros_(head.bias)
    return head


def load_grown_state(module: nn.Module, lm_state: dict[str, torch.Tensor], n_old_tokens: int,
                     vocab_tensors: tuple[str, ...]) -> None:
    """Copy a trained model's `lm_state` into `module`, whose vocabulary may be larger. In the tensors named
    `vocab_tensors` (first dimension = vocabulary) the rows the trained model lacks (ids ≥ n_old_tokens:
    <extract> and the label tokens, added at the end) start at the mean of its real token rows — a typical token's
    vector rather than noise of another scale. Every other tensor must match in name and shape."""
    own = module.state_dict()
    state = {}
    for name, t in lm_state.items():
        if name not in own:
            raise LmlabError(f"the source model has a tensor {name} that the classifier's encoder lacks")
        if name in vocab_tensors:
            grown = own[name].clone()
            grown[: t.size(0)] = t
            grown[n_old_tokens:] = t[:n_old_tokens].mean(dim=0)
            t = grown
        if t.shape != own[name].shape:
            raise LmlabError(f"tensor {name}: the source model has shape {list(t.shape)}, the classifier "
                             f"{list(own[name].shape)}")
        state[name] = t
    # Tied aliases (GPT's lm_head.weight = wte.weight) may be absent from a state dict; they share storage.
    tied = {n for n, p in module.named_parameters(remove_duplicate=False)} - {n for n, _ in module.named_parameters()}
    missing = set(own) - set(state) - tied
    if missing:
        raise LmlabError(f"the source model lacks tensors {sorted(missing)}")
    module.load_state_dict(state, strict=False)


# ============================================================================================================= bow ===
class BOWClassifier(DocumentClassifier):
    """Bag of words: logits = W·pool(one-hot tokens) + b; objective: cross-entropy over the labels."""

    def __init__(self, config: BOWConfig):
        super().__init__()
        self.config = config
        # An EmbeddingBag with C columns is W applied to the count vector, without building the vector;
        # padding_idx keeps pads out of both the sum and the mean's count.
        self.weight = nn.EmbeddingBag(config.vocab_size, config.n_classes, mode=config.pooling,
                                      padding_idx=config.pad_id)
        self.bias = nn.Parameter(torch.zeros(config.n_classes))
        nn.init.zeros_(self.weight.weight)  # logistic regression starts at uniform predictions

    def classify(self, text: torch.Tensor) -> torch.Tensor:
        return self.weight(_nonempty(text, self.config.pad_id)) + self.bias


# ============================================================================================================ lstm ===
class LSTMClassifier(DocumentClassifier):
    """Embedding → (bi)LSTM → mean/max over real positions → linear; objective: cross-entropy over the labels.

    lmlab.models.lstm's LSTMStack runs one direction over unpadded windows; classification needs packed,
    variable-length rows in both directions, which one bidirectional nn.LSTM over a PackedSequence does.
    """

    def __init__(self, config: LSTMClassifierConfig):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd, padding_idx=config.pad_id)
        self.drop = nn.Dropout(config.dropout)
        self.lstm = nn.LSTM(config.n_embd, config.n_hidden, num_layers=config.n_layer, batch_first=True,
                            bidirectional=config.bidirectional, dropout=config.dropout if config.n_layer > 1 else 0.0)
        width = config.n_hidden * (2 if config.bidirectional else 1)
        self.head = nn.Linear(width, config.n_classes)

    def classify(self, text: torch.Tensor) -> torch.Tensor:
        text = _nonempty(text, self.config.pad_id)
        # An empty text reads one pad: a defined (constant) state.
        lengths = _lengths(text, self.config.pad_id).clamp(min=1)
        x = self.drop(self.wte(text))
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        h, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=text.size(1))  # (B,T,W)
        real = (torch.arange(text.size(1), device=text.device)[None, :] < lengths[:, None]).unsqueeze(-1)
        if self.config.pooling == "max":
            pooled = h.masked_fill(~real, float("-inf")).max(dim=1).values
        else:
            pooled = (h * real).sum(dim=1) / lengths[:, None].to(h.dtype)
        return self.head(self.drop(pooled))


# ============================================================================================================= gpt ===
class GPTClassifier(DocumentClassifier):
    """GPT-1 style fine-tuning: text + <extract> → final state at <extract> → linear head; the whole GPT trains.

    Objective: cross-entropy over the labels, plus lm_coef × the GPT's next-token loss over the text when
    lm_coef > 0. Parameter names: the GPT's under `gpt.`, the head under `head.`.
    """

    def __init__(self, config: GPTClassifierConfig):
        super().__init__()
        self.config = config
        self.gpt = GPT(config)
        self.drop = nn.Dropout(config.dropout)
        self.head = _fine_tuning_head(config.n_embd, config.n_classes)

    def init_from_lm(self, lm_state: dict[str, torch.Tensor], n_old_tokens: int) -> None:
        """Copy a trained GPT's weights (`GPT.state_dict()`) into `self.gpt` (see `load_grown_state`)."""
        load_grown_state(self.gpt, lm_state, n_old_tokens, ("wte.weight", "lm_head.weight"))

    def extract_inputs(self, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """text (B, T) right-padded → (idx (B, T'+1): the text cut to max_text_tokens with <extract> written right
        after each row's last real token, positions (B,) of those <extract> tokens)."""
        text = text[:, : self.max_text_tokens]
        lengths = _lengths(text, self.config.pad_id)
        idx = F.pad(text, (0, 1), value=self.config.pad_id)
        idx[torch.arange(idx.size(0), device=idx.device), lengths] = self.config.extract_id
        return idx, lengths

    def _run(self, text: torch.Tensor, with_lm_loss: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(class logits (B, C), the LM loss over the text or None)."""
        idx, pos = self.extract_inputs(text)
        targets = None
        if with_lm_loss:
            # Next-token targets inside the text only: not the <extract> token, nor padding.
            targets = F.pad(idx[:, 1:], (0, 1), value=-100)
            after_text = torch.arange(idx.size(1), device=idx.device)[None, :] >= (pos[:, None] - 1)
            targets = targets.masked_fill(after_text, -100)
        captured: list[torch.Tensor] = []
        # The hook point `final_norm` is the state after ln_f (ARCHITECTURE.md hook names): read it, change nothing.
        handle = self.gpt.final_norm.register_forward_hook(lambda m, i, out: captured.append(out))
        try:
            _, lm_loss = self.gpt(idx, targets)
        finally:
            handle.remove()
        h = captured[0][torch.arange(idx.size(0), device=idx.device), pos]  # (B, n_embd) at <extract>
        return self.head(self.drop(h)), lm_loss

    def classify(self, text: torch.Tensor) -> torch.Tensor:
        return self._run(text, with_lm_loss=False)[0]

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, L) labelled documents → (class logits (B, C), L_clf + lm_coef · L_lm)."""
        labels, text = self.split_labels(x)
        lm = self.config.lm_coef > 0
        logits, lm_loss = self._run(text, with_lm_loss=lm)
        loss = F.cross_entropy(logits.float(), labels)
        if lm and lm_loss is not None and torch.isfinite(lm_loss):  # a batch of one-token texts has no LM target
            loss = loss + self.config.lm_coef * lm_loss
        return logits, loss


# ============================================================================================================ bert ===
class BERTClassifier(DocumentClassifier):
    """BERT fine-tuning: <cls> text <sep> → final state at <cls> → linear head; the whole encoder trains.
    Objective: cross-entropy over the labels. Parameter names: the BERT's under `bert.`, the head under `head.`."""

    def __init__(self, config: BERTClassifierConfig):
        super().__init__()
        self.config = config
        self.bert = BERT(config)
        self.drop = nn.Dropout(config.dropout)
        self.head = _fine_tuning_head(config.n_embd, config.n_classes)

    @property
    def max_text_tokens(self) -> int:
        return self.config.block_size - 2  # room for <cls> and <sep>

    def init_from_lm(self, lm_state: dict[str, torch.Tensor], n_old_tokens: int) -> None:
        """Copy a trained BERT's weights (`BERT.state_dict()`) into `self.bert` (see `load_grown_state`)."""
        load_grown_state(self.bert, lm_state, n_old_tokens, ("wte.weight", "mlm_bias"))

    def cls_inputs(self, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """text (B, T) right-padded → (idx (B, T'+2) = <cls> text <sep> then padding, attention mask (B, T'+2))."""
        c = self.config
        text = text[:, : self.max_text_tokens]
        lengths = _lengths(text, c.pad_id)
        idx = F.pad(F.pad(text, (1, 0), value=c.cls_id), (0, 1), value=c.pad_id)
        idx[torch.arange(idx.size(0), device=idx.device), lengths + 1] = c.sep_id
        return idx, idx != c.pad_id

    def classify(self, text: torch.Tensor) -> torch.Tensor:
        idx, mask = self.cls_inputs(text)
        h = self.bert.encode(idx, mask)[:, 0]  # the [CLS] vector
        return self.head(self.drop(h))
