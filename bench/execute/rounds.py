"""Rounds: a cell measured in several windows spread over the run, reported as one row.

`--rounds N` (`[measure] rounds`): round 1 visits every cell, then round 2, and so on; the
workers and compiled models are kept between rounds (unless `fresh_process_per_round`), so
a round costs its measurement alone. A round measured on a busy host (bench.execute.hoststate)
is measured again, at most `busy_retries` times, then kept with the reason.

The row keeps the pooled figures (percentiles of every round's requests together, throughput
over every round's steady windows) and adds `rounds`, the per-round medians and rates
(`latency_ms_p50_rounds`, `throughput_rounds`, JSON lists), their spread (`round_spread`:
(max - min) / median, the extreme tenth of 10 or more rounds left out), and replaces the p50 / p99 / throughput intervals with intervals over
the rounds (bench.stats.intervals: they hold the between-round variance). Raw samples of
all rounds are kept together, with a `round` array saying which round each request was in.

Scenarios whose figures do not pool (the server's open loop and its validity, generate) are
measured once, whatever `rounds` says (Scenario.pools_rounds).
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from typing import Any

import numpy as np

from bench.execute.cell import host_overhead
from bench.execute.hoststate import busy_reason
from bench.plan.cell import Cell
from bench.results.metrics import pooled_by
from bench.results.status import decide
from bench.stats import intervals
from bench.stats.intervals import paired_logs
from bench.stats.stability import UNSTABLE_ROUND_SPREAD
from bench.stats.summary import call_sync_summary, distribution, latency_summary, round_spread

BROKEN = ("failed", "inaccurate", "skipped")
# how each column pools over rounds is declared once (bench.results.metrics)
FIRST_ROUND_ONLY = pooled_by("first")  # compile, load, the accuracy check: paid once
SUMMED = pooled_by("sum")
WORST = pooled_by("max")
AVERAGED = pooled_by("mean")


def planned_rounds(cell: Cell) -> int:
    """How many rounds a cell gets: its measure's, or 1 where its scenario does not pool them."""
    from bench import scenarios

    if not scenarios.of(cell).pools_rounds:
        return 1
    return max(1, int(cell.measure.rounds))


def round_cell(cell: Cell, warm: str = "cold") -> Cell:
    """The cell as one round measures it: its share of the minimums and the warm-up its
    process needs (Measure.per_round)."""
    rounds = planned_rounds(cell)
    return cell if rounds <= 1 else replace(cell, measure=cell.measure.per_round(rounds, warm))


def most_rounds(cell: Cell) -> int:
    """The rounds a cell may get while its interval stays wide (Measure.max_rounds)."""
    return 1 if planned_rounds(cell) <= 1 else max(planned_rounds(cell), cell.measure.most_rounds)


AB_ROUNDS = 10  # paired rounds when the plan asks for fewer: short windows, adjacent in time, pair best
# Latency pairs: windows of about this long, up to AB_MAX_ROUNDS of them. On this project's
# 2-vCPU VM each vCPU flips between a fast and a ~20-50 % slower state that lasts a few hundred
# ms (another guest on its hyperthread sibling, as far as a guest can tell), so a 0.3 s window is
# as long as the noise itself and one side's window often met it while the other's did not.
# Windows of 50 ms either pair with the other side's inside the same state or average over
# it: a 15 % slower encoder (benchmarks/gate.py regression) was caught in 3 of 5 runs with 10
# rounds of 0.3 s, 4 of 5 with 30, 5 of 5 with 60 (interval widths 2-8 % instead of 6-21 %).
AB_WINDOW_S = 0.05
AB_MAX_ROUNDS = 60


def pair_rounds(cell: Cell, rounds: int | None = None) -> int:
    """The rounds of a pair (`ab`'s two sides, or a cell and its control): the user's
    `rounds`; else a latency cell's measuring time cut into AB_WINDOW_S windows (AB_ROUNDS to
    AB_MAX_ROUNDS), other cells the plan's (AB_ROUNDS at least: throughput's batch means need
    windows of their own length)."""
    if rounds:
        return rounds
    floor = max(AB_ROUNDS, cell.measure.rounds)
    from bench.scenarios import requests_of

    if cell.scenario == "latency" and not requests_of(cell).long:  # an LLM request is seconds long
        return max(floor, min(AB_MAX_ROUNDS, math.ceil(cell.measure.min_duration_s / AB_WINDOW_S)))
    return floor


def paired(cell: Cell, rounds: int) -> Cell:
    """The cell in exactly `rounds` rounds (a pair must have the same rounds on both sides)."""
    return replace(cell, measure=replace(cell.measure, rounds=rounds, max_rounds=rounds))


def with_rounds(plan, rounds: list[int]):
    """Every cell of `plan` in exactly its pair's rounds."""
    return replace(plan, cells=[paired(c, r) for c, r in zip(plan.cells, rounds)])


