"""experiments/bench_gru_kernels.py: speed-ups and goal verdicts from timing rows, and a --dry-run of the script."""
from __future__ import annotations

import json

import pytest
import torch  # noqa: F401 - the dry run interprets the Triton kernels, which needs torch CPU tensors

from experiment_scripts import load_experiment

@pytest.fixture(scope="module")
def bench():
    return load_experiment("bench_gru_kernels")


def _row(impl: str, batch: int, hidden: int, train_s: float, sample_s: float) -> dict:
    return dict(dtype="bfloat16", batch=batch, hidden=hidden, steps=512, impl=impl, train_s=train_s,
                sample_s=sample_s)


def test_speedups_and_goals_use_the_worst_covered_size(bench):
    rows = [_row("xla", 64, 256, 9.0, 40.0), _row("triton", 64, 256, 2.0, 10.0), _row("torch", 64, 256, 3.0, 9.0),
            _row("xla", 64, 512, 9.0, 40.0), _row("triton", 64, 512, 3.5, 10.0), _row("torch", 64, 512, 4.0, 9.0),
            _row("xla", 16, 256, 9.0, 60.0), _row("triton", 16, 256, 3.0, 10.0)]
    ratios = bench.speedups(rows)
    got = {(r["batch"], r["hidden"], r["peer"], kind): r[kind] for r in ratios for kind in ("train", "sample")}
    assert got == pytest.approx({
        (64, 256, "xla", "train"): 4.5, (64, 256, "xla", "sample"): 4.0,
        (64, 256, "torch", "train"): 1.5, (64, 256, "torch", "sample"): 0.9,
        (64, 512, "xla", "train"): 9 / 3.5, (64, 512, "xla", "sample"): 4.0,
        (64, 512, "torch", "train"): 4 / 3.5, (64, 512, "torch", "sample"): 0.9,
        (16, 256, "xla", "train"): 3.0, (16, 256, "xla", "sample"): 6.0})
    report, goals = bench.goal_report(ratios)
    verdicts = {g["goal"]: (g["worst"], g["sizes"], g["verdict"]) for g in goals}
    train_xla, train_torch, sample_xla = (g[0] for g in bench.GOALS)
    assert verdicts[train_xla] == (pytest.approx(9 / 3.5), 2, "missed")  # 4.5x at H=256 does not hide H=512
    assert verdicts[train_torch] == (pytest.approx(4 / 3.5), 2, "missed")
    assert verdicts[sample_xla] == (6.0, 1, "met")  # only B <= 16 counts
    assert "| bfloat16 | 64 | 512 | 512 | xla | 2.57 | 4.00 |" in report
    assert bench.goal_report([])[1][0]["verdict"] == "not measured"


def test_dry_run_times_xla_and_interpreted_triton_and_writes_its_files(bench, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MUSEJAX_TRITON_INTERPRET", "0")  # main sets it to 1 off the GPU; undone after the test
    assert bench.main(["--dry-run", "--out", str(tmp_path / "bench")]) == 0
    result = json.loads((tmp_path / "bench.json").read_text())
    assert {r["impl"] for r in result["rows"]} == {"xla", "triton"}
    assert all(r["train_s"] > 0 and r["sample_s"] > 0 and r["train_floor_step_s"] > 0 for r in result["rows"])
    assert len(result["speedups"]) == len(result["rows"]) // 2 and result["meta"]["dry_run"]
    markdown = (tmp_path / "bench.md").read_text()
    assert "Dry run" in markdown and "| float32 | 3 | 16 | 8 | triton |" in markdown
    assert (tmp_path / "bench.png").stat().st_size > 0
    assert "wrote" in capsys.readouterr().out


def test_without_a_gpu_only_the_dry_run_is_allowed(bench, tmp_path, capsys):
    assert bench.main(["--quick", "--out", str(tmp_path / "bench")]) == 2
    assert "needs an NVIDIA GPU" in capsys.readouterr().err and not (tmp_path / "bench.json").exists()
