"""The prepared GPU check: one command for a machine with an NVIDIA GPU and the `gpu` extra installed.

    pip install -e ".[gpu,test]" && python experiments/gpu_check.py

It runs, each under its own time limit so the whole check ends within --budget-s (8 minutes by default):
  1. the `gpu`-marked tests (pytest -m gpu): the Triton kernels through jax_triton against the XLA path, and a
     training loss curve;
  2. the GRU kernel benchmark on its reduced grid, the sizes its goals name (experiments/bench_gru_kernels.py
     --quick), with the torch.nn.GRU (cuDNN) rows when PyTorch is installed.
Then it writes experiments/results/gpu-check-<date>.json and .md (the environment, every test's outcome, the
benchmark's table and its goals) and exits 0 only when every GPU test passed and the benchmark ran.

Without an NVIDIA GPU visible to JAX, or without triton / jax_triton, it refuses at once (exit 2) and says why;
nothing is written. `--dry-run` runs the same steps off the GPU (the GPU tests then skip, the benchmark runs its
--dry-run sizes in Triton's interpreter) to check the script itself; its report says so and is no GPU figure.
"""
from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXIT_REFUSED = 2


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", type=Path, default=REPO / "experiments" / "results")
    parser.add_argument("--budget-s", type=float, default=480.0, help="the whole check's time limit (seconds)")
    parser.add_argument("--dry-run", action="store_true",
                        help="run the steps off the GPU to check this script (no GPU figures)")
    return parser.parse_args(argv)


def _version(module: str) -> str | None:
    try:
        return getattr(importlib.import_module(module), "__version__", "installed")
    except Exception:  # noqa: BLE001 - any import failure means "not usable here"
        return None


def preflight() -> tuple[list[str], dict]:
    """(reasons this machine cannot run the check, the environment as read)."""
    import jax

    env = {"python": platform.python_version(), "jax": jax.__version__, "backend": jax.default_backend(),
           "devices": [str(d) for d in jax.devices()],
           "device_kind": jax.devices()[0].device_kind,
           "triton": _version("triton"), "jax_triton": _version("jax_triton"), "torch": _version("torch")}
    reasons = []
    platform_version = str(getattr(jax.devices()[0].client, "platform_version", ""))
    nvidia = "nvidia" in env["device_kind"].lower() or "cuda" in platform_version.lower()
    if env["backend"] != "gpu" or not nvidia:
        reasons.append(f"needs an NVIDIA GPU visible to JAX; JAX's backend here is {env['backend']!r} "
                       f"({env['device_kind']}). Install the GPU build: pip install -e \".[gpu,test]\"")
    for name in ("triton", "jax_triton"):
        if env[name] is None:
            reasons.append(f"needs {name} (the `gpu` extra: pip install -e \".[gpu,test]\")")
    if shutil.which("nvidia-smi"):
        smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30)
        env["nvidia_smi"] = smi.stdout.strip() or smi.stderr.strip()
    return reasons, env


def _run(cmd: list[str], timeout: float, log: Path) -> dict:
    """Run a step as a subprocess, output to `log`; returns rc, seconds and whether it ran out of time."""
    start = time.perf_counter()
    print(f"$ {' '.join(cmd)}   (limit {timeout:.0f} s)", flush=True)
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            rc = proc.wait(timeout=max(timeout, 1.0))
            timed_out = False
        except subprocess.TimeoutExpired:
            proc.kill()
            rc, timed_out = proc.wait(), True
    seconds = time.perf_counter() - start
    tail = log.read_text(errors="replace").splitlines()[-15:]
    print("\n".join("  " + line for line in tail), flush=True)
    return {"rc": rc, "seconds": round(seconds, 1), "timed_out": timed_out, "tail": tail}


def _junit_cases(path: Path) -> list[dict]:
    if not path.exists():
        return []
    cases = []
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome, detail = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[child.tag]
                detail = (child.get("message") or "")[:300]
        cases.append({"test": f"{case.get('classname')}::{case.get('name')}", "outcome": outcome,
                      "seconds": float(case.get("time") or 0.0), "detail": detail})
    return cases


