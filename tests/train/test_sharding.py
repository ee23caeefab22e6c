"""Data parallelism: 4 forced CPU devices give the one-device losses; batches are sharded, params replicated.

XLA_FLAGS must be set before JAX initialises, so the 4-device part runs in a fresh Python process.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from child_env import child_env
from musejax.config import ConfigError
from musejax.lm.config import resolve_config

SCRIPT = textwrap.dedent("""
    import sys
    import jax, numpy as np
    from jax.sharding import PartitionSpec as P
    sys.path.insert(0, {tests_dir!r})
    from lm_fixtures import tiny_config, tiny_data, records
    from musejax.config import ConfigError
    from musejax.lm.restore import restore_run
    from musejax.lm.data import eval_batches
    from musejax.lm.task import train
    from musejax.train.mesh import data_parallel_devices, make_mesh, shard_batch
    from musejax.lm.build import build_lm, data_meta
    from musejax.train.state import create_train_state, make_optimizer

    assert jax.device_count() == 4, jax.devices()
    tmp = {tmp!r}
    config = tiny_config("--config.train.steps=8", "--config.train.eval_every_steps=4", "--config.train.log_every_steps=2")
    data = tiny_data(config)

    mesh = make_mesh()
    batch = shard_batch(eval_batches(data.valid, 8, "bernoulli")[0], mesh)
    assert batch["inputs"].sharding.spec == P("data"), batch["inputs"].sharding
    assert [s.data.shape[0] for s in batch["inputs"].addressable_shards] == [2, 2, 2, 2]
    lm = build_lm(config, data_meta(data))
    tx, _ = make_optimizer(config.optim, config.train.steps)
    state, abstract = create_train_state(lm.init_params, lm.apply_fn, tx, jax.random.key(0), mesh)
    assert all(x.sharding.is_fully_replicated and len(x.sharding.device_set) == 4 for x in jax.tree.leaves(state))

    one = train(config, tmp + "/one", data=data, progress=False, devices=jax.devices()[:1])
    four = train(config, tmp + "/four", data=data, progress=False)
    a, b = records(tmp + "/one"), records(tmp + "/four")
    assert [(r["step"], r["split"]) for r in a] == [(r["step"], r["split"]) for r in b]
    for ra, rb in zip(a, b):
        for key, value in ra.items():
            if isinstance(value, float):
                assert abs(value - rb[key]) <= 1e-5 * max(1.0, abs(value)), (ra, rb)
    pa, pb = restore_run(tmp + "/one", "latest").params, restore_run(tmp + "/four", "latest").params
    for x, y in zip(jax.tree.leaves(pa), jax.tree.leaves(pb)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-4, atol=1e-5)
    assert four.devices == 4 and one.devices == 1, (four, one)
    try:
        train(tiny_config("--config.train.batch_size=6"), tmp + "/bad", data=data, progress=False,
              devices=jax.devices())
    except ConfigError as err:
        assert "multiple of the number of devices (4)" in str(err), err
    else:
        raise AssertionError("batch size 6 on 4 given devices must be refused")
    # Left to choose on the CPU, a job takes the most devices that divide its batch sizes.
    assert data_parallel_devices((6, 8)) == jax.devices()[:2]
    assert data_parallel_devices((5,)) == jax.devices()[:1] and data_parallel_devices((8, 40)) == jax.devices()
    print("SHARDING-OK", a[-1])
""")


def test_four_devices_match_one_device(tmp_path):
    tests_dir = str(Path(__file__).parents[1])
    env = child_env(XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", SCRIPT.format(tests_dir=tests_dir, tmp=str(tmp_path))],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and "SHARDING-OK" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-5000:]


def test_batch_size_must_divide_by_the_device_count():
    from musejax.lm.task import check_config

    check_config(resolve_config("lm:tiny"), 4)
    with pytest.raises(ConfigError, match=r"config\.train\.batch_size=6 .*\(4\)"):
        check_config(resolve_config("lm:tiny", ["--config.train.batch_size=6"]), 4)
    with pytest.raises(ConfigError, match=r"config\.train\.eval_batch_size=10"):
        check_config(resolve_config("lm:tiny", ["--config.train.eval_batch_size=10"]), 4)
