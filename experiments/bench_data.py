"""Benchmark the data layer: cold build (fresh cache), warm load, re-encode from cached sequences, per corpus counts.

    python experiments/bench_data.py --quick                  # Bach chorales only (about a minute)
    python experiments/bench_data.py --corpora all            # every bundled corpus combined (long)
    python experiments/bench_data.py                          # both scenarios

Each scenario builds into a fresh temporary cache directory (cold: parses every file in parallel and fills the
cache), then builds again (warm: loads the encoded arrays) in this process and in a fresh Python process
(interpreter start and imports included), then with other encoding options (loads the cached NoteSequences and
re-encodes). Prints a markdown table and writes JSON (default experiments/results/bench_data.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Targets from issue 2 (seconds), on the 2-core development machine.
TARGETS_S = {"bach-chorales": {"cold": 60.0, "warm": 2.0}, "all": {"cold": 20 * 60.0, "warm": 15.0}}

_WARM_CHILD = """
import json, sys, time
t0 = time.perf_counter()
from musejax.data.datasets import build_dataset
t1 = time.perf_counter()
ds = build_dataset(json.loads(sys.argv[1]), sys.argv[2], cache_dir=sys.argv[3], progress=False)
t2 = time.perf_counter()
assert set(ds.cache_status.values()) == {"encoded"}, ds.cache_status
print(json.dumps({"import_s": t1 - t0, "build_s": t2 - t1}))
"""


def bench_scenario(corpus: str, encoding: str, workers: int | None, warm_repeats: int) -> dict[str, Any]:
    """Time cold / warm / re-encode builds of one scenario ("all" or a corpus name) in a fresh cache."""
    from musejax.data.datasets import build_dataset, dataset_summary, expand_corpus_names
    from musejax.data.encodings import get_encoding

    names = expand_corpus_names(corpus)
    with tempfile.TemporaryDirectory(prefix="musejax-bench-cache-") as cache_dir:
        start = time.perf_counter()
        dataset = build_dataset(names, encoding, cache_dir=cache_dir, workers=workers, progress=True)
        cold_s = time.perf_counter() - start
        assert set(dataset.cache_status.values()) == {"parsed"}, dataset.cache_status

        warm_runs = []
        for _ in range(warm_repeats):
            start = time.perf_counter()
            warm = build_dataset(names, encoding, cache_dir=cache_dir, workers=workers, progress=False)
            warm_runs.append(time.perf_counter() - start)
            assert set(warm.cache_status.values()) == {"encoded"}, warm.cache_status

        start = time.perf_counter()
        child = subprocess.run([sys.executable, "-c", _WARM_CHILD, json.dumps(names), encoding, cache_dir],
                               capture_output=True, text=True, check=True)
        process_s = time.perf_counter() - start
        child_times = json.loads(child.stdout.strip().splitlines()[-1])

        other = get_encoding(encoding, **_other_options(encoding))
        start = time.perf_counter()
        reencoded = build_dataset(names, other, cache_dir=cache_dir, workers=workers, progress=False)
        reencode_s = time.perf_counter() - start
        assert set(reencoded.cache_status.values()) == {"sequences"}, reencoded.cache_status
        cache_bytes = sum(p.stat().st_size for p in Path(cache_dir).rglob("*") if p.is_file())

    summary = dataset_summary(dataset)
    return {
        "scenario": corpus, "corpora": names, "encoding": dataset.encoding_options,
        "cold_build_s": cold_s, "warm_load_s": statistics.median(warm_runs), "warm_load_runs_s": warm_runs,
        "warm_fresh_process_s": process_s, "warm_fresh_process_detail_s": child_times,
        "reencode_from_sequences_s": reencode_s, "reencode_options": other.options(),
        "cache_bytes": cache_bytes, "splits": summary["splits"], "per_corpus": summary["corpora"],
        "counts_by_reason": summary["counts_by_reason"], "targets_s": TARGETS_S.get(corpus),
    }


def _other_options(encoding: str) -> dict[str, Any]:
    """Encoding options different from the defaults (to exercise the sequence level of the cache)."""
    return {"performance": {"velocity_bins": 16}, "multitrack": {"steps_per_bar": 8}}.get(
        encoding, {"steps_per_quarter": 2})


def markdown(results: list[dict[str, Any]]) -> str:
    """Timing table and per-corpus loaded/failed table."""
    def verdict(value: float, target: float | None) -> str:
        return "" if target is None else (" ✓" if value <= target else f" ✗ (target {target:g})")

    lines = ["| scenario | pieces (train/valid/test) | cold build s | warm load s | warm, fresh process s "
             "| re-encode from cached sequences s | cache MB |", "|---|---|---|---|---|---|---|"]
    for r in results:
        targets = r["targets_s"] or {}
        counts = "/".join(str(r["splits"][s]["pieces"]) for s in ("train", "valid", "test"))
        cold = f"{r['cold_build_s']:.1f}{verdict(r['cold_build_s'], targets.get('cold'))}"
        warm = f"{r['warm_load_s']:.2f}{verdict(r['warm_load_s'], targets.get('warm'))}"
        lines.append(f"| {r['scenario']} | {counts} | {cold} | {warm} | {r['warm_fresh_process_s']:.2f} "
                     f"| {r['reencode_from_sequences_s']:.1f} | {r['cache_bytes'] / 1e6:.1f} |")
    lines += ["", "| scenario | corpus | files | pieces loaded | failed | failures by reason |",
              "|---|---|---|---|---|---|"]
    for r in results:
        for name, c in r["per_corpus"].items():
            reasons = ", ".join(f"{k}: {v}" for k, v in c["counts_by_reason"].items()) or "-"
            lines.append(f"| {r['scenario']} | {name} | {c['files']} | {c['loaded']} | {c['failed']} | {reasons} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpora", nargs="+", default=["bach-chorales", "all"],
                        help="scenarios: bundled corpus names, paths, or 'all' (every bundled corpus combined)")
    parser.add_argument("--quick", action="store_true", help="Bach chorales only, one warm repeat")
    parser.add_argument("--encoding", default="pianoroll")
    parser.add_argument("--workers", type=int, default=None, help="parse processes (default: all cores)")
    parser.add_argument("--warm-repeats", type=int, default=3)
    parser.add_argument("--out", default="experiments/results/bench_data.json")
    args = parser.parse_args(argv)
    scenarios = ["bach-chorales"] if args.quick else args.corpora
    repeats = 1 if args.quick else args.warm_repeats

    results = [bench_scenario(s, args.encoding, args.workers, repeats) for s in scenarios]
    table = markdown(results)
    print(table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    machine = {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}
    out.write_text(json.dumps({"machine": machine, "results": results, "table_md": table}, indent=2) + "\n")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
