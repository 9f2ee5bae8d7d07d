"""Fuzz the suite / model-card parsers and the results loader: a result or a clear error."""

from __future__ import annotations

import string
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench import models
from bench.errors import UsageError
from bench.plan.grid import Plan
from bench.results.store import load

KEYS = ["models", "targets", "compilers", "dtypes", "scenarios", "batch_sizes", "seq_lens", "image_sizes",
        "weights", "compiler_args", "n_models", "workers_per_model", "threads_per_worker", "rates", "bogus"]
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 300) | st.floats(allow_nan=True) |
    st.sampled_from(["tiny-bert", "tiny-vit", "cpu", "eager", "jit", "latency", "fp32", "", "x"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.sampled_from(KEYS), children, max_size=3),
    max_leaves=8,
)
SUITES = st.dictionaries(
    st.sampled_from(["description", "measure", "sweep", "extra"]),
    VALUES | st.lists(st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=5), max_size=2)
    | st.dictionaries(st.sampled_from(["warmup_s", "min_samples", "target_ci", "max_duration_s", "nope"]),
                      VALUES, max_size=3),
    max_size=3,
)


@settings(max_examples=300, deadline=None)
@given(SUITES)
def test_suite_parser_gives_a_plan_or_a_usage_error(data):
    try:
        plan = Plan.from_suite_data(data, name="fuzz")
    except UsageError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert plan.cells


TOML_TEXT = st.text(alphabet=string.printable, max_size=200)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(TOML_TEXT)
def test_model_card_parser_gives_a_card_or_a_usage_error(text):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "card.toml"
        path.write_text(text)
        try:
            card = models._parse_card(path)
        except UsageError as exc:
            assert "\n" not in str(exc).strip() or "malformed TOML" in str(exc)
            return
        assert card.task in models.TASKS


RUN_JSON = st.one_of(st.binary(max_size=100).map(lambda b: b.decode("latin-1")),
                     st.sampled_from(['{"schema_version": 1}', '{"schema_version": "1"}', "[]", "null",
                                      '{"schema_version": 99}', '{"schema_version": 1, "plan": 3}']))
CELLS = st.lists(st.one_of(st.text(max_size=40), st.sampled_from(['{"cell_id": "a", "status": "ok"}', "[1,2]",
                                                                  '{"latency_ms_p50": "fast"}', "{"])), max_size=5)


@settings(max_examples=200, deadline=None)
@given(RUN_JSON, CELLS)
def test_results_loader_gives_a_frame_or_a_usage_error(run_json, lines):
    import warnings

    with tempfile.TemporaryDirectory() as d:
        run = Path(d) / "run1"
        run.mkdir()
        (run / "run.json").write_text(run_json, encoding="latin-1")
        (run / "cells.jsonl").write_text("\n".join(lines), encoding="utf-8", errors="replace")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                df = load(run)
        except UsageError as exc:
            assert str(exc)
            return
        assert len(df) <= len(lines)
