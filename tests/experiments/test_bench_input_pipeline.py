"""experiments/bench_input_pipeline.py: its pipelines, the length-grouped one included, read the same windows,
resume exactly, and the grouped one's batches are shorter."""
from __future__ import annotations

import itertools

import numpy as np

from experiment_scripts import load_experiment


def test_pipelines_resume_exactly_and_grouping_shortens_the_batches():
    from lm_fixtures import tiny_config, tiny_data

    bench = load_experiment("bench_input_pipeline")
    data = tiny_data(tiny_config())
    lengths = data.train.mask.sum(axis=1)
    assert len(set(lengths.tolist())) > 1  # the fixture has windows of several lengths
    streams = bench.pipelines(4)
    assert list(bench.pipelines(0)) == list(streams)[:2] and len(streams) == 3
    per_epoch = len(data.train.windows) // 4
    mean_steps = {}
    for name, stream in streams.items():
        assert bench.resumes_exactly(lambda start, s=stream: s(data, 4, 0, 2, start), per_epoch), name
        batches = list(itertools.islice(stream(data, 4, 0, 2, 0), 3 * per_epoch))
        mean_steps[name] = np.mean([b["array"].shape[1] for b in batches])
    full, grain, grouped = mean_steps.values()
    assert full == grain == data.train.windows.shape[1] and grouped < full