def wants_more(cell: Cell, results: list[tuple[dict[str, Any], dict | None]]) -> bool:
    """After the planned rounds: another while the interval over the rounds is wider than
    +-target_ci (up to `most_rounds`); never for a broken round."""
    n = len(results)
    if n < planned_rounds(cell):
        return not any(f.get("status") in BROKEN for f, _ in results)
    if n >= most_rounds(cell) or any(f.get("status") in BROKEN for f, _ in results):
        return False
    target = cell.measure.target_ci
    return target <= 0 or interval_width(cell, results) > target


def interval_width(cell: Cell, results: list[tuple[dict[str, Any], dict | None]]) -> float:
    """The half-width of the cell's interval over its rounds so far, relative to its figure
    (p50 latency; the rate for other scenarios); inf while there is none."""
    fields, _ = combine(cell, results)
    if cell.scenario == "latency" or fields.get("throughput_ci_low") is None:
        mid, lo, hi = (fields.get(k) for k in ("latency_ms_p50", "latency_ms_p50_ci_low", "latency_ms_p50_ci_high"))
    else:
        mid, lo, hi = (fields.get(k) for k in ("throughput_avg", "throughput_ci_low", "throughput_ci_high"))
    if not all(isinstance(v, float) and np.isfinite(v) for v in (mid, lo, hi)) or mid <= 0:
        return math.inf
    return max(mid - lo, hi - mid) / mid


def measure_round(measure, cell: Cell, record=None) -> tuple[dict[str, Any], dict | None]:
    """`measure(record)` once, and again (at most `busy_retries` times) while the host was not
    ours. The extra rows a measurement records (a max-rate search's probes) are held back and
    handed to `record` for the measurement that is kept only, so a retried search does not
    leave its first attempt's probes behind."""
    def attempt():
        held: list[tuple] = []
        fields, samples = measure(lambda *a: held.append(a))
        return fields, samples, held

    fields, samples, held = attempt()
    retries = 0
    while fields.get("host_busy") and fields.get("status") not in BROKEN and retries < cell.measure.busy_retries:
        retries += 1
        fields, samples, held = attempt()
    if record is not None:
        for args in held:
            record(*args)
    return dict(fields, busy_retries=retries), samples


def _per_request(samples: dict[str, np.ndarray]) -> int:
    lat = samples.get("latency_ns")
    return len(lat) if lat is not None else 0


def combine(cell: Cell, results: list[tuple[dict[str, Any], dict | None]]) -> tuple[dict[str, Any], dict | None]:
    """One row (and one set of raw samples) from a cell's rounds."""
    if len(results) == 1:
        fields, samples = results[0]
        return dict(fields, rounds=1), samples
    bad = [f for f, _ in results if f.get("status") in BROKEN]
    if bad:
        return dict(bad[-1], rounds=len(results)), None
    first = results[0][0]
    rows = [f for f, _ in results]
    lat_groups = [np.asarray(s["latency_ns"], dtype=np.float64) for _, s in results if s and "latency_ns" in s]
    pooled = np.concatenate(lat_groups) if lat_groups else np.array([])
    # the columns that pool plainly, as declared (bench.results.metrics): the last round's, the
    # first's, a sum, the worst round, a mean; those recomputed from requests or rounds follow
    out: dict[str, Any] = {k: v for k, v in rows[-1].items() if k not in FIRST_ROUND_ONLY}
    out.update({k: first[k] for k in FIRST_ROUND_ONLY if k in first})
    for columns, pool in ((SUMMED, sum), (WORST, max), (AVERAGED, lambda v: float(np.mean(v)))):
        for col in columns:
            values = [f[col] for f in rows if isinstance(f.get(col), (int, float)) and not isinstance(f.get(col), bool)]
            if values:
                out[col] = pool(values)
    for col in SUMMED:  # a JSON list of counts (each replica's requests): summed element by element
        lists = [_counts(f.get(col)) for f in rows]
        if lists[0] is not None and all(x is not None and len(x) == len(lists[0]) for x in lists):
            out[col] = json.dumps([int(sum(v)) for v in zip(*lists)])
    out["rounds"] = len(results)
    if pooled.size:
        out.update(latency_summary(pooled))
        medians = intervals.group_values([g / 1e6 for g in lat_groups], 0.5)
        out["latency_ms_p50_rounds"] = json.dumps([round(float(v), 6) for v in medians])
        _, lo, hi = intervals.interval(medians)
        out["latency_ms_p50_ci_low"], out["latency_ms_p50_ci_high"] = lo, hi
        p99_groups = intervals.merged([g / 1e6 for g in lat_groups], 0.99)  # short rounds joined
        if min(g.size for g in p99_groups) >= intervals.min_group_size(0.99):  # else mostly its maximum
            _, lo, hi = intervals.interval(intervals.group_values(p99_groups, 0.99))
            out["latency_ms_p99_ci_low"], out["latency_ms_p99_ci_high"] = lo, hi
        out["round_spread"] = round_spread(medians)
    windows = np.array([f.get("steady_window_s") or 0.0 for f in rows])
    rates = np.array([f.get("throughput_avg") or np.nan for f in rows], dtype=np.float64)
    if np.all(np.isfinite(rates)):
        out["throughput_rounds"] = json.dumps([round(float(v), 3) for v in rates])
        out["throughput_avg"] = float(np.sum(rates * windows) / windows.sum()) if windows.sum() > 0 else float(rates.mean())
        _, lo, hi = intervals.interval(rates)
        out["throughput_ci_low"], out["throughput_ci_high"] = lo, hi
        if cell.scenario != "latency":
            out["round_spread"] = round_spread(rates)
    busy = [f["host_busy"] for f in rows if f.get("host_busy")]
    worst = busy_reason(out) or (busy[0] if busy else "")
    out["host_busy"] = f"{worst} (the worst of {len(busy)} busy rounds of {len(rows)})" if busy else ""
    samples = _stack([s for _, s in results])
    if samples is not None and "ttft_ns" in samples:  # LLM requests: their figures over every round's too
        samples_e2e = dict(samples, e2e_ns=pooled)
        for prefix in ("ttft", "tpot", "itl", "e2e", "ttft_content"):
            if f"{prefix}_ns" in samples_e2e:
                values = np.asarray(samples_e2e[f"{prefix}_ns"], dtype=np.float64)
                distribution(prefix, values[values >= 0], out)  # ttft_content: -1 where no reasoning came first
    if samples is not None and "call_ns" in samples and samples["call_ns"].size == pooled.size:
        out.update(call_sync_summary(samples["call_ns"], pooled))  # every round's requests
    out.update(host_overhead(out))
    from bench import scenarios

    return scenarios.of(cell).finish(out, cell), samples


