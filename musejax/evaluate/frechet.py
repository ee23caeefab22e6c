"""Fréchet distance between embedding sets, in the manner of FID (Heusel et al. 2017) and FMD (Fréchet Music
Distance): fit a Gaussian to each set's style-encoder embeddings and compare them,

    FD = ||mu_g - mu_r||^2 + tr(S_g + S_r - 2 (S_g S_r)^(1/2)).

The embeddings are the piece embeddings of a trained style classifier (musejax.style.classify, not normalised).
FD is biased upwards for small sets (it is an estimate from the sample covariances): compare sets of equal
size, and read it next to the reference-vs-reference value the section also reports (two random halves).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from musejax.style.classify import embed_sequences, load_style_run


def gaussian_stats(embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean (D,), covariance (D, D) with ddof=1) of a set of embeddings (N >= 2, D)."""
    x = np.asarray(embeddings, np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"need an (N >= 2, D) embedding matrix, got shape {x.shape}")
    return x.mean(axis=0), np.atleast_2d(np.cov(x, rowvar=False))


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet (2-Wasserstein) distance squared between N(mu1, sigma1) and N(mu2, sigma2).

    tr((S1 S2)^(1/2)) is the sum of the square roots of the eigenvalues of S1^(1/2) S2 S1^(1/2), a symmetric
    matrix with the spectrum of S1 S2: no square root of the product itself, which is singular whenever a set
    has fewer pieces than dimensions or an embedding unit that never fires (there the matrix square root warned
    and a regularised retry moved the result)."""
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1, sigma2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (len(mu1), len(mu1)):
        raise ValueError(f"shape mismatch: mu {mu1.shape} / {mu2.shape}, sigma {sigma1.shape} / {sigma2.shape}")
    diff = mu1 - mu2
    values, vectors = np.linalg.eigh(sigma1)
    root1 = (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T
    trace_covmean = np.sqrt(np.clip(np.linalg.eigvalsh(root1 @ sigma2 @ root1), 0.0, None)).sum()
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_covmean
    return float(max(value, 0.0))


def embedding_frechet(generated: np.ndarray, reference: np.ndarray) -> float:
    """FD between the Gaussians fitted to two embedding sets (N_g, D) and (N_r, D)."""
    return frechet_distance(*gaussian_stats(generated), *gaussian_stats(reference))


def frechet_section(generated: Any, reference: Any, style_run_dir: str, *, max_pieces: int = 2000,
                    seed: int = 0) -> dict[str, Any]:
    """The `musejax evaluate` section: FD of generated vs reference piece embeddings under a style classifier,
    the reference-vs-reference FD of two random halves (a floor to read FD against), and the share of each set
    the classifier assigns to each style."""

    run = load_style_run(style_run_dir)
    rng = np.random.default_rng(seed)
    sets = {}
    for pieces in (generated, reference):
        sequences = list(pieces.sequences)
        if len(sequences) > max_pieces:
            sequences = [sequences[i] for i in np.sort(rng.choice(len(sequences), max_pieces, replace=False))]
        sets[pieces.role] = embed_sequences(run, sequences)
    gen, ref = sets["generated"], sets["reference"]
    if len(gen.embeddings) < 2 or len(ref.embeddings) < 2:
        return {"skipped": f"need >= 2 encodable pieces per set, got {len(gen.embeddings)} generated and "
                           f"{len(ref.embeddings)} reference"}
    halves = rng.permutation(len(ref.embeddings))
    floor = (embedding_frechet(ref.embeddings[halves[::2]], ref.embeddings[halves[1::2]])
             if len(ref.embeddings) >= 4 else None)
    return {
        "classifier": str(run.run_dir), "classifier_step": run.step, "embed_dim": run.embed_dim,
        "frechet_distance": embedding_frechet(gen.embeddings, ref.embeddings),
        "reference_halves_frechet_distance": floor,
        "n_generated": len(gen.embeddings), "n_reference": len(ref.embeddings),
        "style_share": {role: dict(zip(run.styles, np.bincount(s.probs.argmax(-1), minlength=len(run.styles))
                                       .astype(float) / len(s.probs))) for role, s in sets.items()},
    }


def frechet_markdown(section: dict[str, Any] | None) -> list[str]:
    """Lines for report.md (empty when the section was not computed)."""
    if not section:
        return []
    if "skipped" in section:
        return ["", "## Fréchet distance (style embeddings)", "", f"- skipped: {section['skipped']}"]
    floor = section["reference_halves_frechet_distance"]
    lines = ["", "## Fréchet distance (style embeddings)", "",
             f"- FD(generated, reference) = {section['frechet_distance']:.3f} ({section['n_generated']} vs "
             f"{section['n_reference']} pieces, {section['embed_dim']}-d embeddings of {section['classifier']})",
             f"- FD(reference half, reference half) = {floor:.3f} (floor for sets of this size)" if floor is not None
             else "- reference too small for a half-vs-half floor", "",
             "| style | share of generated | share of reference |", "|---|---|---|"]
    share = section["style_share"]
    for style in share["reference"]:
        lines.append(f"| {style} | {share['generated'][style]:.3f} | {share['reference'][style]:.3f} |")
    return lines
