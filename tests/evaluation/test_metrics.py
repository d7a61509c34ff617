"""Metric definitions on hand-computed numbers (log-likelihoods given, no model)."""

import math

import numpy as np
import pytest

from lmlab.evaluation import (bootstrap_stderr, count_words, exact_match, loglikelihood_perplexity,
                              mean_with_stderr, multiple_choice_scores, rolling_metrics)


def test_acc_picks_highest_loglikelihood_and_acc_norm_divides_by_characters():
    # "cat": -3.0 (per char -1.0); "elephant": -4.0 (per char -0.5). Raw argmax → cat, normalised → elephant.
    choices, lls = ["cat", "elephant"], [-3.0, -4.0]
    assert multiple_choice_scores(lls, choices, gold=0) == {"acc": 1, "acc_norm": 0}
    assert multiple_choice_scores(lls, choices, gold=1) == {"acc": 0, "acc_norm": 1}


def test_multiple_choice_ties_go_to_the_first_choice():
    assert multiple_choice_scores([-2.0, -2.0], ["ab", "cd"], gold=0) == {"acc": 1, "acc_norm": 1}
    assert multiple_choice_scores([-2.0, -2.0], ["ab", "cd"], gold=1) == {"acc": 0, "acc_norm": 0}


def test_exact_match_ignores_surrounding_whitespace_only():
    assert exact_match(" 124", "124") == 1
    assert exact_match("124\n", " 124 ") == 1
    assert exact_match("12 4", "124") == 0
    assert exact_match("Paris", "paris") == 0


def test_loglikelihood_perplexity_is_exp_of_minus_mean():
    assert loglikelihood_perplexity([-1.0, -3.0]) == pytest.approx(math.exp(2.0))


def test_rolling_metrics_on_hand_numbers():
    # Two documents: log-likelihoods -10 and -20 nats; 5+10 tokens, 3+3 words, 12+18 bytes.
    m = rolling_metrics([-10.0, -20.0], [5, 10], [3, 3], [12, 18])
    assert m["perplexity"] == pytest.approx(math.exp(30 / 15))
    assert m["word_perplexity"] == pytest.approx(math.exp(30 / 6))
    assert m["byte_perplexity"] == pytest.approx(math.exp(30 / 30))
    assert m["bits_per_byte"] == pytest.approx(30 / 30 / math.log(2))
    # bits per byte and byte perplexity are two views of one number: bpb = log2(byte perplexity)
    assert m["bits_per_byte"] == pytest.approx(math.log2(m["byte_perplexity"]))


def test_count_words_splits_on_runs_of_whitespace():
    assert count_words("  the cat\n\nsat\ton  ") == 4
    assert count_words("") == 0


def test_bootstrap_stderr_is_seeded_and_matches_the_analytic_stderr_of_a_mean():
    rng = np.random.default_rng(0)
    values = (rng.random(2000) < 0.3).astype(float)
    p = values.mean()
    analytic = math.sqrt(p * (1 - p) / len(values))
    mean, se = mean_with_stderr(values, iters=2000, seed=7)
    assert mean == pytest.approx(p)
    assert se == pytest.approx(analytic, rel=0.1)
    assert mean_with_stderr(values, iters=2000, seed=7)[1] == se  # same seed, same error bar
    general = bootstrap_stderr([values], np.mean, iters=500, seed=3)
    assert general == pytest.approx(analytic, rel=0.15)
    assert bootstrap_stderr([values], np.mean, iters=500, seed=3) == general


def test_bootstrap_of_a_ratio_resamples_rows_together():
    # Every document has the same NLL per byte, so any resample gives the same bits per byte: zero spread.
    lls, nbytes = [-2.0, -4.0, -6.0], [2, 4, 6]
    se = bootstrap_stderr([lls, nbytes], lambda ll, b: -ll.sum() / b.sum(), iters=200, seed=0)
    assert se == pytest.approx(0.0, abs=1e-12)


def test_stderr_needs_two_items():
    assert mean_with_stderr([1.0])[1] is None
    assert bootstrap_stderr([[1.0]], np.mean) is None
