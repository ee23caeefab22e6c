"""Query latency of exact recommendation search at 1k / 10k / 100k pieces with synthetic embeddings.

    python experiments/bench_recommend.py [--sizes 1000,10000,100000] [--dim 128] [--queries 200] [--out DIR]

Each query is what `musejax recommend` does after loading the index: build the profile from 3 liked and 1
disliked embedding, exclude the liked pieces by key, score every piece (one (N, E) x (E,) product) and take the
top 10 (argpartition + sort). Timed per query (median, p95, max) with numpy, and for comparison a jit-compiled
JAX matmul + lax.top_k (batch of one). Also the index save/load time. Writes bench_recommend.json / .md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from musejax.style import recommend as rec


def synthetic_index(n: int, dim: int, seed: int = 0) -> rec.LibraryIndex:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(8, dim))  # clustered like styles, so top-k is not trivially flat
    embeddings = rec.normalize_rows(centres[rng.integers(0, 8, n)] + 0.7 * rng.normal(size=(n, dim)))
    return rec.LibraryIndex(ids=[f"synthetic/{i}" for i in range(n)], keys=[f"/synthetic/{i}.mid#0" for i in range(n)],
                            styles=["s"] * n, composers=[""] * n, titles=[""] * n, embeddings=embeddings,
                            meta={"synthetic": True})


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def bench_numpy(index: rec.LibraryIndex, queries: int, seed: int) -> list[float]:
    rng = np.random.default_rng(seed)
    times = []
    index.positions([])  # the key lookup table is built once per loaded index
    for _ in range(queries):
        rows = rng.choice(len(index), 4, replace=False)
        start = time.perf_counter()
        results = rec.recommend(index, index.embeddings[rows[:3]], disliked=index.embeddings[rows[3:]],
                                exclude_keys=[index.keys[r] for r in rows], k=10)
        times.append(time.perf_counter() - start)
        assert len(results) == 10 and not {r.id for r in results} & {index.ids[r] for r in rows}
    return times


def bench_jax(index: rec.LibraryIndex, queries: int, seed: int) -> list[float]:
    import jax
    import jax.numpy as jnp

    embeddings = jnp.asarray(index.embeddings)

    @jax.jit
    def search(query, exclude):
        scores = embeddings @ query
        scores = scores.at[exclude].set(-jnp.inf)
        return jax.lax.top_k(scores, 10)

    rng = np.random.default_rng(seed)
    rows = rng.choice(len(index), 4, replace=False)
    jax.block_until_ready(search(jnp.asarray(index.embeddings[rows[0]]), jnp.asarray(rows)))  # compile
    times = []
    for _ in range(queries):
        rows = rng.choice(len(index), 4, replace=False)
        start = time.perf_counter()
        query = rec.profile(index.embeddings[rows[:3]], disliked=index.embeddings[rows[3:]])
        jax.block_until_ready(search(jnp.asarray(query), jnp.asarray(rows)))
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path("runs/bench_recommend"))
    args = parser.parse_args()
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        index = synthetic_index(n, args.dim)
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            path = index.save(Path(tmp) / "index.npz")
            save_s = time.perf_counter() - start
            start = time.perf_counter()
            index = rec.LibraryIndex.load(path)
            load_s = time.perf_counter() - start
        numpy_times, jax_times = bench_numpy(index, args.queries, 1), bench_jax(index, args.queries, 2)
        row = {"pieces": n, "dim": args.dim, "queries": args.queries, "save_s": save_s, "load_s": load_s,
               **{f"numpy_{k}_ms": 1e3 * f(numpy_times) for k, f in (("median", statistics.median),
                                                                    ("p95", lambda t: percentile(t, 95)), ("max", max))},
               **{f"jax_{k}_ms": 1e3 * f(jax_times) for k, f in (("median", statistics.median),
                                                                 ("p95", lambda t: percentile(t, 95)))}}
        rows.append(row)
        print(f"{n:>7} pieces: numpy median {row['numpy_median_ms']:.2f} ms, p95 {row['numpy_p95_ms']:.2f} ms, "
              f"max {row['numpy_max_ms']:.2f} ms | jax median {row['jax_median_ms']:.2f} ms | "
              f"index save {save_s:.2f} s, load {load_s:.2f} s", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_recommend.json").write_text(json.dumps(rows, indent=1) + "\n")
    lines = ["| pieces | numpy median ms | numpy p95 ms | numpy max ms | jax median ms | jax p95 ms | save s | load s |",
             "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['pieces']} | {r['numpy_median_ms']:.2f} | {r['numpy_p95_ms']:.2f} | {r['numpy_max_ms']:.2f} | "
              f"{r['jax_median_ms']:.2f} | {r['jax_p95_ms']:.2f} | {r['save_s']:.2f} | {r['load_s']:.2f} |" for r in rows]
    (args.out / "bench_recommend.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
