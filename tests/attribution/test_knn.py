"""The kNN datastore and kNN-LM / ∞-gram interpolation: keys are the MLP inputs the model computes, exact search
finds them, λ = 0 reproduces plain perplexity, and bad requests are one-line errors."""

import json
import math

import numpy as np
import pytest
import torch

from lmlab.attribution import Datastore, knn, knn_logprobs, memory_perplexity, neighbours
from lmlab.checkpoint import load_run
from lmlab.data import load_split
from lmlab.errors import LmlabError
from lmlab.generation import perplexity

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def datastore(world_run, indexed_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("knn") / "ds"
    meta = knn(world_run["run_dir"], out, data_dir=indexed_data, max_tokens=3000)
    assert meta["n_keys"] == 2999 and meta["layer"] == 1
    return out


def test_stored_keys_are_the_models_mlp_inputs_and_find_themselves(world_run, indexed_data, datastore):
    run = load_run(world_run["run_dir"])
    tokens = torch.from_numpy(np.asarray(load_split(indexed_data, "train")[:64], dtype=np.int64))[None]
    seen = []
    block = run.model.blocks[-1]
    handle = block.ln_2.register_forward_hook(lambda m, a, out: seen.append(out))  # pre-LN: MLP input = ln_2(x)
    with torch.no_grad():
        run.model(tokens)
    handle.remove()
    store = Datastore.open(datastore)
    dist, vals, pos = store.search(seen[0][0, :10].numpy(), k=1)
    assert pos[:, 0].tolist() == list(range(10))
    assert np.allclose(dist, 0, atol=1e-4)
    assert vals[:, 0].tolist() == tokens[0, 1:11].tolist()


def test_knn_logprobs_is_a_softmax_over_negative_distances():
    dist = np.array([[0.0, 1.0, 2.0]])
    w = np.exp(-np.array([0.0, 1.0, 2.0]) / 2.0)
    w /= w.sum()
    got = knn_logprobs(dist, np.array([[5, 7, 5]]), np.array([5]), temperature=2.0)
    assert got[0] == pytest.approx(math.log(w[0] + w[2]))
    assert knn_logprobs(dist, np.array([[5, 7, 5]]), np.array([9]), 1.0)[0] == -np.inf


def test_interpolated_perplexity_lambda_zero_is_plain_perplexity(world_run, indexed_data, datastore):
    r = memory_perplexity(world_run["run_dir"], data=indexed_data, knn=datastore, infgram=indexed_data, lam=0.25,
                          k=16, max_tokens=400)
    run = load_run(world_run["run_dir"])
    plain = perplexity(run.model, np.asarray(load_split(indexed_data, "val")[:400]))
    assert r["lm"]["ppl"] == pytest.approx(plain["ppl"], rel=1e-6)
    assert r["knn"]["sweep"][0.0] == pytest.approx(plain["ppl"], rel=1e-6)
    assert r["infgram"]["sweep"][0.0] == pytest.approx(plain["ppl"], rel=1e-6)
    assert r["knn"]["ppl"] < r["lm"]["ppl"] and r["infgram"]["ppl"] < r["lm"]["ppl"]  # memory helps on this world
    assert 0 < r["infgram"]["mean_suffix_len"]


def test_approximate_index_and_neighbours(world_run, indexed_data, datastore, tmp_path):
    meta = knn(world_run["run_dir"], tmp_path / "ivf", data_dir=indexed_data, kind="ivf", max_tokens=3000)
    assert meta["kind"] == "ivf" and meta["nlist"] >= 1
    r = neighbours(world_run["run_dir"], datastore, "The capital of", k=5)
    assert r.context == "The capital of" and len(r.neighbours) == 5
    assert [n.distance for n in r.neighbours] == sorted(n.distance for n in r.neighbours)
    assert any("capital" in n.context for n in r.neighbours)
    json.dumps(r.to_dict())


def test_bad_requests(world_run, indexed_data, datastore, tmp_path):
    with pytest.raises(LmlabError, match="datastore holds"):
        memory_perplexity(world_run["run_dir"], data=indexed_data, knn=datastore, k=10**6, max_tokens=50)
    with pytest.raises(LmlabError, match="held-out split"):
        memory_perplexity(world_run["run_dir"], data=indexed_data, split="train", knn=datastore, max_tokens=50)
    with pytest.raises(LmlabError, match="lambda"):
        memory_perplexity(world_run["run_dir"], data=indexed_data, knn=datastore, lam=1.5)
    with pytest.raises(LmlabError, match="layer"):
        knn(world_run["run_dir"], tmp_path / "x", data_dir=indexed_data, layer=7)
    with pytest.raises(LmlabError, match="not a kNN datastore"):
        Datastore.open(tmp_path)
    assert not (tmp_path / "x").exists()
