"""`trnbench report`: an HTML (self-contained) or Markdown report of one or more runs.

What a reader sees first: with two runs, the comparison (the run-wide shift, the verdict
table with regressions first, a forest plot of the ratios, the environment differences;
bench.render.report_views); with three or more, the history of every cell over the runs.
Then: a summary, the environment of each run, the results table (noisy cells flagged
`unstable` with the figure in words, failures with their error), and plots: the latency
CDF per cell, throughput against batch size per target, throughput against p99 latency.
The HTML embeds its images as base64 PNG and uses no external resource, so it opens
offline; the Markdown writes its images to `<name>_files/` beside it and links them
relatively.
"""

from __future__ import annotations

import base64
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.errors import UsageError
from bench.results.store import read_meta, read_rows, run_dirs

ENV_FIELDS = [
    ("instance", "instance_type"), ("host", "hostname"), ("CPU", "cpu_model"), ("CPU count", "cpu_count"),
    ("memory GiB", "memory_gib"), ("OS", "os"), ("accelerator", "accelerator"), ("device", "device_name"),
    ("python", "python"), ("torch", "torch"), ("transformers", "transformers"),
    ("torch-neuronx", "torch_neuronx"), ("neuronx-cc", "neuronx_cc"), ("trnbench", "harness_version"),
    ("git commit", "git_commit"),
]


@dataclass
class Report:
    title: str
    runs: list[dict[str, Any]]  # {"dir", "id", "meta", "rows"}
    rows: list[dict[str, Any]]  # every row, with "_run_dir" and "_run"
    plots: list[tuple[str, str, bytes]]
    comparison: Any = None  # report_views.ComparisonView (two runs)
    history: Any = None  # report_views.HistoryView (three or more)

    @property
    def usable(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r.get("status") in ("ok", "unstable")]


def build(paths: Any, title: str | None = None, plots: bool = True, by: str = "time") -> Report:
    """Read the runs, compare them (two) or trace their history (three or more), draw the plots."""
    runs = []
    rows: list[dict[str, Any]] = []
    for d in run_dirs(paths):
        meta = read_meta(d)
        run_id = str(meta.get("run_id") or d.name)
        run_rows = [dict(r, _run_dir=str(d), _run=run_id) for r in read_rows(d)]
        runs.append({"dir": d, "id": run_id, "meta": meta, "rows": run_rows})
        rows.extend(run_rows)
    if not rows:
        raise UsageError("nothing to report: the given runs have no rows")
    tags = _short_tags([r["id"] for r in runs])
    for order, run in enumerate(runs):
        run["tag"] = tags[run["id"]]
        for r in run["rows"]:
            r["_run"], r["_run_order"] = run["tag"], order
    if title is None:
        names = sorted({str(r["meta"].get("plan", {}).get("name") or "") for r in runs} - {""})
        title = f"trnbench report: {', '.join(names) or 'results'}"
    report = Report(title, runs, rows, [])
    from bench.render import report_views

    if len(runs) == 2:
        envs = [dict(r["rows"][0] if r["rows"] else {}, **(r["meta"].get("environment") or {})) for r in runs]
        report.comparison = report_views.comparison(runs[0]["dir"], runs[1]["dir"], *envs, plots=plots)
    elif len(runs) >= 3:
        report.history = report_views.history(runs, by, plots=plots)
    if plots:
        from bench.render import plots as p
        from bench.render.plots_train import training

        report.plots = p.all_plots(report.usable) + training(report.usable)
    return report


# -- tables (shared by HTML and Markdown) -------------------------------------------------


def _short_tags(ids: list[str]) -> dict[str, str]:
    """Run ids shortened for legends: their random suffix ('83b5') when that is unique."""
    tails = [i.rsplit("-", 1)[-1] for i in ids]
    if len(set(tails)) == len(ids):
        return dict(zip(ids, tails))
    return {i: i for i in ids}


def _env_value(run: dict[str, Any], column: str) -> str:
    env = run["meta"].get("environment", {}) or {}
    value = env.get(column)
    if value in (None, "") and run["rows"]:
        value = run["rows"][0].get(column)  # accelerator/device come from the rows
    if column == "git_commit" and value:
        value = str(value)[:12] + (" (dirty)" if env.get("git_dirty") else "")
    return "-" if value in (None, "") else str(value)


def environment_table(report: Report) -> tuple[list[str], list[list[str]]]:
    headers = ["", *[r["id"] if r["tag"] == r["id"] else f"{r['id']} ({r['tag']})" for r in report.runs]]
    body = [["plan", *[str(r["meta"].get("plan", {}).get("name") or "-") for r in report.runs]],
            ["started", *[time.strftime("%Y-%m-%d %H:%M", time.localtime(r["meta"].get("created") or 0))
                          for r in report.runs]],
            ["cells", *[_status_counts(r["rows"]) for r in report.runs]]]
    for label, column in ENV_FIELDS:
        values = [_env_value(r, column) for r in report.runs]
        if column in ("torch_neuronx", "neuronx_cc", "instance_type") and all(v == "-" for v in values):
            continue
        body.append([label, *values])
    return headers, body


def _status_counts(rows: list[dict[str, Any]]) -> str:
    counts = Counter(str(r.get("status")) for r in rows)
    return ", ".join(f"{n} {s}" for s, n in counts.most_common())


