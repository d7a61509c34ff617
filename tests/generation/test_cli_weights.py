"""`--weights fp32|bf16|int8` on the verbs that decode or score: sample, score, eval ppl, eval tasks (serve: see
tests/serving/test_serve_weights.py)."""

import json

import pytest

from lmlab.cli import main


@pytest.mark.parametrize("weights", ["bf16", "int8"])
def test_sample_with_stored_weights_gives_the_trained_completion(run_dir, capsys, weights):
    assert main(["sample", str(run_dir), "--prompt", "the cat", "--temperature", "0", "--max-new-tokens", "20",
                 "--weights", weights]) == 0
    assert capsys.readouterr().out == "the cat sat on the mat.\n"


def test_score_and_eval_ppl_with_int8_are_close_to_fp32(run_dir, tmp_path, capsys):
    def score(weights):
        assert main(["score", str(run_dir), "--text", "the cat sat on the mat.", "--json", "--weights", weights]) == 0
        return json.loads(capsys.readouterr().out)["total_logprob"]

    fp32, int8 = score("fp32"), score("int8")
    assert int8 != fp32 and int8 == pytest.approx(fp32, rel=0.05, abs=0.05)

    text = tmp_path / "t.txt"
    text.write_text("the cat sat on the mat. the cat sat on the mat.")

    def ppl(weights):
        assert main(["eval", "ppl", str(run_dir), "--data", str(text), "--json", "--weights", weights]) == 0
        return json.loads(capsys.readouterr().out)["ppl"]

    assert ppl("bf16") == pytest.approx(ppl("fp32"), rel=0.01)


def test_eval_tasks_records_the_weights(run_dir, tmp_path, capsys):
    text = tmp_path / "t.txt"
    text.write_text("the cat sat on the mat.\n\nthe mat sat on the cat.\n")
    out = tmp_path / "results.json"
    assert main(["eval", "tasks", str(run_dir), "--tasks", f"text:{text}", "--weights", "int8", "--out", str(out),
                 "--no-progress", "--json"]) == 0
    capsys.readouterr()
    report = json.loads(out.read_text())
    assert report["settings"]["weights"] == "int8"
    assert report["results"][0]["metrics"]["bits_per_byte"] > 0


@pytest.mark.parametrize("verb", [["sample", "--prompt", "the"], ["score", "--text", "the"], ["eval", "ppl"],
                                  ["eval", "tasks", "--tasks", "text:x"]])
def test_unknown_weights_is_a_one_line_error(run_dir, capsys, verb):
    argv = verb[:2] if verb[0] == "eval" else verb[:1]
    argv = argv + [str(run_dir)] + verb[len(argv):] + ["--weights", "int4"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == "lmlab: error: unknown weight storage 'int4'; choose one of fp32, bf16, int8\n"


def test_eval_ppl_interpolation_refuses_stored_weights(run_dir, capsys):
    """--knn/--infgram perplexity loads its own fp32 model: asking for int8 there is an error, not silently fp32."""
    assert main(["eval", "ppl", str(run_dir), "--knn", "missing-store", "--weights", "int8"]) == 2
    assert "--knn/--infgram interpolation runs the model in fp32" in capsys.readouterr().err
