"""(slow) Multi-process JAX on this machine: 2 processes (coordinator on 127.0.0.1, gloo CPU collectives, 1 CPU device
each) train together; they agree with a 1-process 2-device run to float rounding, and what they write together
restores in one process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from conftest import write_midi
from musejax.train.metrics import read_metrics

MUSEJAX = str(Path(sys.executable).parent / "musejax")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def base_env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_NUM_CPU_DEVICES", "MUSEJAX_CPU_DEVICES")}
    return dict(env, MUSEJAX_CACHE=str(cache), JAX_PLATFORMS="cpu")


def run_processes(commands: list[list[str]], env: dict[str, str], timeout: int = 300) -> list[str]:
    """Start one process per command as a 2-process JAX job on 127.0.0.1; all must exit 0."""
    port = free_port()
    procs = [subprocess.Popen(command, env=dict(env, JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}",
                                                JAX_NUM_PROCESSES=str(len(commands)), JAX_PROCESS_ID=str(i),
                                                MUSEJAX_CPU_DEVICES="1"),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for i, command in enumerate(commands)]
    outputs = []
    try:
        for proc in procs:
            outputs.append(proc.communicate(timeout=timeout)[0])
    finally:
        for proc in procs:
            proc.kill()
    for proc, out in zip(procs, outputs):
        assert proc.returncode == 0, out[-4000:]
    return outputs


def records(run_dir: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "steps_per_second"} for r in read_metrics(run_dir)]


def assert_close_records(a: list[dict], b: list[dict]) -> None:
    assert [(r["step"], r["split"], sorted(r)) for r in a] == [(r["step"], r["split"], sorted(r)) for r in b]
    for x, y in zip(a, b):
        for key, value in x.items():
            if isinstance(value, float):
                assert value == pytest.approx(y[key], rel=1e-5, abs=1e-6), (x["step"], key)


@pytest.mark.slow
def test_two_processes_train_the_lm_as_one_two_device_process(tmp_path):
    from musejax.train.checkpoint import restore_run

    for i in range(12):
        write_midi(tmp_path / "corpus" / f"tune{i:02d}.mid", pitches=[48 + (i * 5 + k * 7) % 36 for k in range(24)],
                   seconds_per_note=0.25)
    env = base_env(tmp_path / "cache")

    def args(run: str) -> list[str]:
        return [MUSEJAX, "train", "--config", "lm:tiny", "--workdir", str(tmp_path / run), "--no-progress",
                f"--config.data.corpus={tmp_path / 'corpus'}", "--config.data.max_pieces=0",
                "--config.data.valid_fraction=0.25", "--config.data.test_fraction=0.25"]

    single = subprocess.run(args("single"), env=dict(env, MUSEJAX_CPU_DEVICES="2"), capture_output=True, text=True,
                            timeout=300)
    assert single.returncode == 0, single.stdout[-2000:] + single.stderr[-3000:]
    first, second = run_processes([args("multi"), args("multi")], env)
    assert "2 cpu device(s), process 1 of 2" in first and "process 2 of 2" in second
    assert "musejax sample --run" in first  # sampling is left to one process after the job
    a, b = restore_run(tmp_path / "single", "latest"), restore_run(tmp_path / "multi", "latest")  # restores here
    assert a.step == b.step == 20
    for x, y in zip(jax.tree.leaves(a.state), jax.tree.leaves(b.state)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-6)
    assert_close_records(records(tmp_path / "single"), records(tmp_path / "multi"))


GAN_SCRIPT = """
import sys
from pathlib import Path
from musejax.train.mesh import initialize_distributed
initialize_distributed()
sys.path.insert(0, {tests!r})
from test_gan import synthetic_data
from musejax.train.gan import train_gan
from musejax.train.gan_config import resolve_gan_config
config = resolve_gan_config("gan:tiny", ["--config.train.sample_every_steps=0"])
result = train_gan(config, Path({run!r}), data=synthetic_data(config), progress=False)
print("finished", result.finished, result.step)
"""


@pytest.mark.slow
def test_two_processes_train_the_gan_as_one_two_device_process(tmp_path):
    from musejax.train.gan_run import restore_gan

    env = base_env(tmp_path / "cache")
    tests = str(Path(__file__).parent)
    script = lambda run, devices: [sys.executable, "-c", GAN_SCRIPT.format(tests=tests, run=str(tmp_path / run))]  # noqa: E731
    single_code = GAN_SCRIPT.replace("initialize_distributed()\n", "").format(tests=tests, run=str(tmp_path / "single"))
    single_code = single_code.replace("data=synthetic_data(config), progress=False)",
                                      "data=synthetic_data(config), progress=False, devices=__import__('jax').devices())")
    single = subprocess.run([sys.executable, "-c", single_code], env=dict(env, MUSEJAX_CPU_DEVICES="2",
                                                                            JAX_NUM_CPU_DEVICES="2"),
                            capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stdout[-2000:] + single.stderr[-3000:]
    outputs = run_processes([script("multi", 1), script("multi", 1)], env)
    assert all("finished True" in out for out in outputs)
    a, b = restore_gan(tmp_path / "single"), restore_gan(tmp_path / "multi")
    assert a.step == b.step
    for x, y in zip(jax.tree.leaves(a.state), jax.tree.leaves(b.state)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-4, atol=1e-5)
    assert_close_records(records(tmp_path / "single"), records(tmp_path / "multi"))
