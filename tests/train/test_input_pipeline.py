"""The Grain input pipeline (musejax/train/input_pipeline.py): shuffled epochs, batches by step, exact resume,
reproducible augmentation, and the LM / GAN streams built on it."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from musejax.train.input_pipeline import iterate, window_batches


def _batches(**kwargs):
    windows = np.arange(23 * 4).reshape(23, 4)
    mask = np.ones((23, 4), dtype=bool)
    return window_batches(windows, mask, {"style": np.arange(23) % 3, "piece_index": np.arange(23)}, **kwargs)


def _take(dataset, start, n):
    return list(itertools.islice(iterate(dataset, start), n))


def test_epochs_are_shuffled_permutations_deterministic_in_the_seed():
    epochs = [b["piece_index"].tolist() for b in _take(_batches(batch_size=23, seed=7), 0, 3)]
    assert all(sorted(e) == list(range(23)) for e in epochs)  # every window once per epoch
    assert epochs[0] != epochs[1] != epochs[2]  # reshuffled each epoch
    assert epochs == [b["piece_index"].tolist() for b in _take(_batches(batch_size=23, seed=7), 0, 3)]
    assert epochs[0] != _take(_batches(batch_size=23, seed=8), 0, 1)[0]["piece_index"].tolist()
    for batch in _take(_batches(batch_size=5, seed=7), 0, 6):
        np.testing.assert_array_equal(batch["array"][:, 0] // 4, batch["piece_index"])
        np.testing.assert_array_equal(batch["style"], batch["piece_index"] % 3)
        assert batch["mask"].shape == (5, 4) and batch["mask"].dtype == bool


def test_reading_from_step_k_gives_the_uninterrupted_streams_batches_with_their_augmentation():
    def shift(window, mask, rng):
        return window + rng.integers(0, 1000) * mask

    dataset = _batches(batch_size=4, seed=1, augment=shift)
    full = _take(dataset, 0, 20)
    for start in (1, 5, 13):  # inside the first epoch, at and across the epoch boundary (5 batches of 4 in 23)
        resumed = _take(dataset, start, 4)
        assert all(np.array_equal(a["array"], b["array"]) for a, b in zip(resumed, full[start:start + 4]))
    plain = _take(_batches(batch_size=4, seed=1), 0, 20)
    assert not all(np.array_equal(a["array"], b["array"]) for a, b in zip(full, plain))
    assert all(np.array_equal(a["piece_index"], b["piece_index"]) for a, b in zip(full, plain))


def test_length_grouped_batches_cut_padding_and_lose_no_window_or_step():
    lengths = np.random.default_rng(0).integers(1, 65, size=70)
    lengths[:20] = 64  # windows cut from long pieces are full
    mask = np.arange(64)[None, :] < lengths[:, None]
    windows = np.where(mask, np.arange(70)[:, None] * 100 + np.arange(64)[None, :], -1)

    def shift(window, mask, rng):
        return window + rng.integers(1, 1000) * 1000 * mask

    grouped = window_batches(windows, mask, {"index": np.arange(70)}, batch_size=4, seed=5, augment=shift,
                             length_bucket=16)
    batches = _take(grouped, 0, 34)  # two epochs of 17 batches (2 windows left over each)
    for epoch in (batches[:17], batches[17:]):
        seen = np.concatenate([b["index"] for b in epoch])
        assert len(set(seen.tolist())) == 68  # each window at most once an epoch
    for batch in batches:
        steps = batch["array"].shape[1]
        longest = lengths[batch["index"]].max()
        assert batch["mask"].shape == (4, steps) and steps % 16 == 0 and longest <= steps < longest + 16
        for row, index in zip(batch["array"], batch["index"]):  # every real step is there, augmented
            real = row[: lengths[index]] % 1000
            np.testing.assert_array_equal(real, (index * 100 + np.arange(lengths[index])) % 1000)
    mean_steps = np.mean([b["array"].shape[1] for b in batches])
    full = _take(window_batches(windows, mask, batch_size=4, seed=5), 0, 34)
    assert all(b["array"].shape[1] == 64 for b in full) and mean_steps < 0.9 * 64
    assert {b["index"].tolist().__repr__() for b in batches[:17]} != {
        b["index"].tolist().__repr__() for b in batches[17:]}  # a fresh grouping each epoch
    resumed = _take(grouped, 15, 4)  # across the epoch boundary: the same batches, augmentation and cut
    assert all(np.array_equal(a["array"], b["array"]) for a, b in zip(resumed, batches[15:19]))
    with pytest.raises(ValueError, match="length_bucket >= 0"):
        window_batches(windows, mask, batch_size=4, seed=5, length_bucket=-1)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="fewer than one batch"):
        _batches(batch_size=50, seed=0)
    with pytest.raises(ValueError, match="masks shape"):
        window_batches(np.zeros((4, 3)), np.ones((4, 2), bool), batch_size=2, seed=0)
    with pytest.raises(ValueError, match="extra 'mask'"):
        window_batches(np.zeros((4, 3)), np.ones((4, 3), bool), {"mask": np.zeros(4)}, batch_size=2, seed=0)


def test_lm_and_gan_streams_resume_exactly():
    from gan_fixtures import synthetic_data
    from lm_fixtures import tiny_config, tiny_data
    from musejax.gan.config import resolve_gan_config
    from musejax.gan.data import GanBatches
    from musejax.lm.data import TrainBatches

    config = tiny_config()
    lm = TrainBatches(tiny_data(config), batch_size=4, seed=3, transpose_semitones=2)
    straight = list(itertools.islice(lm.from_step(0), 12))
    assert all(np.array_equal(a["inputs"], b["inputs"]) and np.array_equal(a["targets"], b["targets"])
               for a, b in zip(itertools.islice(lm.from_step(9), 3), straight[9:]))
    # each batch says how far each window was transposed: moved back, it is a window of the data as written
    data = tiny_data(config)
    written = {data.train.windows[i].tobytes() for i in range(len(data.train))}
    shifts = np.concatenate([batch["transpose"] for batch in straight])
    assert shifts.dtype == np.int32 and set(shifts) <= set(range(-2, 3)) and len(set(shifts)) > 1
    for batch in straight[:3]:
        for targets, mask, shift in zip(batch["targets"], batch["mask"], batch["transpose"]):
            steps = int(mask.sum())
            back = np.zeros_like(targets, dtype=bool)
            back[:steps] = data.encoding.transpose(targets[:steps] > 0, -int(shift))
            assert back.tobytes() in written
    # with texture shifts: each batch says which windows may be in another texture; those "as written" are
    shifted = TrainBatches(data, batch_size=4, seed=3, transpose_semitones=0, texture_shifts=("melody",),
                           texture_shift_rate=0.5)
    batches = list(itertools.islice(shifted.from_step(0), 12))
    labels = np.concatenate([batch["texture"] for batch in batches])
    assert labels.dtype == np.int32 and set(labels) == {0, 1}
    as_written = [t.tobytes() for b in batches for t, label in zip(b["targets"] > 0, b["texture"]) if label == 0]
    assert as_written and all(t in written for t in as_written)
    assert any(t.tobytes() not in written for b in batches for t in b["targets"] > 0)  # some were shifted
    assert all(np.array_equal(a["texture"], b["texture"]) and np.array_equal(a["targets"], b["targets"])
               for a, b in zip(itertools.islice(shifted.from_step(9), 3), batches[9:]))
    # grouped by length (the default config's setting), the LM stream still resumes exactly
    grouped = TrainBatches(data, batch_size=4, seed=3, transpose_semitones=2, length_bucket=4)
    straight = list(itertools.islice(grouped.from_step(0), 12))
    assert len({batch["inputs"].shape[1] for batch in straight}) > 1
    assert all(np.array_equal(a["inputs"], b["inputs"]) and np.array_equal(a["mask"], b["mask"])
               for a, b in zip(itertools.islice(grouped.from_step(9), 3), straight[9:]))
    gan = GanBatches(synthetic_data(resolve_gan_config("gan:tiny")), batch_size=8, seed=3, transpose_semitones=5,
                     n_critic=2, with_style=True)
    straight = list(itertools.islice(gan.from_step(0), 6))
    assert straight[0]["real"].shape[:2] == (2, 8) and straight[0]["style"].dtype == np.int32
    assert all(np.array_equal(a["real"], b["real"]) for a, b in zip(itertools.islice(gan.from_step(4), 2), straight[4:]))
