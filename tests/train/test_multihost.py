"""(slow) Multi-process JAX on this machine: 2 processes (coordinator on 127.0.0.1, gloo CPU collectives, 1 CPU device
each) train together; they agree with a 1-process 2-device run to float rounding, and what they write together
restores in one process."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from child_env import child_env
from conftest import write_midi
from musejax.train.metrics import read_metrics

MUSEJAX = str(Path(sys.executable).parent / "musejax")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def base_env(cache: Path) -> dict[str, str]:
    return child_env(MUSEJAX_CACHE=str(cache), JAX_PLATFORMS="cpu")


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
    from musejax.lm.restore import restore_run

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
    assert "wrote 1 samples" in first and "wrote" not in second  # both sample, the first one writes
    assert sorted(p.name for p in (tmp_path / "multi" / "samples").iterdir()) == ["sample_000.mid", "sample_000.png",
                                                                            "sample_000.wav"]
    a, b = restore_run(tmp_path / "single", "latest"), restore_run(tmp_path / "multi", "latest")  # restores here
    assert a.step == b.step == 20
    for x, y in zip(jax.tree.leaves(a.state), jax.tree.leaves(b.state)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-6)
    assert_close_records(records(tmp_path / "single"), records(tmp_path / "multi"))

    # `musejax sample` as 2 processes gives the samples of a 1-process 2-device run, byte for byte
    sample = [MUSEJAX, "sample", "--run", str(tmp_path / "multi"), "--n", "4", "--steps", "24", "--seed", "3"]
    one = subprocess.run(sample + ["--out", str(tmp_path / "one")], env=dict(env, MUSEJAX_CPU_DEVICES="2"),
                         capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stdout[-2000:] + one.stderr[-3000:]
    first, second = run_processes([sample + ["--out", str(tmp_path / "two")]] * 2, env)
    assert "wrote 4 samples" in first and "wrote" not in second
    for i in range(4):
        name = f"sample_{i:03d}.mid"
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name


GAN_SCRIPT = """
import sys
from pathlib import Path
from musejax.train.mesh import initialize_distributed
initialize_distributed()
sys.path.insert(0, {tests!r})
from gan_fixtures import synthetic_data
from musejax.gan.task import train_gan
from musejax.gan.config import resolve_gan_config
config = resolve_gan_config("gan:tiny", ["--config.train.sample_every_steps=0"])
result = train_gan(config, Path({run!r}), data=synthetic_data(config), progress=False)
print("finished", result.finished, result.step)
"""


@pytest.mark.slow
def test_two_processes_train_the_gan_as_one_two_device_process(tmp_path):
    from musejax.gan.run import restore_gan

    env = base_env(tmp_path / "cache")
    tests = str(Path(__file__).parents[1])
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


STYLE_SCRIPT = """
import sys
import jax
sys.path.insert(0, {tests!r})
from style_fixtures import train_args
from musejax.style.config import resolve_style_config
from musejax.style.task import train_classifier
args = train_args(__import__("pathlib").Path({corpus!r}), __import__("pathlib").Path({cache!r}), None)
overrides = [a for a in args if a.startswith("--config.")]
config = resolve_style_config("style:tiny", overrides)
result = train_classifier(config, {run!r}, progress=False, devices=jax.devices())
print("finished", result.step, result.report["test"]["accuracy"])
"""


@pytest.mark.slow
def test_two_processes_train_the_style_classifier_as_one_two_device_process(tmp_path):
    from musejax.style.task import restore_style_run
    from style_fixtures import labelled_corpus, train_args

    corpus, cache = labelled_corpus(tmp_path / "corpus", n_per_style=8), tmp_path / "cache"
    env = base_env(cache)
    code = STYLE_SCRIPT.format(tests=str(Path(__file__).parents[1]), corpus=str(corpus), cache=str(cache),
                               run=str(tmp_path / "single"))
    single = subprocess.run([sys.executable, "-c", code], env=dict(env, MUSEJAX_CPU_DEVICES="2"),
                            capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stdout[-2000:] + single.stderr[-3000:]
    command = [MUSEJAX, *train_args(corpus, cache, tmp_path / "multi")]
    first, second = run_processes([command, command], env)
    assert "process 1 of 2" in first and "test: accuracy" in first and "test: accuracy" not in second
    for which in ("best", "latest"):
        _, a, _, step_a = restore_style_run(tmp_path / "single", which)
        _, b, _, step_b = restore_style_run(tmp_path / "multi", which)
        assert step_a == step_b
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
            np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-6)
    assert_close_records(records(tmp_path / "single"), records(tmp_path / "multi"))
    single_report = json.loads((tmp_path / "single" / "report.json").read_text())
    multi_report = json.loads((tmp_path / "multi" / "report.json").read_text())
    assert multi_report["test"]["accuracy"] == pytest.approx(single_report["test"]["accuracy"])


@pytest.mark.slow
@pytest.mark.parametrize("victim", [1, 0])
def test_when_one_process_dies_the_other_stops_within_the_heartbeat_timeout_and_a_relaunch_resumes(tmp_path, victim):
    """SIGKILL one process of a 2-process LM job mid-training (process 0 hosts the coordinator): the survivor exits
    non-zero with a message naming the cause within the heartbeat timeout (10 s here) plus a margin, never hangs;
    relaunching both finishes the run from its latest checkpoint."""
    import signal
    import time

    for i in range(12):
        write_midi(tmp_path / "corpus" / f"tune{i:02d}.mid", pitches=[48 + (i * 5 + k * 7) % 36 for k in range(24)],
                   seconds_per_note=0.25)
    run = tmp_path / "run"
    command = [MUSEJAX, "train", "--config", "lm:tiny", "--workdir", str(run), "--no-progress",
               f"--config.data.corpus={tmp_path / 'corpus'}", "--config.data.max_pieces=0",
               "--config.data.valid_fraction=0.25", "--config.data.test_fraction=0.25", "--config.train.steps=1000",
               "--config.train.eval_every_steps=100", "--config.sample.n=0"]
    env = dict(base_env(tmp_path / "cache"), MUSEJAX_HEARTBEAT_TIMEOUT_S="10", JAX_COORDINATOR_ADDRESS=
               f"127.0.0.1:{free_port()}", JAX_NUM_PROCESSES="2", MUSEJAX_CPU_DEVICES="1")
    procs = [subprocess.Popen(command, env=dict(env, JAX_PROCESS_ID=str(i)), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for i in range(2)]
    try:
        deadline = time.monotonic() + 240
        while not (run / "checkpoints").is_dir() or not any(p.name.isdigit() for p in (run / "checkpoints").iterdir()):
            assert time.monotonic() < deadline and all(p.poll() is None for p in procs), "the job did not start"
            time.sleep(0.2)
        procs[victim].send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        out = procs[1 - victim].communicate(timeout=10 + 50)[0]  # heartbeat timeout + margin
        waited = time.monotonic() - killed_at
    finally:
        for proc in procs:
            proc.kill()
    assert procs[1 - victim].returncode != 0, out[-3000:]
    assert "another process of the job died" in out or "another task died" in out, out[-3000:]
    print(f"victim {victim}: the survivor stopped {waited:.1f} s after the kill")
    first, _ = run_processes([command, command], base_env(tmp_path / "cache"))
    assert "best step" in first
    assert max(r["step"] for r in read_metrics(run)) == 1000
