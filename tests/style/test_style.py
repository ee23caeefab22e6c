"""Style recognition: encoder shapes and masking, class-weighted loss, balanced batches, metrics, the
low-confidence rule, the Fréchet distance, and `musejax classify` / `--train` end to end on a tiny corpus."""

from __future__ import annotations

import json
import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from musejax.cli import main
from musejax.config import ConfigError
from musejax.evaluate.classification import (classification_scores, confusion_matrix, majority_baseline,
                                             merge_classes, scores_from_confusion)
from musejax.evaluate.frechet import embedding_frechet, frechet_distance, gaussian_stats
from musejax.style.model import StyleClassifier, l2_normalize, masked_mean_max
from musejax.style.embeddings import (calibrate_threshold, fit_style_gaussians, is_confident, pool_pieces,
                                      style_distance)
from musejax.style.config import resolve_style_config
from musejax.style.steps import weighted_cross_entropy
from musejax.style.data import BalancedWindows, StyleSplit, pack_roll, unpack_roll, with_onsets
from style_fixtures import chord_piece, tiny_style_run, write_notes


def small_model(kind: str = "conv", n_styles: int = 3) -> StyleClassifier:
    return StyleClassifier(n_styles=n_styles, kind=kind, channels=(8, 8), kernel_size=3, hidden=8, embed_dim=6)


def init(model: StyleClassifier, x, mask):
    """Parameters via a jit-compiled init (eager init compiles every small op separately: much slower)."""
    return jax.jit(model.init)(jax.random.key(0), jnp.asarray(x), jnp.asarray(mask))["params"]


def apply(model: StyleClassifier, params, x, mask, method: str = "__call__"):
    return jax.jit(lambda p, x, m: model.apply({"params": p}, x, m, method=method))(params, jnp.asarray(x),
                                                                                      jnp.asarray(mask))


@pytest.mark.parametrize("kind", ["conv", "gru"])
def test_encoder_shapes(kind):
    model = small_model(kind)
    x = jnp.asarray(np.random.default_rng(0).random((5, 20, 88)) < 0.1, jnp.float32)
    mask = jnp.ones((5, 20), bool)
    params = init(model, x, mask)
    logits = apply(model, params, x, mask)
    assert logits.shape == (5, 3)
    embedding = apply(model, params, x, mask, "embed")
    assert embedding.shape == (5, 6)
    # the head is linear: logits of the mean embedding = mean of the logits
    mean_logits = model.apply({"params": params}, embedding.mean(0), method="logits_from_embedding")
    np.testing.assert_allclose(mean_logits, logits.mean(0), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ["conv", "gru"])
def test_padding_is_invisible(kind):
    """Garbage or extra padding after the real steps changes nothing: piece length is not an input."""
    model = small_model(kind)
    rng = np.random.default_rng(1)
    real = (rng.random((2, 11, 88)) < 0.1).astype(np.float32)
    short = np.zeros((2, 16, 88), np.float32)
    short[:, :11] = real
    noisy = short.copy()
    noisy[:, 11:] = rng.random((2, 5, 88))
    long = np.zeros((2, 40, 88), np.float32)
    long[:, :11] = real
    mask16, mask40 = np.arange(16) < 11, np.arange(40) < 11
    params = init(model, short, np.ones((2, 16), bool))
    out = [apply(model, params, x, np.broadcast_to(m, x.shape[:2]))
           for x, m in ((short, mask16), (noisy, mask16), (long, mask40))]
    np.testing.assert_allclose(out[0], out[1], atol=1e-5)
    if kind == "conv":  # the GRU runs over the padding too (its state is not read there, but scan length differs)
        np.testing.assert_allclose(out[0], out[2], atol=1e-5)


def test_bad_inputs_name_the_module():
    model = small_model()
    with pytest.raises(ValueError, match="musejax/style/model.py"):
        init(model, np.zeros((1, 8, 12)), np.ones((1, 8), bool))


def test_masked_pooling_and_normalize():
    h = jnp.array([[[1.0], [3.0], [100.0]]])
    pooled = masked_mean_max(h, jnp.array([[True, True, False]]))
    np.testing.assert_allclose(pooled, [[2.0, 3.0]])
    np.testing.assert_allclose(jnp.linalg.norm(l2_normalize(jnp.array([[3.0, 4.0]])), axis=-1), [1.0])


