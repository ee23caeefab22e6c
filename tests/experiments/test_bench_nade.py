"""experiments/bench_nade.py: goal verdicts from timing rows, the torch peer computes musejax's NADE, and a
--dry-run writes its table and JSON."""
from __future__ import annotations

import json

import jax
import numpy as np
import pytest
import torch

from experiment_scripts import load_experiment
from musejax.lm.steps import masked_nll_sums


@pytest.fixture(scope="module")
def bench():
    return load_experiment("bench_nade")


def _row(task: str, impl: str, *seconds: float) -> dict:
    return {"task": task, "impl": impl, "median_s": float(np.median(seconds)), "seconds": list(seconds)}


def test_goal_ratios_and_verdicts(bench):
    rows = [_row("train", "musejax-nade", 2.0, 4.0, 3.0), _row("train", "musejax-bernoulli", 1.0, 1.0, 2.0),
            _row("train", "torch-nade", 4.0, 4.0, 4.0),
            _row("sample", "musejax-nade", 8.0), _row("sample", "musejax-bernoulli", 2.0)]  # no torch sampling row
    goals = {g["label"]: g for g in bench.goal_report(rows)}
    train_ratio, sample_ratio, count_train, count_sample, nucleus_sample, train_torch, sample_torch = (
        goals[g.label] for g in bench.GOALS)
    assert count_train["verdict"] == count_sample["verdict"] == nucleus_sample["verdict"] == "not measured"  # no rows
    assert (train_ratio["ratio"], train_ratio["paired_ratio"], train_ratio["verdict"]) == (3.0, 2.0, "missed")
    assert (sample_ratio["ratio"], sample_ratio["verdict"]) == (4.0, "met")  # "at most 4x": the bound counts
    assert (train_torch["ratio"], train_torch["verdict"]) == (pytest.approx(4 / 3), "met")
    assert sample_torch["ratio"] is None and sample_torch["verdict"] == "not measured"
    table = bench.markdown(bench.make_rows("train", {"musejax-nade": [0.5]}), bench.goal_report(rows), "sizes")
    assert "| train | musejax-nade | 500.0 | 500.0 | 500.0 | 2.00 |" in table
    assert "| NADE train step / Bernoulli train step | 3.00x | 2.00x | at most 2.0x | missed |" in table


def test_torch_peer_computes_the_same_nade_as_musejax(bench):
    args = bench.parse_args(["--hidden", "12", "--nade-hidden", "7", "--max-notes", "5"])
    _, lm = bench.lm_model("nade", args)
    rng = np.random.default_rng(0)  # weights of O(1) everywhere, so the keys of a frame interact
    params = jax.tree.map(lambda a: rng.normal(size=a.shape).astype(np.float32),
                          jax.eval_shape(lm.init_params, jax.random.key(0)))
    peer = bench.torch_gru_nade(bench.KEYS, args.hidden, args.nade_hidden)
    bench.torch_weights_from_musejax(peer, params)
    batch = bench.random_batch(3, 6, args.max_notes, seed=1)
    assert batch["targets"].sum(-1).max() == args.max_notes

    @jax.jit
    def musejax_nll(params, batch):  # as the train and eval steps compute it
        logits = lm.apply_fn(params, batch, train=False, rng=None)
        nll_sum, count = masked_nll_sums(logits, batch["targets"], batch["mask"], "bernoulli")
        return nll_sum / count

    assert bench.torch_nll(peer, batch) == pytest.approx(float(musejax_nll(params, batch)), rel=1e-5)

    # one frame drawn key by key from the same biases and noise
    visible, hidden = rng.normal(size=(4, bench.KEYS)), rng.normal(size=(4, args.nade_hidden))
    noise = rng.random((4, bench.KEYS))
    want = lm.model.apply({"params": params}, {"visible_bias": visible, "hidden_bias": hidden}, noise,
                          method="draw_frame")
    with torch.inference_mode():
        got = peer.draw_frame(*(torch.from_numpy(a.astype(np.float32)) for a in (visible, hidden, noise)))
    assert 0 < np.asarray(want).sum() < want.size  # keys both on and off
    np.testing.assert_array_equal(got.numpy().astype(bool), np.asarray(want))


def test_dry_run_writes_the_table_and_json(bench, tmp_path, capsys):
    out = tmp_path / "bench-nade.json"
    assert bench.main(["--dry-run", "--out", str(out)]) == 0
    assert not jax.config.read(bench.FAST_COMPILE)  # the dry run's compile setting is undone
    result = json.loads(out.read_text())
    assert {"config", "env", "peer_check", "rows", "goals"} <= set(result) and result["config"]["dry_run"]
    assert {(r["task"], r["impl"]) for r in result["rows"]} == {
        (task, impl) for task in ("train", "sample") for impl in ("musejax-nade", "musejax-nade-count", "musejax-bernoulli",
                                                                 "torch-nade")} | {("sample", "musejax-nade-count-top-p")}
    assert all(r["median_s"] > 0 and len(r["seconds"]) == 1 for r in result["rows"])
    assert [g["label"] for g in result["goals"]] == [g.label for g in bench.GOALS]
    assert all(g["verdict"] in ("met", "missed") for g in result["goals"])
    assert result["peer_check"]["relative_difference"] < 1e-5
    table = out.with_suffix(".md").read_text()
    assert "Dry run" in table and "| sample | torch-nade |" in table and "| goal |" in table
    assert "wrote" in capsys.readouterr().out