def results_table(report: Report) -> tuple[list[str], list[list[str]], list[str]]:
    """(headers, body, status per row): the compact summary plus stability in words."""
    from bench.render.tables import summary_rows

    rows = report.rows
    headers, body = summary_rows(rows)
    keep = [i for i, h in enumerate(headers) if any(b[i] for b in body)]  # drop empty columns
    headers = [headers[i] for i in keep] + ["spread", "stability / error"]
    multi = len(report.runs) > 1
    out = []
    for r, cells in zip(rows, body):
        note = str(r.get("stability") or "") if r.get("status") in ("ok", "unstable") else str(r.get("error") or "")
        if r.get("status") == "unstable":
            note = f"unstable: {note}" if note else "unstable"
        line = [cells[i] for i in keep] + [spread(r), note]
        out.append(([r["_run"]] if multi else []) + line)
    if multi:
        headers = ["run", *headers]
    return headers, out, [str(r.get("status")) for r in rows]


def spread(row: dict[str, Any]) -> str:
    """The figures behind the stability flag, in words: 'IQR 12% of median, CV 15%' or 'rate CV 3%'."""
    def pct(v: Any) -> str | None:
        try:
            return f"{float(v):.0%}" if v is not None and float(v) == float(v) else None
        except (TypeError, ValueError):
            return None

    if row.get("status") not in ("ok", "unstable"):
        return ""
    if row.get("scenario") == "throughput" and pct(row.get("throughput_cv")):
        return f"rate CV {pct(row.get('throughput_cv'))}"
    parts = []
    if pct(row.get("latency_iqr_ratio")):
        parts.append(f"IQR {pct(row.get('latency_iqr_ratio'))} of median")
    if pct(row.get("latency_cv")):
        parts.append(f"CV {pct(row.get('latency_cv'))}")
    return ", ".join(parts)


def summary_lines(report: Report) -> list[str]:
    counts = Counter(str(r.get("status")) for r in report.rows)
    lines = [f"{len(report.runs)} run(s), {len(report.rows)} cells: "
             + ", ".join(f"{n} {s}" for s, n in counts.most_common()) + "."]
    unstable = [r for r in report.rows if r.get("status") == "unstable"]
    if unstable:
        lines.append(f"{len(unstable)} cell(s) are unstable (their figures are shaky; see the stability column).")
    bad = [r for r in report.rows if r.get("status") in ("failed", "inaccurate")]
    if bad:
        lines.append(f"{len(bad)} cell(s) failed or gave wrong outputs (see the error column).")
    return lines


# -- HTML and Markdown, from the templates in bench/render/templates/ ------------------------


def _environment():
    """The Jinja2 environment of the report templates (package data: they ship in the wheel)."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    from bench.render.format import is_numeric
    from bench.render.formats.md import markdown

    env = Environment(loader=PackageLoader("bench.render", "templates"),
                      autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
                      trim_blocks=False, lstrip_blocks=False, keep_trailing_newline=True)
    env.filters["b64"] = lambda png: base64.b64encode(png).decode("ascii")
    env.filters["numeric_columns"] = lambda body, n: [is_numeric([b[i] for b in body]) for i in range(n)]
    env.filters["md_table"] = markdown
    env.filters["code"] = lambda text: f"`{text}`"
    return env


def _context(report: Report, out_dir: Path | None = None) -> dict[str, Any]:
    from bench.render.profiles import OPS_NOTE, sections

    env_h, env_b = environment_table(report)
    res_h, res_b, statuses = results_table(report)
    return {"title": report.title, "generated": time.strftime("%Y-%m-%d %H:%M:%S"),
            "dirs": [str(r["dir"]) for r in report.runs], "runs": len(report.runs),
            "tags": [r["tag"] for r in report.runs], "summary": summary_lines(report),
            "comparison": report.comparison, "history": report.history,
            "env_headers": env_h, "env_body": env_b, "res_headers": res_h, "res_body": res_b,
            "statuses": statuses, "plots": report.plots,
            "profiles": sections(report.rows, out_dir), "ops_note": OPS_NOTE}


def to_html(report: Report, out_dir: Path | None = None) -> str:
    """The HTML text; `out_dir` (where it is written) makes the profile links relative."""
    return _environment().get_template("report.html.j2").render(**_context(report, out_dir))


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


def to_markdown(report: Report, out: Path) -> str:
    """Markdown text; images are written to `<out stem>_files/` and linked relatively."""
    folder = out.parent / f"{out.stem}_files"

    def saved(plots: list[tuple[str, str, bytes]]) -> list[dict[str, str]]:
        listed = []
        for title, caption, png in plots:
            folder.mkdir(exist_ok=True)
            name = f"{_slug(title)}.png"
            (folder / name).write_bytes(png)
            listed.append({"title": title, "caption": caption, "path": f"{folder.name}/{name}"})
        return listed

    first = report.comparison.plots if report.comparison is not None else (
        report.history.plots if report.history is not None else [])
    context = dict(_context(report, out.parent.resolve()), first_plots=saved(first), plots=saved(report.plots))
    return _environment().get_template("report.md.j2").render(**context)


def write(report: Report, out: str | Path) -> Path:
    out = Path(out)
    fmt = {".html": "html", ".htm": "html", ".md": "md", ".markdown": "md"}.get(out.suffix.lower())
    if fmt is None:
        raise UsageError(f"report file must end in .html or .md, got {out.name!r}")
    if not out.parent.is_dir():
        raise UsageError(f"no such directory for the report: {out.parent}")
    text = to_html(report, out.parent.resolve()) if fmt == "html" else to_markdown(report, out)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(out)
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc.strerror or exc}") from None
    return out
