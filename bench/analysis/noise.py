"""The machine's own movement in a run: what the rounds of different cells, measured back to
back, moved by together.

On a shared machine a round can run 20-70 % slower than the one before it, for a second or
two, and whatever is measured then is slower with it (seen on this project's 2-vCPU VM: two
consecutive cells' rounds were slow together again and again; their residuals correlate
0.3-0.7 from one round to the next). That movement is the machine's, not the code's, and it
is what widens a cell's interval over its rounds. A reader of a table full of `unstable`
flags needs to know which it was.

From the run's round lines (rounds.jsonl, in the order they were measured): each round's
residual is the log of its figure (p50 latency; 1 / rate for other scenarios, so that slower
is up) minus its cell's mean over its rounds. The machine's movement is the part of those
residuals that back-to-back rounds of *different* cells share: the square root of their
covariance, a standard deviation on the log scale (0.05 = rounds moved about 5 %). A cell is
unstable "for that reason" (never when the shared movement is under half of what a typical
cell's rounds moved: the rounds then moved on their own) when, with each of its rounds
corrected by the shared part of its neighbours' residuals (their mean, shrunk by the correlation), its interval over the rounds
and their spread would pass the rules -- or its rounds moved no more than twice as much as the
run's typical cell's did -- and nothing else (a busy host, a wide spread inside its rounds)
flagged it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.stats import intervals
from bench.stats.stability import UNSTABLE_CI_RATIO, UNSTABLE_IQR_RATIO, UNSTABLE_ROUND_SPREAD
from bench.stats.summary import round_spread

MIN_PAIRS = 6  # back-to-back pairs of different cells needed before the movement is stated


@dataclass(frozen=True)
class MachineNoise:
    """How much the machine moved between rounds, and how many unstable cells that explains."""

    moved: float  # sd on the log scale of the movement adjacent rounds of different cells shared
    correlation: float  # of adjacent rounds' residuals (different cells)
    pairs: int
    unstable: int  # unstable cells in the run
    explained: int  # of those, unstable for the machine's movement alone

    def line(self) -> str:
        """'this machine's speed moved 15% between rounds; 6 of 9 unstable cells are unstable for that alone'."""
        text = (f"this machine's speed moved {self.moved:.1%} between rounds (sd of what back-to-back rounds "
                f"of different cells shared; correlation {self.correlation:.2f})")
        if self.unstable:
            text += (f"; {self.explained} of {self.unstable} unstable cell{'' if self.unstable == 1 else 's'} "
                     f"{'is' if self.explained == 1 else 'are'} unstable for that alone")
        return text


def _value(row: dict[str, Any]) -> float | None:
    """A round's figure, slower is larger: p50 latency, or 1 / rate for other scenarios."""
    if row.get("scenario") == "latency":
        v = row.get("latency_ms_p50")
    else:
        rate = row.get("throughput_avg")
        v = 1.0 / rate if isinstance(rate, (int, float)) and rate > 0 else None
    return float(v) if isinstance(v, (int, float)) and v > 0 and math.isfinite(v) else None


def machine_noise(rows: list[dict[str, Any]], rounds: list[dict[str, Any]]) -> MachineNoise | None:
    """The run's machine movement from its cells (cells.jsonl) and round lines (rounds.jsonl,
    in the order written); None when too few rounds of different cells were back to back."""
    series = [(str(r.get("cell_id")), _value(r)) for r in rounds if r.get("status") in ("ok", "unstable")]
    series = [(c, math.log(v)) for c, v in series if v is not None]
    by_cell: dict[str, list[float]] = {}
    for c, v in series:
        by_cell.setdefault(c, []).append(v)
    means = {c: float(np.mean(v)) for c, v in by_cell.items() if len(v) >= intervals.MIN_GROUPS}
    seq = [(c, v - means[c]) for c, v in series if c in means]
    pairs = [(a[1], b[1]) for a, b in zip(seq, seq[1:]) if a[0] != b[0]]
    if len(pairs) < MIN_PAIRS:
        return None
    x, y = np.array(pairs).T
    cov = float(np.mean((x - x.mean()) * (y - y.mean())))
    sd = float(np.sqrt(np.mean(np.concatenate([x, y]) ** 2)))
    corr = cov / sd**2 if sd > 0 else 0.0
    moved = math.sqrt(cov) if cov > 0 else 0.0
    shrink = min(1.0, max(0.0, corr))
    shared = {}  # index in seq -> the shared part of its neighbours' residuals
    for i, (c, _) in enumerate(seq):
        near = [seq[j][1] for j in (i - 1, i + 1) if 0 <= j < len(seq) and seq[j][0] != c]
        shared[i] = shrink * float(np.mean(near)) if near else 0.0
    corrected: dict[str, list[float]] = {}
    for i, (c, e) in enumerate(seq):
        corrected.setdefault(c, []).append(means[c] + e - shared[i])
    own = {c: float(np.std(v, ddof=1)) for c, v in by_cell.items() if c in means}
    typical = float(np.median(list(own.values())))
    inside: dict[str, list[float]] = {}  # each round's own IQR / median
    for r in rounds:
        if isinstance(r.get("latency_iqr_ratio"), (int, float)):
            inside.setdefault(str(r.get("cell_id")), []).append(float(r["latency_iqr_ratio"]))
    unstable = [r for r in rows if r.get("status") == "unstable" and r.get("search_role") != "probe"]
    if moved < typical / 2:  # the rounds moved mostly on their own: nothing is the machine's to explain
        return MachineNoise(moved, corr, len(pairs), len(unstable), 0)
    explained = sum(1 for r in unstable if _only_the_machine(
        r, corrected.get(str(r.get("cell_id"))), own.get(str(r.get("cell_id"))), typical,
        float(np.median(inside[str(r.get("cell_id"))])) if inside.get(str(r.get("cell_id"))) else math.inf))
    return MachineNoise(moved, corr, len(pairs), len(unstable), explained)


def _only_the_machine(row: dict[str, Any], corrected: list[float] | None, own: float | None, typical: float,
                      iqr_inside: float) -> bool:
    """Only the round rules flagged the cell (a wide IQR of its requests counts among them when
    its rounds' own IQRs were narrow: the rounds differed), and either its rounds moved no more
    than twice as much as the run's typical cell's (the machine moved every cell alike), or
    with the shared movement of its neighbours taken out it would pass those rules."""
    if not corrected or own is None or row.get("host_busy"):
        return False
    reasons = [r.strip() for r in str(row.get("stability") or row.get("error") or "").split(";") if r.strip()]
    between = ("rounds differ by", "p50 95% CI is", "CV ") + (("IQR is",) if iqr_inside <= UNSTABLE_IQR_RATIO else ())
    if any(not r.startswith(between) for r in reasons):
        return False  # e.g. a wide spread inside its rounds, or the throughput's CV between intervals
    if own <= 2 * typical:
        return True
    values = np.exp(np.asarray(corrected))
    spread = round_spread(values)
    mid, lo, hi = intervals.interval(values)
    half = max(mid - lo, hi - mid) / mid if math.isfinite(lo) else math.inf
    return spread <= UNSTABLE_ROUND_SPREAD and half <= UNSTABLE_CI_RATIO
