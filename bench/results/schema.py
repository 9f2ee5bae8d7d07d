"""The result row's contract: which columns it has, what they mean, which form its key.

One owner: every producer builds rows through `bench.execute.cell.build_row`, readers use
these names. Units are in the column names; names follow NeuronPerf's where they mean the
same (`throughput_avg`, `latency_ms_p50`, `n_models`, `workers_per_model`, `batch_size`).
"""

from __future__ import annotations

from bench.plan.cell import Cell
from bench.results.metrics import DECLARED, GROUPS

# The schema's version history (as pyperf's _bench.py keeps its format's): a run directory
# records the version it was written with (run.json, every row); a newer one is refused with a
# clear message, an older one is read as it is (`upgrade`).
HISTORY = {
    1: "the first row: key, status, latency and throughput with intervals over rounds, the machine's state, "
       "server, generate, endpoint, cost, preparation, neuron, settings, environment (2026-11)",
    2: "run --control's control_* and vs_control_* columns, prompt_tokenizer; round_spread leaves out the "
       "extreme tenth of 10 or more rounds; every column declared once with its kind, unit, direction and "
       "pooling (bench.results.metrics), the executors' own columns (on_instance, ray_node_id) among them "
       "(2026-12)",
    3: "training steps (-s train): the key's grad_accum, optimizer, precision and dp (left out while unset, so no "
       "earlier cell_id changed), and the train group: step_ms_*, samples_per_s, tokens_per_s, losses, memory, "
       "FLOPs, MFU, recompiles (2026-12)",
    4: "why it is slow: --profile's profile_* columns (a pass after the measurement, its files in profiles/<cell_id>); "
       "the time split (call_ms_*, sync_ms_*, host_in_call_ms_p50, host_overhead_note); endpoint replicas "
       "(endpoint_replicas, replicas, replica_requests, replica_completed), reasoning models (ttft_content_ms_*, "
       "reasoning_*), a launched server's start (server_start_s, server_compile_cache) and Neuron plugin versions; "
       "ttft/tpot/itl pooled over every round's requests (2026-12)",
}
SCHEMA_VERSION = max(HISTORY)

KEY_COLUMNS = Cell.key_columns()  # owned by the Cell: a new key field is a new column
STATUSES = ("ok", "failed", "inaccurate", "unstable", "skipped")
# Documented columns, in display order (units in the name; throughput in samples/s).
COLUMNS = [m.name for m in DECLARED]


def upgrade(row: dict, version: int) -> dict:
    """A row written under an older schema, as today's code reads it. Version 1 and 2 rows need
    no change: versions 2 and 3 only added columns (an older row simply lacks them)."""
    return row


def upgrade_plan_entry(entry: dict) -> dict:
    """A cell of run.json's plan, as today's code reads it: until version 2 a cell's target
    options were stored under the endpoint target's own name, "endpoint"."""
    if "endpoint" in entry and "options" not in entry:
        entry = dict(entry)
        entry["options"] = entry.pop("endpoint")
    return entry


def markdown() -> str:
    """The results schema as a Markdown page (docs/reference/results.md is this text)."""
    out = ["# Results schema", "",
           "Every column of a result row, generated from the declarations in `bench/results/metrics.py`",
           "(`python -m bench.results.schema > docs/reference/results.md`; a test keeps the page in step).",
           "Kinds: text, count, flag, number. *Better*: which direction is an improvement.",
           "*Pools*: how the column combines a cell's rounds into its row (`requests`: recomputed",
           "from every round's requests; `rounds`: over the rounds' own values; `first`: the first",
           "round's, paid once; `last`: the last round's; `sum`, `max` (the worst round), `mean`).", ""]
    out += [f"Schema version {SCHEMA_VERSION}. History:", ""]
    out += [f"- **{v}**: {what}" for v, what in sorted(HISTORY.items())]
    out.append("")
    for group, about in GROUPS:
        out += [f"## {group}", "", about[0].upper() + about[1:] + ".", "",
                "| column | kind | unit | better | pools | meaning |", "|---|---|---|---|---|---|"]
        for m in DECLARED:
            if m.group == group:
                out.append(f"| `{m.name}` | {m.kind} | {m.unit} | {m.better or ''} | {m.pool} | {m.doc} |")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    print(markdown(), end="")
