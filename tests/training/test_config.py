"""Settings layering: preset < config file < --key value, with typed conversion and helpful errors."""

import json

import pytest

from lmlab.errors import LmlabError
from lmlab.models.presets import get_preset
from lmlab.training.config import (TrainConfig, load_config_file, parse_override_args,
                                   resolve_configs)


def test_overrides_convert_to_field_types_and_route_to_the_right_config():
    m, t = resolve_configs(get_preset("tiny"), TrainConfig(),
                           overrides=["--lr", "3e-4", "--n_layer", "2", "--compile", "--dropout=0.1",
                                      "--max-iters", "50", "--target_loss", "none", "--device", "cpu"])
    assert (t.lr, t.compile, t.max_iters, t.target_loss, t.device) == (3e-4, True, 50, None, "cpu")
    assert (m.n_layer, m.dropout) == (2, 0.1)
    assert isinstance(t.max_iters, int) and isinstance(m.dropout, float)


def test_bool_values_and_negative_numbers():
    assert parse_override_args(["--compile", "false", "--keep_best", "--min_lr", "-1"]) == \
        {"compile": "false", "keep_best": True, "min_lr": "-1"}
    _, t = resolve_configs(get_preset("tiny"), overrides={"compile": "false", "keep_best": "yes"})
    assert t.compile is False and t.keep_best is True


def test_free_words_among_settings_are_refused_or_handed_back():
    with pytest.raises(LmlabError, match="unexpected argument 'runs/base'"):
        parse_override_args(["runs/base", "--max_iters", "50"])
    words: list[str] = []
    assert parse_override_args(["runs/base", "--max_iters", "50", "--compile", "--lr=1e-3", "x"], words=words) == \
        {"max_iters": "50", "compile": True, "lr": "1e-3"}
    assert words == ["runs/base", "x"]


def test_unknown_key_suggests_close_matches():
    with pytest.raises(LmlabError, match=r"unknown setting 'max_iter'.*did you mean --max_iters"):
        resolve_configs(get_preset("tiny"), overrides=["--max_iter", "5"])


@pytest.mark.parametrize("args, msg", [
    (["--lr", "fast"], "not a number"),
    (["--max_iters", "2.5"], "not an integer"),
    (["--compile", "maybe"], "not a boolean"),
    (["--dtype", "int8"], "dtype must be one of"),
    (["--n_head", "3"], "not divisible"),
    (["--min_lr", "1.0"], "min_lr must be between"),
])
def test_bad_values_are_one_line_errors(args, msg):
    with pytest.raises(LmlabError, match=msg) as e:
        resolve_configs(get_preset("tiny"), overrides=args)
    assert "\n" not in str(e.value)


def test_precedence_preset_then_file_then_command_line(tmp_path):
    f = tmp_path / "run.yaml"
    f.write_text("preset: tiny\nmodel:\n  n_layer: 3\ntraining:\n  lr: 0.002\n  max_iters: 77\n")
    m, t = resolve_configs(get_preset("tiny"), TrainConfig(), config_file=f, overrides=["--lr", "0.005"])
    assert (m.n_layer, t.max_iters, t.lr) == (3, 77, 0.005)  # file beats preset, command line beats file
    assert m.n_embd == get_preset("tiny").n_embd  # untouched keys keep the preset's value
    j = tmp_path / "run.json"
    j.write_text(json.dumps({"n_layer": 1, "batch_size": 4}))
    m, t = resolve_configs(get_preset("tiny"), config_file=j)
    assert (m.n_layer, t.batch_size) == (1, 4)


def test_config_file_is_validated_like_the_command_line(tmp_path):
    f = tmp_path / "bad.json"
    f.write_text(json.dumps({"batch_sise": 4}))
    with pytest.raises(LmlabError, match=r"config file .*bad.json.*batch_size"):
        resolve_configs(get_preset("tiny"), config_file=f)
    f.write_text(json.dumps({"batch_size": "four"}))
    with pytest.raises(LmlabError, match="not an integer"):
        resolve_configs(get_preset("tiny"), config_file=f)
    f.write_text("[1, 2]")
    with pytest.raises(LmlabError, match="mapping"):
        load_config_file(f)
    with pytest.raises(LmlabError, match="not found"):
        load_config_file(tmp_path / "missing.yaml")


def test_train_config_round_trips_and_ignores_extra_keys():
    t = TrainConfig(lr=5e-4, dtype="bf16")
    assert t.dtype == "bfloat16"
    assert TrainConfig.from_dict({**t.to_dict(), "data_dir": "/x"}) == t
    assert TrainConfig(max_iters=10).decay_iters == 10
    assert TrainConfig(max_iters=10, lr_decay_iters=5).decay_iters == 5
