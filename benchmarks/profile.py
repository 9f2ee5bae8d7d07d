"""Figures for --profile and the endpoint's replicas (docs/validation.md, "Why it is slow"); each
prints one JSON line.

  cost     the same cells with and without --profile, interleaved (off, on, off, on, ...): each
           run's wall time, each profiled cell's pass (profile_pass_s), and each cell's p50
           with/without. The pass comes after the rounds, so no figure should move beyond the
           runs' own spread: the with/without ratios are set beside the off/off ratios of
           consecutive runs without a profile.
  report   a tiny-bert CPU run with --profile and its HTML report (for a screenshot): the top
           operators as the row and the report hold them
  rr       round-robin over two stand-in servers (tests/support/llm_standin.py) at a Poisson
           rate: what each received (its own count of arrivals) against half, and the
           Poisson error of a count of that size

Usage: PYTHONPATH=. python benchmarks/profile.py cost [--pairs 5]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "bench.cli"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
CELLS = ["-m", "tiny-bert,bert-base-uncased", "-s", "latency", "-b", "1", "--seq-len", "32", "--rounds", "3",
         "--duration", "1.5", "--threads", "1", "--no-progress", "--format", "json"]


def _run(out: Path, *extra: str) -> tuple[list[dict], float]:
    t0 = time.perf_counter()
    done = subprocess.run([*CLI, "run", *CELLS, *extra, "--out", str(out)], capture_output=True, text=True, env=ENV,
                          cwd=ROOT, check=False)
    wall = time.perf_counter() - t0
    if done.returncode not in (0, 1):
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout), wall


def cost(pairs: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        runs = []
        for i in range(pairs):
            for profiled in (False, True):
                rows, wall = _run(Path(tmp) / f"{i}-{int(profiled)}", *(["--profile"] if profiled else []))
                runs.append({"profiled": profiled, "wall_s": wall, "rows": {r["model"]: r for r in rows}})
    models = sorted(runs[0]["rows"])
    out: dict = {"pairs": pairs, "cells": {}}
    offs = [r for r in runs if not r["profiled"]]
    for m in models:
        on_off = [runs[2 * i + 1]["rows"][m]["latency_ms_p50"] / runs[2 * i]["rows"][m]["latency_ms_p50"]
                  for i in range(pairs)]
        off_off = [offs[i + 1]["rows"][m]["latency_ms_p50"] / offs[i]["rows"][m]["latency_ms_p50"]
                   for i in range(pairs - 1)]
        passes = [runs[2 * i + 1]["rows"][m]["profile_pass_s"] for i in range(pairs)]
        out["cells"][m] = {
            "p50_ms_off": [round(runs[2 * i]["rows"][m]["latency_ms_p50"], 4) for i in range(pairs)],
            "p50_ms_on": [round(runs[2 * i + 1]["rows"][m]["latency_ms_p50"], 4) for i in range(pairs)],
            "ratio_on_off_median": round(statistics.median(on_off), 4),
            "ratio_on_off_range": [round(min(on_off), 4), round(max(on_off), 4)],
            "ratio_off_off_range": [round(min(off_off), 4), round(max(off_off), 4)] if off_off else None,
            "profile_pass_s_median": round(statistics.median(passes), 3),
            "samples_on_off": [(runs[2 * i + 1]["rows"][m]["samples"], runs[2 * i]["rows"][m]["samples"])
                               for i in range(pairs)],
            "top_ops": json.loads(runs[1]["rows"][m]["profile_top_ops"])[:3],
        }
    walls_on = [r["wall_s"] for r in runs if r["profiled"]]
    walls_off = [r["wall_s"] for r in runs if not r["profiled"]]
    out["run_wall_s_median"] = {"off": round(statistics.median(walls_off), 2), "on": round(statistics.median(walls_on), 2)}
    return out


def report(out_dir: Path) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, _ = _run(out_dir, "--profile")
    run_dir = out_dir / rows[0]["run_id"]
    html = out_dir / "report.html"
    subprocess.run([*CLI, "report", str(run_dir), "--out", str(html)], check=True, env=ENV, cwd=ROOT,
                   capture_output=True)
    return {"report": str(html), "cells": [{"model": r["model"], "top_ops": json.loads(r["profile_top_ops"]),
                                             "ops_share": r["profile_ops_share"], "step_ms": r["profile_step_ms"],
                                             "p50_ms": r["latency_ms_p50"]} for r in rows]}


def rr(rate: float, seconds: float) -> dict:
    sys.path.insert(0, str(ROOT))
    from tests.support.endpoint import StandinProcess, train_tokenizer

    with tempfile.TemporaryDirectory() as tmp:
        tok = train_tokenizer(Path(tmp) / "tok")
        a, b = StandinProcess(first_ms=10, gap_ms=2), StandinProcess(first_ms=10, gap_ms=2)
        try:
            done = subprocess.run([*CLI, "run", "-t", "endpoint", "--url", f"{a.url},{b.url}", "-m", "standin",
                                   "--tokenizer", str(tok), "-s", "server", "--rate", str(rate), "--seq-len", "16",
                                   "--output-len", "8", "--duration", str(seconds), "--warmup", "0.5",
                                   "--min-samples", "50", "--no-progress", "--format", "json", "--out",
                                   str(Path(tmp) / "r")], capture_output=True, text=True, env=ENV, cwd=ROOT,
                                  check=True)
            (row,) = json.loads(done.stdout)
            seen = [len(a.arrivals), len(b.arrivals)]
        finally:
            a.stop()
            b.stop()
    total = sum(seen)
    return {"rate_qps": rate, "seconds": seconds, "status": row["status"], "validity": row.get("validity"),
            "replica_requests": json.loads(row["replica_requests"]), "arrivals_per_server": seen,
            "share_first": round(seen[0] / total, 4),
            # a count of `total` Poisson arrivals split at random would be off half by about this much
            "poisson_sd_of_half": round(math.sqrt(total) / 2, 2), "off_half": abs(seen[0] - total / 2)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=("cost", "report", "rr"))
    p.add_argument("--pairs", type=int, default=5)
    p.add_argument("--out", type=Path, default=None, help="report: where the run and the report go")
    p.add_argument("--rate", type=float, default=30.0)
    p.add_argument("--seconds", type=float, default=10.0)
    args = p.parse_args()
    if args.what == "cost":
        result = cost(args.pairs)
    elif args.what == "report":
        result = report(args.out or Path(tempfile.mkdtemp(prefix="trnbench-profile-")))
    else:
        result = rr(args.rate, args.seconds)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