def _counts(value: Any) -> list[int] | None:
    """A JSON list of counts, else None."""
    try:
        x = json.loads(value) if isinstance(value, str) else None
    except ValueError:
        return None
    return x if isinstance(x, list) and all(isinstance(v, int) for v in x) else None


def _stack(parts: list[dict | None]) -> dict[str, np.ndarray] | None:
    """Every round's raw arrays end to end, with `round` (per request) saying which."""
    parts = [p for p in parts if p]
    if not parts:
        return None
    keys = [k for k in parts[0] if all(k in p for p in parts)]
    out = {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in keys}
    out["round"] = np.concatenate([np.full(_per_request(p), i, dtype=np.int16) for i, p in enumerate(parts)])
    return out


def control_id(cell: Cell) -> str:
    """The id the control's windows beside `cell` are kept under (rounds.jsonl, samples/)."""
    return f"{cell.cell_id}~control"


def beside_control(cell: Cell, fields: dict[str, Any], samples: dict | None, twin: Cell,
                   twin_fields: dict[str, Any], twin_samples: dict | None) -> tuple[dict[str, Any], dict | None]:
    """The cell's row with its control's windows beside it (`run --control`): the control's
    per-round figures, and the cell relative to the control within this run, round by round
    (the paired interval of `ab`): what the machine did to both in a round cancels, so
    separate runs compare these ratios (bench.analysis.compare)."""
    out = dict(fields, control_model=twin.model_name, control_cell_id=twin.cell_id)
    if twin_fields.get("status") in BROKEN:
        out["control_note"] = f"the control's windows failed: {twin_fields.get('error') or twin_fields.get('status')}"
        return out, samples
    for column, their in (("latency_ms_p50_rounds", "control_latency_ms_p50_rounds"),
                          ("throughput_rounds", "control_throughput_rounds")):
        if twin_fields.get(column):
            out[their] = twin_fields[column]
    out["control_latency_ms_p50"] = twin_fields.get("latency_ms_p50")
    out["control_throughput_avg"] = twin_fields.get("throughput_avg")
    pairs = [("p50", "latency_ms_p50_rounds", "control_latency_ms_p50_rounds")]
    if cell.scenario != "latency":
        pairs.append(("throughput", "throughput_rounds", "control_throughput_rounds"))
    for name, column, their in pairs:
        logs = paired_logs(fields.get(column), out.get(their))
        if logs.size:
            ratio, lo, hi, _ = intervals.paired_interval(logs)
            out[f"vs_control_{name}"], out[f"vs_control_{name}_ci_low"], out[f"vs_control_{name}_ci_high"] = ratio, lo, hi
    if samples is not None and twin_samples:
        samples = dict(samples, **{f"control_{k}": v for k, v in twin_samples.items()})
    return out, samples


def judge(cell: Cell, fields: dict[str, Any]) -> dict[str, Any]:
    """The combined row's status: busy rounds, rounds that disagree, the pooled spread."""
    from bench import scenarios

    if fields.get("status") in BROKEN:
        return fields
    reasons = []
    if fields.get("host_busy"):
        reasons.append(fields["host_busy"])
    spread = fields.get("round_spread")
    if isinstance(spread, float) and spread > UNSTABLE_ROUND_SPREAD:
        reasons.append(f"rounds differ by {spread:.0%}")
    pooled = scenarios.of(cell).stability(fields, cell)  # the pooled spread, the CI over rounds
    if pooled:
        reasons.append(pooled)
    fields["stability"] = "; ".join(dict.fromkeys(reasons))
    return decide(fields)
