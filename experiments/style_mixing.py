"""Style-conditioned generation measured with the style classifier: per-style confusion of conditioned samples,
the classifier's probabilities along a style mix, and Fréchet distances of generated vs reference embeddings.

    python experiments/style_mixing.py [--classifier runs/style] [--lm-run runs/style_lm] [--encoding performance]

1. Trains (unless `--lm-run` already has a finished run) the GRU LM of `musejax/configs/lm.py` conditioned on
   style ids (model.style_dim=16) on the eight bundled corpora, balanced and bounded for a CPU budget: at most
   --pieces-per-style training pieces per style (a fifth of that for valid/test), each cropped to its first
   --crop-steps steps (events). Same model, loop and checkpoints as `musejax train`. --encoding pianoroll
   (independent Bernoulli keys per step) or performance (softmax over note-on/off/time-shift events).
2. Samples --n pieces of --sample-steps steps (events) per style (`musejax.lm.sample`, temperature 1; --top-p for
   a nucleus, the lm config's default since 2026-12-06, off here so the figures compare with earlier ones), decodes
   them and classifies them (piece = average of its windows): confusion table conditioned x predicted style.
   For scale: the classifier on real test excerpts of the same length (piano-roll steps).
3. Mix curve: for each pair (a, b) and weight w in 0, 1/8, ..., 1 the style input is w*a + (1-w)*b
   (interpolated style embeddings, as `musejax sample --mix a:w,b:1-w`); mean classifier P(a), P(b), the share
   of a between the two, P(a) / (P(a) + P(b)) per piece, and whether each is monotone in w. The share is the
   mix curve: a mix of two styles can sound like a third (a Bach/Irish half-mix is mostly heard as Monteverdi,
   so P(bach) and P(irish) are both near 0 there and P(bach) dips), and the share asks only which of the two
   mixed styles the piece leans to. The most common other class per weight is reported beside it. Every
   weight of a pair samples with the same seed (common random numbers: the same draws, only the style input
   changes), so the curve shows what the weight does, not which --n pieces a seed happened to draw (with a seed
   per weight, P(a) of about 0.02 at the low weights went up and down by sampling noise alone). For each curve
   the step between neighbouring weights that goes the wrong way by the most standard errors (paired over the
   samples) is given with its standard error, so a dip can be told from sampling noise (beyond noise: > 2 SE).
4. Fréchet distance between each style's samples and each style's real test pieces (classifier embeddings).
Writes style_mixing.json / .md, confusion_samples.png and mix_curve.png into the LM run.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

MIX_WEIGHTS = tuple(i / 8 for i in range(9))
MIX_PAIRS = (("bach", "irish"), ("chinese-folk", "german-folk"))


def lm_data(config, pieces_per_style: int, crop_steps: int):
    """Balanced, cropped LMData from the bundled corpora (parsed/encoded through the cache)."""
    from musejax.data.datasets import build_dataset
    from musejax.lm.data import make_encoding, windows_from_arrays

    encoding = make_encoding(config.data)
    dataset = build_dataset("all", encoding, progress=False)
    splits = {}
    for split, pieces in dataset.splits.items():
        cap = pieces_per_style if split == "train" else max(2, pieces_per_style // 5)
        taken: dict[str, int] = {}
        arrays, styles = [], []
        for piece in pieces:
            if piece.style is None or taken.get(piece.style, 0) >= cap:
                continue
            taken[piece.style] = taken.get(piece.style, 0) + 1
            arrays.append(piece.array[:crop_steps])
            styles.append(dataset.style_index(piece.style))
        splits[split] = (arrays, styles)
    description = (f"bundled (all), <= {pieces_per_style} train pieces per style, first {crop_steps} steps: "
                   + ", ".join(f"{k} {len(v[0])} pieces" for k, v in splits.items()))
    return windows_from_arrays(config.data, encoding, splits, dataset.styles, description)


def classify_samples(lm, classifier, n: int, steps: int, seed: int, temperature: float, top_p: float | None = None,
                     **style):
    """Sample n pieces (style=NAME or mix={...}), decode and classify them -> (embeddings, probs, n without notes,
    the sequences)."""
    from musejax.lm import sample as sampling
    from musejax.style.classify import embed_sequences

    sequences = sampling.sample(lm, n, steps, seed=seed, temperature=temperature, top_p=top_p, **style)
    embedded = embed_sequences(classifier, sequences)
    return embedded.embeddings, embedded.probs, len(embedded.failures), sequences


def classify_rolls(style_run, rolls) -> tuple[np.ndarray, np.ndarray]:
    """Piano-rolls (T, 88) (an onset channel is added if the classifier reads one) or already in the
    classifier's frame -> (piece embeddings, style probabilities)."""
    from musejax.style.embeddings import head_logits, piece_embeddings, softmax
    from musejax.style.data import pack_roll, with_onsets

    onsets = bool(style_run.meta.get("onsets"))
    packed = [pack_roll(with_onsets(r) if onsets and np.ndim(r) == 2 else r) for r in rolls]
    embeddings = piece_embeddings(style_run.model, style_run.params, packed, style_run.window_steps)
    return embeddings, softmax(head_logits(style_run.model, style_run.params, embeddings))


