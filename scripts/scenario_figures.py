"""Measure and print the server and generate scenarios' figures on this machine's CPU.

1. server: tiny-bert, the highest Poisson arrival rate whose p99 latency stays under
   `--bound` ms (default 5 ms), with every rate the search tried;
2. generate: tiny-llama and gpt2, 128 input / 128 output tokens, batch 1: TTFT, TPOT, ITL,
   e2e latency, output tokens/s.

    .venv/bin/python scripts/scenario_figures.py [--out results] [--bound 5] [--quick]

Results go to OUT/<run_id>/ like any run (`trnbench show` reads them); the tables are
printed as Markdown. `--quick` shortens every measurement (a smoke check, not figures).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

from bench import Measure, Plan, load, run_plan
from bench.render.tables import markdown


def _fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _table(df, columns: list[tuple[str, str]]) -> str:
    body = [[_fmt(row[c]) for _, c in columns] for _, row in df.iterrows()]
    return markdown([h for h, _ in columns], body)


def main() -> int:
    ap = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="results")
    ap.add_argument("--bound", type=float, default=5.0, help="p99 bound in ms for the max-rate search")
    ap.add_argument("--quick", action="store_true", help="short measurements (smoke check)")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    if args.quick:
        server_m = Measure(warmup_s=0.2, min_duration_s=1.0, max_duration_s=2.0, min_samples=50)
        gen_m = Measure(warmup_s=0.2, min_duration_s=1.0, max_duration_s=3.0, min_samples=2, target_ci=0.0)
    else:
        server_m = Measure(warmup_s=1.0, min_duration_s=5.0, max_duration_s=10.0, min_samples=200)
        gen_m = Measure(warmup_s=1.0, min_duration_s=10.0, max_duration_s=30.0, min_samples=5, target_ci=0.05)
    server = Plan.from_grid(models=["tiny-bert"], scenarios=["server"], find_max_rate=True,
                            p99_bound_ms=args.bound, measure=server_m, name="server-max-rate")
    gen = Plan.from_grid(models=["tiny-llama", "gpt2"], scenarios=["generate"], seq_lens=[128], output_lens=[128],
                         batch_sizes=[1], measure=gen_m, name="generate-128-128")
    plan = Plan(name="scenario-figures", cells=server.cells + gen.cells)
    run_dir = run_plan(plan, out=args.out, progress=sys.stderr.isatty())
    df = load(run_dir)
    first = df.iloc[0]
    print(f"# server and generate figures ({run_dir})\n")
    print(f"host: {first['cpu_model']}, {first['cpu_count']} CPUs; torch {first['torch']}, "
          f"transformers {first['transformers']}\n")

    srv = df[df.scenario == "server"].sort_values("search_role", key=lambda s: s != "result")
    result = srv[srv.search_role == "result"].iloc[0]
    print(f"## tiny-bert server, p99 <= {args.bound:g} ms: max rate "
          f"{_fmt(result['max_rate_qps'])} queries/s ({result['validity']}"
          f"{': ' + result['validity_reason'] if result['validity_reason'] else ''}); "
          f"closed-loop capacity {_fmt(result['capacity_qps'])} queries/s, "
          f"{int(result['n_models'])} model processes x {int(result['workers_per_model'])} thread(s)\n")
    probes = srv[srv.search_role == "probe"]
    print(_table(probes, [("offered qps", "rate_qps"), ("achieved qps", "achieved_rate_qps"),
                          ("p50 ms", "latency_ms_p50"), ("p99 ms", "latency_ms_p99"),
                          ("queue p99 ms", "queue_ms_p99"), ("service p99 ms", "service_ms_p99"),
                          ("validity", "validity"), ("reason", "validity_reason")]))
    print()
    print("## generate, 128 in / 128 out, batch 1, greedy, KV cache (CPU, transformers generate)\n")
    g = df[df.scenario == "generate"]
    print(_table(g, [("model", "model"), ("status", "status"), ("requests", "samples"),
                     ("TTFT p50 ms", "ttft_ms_p50"), ("TTFT p99 ms", "ttft_ms_p99"),
                     ("TPOT p50 ms", "tpot_ms_p50"), ("TPOT p99 ms", "tpot_ms_p99"),
                     ("ITL p50 ms", "itl_ms_p50"), ("ITL p99 ms", "itl_ms_p99"),
                     ("e2e p50 ms", "e2e_ms_p50"), ("output tok/s", "output_tokens_per_s"),
                     ("req/s", "requests_per_s")]))
    bad = df[~df.status.isin(["ok", "unstable"])]
    for _, row in bad.iterrows():
        print(f"\n{row['model']} {row['scenario']}: {row['status']}: {row['error']}")
    print("\nrates tried:", json.dumps(json.loads(result["rates_tried"]))[:2000] if result["rates_tried"] else "")
    return 1 if len(bad) else 0


if __name__ == "__main__":
    sys.exit(main())