def test_class_weighted_loss():
    logits = jnp.array([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    labels = jnp.array([0, 1, 0])
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    total, weight = weighted_cross_entropy(logits, labels, jnp.array([1.0, 3.0, 1.0]))
    assert float(weight) == 5.0
    np.testing.assert_allclose(float(total), float(ce[0] + 3 * ce[1] + ce[2]), rtol=1e-6)
    np.testing.assert_allclose(float(total / weight), (math.log(1 + math.exp(-2)) + 3 * math.log(1 + math.exp(-1))
                                                       + math.log(2)) / 5, rtol=1e-6)
    uniform, count = weighted_cross_entropy(logits, labels, jnp.ones(3))
    np.testing.assert_allclose(float(uniform / count), float(ce.mean()), rtol=1e-6)


def _split(n_per_style: tuple[int, ...], steps: int = 40) -> StyleSplit:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(len(n_per_style)), n_per_style).astype(np.int32)
    rolls = [pack_roll(rng.random((steps + i, 88)) < 0.05) for i in range(len(labels))]
    return StyleSplit([f"p{i}" for i in range(len(labels))], labels, rolls)


def test_balanced_batches_and_loss_weights():
    split = _split((30, 3))
    balanced = BalancedWindows(split, 2, window_steps=16, batch_size=400, seed=0, balance="sampling")
    batch = balanced.batch(0)
    assert batch["x"].shape == (400, 16, 88) and batch["mask"].all()
    assert 0.4 < batch["label"].mean() < 0.6  # styles drawn uniformly although 30:3
    assert (batch["weight"] == 1).all()
    np.testing.assert_array_equal(balanced.batch(7)["x"], balanced.batch(7)["x"])  # pure function of (seed, step)
    weighted = BalancedWindows(split, 2, window_steps=16, batch_size=400, seed=0, balance="loss")
    batch = weighted.batch(0)
    assert batch["label"].mean() < 0.2
    np.testing.assert_allclose(weighted.class_weight, [33 / (2 * 30), 33 / (2 * 3)])
    np.testing.assert_allclose(batch["weight"], weighted.class_weight[batch["label"]])


def test_transposed_windows_stay_on_the_keys():
    roll = np.zeros((20, 88), bool)
    roll[:, [0, 40]] = True  # lowest key sounding: only upward shifts are possible
    split = StyleSplit(["a"], np.zeros(1, np.int32), [pack_roll(roll)])
    batch = BalancedWindows(split, 1, 20, 64, 0, "none", transpose_semitones=6).batch(3)
    lowest = np.array([np.flatnonzero(w.any(0))[0] for w in batch["x"]])
    assert lowest.min() >= 0 and lowest.max() <= 6 and len(set(lowest)) > 1
    assert all(w.sum() == 40 for w in batch["x"])
    np.testing.assert_array_equal(unpack_roll(pack_roll(roll)), roll)


def test_onset_frames_pack_and_transpose_together():
    roll = np.zeros((6, 88), bool)
    roll[0:3, 40] = True  # one held note
    roll[4:6, 40] = True  # a second note of the same key
    framed = with_onsets(roll)
    assert framed.shape == (6, 2, 88)
    np.testing.assert_array_equal(np.flatnonzero(framed[:, 1, 40]), [0, 4])
    split = StyleSplit(["a"], np.zeros(1, np.int32), [pack_roll(framed)])
    batch = BalancedWindows(split, 1, 8, 16, 0, "none", transpose_semitones=3).batch(0)
    assert batch["x"].shape == (16, 8, 2, 88) and batch["mask"][:, :6].all() and not batch["mask"][:, 6:].any()
    for window in batch["x"]:
        key = np.flatnonzero(window[:, 0].any(0))
        np.testing.assert_array_equal(np.flatnonzero(window[:, 1].any(0)), key)  # onsets moved with the notes
        assert len(key) == 1 and 37 <= key[0] <= 43


def test_metrics_on_a_hand_made_confusion():
    counts = np.array([[5, 1, 0], [2, 3, 0], [0, 0, 4]])
    scores = scores_from_confusion(counts, ["a", "b", "c"])
    f1 = [2 * (5 / 7) * (5 / 6) / (5 / 7 + 5 / 6), 2 * 0.75 * 0.6 / 1.35, 1.0]
    assert scores["accuracy"] == pytest.approx(12 / 15)
    assert scores["macro_f1"] == pytest.approx(sum(f1) / 3)
    assert scores["per_class"]["a"]["precision"] == pytest.approx(5 / 7)
    assert scores["per_class"]["b"]["recall"] == pytest.approx(3 / 5)
    true = np.repeat([0, 1, 2], [6, 5, 4])
    predicted = np.array([0] * 5 + [1] + [0, 0, 1, 1, 1] + [2] * 4)
    np.testing.assert_array_equal(confusion_matrix(true, predicted, 3), counts)
    assert classification_scores(true, predicted, ["a", "b", "c"])["macro_f1"] == pytest.approx(sum(f1) / 3)
    baseline = majority_baseline(np.array([1, 1, 0]), true, ["a", "b", "c"])
    assert baseline["predicts"] == "b" and baseline["accuracy"] == pytest.approx(5 / 15)
    assert baseline["macro_f1"] == pytest.approx((2 * (5 / 15) / (1 + 5 / 15)) / 3)
    merged, names = merge_classes(np.array([[0.2, 0.5, 0.3]]), ["a", "b", "c"], {"a": "ab", "b": "ab"})
    assert names == ["ab", "c"] and np.allclose(merged, [[0.7, 0.3]])


def test_low_confidence_rule():
    rng = np.random.default_rng(0)
    means = np.array([[0.0, 0.0], [10.0, 0.0]])
    labels = np.repeat([0, 1], 4000)
    embeddings = means[labels] + rng.normal(size=(8000, 2)) * [1.0, 3.0]
    fitted_means, precision, scales = fit_style_gaussians(embeddings, labels, 3)  # style 2 has no piece
    np.testing.assert_allclose(fitted_means[:2], means, atol=0.15)
    assert np.isinf(fitted_means[2]).all()
    np.testing.assert_allclose(precision, np.diag([1.0, 1 / 9]), atol=0.05)
    median = 2 * np.log(2)  # median of a chi-square with 2 degrees of freedom: the typical squared distance
    np.testing.assert_allclose(scales[:2], median, rtol=0.05)
    # 3 sd along the wide axis costs as much as 3 along the narrow one; distances are relative to the median
    distances = style_distance(np.array([[0.0, 9.0], [13.0, 0.0], [5.0, 0.0], [10.0, 0.0]]), fitted_means, precision,
                               scales)
    np.testing.assert_allclose(distances * median, [9.0, 9.0, 25.0, 0.0], rtol=0.08, atol=0.05)
    valid = style_distance(embeddings, fitted_means, precision, scales)
    threshold = calibrate_threshold(valid, coverage=0.9)
    assert is_confident(valid, threshold).mean() == pytest.approx(0.9, abs=1e-3)
    assert threshold * median == pytest.approx(4.6, rel=0.05)  # the chi-square's 90% quantile
    np.testing.assert_array_equal(is_confident(np.array([1.0, 30.0]), threshold), [True, False])
    # style-balanced calibration: a small style far out moves the threshold as much as a large one
    skewed = np.concatenate([np.full(90, 1.0), np.full(10, 5.0)])
    assert calibrate_threshold(skewed, 0.8) == 1.0
    assert calibrate_threshold(skewed, 0.8, labels=np.repeat([0, 1], [90, 10])) == 5.0
    with pytest.raises(ValueError):
        calibrate_threshold(valid, coverage=0.0)


def test_pool_pieces_weights_windows_by_real_steps():
    emb = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]])
    mask = np.array([[1, 1, 1, 1], [1, 0, 0, 0], [1, 1, 0, 0]], bool)
    pooled = pool_pieces(emb, mask, np.array([0, 0, 1]), 2)
    np.testing.assert_allclose(pooled, [[0.8, 0.2], [2.0, 2.0]])