def worst_step(values: np.ndarray, direction: int) -> dict | None:
    """values (weights, samples), the same draws at every weight; direction +1 (should rise) or -1 (fall) -> the
    step between neighbouring weights that goes the wrong way by the most standard errors (paired over the
    samples), with its mean, its standard error and whether it exceeds two of them; None when the mean curve is
    monotone."""
    steps = -direction * np.diff(values, axis=0)  # > 0: a step the wrong way, per sample
    mean = steps.mean(1)
    se = steps.std(1, ddof=1) / np.sqrt(steps.shape[1])
    if not (mean > 0).any():
        return None
    k = int(np.argmax(np.where(mean > 0, mean / np.maximum(se, 1e-12), -np.inf)))
    return {"weight_index": k, "from": float(values[k].mean()), "to": float(values[k + 1].mean()),
            "step": float(mean[k]), "se": float(se[k]), "beyond_noise": bool(mean[k] > 2 * se[k])}


def step_text(name: str, step: dict | None) -> str:
    """One curve's `worst_step` for the md report."""
    if step is None:
        return f"{name} monotone"
    return (f"{name} {step['from']:.3f} -> {step['to']:.3f} at w = {MIX_WEIGHTS[step['weight_index']]:.3f}: "
            f"{step['step']:.4f} ± {2 * step['se']:.4f}" + (" (beyond noise)" if step["beyond_noise"] else ""))


def plot_mix(curves: dict, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4.2 * len(curves), 3.3), dpi=110)
    FigureCanvasAgg(figure)
    for axes, (pair, rows) in zip(figure.subplots(1, len(curves), squeeze=False)[0], curves.items()):
        a, b = pair.split("|")
        w = [r["weight"] for r in rows]
        axes.plot(w, [r["p_a"] for r in rows], "o-", label=f"P({a})")
        axes.plot(w, [r["p_b"] for r in rows], "s-", label=f"P({b})")
        axes.plot(w, [r["share_a"] for r in rows], "k^-", label=f"P({a}) / (P({a}) + P({b}))")
        axes.plot(w, [r["top_a"] for r in rows], "o:", alpha=0.6, label=f"share classified {a}")
        axes.set_xlabel(f"mix weight of {a} (1 - weight: {b})")
        axes.set_ylim(-0.02, 1.02)
        axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path)


