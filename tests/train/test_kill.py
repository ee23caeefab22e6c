"""Kill tests: `musejax train` / `gan train` / `classify --train` as real subprocesses, SIGKILLed at random times
(and while a checkpoint is being written), resumed after each kill; the end must equal an uninterrupted run's,
bit for bit. One fast LM instance runs by default; the long versions are marked slow."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from child_env import child_env
from conftest import write_midi
from musejax.train.metrics import read_metrics

MUSEJAX = str(Path(sys.executable).parent / "musejax")


def folder_corpus(root: Path, n: int = 12) -> Path:
    for i in range(n):
        pitches = [48 + (i * 5 + k * 7) % 36 for k in range(24)]
        write_midi(root / f"tune{i:02d}.mid", pitches=pitches, seconds_per_note=0.25)
    return root


def environment(cache: Path) -> dict[str, str]:
    return child_env(MUSEJAX_CACHE=str(cache), JAX_PLATFORMS="cpu", MUSEJAX_CPU_DEVICES="2")


def run_to_end(args: list[str], env: dict[str, str]) -> None:
    proc = subprocess.run([MUSEJAX, *args], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]


def writing_checkpoint(run_dir: Path) -> bool:
    """True while Orbax has a checkpoint's temporary folder open (a save in flight)."""
    checkpoints = run_dir / "checkpoints"
    return checkpoints.is_dir() and any("tmp" in p.name for p in checkpoints.iterdir())


def kill_and_resume(args: list[str], run_dir: Path, env: dict[str, str], kills: int, seed: int) -> dict[str, int]:
    """Start the command, SIGKILL it (as soon as a checkpoint write starts: every other kill, the first
    included; else at a random time), restart it; `kills` times, then let it finish. Returns counts of kills
    tried, landed, and landed during a checkpoint write."""
    rng = np.random.default_rng(seed)
    landed = during_write = 0
    for attempt in range(kills):
        proc = subprocess.Popen([MUSEJAX, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True)
        on_write = attempt % 2 == 0  # wait for a checkpoint write (a short window: poll fast), else a random time
        deadline = time.monotonic() + (120.0 if on_write else float(rng.uniform(3.0, 14.0)))
        while proc.poll() is None and time.monotonic() < deadline:
            if on_write and writing_checkpoint(run_dir):
                during_write += 1
                break
            time.sleep(0.0005 if on_write else 0.01)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            landed += 1
        stderr = proc.communicate()[1]
        assert proc.returncode in (0, -signal.SIGKILL), stderr[-3000:]
    run_to_end(args, env)
    return {"tried": kills, "landed": landed, "during_checkpoint_write": during_write}


def same_params(a, b) -> bool:
    return all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def records(run_dir: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in ("steps_per_second",)} for r in read_metrics(run_dir)]


def lm_args(corpus: Path, run_dir: Path, steps: int) -> list[str]:
    return ["train", "--config", "lm:tiny", "--workdir", str(run_dir), "--no-progress",
            f"--config.data.corpus={corpus}", "--config.data.max_pieces=0", "--config.data.valid_fraction=0.25",
            "--config.data.test_fraction=0.25", f"--config.train.steps={steps}",
            "--config.train.eval_every_steps=10", "--config.sample.n=0"]


def check_lm(tmp_path: Path, kills: int, steps: int, seed: int, monkeypatch) -> dict[str, int]:
    from musejax.cli import main
    from musejax.lm.restore import restore_run

    corpus, env = folder_corpus(tmp_path / "corpus"), environment(tmp_path / "cache")
    monkeypatch.setenv("MUSEJAX_CACHE", env["MUSEJAX_CACHE"])
    assert main(lm_args(corpus, tmp_path / "straight", steps)) == 0  # in-process: the same 2 CPU devices
    counts = kill_and_resume(lm_args(corpus, tmp_path / "killed", steps), tmp_path / "killed", env, kills, seed)
    a, b = restore_run(tmp_path / "straight", "latest"), restore_run(tmp_path / "killed", "latest")
    assert a.step == b.step == steps
    assert same_params(a.state, b.state)
    assert records(tmp_path / "killed") == records(tmp_path / "straight")
    return counts


def test_lm_training_survives_a_kill_during_a_checkpoint_write(tmp_path, monkeypatch):
    counts = check_lm(tmp_path, kills=1, steps=30, seed=0, monkeypatch=monkeypatch)
    assert counts["landed"] == 1, counts


@pytest.mark.slow
def test_lm_training_survives_many_kills(tmp_path, monkeypatch):
    counts = check_lm(tmp_path, kills=10, steps=600, seed=1, monkeypatch=monkeypatch)
    print(f"LM kills: {counts}")
    assert counts["landed"] >= 5 and counts["during_checkpoint_write"] >= 1, counts


@pytest.mark.slow
def test_gan_training_survives_kills(tmp_path):
    from musejax.gan.run import restore_gan

    env = environment(tmp_path / "cache")
    args = lambda run: ["gan", "train", "--config", "gan:tiny", "--workdir", str(run), "--no-progress",  # noqa: E731
                        "--config.train.steps=40", "--config.train.checkpoint_every_steps=5",
                        "--config.train.sample_every_steps=0"]
    run_to_end(args(tmp_path / "straight"), env)
    counts = kill_and_resume(args(tmp_path / "killed"), tmp_path / "killed", env, kills=6, seed=2)
    print(f"GAN kills: {counts}")
    a, b = restore_gan(tmp_path / "straight"), restore_gan(tmp_path / "killed")
    assert a.step == b.step == 40 and same_params(a.state, b.state)
    assert records(tmp_path / "killed") == records(tmp_path / "straight")
    assert counts["landed"] >= 3, counts


@pytest.mark.slow
def test_style_training_survives_kills(tmp_path):
    from musejax.style.task import restore_style_run
    from style_fixtures import labelled_corpus, train_args

    corpus, cache = labelled_corpus(tmp_path / "corpus"), tmp_path / "cache"
    env = environment(cache)
    args = lambda run: [*train_args(corpus, cache, run, steps=60), "--config.train.eval_every_steps=10"]  # noqa: E731
    run_to_end(args(tmp_path / "straight"), env)
    counts = kill_and_resume(args(tmp_path / "killed"), tmp_path / "killed", env, kills=6, seed=3)
    print(f"style kills: {counts}")
    for which in ("best", "latest"):
        a, b = restore_style_run(tmp_path / "straight", which), restore_style_run(tmp_path / "killed", which)
        assert a[3] == b[3] and same_params(a[1], b[1])
    assert records(tmp_path / "killed") == records(tmp_path / "straight")
    assert counts["landed"] >= 3, counts
