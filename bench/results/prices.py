"""Cost per million inferences (and tokens): an hourly price and a measured rate.

The Neuron performance pages compute cost per 1M inferences as
1e6 / throughput x hourly rate / 3600 (about-neuron/benchmarks/inf2/inf2-performance.rst in
aws-neuron-sdk: `(1.0e6 / df['Throughput (inference/second)']) * (df['RI-Effective hourly
rate'] / 3.6e3)`), as NeuronPerf's `cost_per_1m_inf` does. The hourly price is the run's
`--price-per-hour`, else the instance type's row in results/reference/instance-prices.csv
(the RI-effective rates those pages publish; `kind` and `source` say which price it is).
Generate and endpoint rows also get `cost_per_1m_tokens` from their output tokens/s.
"""

from __future__ import annotations

import csv
import math
from functools import cache
from typing import Any

from bench.errors import UsageError

PRICES_FILE = "instance-prices.csv"


@cache
def price_table() -> dict[str, dict[str, str]]:
    """instance type (lower case) -> its row of instance-prices.csv."""
    from bench.paths import reference_dir

    path = reference_dir() / PRICES_FILE
    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as f:
        return {r["instance_type"].strip().lower(): r for r in csv.DictReader(f) if r.get("instance_type")}


def check_price(value: Any) -> float:
    """A --price-per-hour: a positive number of dollars an hour (UsageError otherwise)."""
    try:
        price = float(value)
    except (TypeError, ValueError):
        price = math.nan
    if not (0 < price < math.inf):
        raise UsageError(f"--price-per-hour must be a positive number (dollars an hour), got {value!r}")
    return price


def price_fields(instance_type: str | None, given: float | None = None) -> dict[str, Any]:
    """The run's price columns: the given price, else the table's for the instance, else none."""
    if given is not None:
        return {"price_per_hour": check_price(given), "price_kind": "given", "price_source": "--price-per-hour"}
    row = price_table().get(str(instance_type or "").strip().lower())
    if not row:
        return {}
    return {"price_per_hour": float(row["price_per_hour"]), "price_kind": row.get("kind", ""),
            "price_source": f"{PRICES_FILE}: {row.get('source', '')} ({row.get('date', '')})"}


def cost_per_1m(rate_per_s: Any, price_per_hour: Any) -> float | None:
    """Dollars per million at `rate_per_s` for `price_per_hour` (None when either is missing)."""
    try:
        rate, price = float(rate_per_s), float(price_per_hour)
    except (TypeError, ValueError):
        return None
    if not (rate > 0 and math.isfinite(rate) and price > 0 and math.isfinite(price)):
        return None
    return 1e6 / rate * price / 3600.0


def cost_fields(row: dict[str, Any]) -> dict[str, Any]:
    """cost_per_1m_inf (from throughput_avg) and cost_per_1m_tokens (from output_tokens_per_s)."""
    price = row.get("price_per_hour")
    out: dict[str, Any] = {}
    inf = cost_per_1m(row.get("throughput_avg"), price)
    if inf is not None:
        out["cost_per_1m_inf"] = inf
    tokens = cost_per_1m(row.get("output_tokens_per_s"), price)
    if tokens is not None:
        out["cost_per_1m_tokens"] = tokens
    return out