def test_frechet_distance_of_known_gaussians():
    mu1, mu2 = np.array([0.0, 1.0]), np.array([3.0, -1.0])
    s1, s2 = np.diag([1.0, 4.0]), np.diag([9.0, 1.0])
    # diagonal covariances: FD = |mu1 - mu2|^2 + sum (sqrt(a) - sqrt(b))^2
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(13 + (1 - 3) ** 2 + (2 - 1) ** 2)
    assert frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0.0, abs=1e-9)
    rotation = np.array([[0.6, -0.8], [0.8, 0.6]])  # rotating both Gaussians keeps the distance
    rotated = frechet_distance(rotation @ mu1, rotation @ s1 @ rotation.T, rotation @ mu2, rotation @ s2 @ rotation.T)
    assert rotated == pytest.approx(18.0, rel=1e-6)
    assert frechet_distance(mu2, s2, mu1, s1) == pytest.approx(18.0, rel=1e-6)
    rng = np.random.default_rng(0)
    a = rng.normal([0.0, 1.0], [1.0, 2.0], size=(20000, 2))
    b = rng.normal([3.0, -1.0], [3.0, 1.0], size=(20000, 2))
    assert embedding_frechet(a, b) == pytest.approx(18.0, rel=0.03)
    mean, cov = gaussian_stats(a)
    assert mean.shape == (2,) and cov.shape == (2, 2)
    with pytest.raises(ValueError):
        gaussian_stats(a[:1])
    # singular covariances (fewer pieces than dimensions, a unit that never fires): no warning, and the dead
    # dimensions change nothing
    wide_a, wide_b = rng.normal(size=(40, 16)), rng.normal(size=(5, 16)) + 0.5
    wide_a[:, :3] = wide_b[:, :3] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert embedding_frechet(wide_a, wide_b) == pytest.approx(embedding_frechet(wide_a[:, 3:], wide_b[:, 3:]),
                                                                 rel=1e-6)


