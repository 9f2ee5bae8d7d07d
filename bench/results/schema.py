"""The result row's contract: which columns it has, what they mean, which form its key.

One owner: every producer builds rows through `bench.execute.cell.build_row`, readers use
these names. Units are in the column names; names follow NeuronPerf's where they mean the
same (`throughput_avg`, `latency_ms_p50`, `n_models`, `workers_per_model`, `batch_size`).
"""

from __future__ import annotations

from bench.plan.cell import Cell
from bench.results.metrics import DECLARED

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
}
SCHEMA_VERSION = max(HISTORY)

KEY_COLUMNS = Cell.key_columns()  # owned by the Cell: a new key field is a new column
STATUSES = ("ok", "failed", "inaccurate", "unstable", "skipped")
# Documented columns, in display order (units in the name; throughput in samples/s).
COLUMNS = [m.name for m in DECLARED]


def upgrade(row: dict, version: int) -> dict:
    """A row written under an older schema, as today's code reads it. Version 1 rows need no
    change: version 2 only added columns (a v1 row simply lacks them)."""
    return row
