"""Printing comparisons, reference checks and pivots as terminal tables, Markdown, CSV or JSON."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from bench.analysis.compare import Comparison
from bench.analysis.pivot import Pivot
from bench.analysis.reference import RefRow
from bench.analysis.samples import to_float
from bench.plan.cell import cell_label, shape_label
from bench.render.format import fmt_ci, fmt_p, fmt_ratio, fmt_value
from bench.render.formats import emit, is_export
from bench.render.profiles import shift_text
from bench.render.tabular import Bullets, Tabular
from bench.results.schema import KEY_COLUMNS


def comparison_table(c: Comparison) -> Tabular:
    """A Comparison as a Tabular: the sides and the run-wide shift before the table; the
    geometric means, the cells compared apart, hints and the summary after it."""
    shifted = bool(c.shift)
    headers = ["cell", "metric", "A", "B", "B/A", f"{1 - c.alpha:.0%} CI", "change", "p (Holm)", "verdict",
               *(["vs shift"] if shifted else []), "notes"]
    body, styles = [], []
    for r in c.rows:
        notes = ([f"env differs: {r.env_diff}"] if r.env_diff else []) + r.notes
        body.append([r.label, r.metric, fmt_value(r.a, r.unit), fmt_value(r.b, r.unit), fmt_ratio(r.ratio),
                     fmt_ci(r.ci_low, r.ci_high), f"{100 * r.change:+.1f}%" if math.isfinite(r.ratio) else "",
                     fmt_p(r.p_adj), r.verdict, *([r.verdict_vs_shift] if shifted else []), "; ".join(notes)])
        styles.append({"slower": "red", "faster": "green"}.get(r.verdict_vs_shift if shifted else r.verdict, ""))
    before: list = [c.a.describe(), c.b.describe()]
    before += [("run-wide shift " + line if not line.startswith("separate") else line) for line in c.shift_lines()]
    after: list = []
    if c.geomean:
        parts = [f"{m} {g[0]:.3f} [{g[1]:.3f}, {g[2]:.3f}] over {g[3]} cells" for m, g in c.geomean.items()]
        after.append(f"geometric mean of B/A: {'; '.join(parts)}")
    after += [
        Bullets(f"broken in B ({len(c.broken)}; counts as a regression)", [f"{cell_label(k)}: {why}" for k, why in c.broken]),
        Bullets(f"not compared ({len(c.not_compared)})",
                [f"{cell_label(k)}: {why}" for k, why in c.not_compared if (k, why) not in c.broken]),
        Bullets(f"only in A ({len(c.only_a)})", [cell_label(k) for k in c.only_a]),
        Bullets(f"only in B ({len(c.only_b)})", [cell_label(k) for k in c.only_b]),
        Bullets(f"different model weights in A and B ({len(c.different_models)}; model_fingerprint differs: "
                "the cards built other weights, e.g. another torch)",
                [f"{cell_label(k)}: {fa} -> {fb}" for k, fa, fb in c.different_models]),
        Bullets(f"operators whose share of the profiled pass moved most ({len(c.op_shifts)} cells profiled in both)",
                [f"{cell_label(k)}: {shift_text(moved)}" for k, moved in c.op_shifts]),
        *[f"hint: {hint}" for hint in c.hints], c.summary()]
    records = [r.as_dict() for r in c.rows]
    return Tabular(headers, body, records=records, columns=list(records[0]) if records else ["verdict"],
                   styles=styles, before=before, after=after, document=c.to_json(), wrap=("notes",))


def render_comparison(c: Comparison, fmt: str = "table") -> None:
    """Print a Comparison: the table, then cells compared apart, geomeans and a summary line."""
    emit(comparison_table(c), fmt)


def reference_table(rows: list[RefRow], missing: list[dict[str, Any]], reference: str) -> Tabular:
    records = [r.as_dict() for r in rows]
    headers = ["cell", "precision", "instance", "samples/s", "published", "% of published",
               "p50 ms", "published", "p50 ratio", "p99 ms", "published", "p99 ratio", "SDK", "comparable?", "notes"]
    body, styles = [], []
    for r in rows:
        ref = r.ref or {}
        d = r.as_dict()
        tput = fmt_value(r.run.get("throughput", math.nan))
        if "throughput" in r.run_ci:
            lo, hi = r.run_ci["throughput"]
            tput += f" ±{max(r.run['throughput'] - lo, hi - r.run['throughput']) / r.run['throughput']:.1%}"
        body.append([cell_label(r.key), str(r.key.get("precision")), str(r.key.get("instance") or "-"), tput,
                     fmt_value(to_float(ref.get("throughput"))), _pct(d.get("throughput_ratio")),
                     fmt_value(r.run.get("p50", math.nan)), fmt_value(to_float(ref.get("p50"))),
                     fmt_ratio(d.get("p50_ratio") or math.nan),
                     fmt_value(r.run.get("p99", math.nan)), fmt_value(to_float(ref.get("p99"))),
                     fmt_ratio(d.get("p99_ratio") or math.nan), str(ref.get("sdk_version") or ""),
                     "yes" if r.comparable else "not comparable: " + ", ".join(r.mismatches),
                     r.stability])
        styles.append("" if r.comparable else "dim")
    sources = sorted({str(r.ref.get("source_url")) for r in rows if r.ref and r.ref.get("source_url")})
    ok = sum(r.comparable for r in rows)
    after = [Bullets("sources", sources),
             Bullets(f"no published figure for the model and batch size ({len(missing)})", [cell_label(k) for k in missing]),
             f"{len(rows)} cells matched a published model and batch size; {ok} comparable, "
             f"{len(rows) - ok} not comparable; {len(missing)} without a published figure"]
    document = {"reference": str(reference), "rows": records, "no_published_figure": [cell_label(k) for k in missing]}
    return Tabular(headers, body, records=records, columns=list(records[0]) if records else ["model"],
                   title=f"against {reference}", styles=styles, after=after, document=document,
                   wrap=("comparable?", "notes"), show_empty=False)


def render_reference(rows: list[RefRow], missing: list[dict[str, Any]], reference: str, fmt: str = "table") -> None:
    emit(reference_table(rows, missing, reference), fmt)


def _pct(v: float | None) -> str:
    return f"{100 * v:.0f}%" if v is not None else ""


def _sort_key(values: Iterable[Any]) -> tuple:
    return tuple((0, v, "") if isinstance(v, (int, float)) else (1, 0, str(v)) for v in values)


def pivot_tables(pivots: list[Pivot]) -> list[Tabular]:
    """One Tabular per metric: a row per model/batch, a column per value of the --by column."""
    out = []
    for p in pivots:
        keys = [k for k, _ in p.rows]
        # Row-header columns: the key columns that are set and vary (model, batch, ...).
        show = [c for c in KEY_COLUMNS if any(k.get(c) is not None for k in keys)
                and (c in ("model", "batch_size") or len({k.get(c) for k in keys}) > 1)]
        headers = [("batch" if c == "batch_size" else c) for c in show] + ["shape"] + p.columns
        body, notes = [], []
        for key, cells in sorted(p.rows, key=lambda kc: _sort_key(kc[0].get(c) for c in KEY_COLUMNS)):
            base = cells.get(p.columns[0], (math.nan, ""))[0]
            line = ["" if key.get(c) is None else str(key.get(c)) for c in show] + [shape_label(key)]
            for col in p.columns:
                if col not in cells:
                    line.append("")
                    continue
                value, note = cells[col]
                text = fmt_value(value)
                if col != p.columns[0] and math.isfinite(base) and base:
                    text += f" (×{value / base:.2f})"
                if note:
                    text += " unstable"
                    notes.append(f"{cell_label(key)} {col}: {note}")
                line.append(text)
            body.append(line)
        unit = "samples/s" if p.metric.kind == "throughput" else p.metric.unit
        records = p.as_records()
        out.append(Tabular(headers, body, records=records, columns=list(records[0]) if records else None,
                           title=f"{p.metric.name} ({unit}) by {p.by}; (×r) = relative to {p.columns[0]}",
                           after=[Bullets("unstable", notes)]))
    return out


def render_pivot(pivots: list[Pivot], fmt: str = "table") -> None:
    tables = pivot_tables(pivots)
    if is_export(fmt):  # every metric's records in one export
        records = [rec for t in tables for rec in t.records]
        emit(Tabular([], [], records=records, columns=list(records[0]) if records else None), fmt)
        return
    for tab in tables:
        emit(tab, fmt)
