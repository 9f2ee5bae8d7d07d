"""Profiled passes (`--profile`) as a person reads them: the top-operator table of each
profiled cell with a link to its trace (the report), and the operators whose share moved most
between two runs (compare)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from bench.analysis.profiles import OpShift, profile_path, top_ops
from bench.plan.cell import cell_label

OPS_NOTE = ("share: the operator's own (self) time over the profiled pass's wall time; on CUDA its kernels' "
            "device time. What the operators leave is Python and the framework between them, and the "
            "profiler's own cost.")


def _pct(v: Any) -> str:
    return f"{100 * float(v):.1f}%" if isinstance(v, (int, float)) else "-"


def shift_text(shifts: list[OpShift]) -> str:
    """'aten::addmm 9.5% -> 14.2% (+4.7 pts), ...'."""
    return ", ".join(f"{s.op} {_pct(s.share_a)} -> {_pct(s.share_b)} ({100 * s.change:+.1f} pts)" for s in shifts)


def sections(rows: list[dict[str, Any]], out_dir: Path | None = None) -> list[dict[str, Any]]:
    """One section per profiled row: its label, what it says in words, the trace's link
    (relative to `out_dir`, where the report is written, when there is one) and its top-op table."""
    out = []
    for r in rows:
        ops = top_ops(r)
        if not ops and not r.get("profile_note"):
            continue
        path = profile_path(r)
        trace = path / "trace.json.gz" if path is not None else None
        link = None
        if trace is not None and trace.is_file():
            link = os.path.relpath(trace, out_dir) if out_dir is not None else str(trace)
        words = []
        if r.get("profile_tool"):
            words.append(f"{r['profile_tool']}; the pass took {r.get('profile_pass_s', 0):.2f} s")
        if isinstance(r.get("profile_step_ms"), (int, float)):
            words.append(f"{r['profile_step_ms']:.3g} ms a step under the profiler")
        if isinstance(r.get("profile_ops_share"), (int, float)):
            words.append(f"operators {_pct(r['profile_ops_share'])} of it")
        if r.get("profile_note"):
            words.append(str(r["profile_note"]))
        body = [[o["op"], _pct(o.get("share")), f"{float(o.get('self_ms') or 0):.3g}", f"{o.get('calls', 0):g}"]
                for o in ops]
        out.append({"label": cell_label(r), "run": r.get("_run", ""), "words": "; ".join(words), "link": link,
                    "folder": str(path) if path is not None else None,
                    "headers": ["operator", "share", "self ms a step", "calls a step"], "body": body})
    return out