def report_markdown(result: dict) -> str:
    env, tests, bench = result["environment"], result["tests"], result["bench"]
    counts = {k: sum(c["outcome"] == k for c in tests["cases"]) for k in ("passed", "failed", "error", "skipped")}
    lines = [f"# GPU check, {result['date']}" + (" (DRY RUN: off the GPU, no GPU figures)" if result["dry_run"] else ""),
             "", f"Verdict: **{'passed' if result['ok'] else 'FAILED'}** in {result['seconds']:.0f} s "
             f"(budget {result['budget_s']:.0f} s). Command: `{result['command']}`", "", "## Environment", ""]
    lines += [f"- {k}: {v}" for k, v in env.items()]
    lines += ["", f"## GPU tests (pytest -m gpu): {counts['passed']} passed, {counts['failed']} failed, "
              f"{counts['error']} errors, {counts['skipped']} skipped; {tests['seconds']:.0f} s"
              + (", RAN OUT OF TIME" if tests["timed_out"] else ""), "",
              "| test | outcome | s |", "|---|---|---|"]
    lines += [f"| {c['test']} | {c['outcome']} | {c['seconds']:.1f} |" for c in tests["cases"]]
    lines += ["", f"## GRU kernel benchmark (reduced grid): rc {bench['rc']}, {bench['seconds']:.0f} s"
              + (", RAN OUT OF TIME" if bench["timed_out"] else ""), ""]
    lines.append(bench.get("markdown") or "(no table: see the log tail in the JSON)")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    reasons, env = preflight()
    if reasons and not args.dry_run:
        print("experiments/gpu_check.py refuses to run here:\n" + "\n".join(f"  - {r}" for r in reasons),
              file=sys.stderr)
        return EXIT_REFUSED
    date = dt.date.today().isoformat()
    stem = args.out_dir / (f"gpu-check-{date}" + ("-dry-run" if args.dry_run else ""))
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        tmp = Path(tmp)
        # The tests get at most 55% of the budget, the benchmark what is left less a margin for the report.
        junit = tmp / "gpu-tests.xml"
        # -n 0: one process (pyproject's two xdist workers would each claim most of the GPU's memory)
        tests = _run([sys.executable, "-m", "pytest", "-m", "gpu", "-n", "0", "-q", "-p", "no:cacheprovider",
                      "-rs", f"--junitxml={junit}", "tests/"], 0.55 * args.budget_s, tmp / "tests.log")
        tests["cases"] = _junit_cases(junit)
        bench_out = tmp / "bench"
        bench_cmd = [sys.executable, "experiments/bench_gru_kernels.py", "--dry-run" if args.dry_run else "--quick",
                     "--out", str(bench_out)]
        if env["torch"] is None:
            bench_cmd.append("--no-torch")
        remaining = args.budget_s - (time.perf_counter() - start) - 15.0
        bench = _run(bench_cmd, remaining, tmp / "bench.log")
        if bench_out.with_suffix(".json").exists():
            data = json.loads(bench_out.with_suffix(".json").read_text())
            bench.update(rows=data["rows"], speedups=data["speedups"], goals=data["goals"], meta=data["meta"],
                         markdown=bench_out.with_suffix(".md").read_text())
        passed = [c for c in tests["cases"] if c["outcome"] == "passed"]
        bad = [c for c in tests["cases"] if c["outcome"] in ("failed", "error")]
        ok = (not tests["timed_out"] and tests["rc"] == 0 and not bad and bool(passed)
              and bench["rc"] == 0 and "rows" in bench)
        result = {"date": date, "dry_run": args.dry_run, "ok": ok, "budget_s": args.budget_s,
                  "seconds": round(time.perf_counter() - start, 1),
                  "command": "python experiments/gpu_check.py" + (" --dry-run" if args.dry_run else ""),
                  "refusals_ignored_by_dry_run": reasons, "environment": env, "tests": tests, "bench": bench}
        args.out_dir.mkdir(parents=True, exist_ok=True)
        stem.with_suffix(".json").write_text(json.dumps(result, indent=1, default=str) + "\n")
        stem.with_suffix(".md").write_text(report_markdown(result))
    print(f"\nGPU check {'passed' if ok else 'FAILED'} in {result['seconds']:.0f} s; wrote "
          f"{stem.with_suffix('.json')} and .md")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
