"""The BERT-style encoder: masking statistics (15%, 80/10/10), loss on masked positions only, padding, NSP, eval
masks, and training through the ordinary trainer (`lmlab train --model bert`), including exact resume."""

import json
import random

import pytest
import torch
import torch.nn.functional as F

from lmlab.checkpoint import load_run
from lmlab.cli import main
from lmlab.data import prepare
from lmlab.errors import LmlabError
from lmlab.models.bert import BERT, BERTConfig
from lmlab.models.registry import build_model
from lmlab.training import read_metrics, train_run
import lmlab.recipes as recipes

IDS = dict(cls_id=4, sep_id=5, mask_id=6, pad_id=0)
# A model and batch small enough that a training step takes milliseconds on a busy 2-core CPU.
TINY_TRAIN = dict(n_layer=1, n_head=2, n_embd=32, block_size=16, batch_size=8, dtype="float32", device="cpu",
                  warmup_iters=5, lr=3e-3, min_lr=3e-4, eval_iters=4, log_interval=1)


def tiny_bert(**kw) -> BERT:
    torch.manual_seed(0)
    return BERT(BERTConfig(**{**dict(vocab_size=50, n_layer=2, n_head=2, n_embd=32, block_size=32, dropout=0.0),
                              **IDS, **kw}))


def world_like_text(seed: int = 0, n_paragraphs: int = 300) -> str:
    """Short paragraphs of fact sentences about a few entities (each paragraph different, so dedup keeps it)."""
    rng = random.Random(seed)
    capitals = {"Veruna": "Lorbas", "Kaldia": "Mirvel", "Ostreva": "Tandor", "Pelmar": "Quonfa"}
    jobs = ["pilot", "baker", "judge", "chef", "farmer"]
    people = ["Zedom", "Plestosk", "Brodik", "Piteis", "Vresousk", "Graizhail"]
    paragraphs = []
    for _ in range(n_paragraphs):
        sentences = []
        for _ in range(4):
            country = rng.choice(list(capitals))
            sentences.append(rng.choice([f"The capital of {country} is {capitals[country]}.",
                                         f"{rng.choice(people)} works as a {rng.choice(jobs)}.",
                                         f"{rng.choice(people)} was born in {capitals[country]}."]))
        paragraphs.append(" ".join(sentences))
    return "\n\n".join(paragraphs) + "\n"