def main() -> None:
    from musejax.lm import sample as sampling
    from musejax.style.classify import load_style_run
    from musejax.lm.config import resolve_config
    from musejax.evaluate.classification import confusion_markdown, plot_confusion
    from musejax.evaluate.frechet import embedding_frechet
    from musejax.midi.meta import write_midi
    from musejax.lm.task import train
    from musejax.style.embeddings import split_outputs
    from musejax.train.metrics import read_metrics
    from musejax.style.config import saved_style_config
    from musejax.style.data import load_style_data, parse_merge

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classifier", type=Path, default=Path("runs/style"))
    parser.add_argument("--lm-run", type=Path, default=Path("runs/style_lm"))
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--pieces-per-style", type=int, default=600)
    parser.add_argument("--crop-steps", type=int, default=1024)
    parser.add_argument("--n", type=int, default=64, help="samples per style / per mix weight")
    parser.add_argument("--sample-steps", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0, help="sampling seed")
    parser.add_argument("--lm-seed", type=int, default=None, help="config.train.seed of the LM it trains")
    parser.add_argument("--encoding", choices=["pianoroll", "performance"], default="performance")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-p", type=float, default=None, help="nucleus sampling of each event (default: none)")
    args = parser.parse_args()
    started = time.perf_counter()
    window = 64 if args.encoding == "pianoroll" else 128
    overrides = ["--config.model.style_dim=16", f"--config.model.hidden={args.hidden}",
                 f"--config.train.steps={args.steps}", "--config.train.eval_every_steps=500",
                 f"--config.data.encoding={args.encoding}", f"--config.data.window_steps={window}",
                 f"--config.data.hop_steps={window // 2}", f"--config.data.eval_window_steps={window}",
                 "--config.train.eval_batch_size=64", "--config.sample.n=0", "--config.train.batch_size=32",
                 "--config.model.output=bernoulli",  # as measured before the lm default became a NADE
                 "--config.optim.learning_rate=3e-3",  # and before its learning rate became 1e-2
                 "--config.model.end_quarters=0",  # and before it read the quarters left to the end
                 "--config.data.transpose_semitones=" + ("5" if args.encoding == "pianoroll" else "0"),
                 "--config.data.corpus=" + ",".join(__import__("musejax.data.corpora", fromlist=["x"]).BUNDLED_CORPORA)]
    if args.lm_seed is not None:
        overrides.append(f"--config.train.seed={args.lm_seed}")
    config = resolve_config("lm", overrides)
    if not read_metrics(args.lm_run, "final"):
        train(config, args.lm_run, data=lm_data(config, args.pieces_per_style, args.crop_steps), progress=False)
    train_seconds = time.perf_counter() - started
    final = read_metrics(args.lm_run, "final")[-1]
    lm = sampling.load_run(args.lm_run)
    classifier = load_style_run(args.classifier)
    classes = classifier.styles
    style_config = saved_style_config(args.classifier)
    merge = parse_merge(style_config.data.merge_styles)  # e.g. the LM's irish and fiddle -> "irish-fiddle"
    missing = sorted({s for s in lm.styles if merge.get(s, s) not in classes})
    if missing:
        raise SystemExit(f"LM styles {missing} are not classifier classes {classes}")
    class_of = {s: classes.index(merge.get(s, s)) for s in lm.styles}  # LM style -> classifier class index

    # 2. conditioned samples -> confusion
    generated, confusion, rows = {}, np.zeros((len(lm.styles), len(classes)), np.int64), {}
    for i, style in enumerate(lm.styles):
        embeddings, probs, empty, sequences = classify_samples(lm, classifier, args.n, args.sample_steps, args.seed + i,
                                                               args.temperature, args.top_p, style=style)
        generated[style] = embeddings
        confusion[i] = np.bincount(probs.argmax(-1), minlength=len(classes))
        rows[style] = {"own_style_share": float(confusion[i, class_of[style]] / args.n),
                       "mean_prob_own_style": float(probs[:, class_of[style]].mean()) if len(probs) else 0.0,
                       "without_notes": empty,
                       "notes_per_quarter": float(np.mean([len(ns.notes) / max(ns.total_time * 2.0, 1e-9)
                                                           for ns in sequences]))}
        for k, ns in enumerate(sequences[:2]):
            write_midi(ns, args.lm_run / "style_samples" / style / f"sample_{k}.mid")
    diagonal = float(np.mean([r["own_style_share"] for r in rows.values()]))
    plot_confusion(confusion, lm.styles, classes, args.lm_run / "confusion_samples.png",
                   title=f"samples conditioned on a style (classified as it: {diagonal:.0%})",
                   xlabel="classifier's style", ylabel="conditioned style")

    # real excerpts of the same length, for scale; references for the Fréchet distances
    data = load_style_data(style_config.data, progress=False)
    from musejax.style.data import unpack_roll

    _, real_probs = classify_rolls(classifier, [unpack_roll(r[:args.sample_steps]) for r in data.test.rolls])
    real_excerpt_accuracy = float((real_probs.argmax(-1) == data.test.labels).mean())
    reference, _ = split_outputs(classifier.model, classifier.params, data.test, classifier.window_steps, 256)

    # 3. mix curves
    curves, monotone = {}, {}
    for pair_index, (a, b) in enumerate(MIX_PAIRS):
        if a not in lm.styles or b not in lm.styles:
            continue
        curve, per_sample = [], {"p_a": [], "p_b": [], "share_a": []}
        for w in MIX_WEIGHTS:  # one seed per pair: common random numbers across the weights (module doc)
            _, probs, _, _ = classify_samples(lm, classifier, args.n, args.sample_steps, args.seed + 100 + pair_index,
                                              args.temperature, args.top_p, mix={a: w, b: 1.0 - w})
            top = probs.argmax(-1)
            pa, pb = probs[:, class_of[a]], probs[:, class_of[b]]
            share_a = pa / np.maximum(pa + pb, 1e-12)
            for key, values in (("p_a", pa), ("p_b", pb), ("share_a", share_a)):
                per_sample[key].append(values)
            others = np.bincount(top, minlength=len(classes))
            others[[class_of[a], class_of[b]]] = -1
            curve.append({"weight": w, "p_a": float(pa.mean()), "p_b": float(pb.mean()),
                          "share_a": float(share_a.mean()),
                          "top_a": float((top == class_of[a]).mean()),
                          "top_b": float((top == class_of[b]).mean()),
                          "top_other": classes[int(others.argmax())],
                          "top_other_share": float(others.max() / len(top))})
        curves[f"{a}|{b}"] = curve
        p_a, p_b, share = (np.array([c[k] for c in curve]) for k in ("p_a", "p_b", "share_a"))
        monotone[f"{a}|{b}"] = {"share_a_rises": bool(np.all(np.diff(share) >= 0)),
                                "p_a_rises": bool(np.all(np.diff(p_a) >= 0)),
                                "p_b_falls": bool(np.all(np.diff(p_b) <= 0)),
                                "worst_step": {key: worst_step(np.stack(per_sample[key]), 1 if key != "p_b" else -1)
                                               for key in per_sample}}
    plot_mix(curves, args.lm_run / "mix_curve.png")

    # 4. Fréchet distances generated style x reference style
    frechet = {g: {r: embedding_frechet(generated[g], reference[data.test.labels == classes.index(r)])
                   for r in classes if (data.test.labels == classes.index(r)).sum() >= 2} for g in lm.styles}
    own = [frechet[g][classes[class_of[g]]] for g in lm.styles if classes[class_of[g]] in frechet[g]]
    other = [v for g in lm.styles for r, v in frechet[g].items() if r != classes[class_of[g]]]
    result = {"lm_run": str(args.lm_run), "classifier": str(args.classifier), "lm_final": final,
              "encoding": lm.encoding.name, "temperature": args.temperature, "top_p": args.top_p,
              "lm_data": lm.config.data.corpus if lm.config else None, "train_seconds": train_seconds,
              "n_per_style": args.n, "sample_steps": args.sample_steps, "styles": lm.styles, "classes": classes,
              "confusion": confusion.tolist(), "per_style": rows, "own_style_share_mean": diagonal,
              "chance": 1.0 / len(classes), "real_excerpt_accuracy": real_excerpt_accuracy, "mix_curves": curves,
              "mix_monotone": monotone, "mix_seeds": "one per pair (common random numbers)",
              "frechet": frechet, "frechet_own_mean": float(np.mean(own)), "frechet_other_mean": float(np.mean(other))}
    (args.lm_run / "style_mixing.json").write_text(json.dumps(result, indent=1) + "\n")
    unit = "steps" if lm.encoding.name == "pianoroll" else "events"
    lines = [f"# Style-conditioned samples under the classifier ({args.lm_run}: {lm.encoding.name} LM, {args.n} "
             f"samples x {args.sample_steps} {unit} per style, temperature {args.temperature:g}"
             + (f", top-p {args.top_p:g})" if args.top_p else ")"), "",
             f"- LM: valid NLL {final.get('valid_nll', float('nan')):.3f}, test NLL {final.get('test_nll', float('nan')):.3f} "
             f"per step (best step {final.get('best_step')})",
             f"- samples classified as their conditioned style: {diagonal:.1%} (chance {1 / len(classes):.1%}); "
             f"classifier on real test excerpts ({args.sample_steps} piano-roll steps): {real_excerpt_accuracy:.1%}", "",
             confusion_markdown(confusion, lm.styles, classes, "conditioned \\ classified"), "",
             "| style | classified as it | mean P(style) | notes per quarter | samples without notes |",
             "|---|---|---|---|---|"]
    lines += [f"| {s} | {r['own_style_share']:.2f} | {r['mean_prob_own_style']:.2f} | {r['notes_per_quarter']:.2f} | "
              f"{r['without_notes']} |" for s, r in rows.items()]
    for pair, curve in curves.items():
        a, b = pair.split("|")
        yes = {k: "yes" if v else "no" for k, v in monotone[pair].items()}
        lines += ["", f"Mix {a}:w + {b}:(1-w)", "",
                  f"| w | share of {a}: P({a}) / (P({a}) + P({b})) | P({a}) | P({b}) | classified {a} | "
                  f"classified {b} | most often classified otherwise |", "|---|---|---|---|---|---|---|"]
        lines += [f"| {c['weight']:.3f} | {c['share_a']:.3f} | {c['p_a']:.3f} | {c['p_b']:.3f} | {c['top_a']:.2f} | "
                  f"{c['top_b']:.2f} | {c['top_other']} {c['top_other_share']:.2f} |" for c in curve]
        lines += ["", f"Share of {a} monotone rising: {yes['share_a_rises']}; P({a}) monotone rising: "
                      f"{yes['p_a_rises']}; P({b}) monotone falling: {yes['p_b_falls']} (the same draws at every weight)"]
        steps = monotone[pair]["worst_step"]
        lines += ["", "The step the wrong way by the most standard errors, paired over the samples (mean ± 2 SE; "
                      "beyond noise when the mean exceeds 2 SE): " + "; ".join(
                          step_text(name, steps[key])
                          for key, name in (("share_a", f"share of {a}"), ("p_a", f"P({a})"), ("p_b", f"P({b})")))]
    lines += ["", f"Fréchet distance of each style's samples to real test pieces: own style {np.mean(own):.2f} on "
                  f"average, other styles {np.mean(other):.2f}.", "", "| generated \\ reference | " + " | ".join(classes)
              + " |", "|---|" + "---|" * len(classes)]
    lines += [f"| {g} | " + " | ".join(f"{frechet[g].get(r, float('nan')):.1f}" for r in classes) + " |"
              for g in lm.styles]
    (args.lm_run / "style_mixing.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