def test_config_errors_name_the_key():
    config = resolve_style_config("style:tiny", ["--config.train.steps=7"])
    assert config.train.steps == 7 and config.model.channels == (8, 8)
    with pytest.raises(ConfigError, match="config.train.balance"):
        resolve_style_config("style:tiny", ["--config.train.balance=oversample"])
    with pytest.raises(ConfigError, match="config.model.nope"):
        resolve_style_config("style", ["--config.model.nope=1"])


# ------------------------------------------------------------------------------------------ end to end


def test_train_report_and_classify_cli(tmp_path, capsys):
    run, corpus, _ = tiny_style_run()
    report = json.loads((run / "report.json").read_text())
    assert report["styles"] == ["chords", "scales"]
    assert report["test"]["macro_f1"] > report["majority_baseline"]["macro_f1"]
    assert (run / "confusion.png").stat().st_size > 1000 and (run / "calibration.json").exists()
    calibration = json.loads((run / "calibration.json").read_text())
    assert calibration["rule"] == "mahalanobis" and calibration["scaled_distance"] == 0
    np.testing.assert_array_equal(np.load(run / "calibration.npz")["scales"], 1.0)  # distances as they are
    assert "| chords |" in (run / "report.md").read_text()

    chords = write_notes(tmp_path / "new chords.mid", chord_piece(np.random.default_rng(99)))
    capsys.readouterr()
    assert main(["classify", "--model", str(run), "--top", "2", str(chords), str(corpus / "scales" / "s01.mid")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"{chords}: chords 0.")
    assert "scales" in lines[1] and "chords" in lines[1]
    assert lines[0].endswith("[texture: homophonic, 4 voices, quarter grid]")  # the texture it saw, beside
    assert lines[1].endswith("[texture: monophonic, 1 voice, eighth grid]")

    assert main(["classify", "--model", str(run), "--json", str(chords)]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["top"][0]["style"] == "chords" and record["confident"] is True
    assert record["texture"] == {"kind": "homophonic", "voices": 4, "grid": "quarter", "parts": 1}


def test_classify_reports_low_confidence_instead_of_forcing(tmp_path, capsys):
    import shutil

    run, corpus, _ = tiny_style_run()
    strict = tmp_path / "strict_run"
    shutil.copytree(run, strict)
    (strict / "calibration.json").write_text(json.dumps({"threshold": -1.0}))  # no piece is near enough
    capsys.readouterr()
    assert main(["classify", "--model", str(strict), str(corpus / "scales" / "s02.mid")]) == 0
    out = capsys.readouterr().out
    assert "unknown style (distance" in out and "> threshold -1.00); scales 0." in out
    (strict / "calibration.npz").unlink()
    assert main(["classify", "--model", str(strict), str(corpus / "scales" / "s02.mid")]) == 2
    assert "not calibrated" in capsys.readouterr().err


def test_classify_errors(tmp_path, capsys):
    run, _, _ = tiny_style_run()
    assert main(["classify", "--model", str(tmp_path / "nothing"), str(run / "config.json")]) == 2
    assert "no style classifier run" in capsys.readouterr().err
    assert main(["classify", "--model", str(run), str(tmp_path / "missing.mid")]) == 2
    assert "missing.mid: no such file" in capsys.readouterr().err
    assert main(["classify", "--train", str(tmp_path / "x.mid")]) == 2
    empty = write_notes(tmp_path / "silent.mid", [(10, 0.0, 1.0)])  # below the piano's lowest key
    assert main(["classify", "--model", str(run), str(empty)]) == 2
    assert "silent.mid" in capsys.readouterr().err


def test_evaluate_reports_frechet_distance(tmp_path, capsys):
    run, corpus, cache = tiny_style_run()
    out = tmp_path / "evaluation"
    assert main(["evaluate", "--samples", str(corpus / "scales"), "--reference", str(corpus / "chords"),
                 "--style-model", str(run), "--no-originality", "--no-plots", "--out", str(out),
                 "--cache-dir", str(cache), "--workers", "1"]) == 0
    assert "Fréchet distance of style embeddings" in capsys.readouterr().out
    section = json.loads((out / "report.json").read_text())["frechet"]
    assert section["n_generated"] == 12 and section["n_reference"] == 12
    assert section["frechet_distance"] > section["reference_halves_frechet_distance"]
    assert "## Fréchet distance (style embeddings)" in (out / "report.md").read_text()
    assert main(["evaluate", "--samples", str(corpus / "scales"), "--reference", str(corpus / "chords"),
                 "--style-model", str(tmp_path / "nope")]) == 2


def test_merge_styles_relabels_pieces_before_training():
    from types import SimpleNamespace

    from musejax.style.data import parse_merge, split_from_pieces

    merge = parse_merge(resolve_style_config("style").data.merge_styles)  # the default: Irish/fiddle as one
    assert merge == {"irish": "irish-fiddle", "fiddle": "irish-fiddle"}
    roll = np.zeros((8, 88), bool)
    pieces = [SimpleNamespace(id=f"p{i}", style=style, array=roll)
              for i, style in enumerate(["irish", "fiddle", "bach", None])]
    styles = sorted({merge.get(p.style, p.style) for p in pieces if p.style})
    split, unlabelled = split_from_pieces(pieces, styles, merge)
    assert styles == ["bach", "irish-fiddle"] and unlabelled == 1
    assert split.ids == ["p0", "p1", "p2"] and list(split.labels) == [1, 1, 0]
    with pytest.raises(ValueError, match="OLD=NEW"):
        parse_merge("irish")


def test_classifier_resume_is_exact_through_the_shared_loop(tmp_path):
    """Stopped at step 7 (between evaluations) and resumed: the same parameters, metrics and report as one run."""
    from musejax.train.metrics import read_metrics
    from musejax.style.task import restore_style_run, train_classifier
    from musejax.style.data import load_style_data

    _, corpus, cache = tiny_style_run()
    config = resolve_style_config("style:tiny", [f"--config.data.corpus={corpus}", "--config.data.labels=folder",
                                                 f"--config.data.cache_dir={cache}", "--config.data.workers=1",
                                                 "--config.train.steps=12", "--config.train.eval_every_steps=5",
                                                 "--config.train.log_every_steps=3"])
    data = load_style_data(config.data, progress=False)
    straight = train_classifier(config, tmp_path / "straight", data=data, progress=False)
    first = train_classifier(config, tmp_path / "resumed", data=data, progress=False, stop_at_step=7)
    assert first.step == 7 and first.report is None
    resumed = train_classifier(config, tmp_path / "resumed", data=data, progress=False)
    same = lambda report: {k: v for k, v in report.items() if k != "run_dir"}  # noqa: E731
    assert resumed.step == straight.step == 12 and same(resumed.report) == same(straight.report)
    for which in ("best", "latest"):
        a, b = restore_style_run(tmp_path / "straight", which), restore_style_run(tmp_path / "resumed", which)
        assert a[3] == b[3] and all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a[1]), jax.tree.leaves(b[1])))
    drop = lambda rs: [{k: v for k, v in r.items() if k != "steps_per_second"} for r in rs]  # noqa: E731
    assert drop(read_metrics(tmp_path / "straight")) == drop(read_metrics(tmp_path / "resumed"))
    again = train_classifier(config, tmp_path / "resumed", data=data, progress=False)  # finished: no more steps
    assert again.step == 12 and same(again.report) == same(straight.report)
