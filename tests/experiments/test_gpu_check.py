"""experiments/gpu_check.py: it refuses clearly without a GPU and writes nothing; its report from a junit file."""
from __future__ import annotations

import jax
import pytest

from experiment_scripts import load_experiment


@pytest.fixture(scope="module")
def gpu_check():
    return load_experiment("gpu_check")


@pytest.mark.skipif(jax.default_backend() == "gpu", reason="checks the refusal off the GPU")
def test_refuses_without_a_gpu_and_writes_nothing(gpu_check, tmp_path, capsys):
    out_dir = tmp_path / "results"
    assert gpu_check.main(["--out-dir", str(out_dir)]) == gpu_check.EXIT_REFUSED == 2
    err = capsys.readouterr().err
    assert "refuses to run here" in err and "needs an NVIDIA GPU" in err and "'cpu'" in err
    assert 'pip install -e ".[gpu,test]"' in err
    assert not out_dir.exists()


def test_report_counts_every_outcome_and_fails_on_a_failed_test(gpu_check, tmp_path):
    junit = tmp_path / "j.xml"
    junit.write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="tests.test_kernels_gru" name="test_a" time="1.5"/>'
        '<testcase classname="tests.test_kernels_gru" name="test_b" time="0.2"><failure message="off by 1e-2"/>'
        '</testcase><testcase classname="tests.test_kernels_gru" name="test_c" time="0">'
        '<skipped message="needs a GPU"/></testcase></testsuite></testsuites>')
    cases = gpu_check._junit_cases(junit)
    assert [c["outcome"] for c in cases] == ["passed", "failed", "skipped"]
    assert cases[1]["detail"] == "off by 1e-2" and cases[0]["test"] == "tests.test_kernels_gru::test_a"
    assert gpu_check._junit_cases(tmp_path / "missing.xml") == []
    result = {"date": "2026-12-02", "dry_run": False, "ok": False, "seconds": 100.0, "budget_s": 480.0,
              "command": "python experiments/gpu_check.py", "environment": {"backend": "gpu"},
              "tests": {"cases": cases, "seconds": 2.0, "timed_out": False},
              "bench": {"rc": 0, "seconds": 50.0, "timed_out": True}}
    md = gpu_check.report_markdown(result)
    assert "Verdict: **FAILED**" in md and "1 passed, 1 failed, 0 errors, 1 skipped" in md
    assert "| tests.test_kernels_gru::test_b | failed | 0.2 |" in md and "RAN OUT OF TIME" in md