def make_bert_data(root, seed: int = 0, n_paragraphs: int = 300):
    """Word-level shards (train + val) whose tokenizer has BERT's special tokens."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "corpus.txt").write_text(world_like_text(seed, n_paragraphs))
    prepare([root / "corpus.txt"], "word", root / "data", split_blank_lines=True, dedup="none",
            special_tokens=BERT.special_tokens, progress=False, workers=1)
    return root / "data"


@pytest.fixture(scope="module")
def bert_data(tmp_path_factory):
    return make_bert_data(tmp_path_factory.mktemp("bertdata"))


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ---------------------------------------------------------------------------------------------------- masking ---
def test_masking_selects_15_percent_and_replaces_80_10_10():
    model = tiny_bert(vocab_size=1000, block_size=258)
    x = torch.randint(7, 1000, (64, 256))
    batch = model.pretraining_batch(x, torch.Generator().manual_seed(1))
    ids = torch.cat([torch.full((64, 1), 4), x, torch.full((64, 1), 5)], dim=1)
    selected = batch.labels != -100
    assert abs(selected[:, 1:-1].float().mean().item() - 0.15) < 0.01
    assert not selected[:, 0].any() and not selected[:, -1].any()  # <cls> and <sep> are never selected
    assert torch.equal(batch.labels[selected], ids[selected])  # labels are the original tokens
    got = batch.input_ids[selected]
    n = selected.sum().item()
    masked = (got == 6).float().sum().item() / n
    kept = (got == ids[selected]).float().sum().item() / n
    random_ = 1 - masked - kept
    assert abs(masked - 0.8) < 0.02 and abs(kept - 0.1) < 0.015 and abs(random_ - 0.1) < 0.015
    assert torch.equal(batch.input_ids[~selected], ids[~selected])  # unselected positions are untouched
    assert batch.input_ids.shape == (64, 258) and not batch.token_type_ids.any() and batch.nsp_labels is None


def test_padding_is_never_selected():
    model = tiny_bert()
    x = torch.zeros(8, 30, dtype=torch.long)
    x[:, :10] = 9
    labels = model.pretraining_batch(x, torch.Generator().manual_seed(0)).labels
    assert (labels[:, 11:-1] == -100).all() and (labels[:, 1:11] != -100).any()


def test_loss_is_cross_entropy_over_the_masked_positions_only():
    model = tiny_bert()
    x = torch.randint(7, 50, (4, 32))
    torch.manual_seed(3)
    logits, loss = model(x, x)
    torch.manual_seed(3)  # the same global-RNG draws as forward made in training mode
    labels = model.pretraining_batch(x).labels
    picked = labels != -100
    assert 0 < picked.sum() < picked.numel()
    assert logits.shape == (4, 32, 50)
    assert torch.allclose(loss, F.cross_entropy(logits[picked], labels[picked]), atol=1e-6)


def test_eval_masks_are_deterministic_and_training_masks_follow_the_global_rng():
    model = tiny_bert()
    x = torch.randint(7, 50, (4, 32))
    model.eval()
    a = [model(x, x)[1].item() for _ in range(2)]
    model.train()
    model.eval()
    b = [model(x, x)[1].item() for _ in range(2)]
    assert a == b and a[0] != a[1]  # each evaluation starts the same mask stream; batches within it differ
    model.train()
    torch.manual_seed(5)
    c = model(x, x)[1].item()
    torch.manual_seed(5)
    assert model(x, x)[1].item() == c


def test_padding_does_not_change_the_states_of_real_tokens():
    model = tiny_bert().eval()
    idx = torch.randint(7, 50, (2, 10))
    padded = torch.cat([idx, torch.zeros(2, 6, dtype=torch.long)], dim=1)
    mask = torch.cat([torch.ones(2, 10), torch.zeros(2, 6)], dim=1)
    h = model.encode(idx)
    assert h.shape == (2, 10, 32)
    assert torch.allclose(model.encode(padded, mask)[:, :10], h, atol=1e-5)
    assert not torch.allclose(model.encode(padded)[:, :10], h, atol=1e-3)  # without the mask padding is seen
    assert model.mlm_logits(idx).shape == (2, 10, 50)


def test_nsp_builds_segment_pairs_and_trains_its_head():
    model = tiny_bert(nsp=True)
    x = torch.randint(7, 50, (16, 32))
    batch = model.pretraining_batch(x, torch.Generator().manual_seed(0))
    n = 32 - 3
    half = n // 2
    ids = batch.input_ids
    assert ids.shape == (16, 32) and (ids[:, 0] == 4).all()
    assert (ids[:, half + 1] == 5).all() and (ids[:, -1] == 5).all()
    assert (batch.token_type_ids[:, :half + 2] == 0).all() and (batch.token_type_ids[:, half + 2:] == 1).all()
    assert 0 < batch.nsp_labels.sum() < 16
    b_part = torch.where(batch.labels[:, half + 2:-1] != -100, batch.labels[:, half + 2:-1], ids[:, half + 2:-1])
    for row in range(16):
        follows = torch.equal(b_part[row], x[row, half:n])
        assert follows == (batch.nsp_labels[row].item() == 0)
    _, loss = model(x, x)
    loss.backward()
    assert torch.isfinite(loss) and model.nsp_head.weight.grad is not None


def test_bert_is_not_a_left_to_right_lm_and_needs_its_special_ids():
    model = tiny_bert()
    with pytest.raises(LmlabError, match="not a left-to-right LM.*lmlab fill"):
        model(torch.randint(7, 50, (1, 8)))
    with pytest.raises(LmlabError, match="cls_id"):
        BERT(BERTConfig(vocab_size=50))
    with pytest.raises(LmlabError, match="block_size"):
        BERTConfig(block_size=2, **IDS)
    with pytest.raises(LmlabError, match="unknown BERT config"):
        build_model("bert", {"vocab_size": 50, "n_layers": 2, **IDS})
    with pytest.raises(LmlabError, match="longer than the model's context"):
        model.encode(torch.zeros(1, 33, dtype=torch.long))


# --------------------------------------------------------------------------------------------------- training ---
def test_trains_with_the_ordinary_trainer_and_its_run_dir_reloads(bert_data, tmp_path):
    result = recipes.run(out=tmp_path / "run", data_dir=bert_data, model_type="bert", progress=False,
                         overrides={**TINY_TRAIN, "n_embd": 64, "batch_size": 32, "max_iters": 60,
                                    "eval_interval": 20}).train
    vals = [r["val_loss"] for r in result.metrics if "val_loss" in r]
    assert len(vals) == 3 and vals[0] > vals[1] > vals[2], vals
    assert all(0 < r["mfu"] < 1 for r in result.metrics)  # BERT counts its FLOPs, so the bar shows MFU
    run = load_run(tmp_path / "run")
    tok = run.tokenizer
    cfg = run.model_config
    assert run.model_type == "bert" and isinstance(run.model, BERT)
    assert (cfg.cls_id, cfg.sep_id, cfg.mask_id, cfg.pad_id) == (tok.token_to_id("<cls>"), tok.token_to_id("<sep>"),
                                                                 tok.token_to_id("<mask>"), tok.pad_id)


def test_resumed_run_has_the_losses_of_the_uninterrupted_one(bert_data, tmp_path):
    # Dropout on and masks drawn from the global RNG: identical losses need the RNG streams restored.
    settings = {**TINY_TRAIN, "dropout": 0.1, "lr_decay_iters": 16, "eval_interval": 4}
    recipes.run(out=tmp_path / "full", data_dir=bert_data, model_type="bert", progress=False,
                overrides={**settings, "max_iters": 16})
    recipes.run(out=tmp_path / "cut", data_dir=bert_data, model_type="bert", progress=False,
                overrides={**settings, "max_iters": 8})
    train_run(tmp_path / "cut", resume=True, progress=False, overrides={"max_iters": 16})
    a, b = read_metrics(tmp_path / "full" / "metrics.jsonl"), read_metrics(tmp_path / "cut" / "metrics.jsonl")
    assert [r["step"] for r in b] == list(range(1, 17))
    for ra, rb in zip(a, b):
        assert abs(ra["train_loss"] - rb["train_loss"]) <= 1e-6, (ra, rb)
        if "val_loss" in ra:
            assert abs(ra["val_loss"] - rb["val_loss"]) <= 1e-6


@pytest.mark.filterwarnings("ignore:the corpus has only 1 document")
def test_cli_trains_bert_from_text_and_lm_verbs_refuse_it(tmp_path, capsys):
    (tmp_path / "corpus.txt").write_text(world_like_text(1, 60))
    run = str(tmp_path / "run")
    # One file is one document, so no val split: evaluation off.
    settings = {**TINY_TRAIN, "max_iters": 4, "eval_iters": 0}
    args = ["train", "--model", "bert", "--text", str(tmp_path / "corpus.txt"), "--tokenizer", "word", "--out", run,
            "--no-progress"] + [a for k, v in settings.items() for a in (f"--{k}", str(v))]
    assert main(args) == 0
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["model_type"] == "bert" and config["model"]["mask_id"] > 3
    capsys.readouterr()
    verbs = [["sample", run, "--prompt", "The capital"], ["eval", "ppl", run, "--split", "train"],
             ["score", run, "--text", "x"]]
    for verb in verbs:
        assert main(verb) == 2
        err = capsys.readouterr().err
        assert "not a left-to-right LM" in err and "lmlab fill" in err and "Traceback" not in err
