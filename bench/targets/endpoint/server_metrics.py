"""The server's own view of a cell, from its Prometheus `/metrics` read before and after.

vLLM's metric names (docs.vllm.ai, "Production Metrics"; vllm/v1/metrics/loggers.py): the
histograms `vllm:time_to_first_token_seconds`, `vllm:inter_token_latency_seconds` (before
v0.11 `vllm:time_per_output_token_seconds`), `vllm:e2e_request_latency_seconds`,
`vllm:request_queue_time_seconds`; the counter `vllm:num_preemptions`; the gauges
`vllm:kv_cache_usage_perc` (earlier `vllm:gpu_cache_usage_perc`, a fraction 0-1) and
`vllm:num_requests_waiting`. A histogram's mean over the cell is the change in its `_sum`
over the change in its `_count`; samples are summed over their labels (one series per
model or engine). Parsing is prometheus_client's. Data-parallel replicas (`--url A,B`) are
scraped each and summed (`combine`): counts, sums and queue lengths add up; the KV-cache
usage, a fraction of each replica's own cache, is their mean.
"""

from __future__ import annotations

from typing import Any

HISTOGRAMS = {
    "server_ttft_ms_mean": ("vllm:time_to_first_token_seconds",),
    "server_itl_ms_mean": ("vllm:inter_token_latency_seconds", "vllm:time_per_output_token_seconds"),
    "server_e2e_ms_mean": ("vllm:e2e_request_latency_seconds",),
    "server_queue_ms_mean": ("vllm:request_queue_time_seconds",),
}
COUNTERS = {"server_preemptions": ("vllm:num_preemptions_total", "vllm:num_preemptions")}
GAUGES = {"server_kv_cache_usage": ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"),
          "server_requests_waiting": ("vllm:num_requests_waiting",)}


def parse(text: str) -> dict[str, float]:
    """Every sample's value, summed over its labels (name -> value)."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[sample.name] = out.get(sample.name, 0.0) + float(sample.value)
    return out


def combine(scrapes: list[dict[str, float] | None]) -> dict[str, float] | None:
    """Several replicas' scrapes as one (None when none answered): summed, the cache usage averaged."""
    got = [x for x in scrapes if x]
    if not got:
        return None
    out: dict[str, float] = {}
    for one in got:
        for name, value in one.items():
            out[name] = out.get(name, 0.0) + value
    for name in GAUGES["server_kv_cache_usage"]:
        having = [one[name] for one in got if name in one]
        if having:
            out[name] = sum(having) / len(having)
    return out


def summarise(before: dict[str, float] | None, after: dict[str, float] | None) -> dict[str, Any]:
    """Row columns from two scrapes (empty when the server exposes none of these)."""
    if not before or not after:
        return {}
    row: dict[str, Any] = {}
    for column, names in HISTOGRAMS.items():
        for name in names:
            if f"{name}_count" in after:
                count = after[f"{name}_count"] - before.get(f"{name}_count", 0.0)
                if count > 0:
                    row[column] = 1e3 * (after[f"{name}_sum"] - before.get(f"{name}_sum", 0.0)) / count
                break
    for column, names in COUNTERS.items():
        for name in names:
            if name in after:
                row[column] = after[name] - before.get(name, 0.0)
                break
    for column, names in GAUGES.items():
        for name in names:
            if name in after:
                row[column] = after[name]
                break
    return row
