"""experiments/style_mixing.py: the wrong-way step of a mix curve is told from sampling noise (paired over the
samples drawn at every weight)."""
from __future__ import annotations

import numpy as np
import pytest

from experiment_scripts import load_experiment


@pytest.fixture(scope="module")
def mixing():
    return load_experiment("style_mixing")


def test_worst_step_flags_a_real_dip_and_not_noise(mixing):
    rng = np.random.default_rng(0)
    n = 400
    base = rng.uniform(0.0, 1.0, n)  # each sample's own level, shared by every weight (common random numbers)
    rising = np.stack([np.clip(base * 0.2 + w, 0, 2) for w in (0.0, 0.3, 0.6, 0.9)])
    assert mixing.worst_step(rising, +1) is None
    assert mixing.worst_step(-rising, -1) is None

    dip = rising.copy()
    dip[2] = dip[1] - 0.05  # every sample falls by 0.05 between the second and third weight
    step = mixing.worst_step(dip, +1)
    assert step["weight_index"] == 1 and step["beyond_noise"] and step["step"] == pytest.approx(0.05)

    noisy = rising.copy()
    noise = rng.normal(0.0, 0.5, n)
    noisy[2] = noisy[1] + noise - noise.mean() - 0.02  # a mean fall of 0.02 under noise of SD 0.5 (SE 0.025)
    step = mixing.worst_step(noisy, +1)
    assert step["weight_index"] == 1 and not step["beyond_noise"]
    assert step["step"] == pytest.approx(0.02) and 0.02 < step["se"] < 0.03
