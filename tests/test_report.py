"""`trnbench report`: self-contained HTML and Markdown with tables and plots."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from compare_helpers import make_run

from bench.cli import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

CELLS = [
    {"scenario": s, "batch_size": b, "compiler": c, "workers_per_model": 2 if s == "throughput" else 1,
     "_median_ms": (0.5 if c == "jit" else 1.0) * (1 + 0.3 * (b - 1))}
    for c in ("eager", "jit") for s in ("latency", "throughput") for b in (1, 4)
]


@pytest.fixture
def runs(tmp_path):
    first = make_run(tmp_path / "runs", "20250101-000000-aaaa", CELLS + [
        {"model": "syn-vit", "seq_len": None, "image_size": 32, "scenario": "latency", "_sigma": 0.8,
         "_n": 500},
        {"model": "syn-vit", "seq_len": None, "image_size": 32, "scenario": "throughput", "workers_per_model": 2,
         "_status": "failed"},
    ], seed=1)
    second = make_run(tmp_path / "runs", "20250101-000100-bbbb", CELLS, seed=2, scale=1.1,
                      env={"torch": "2.14.0"})
    return first, second


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images: list[str] = []
        self.external: list[str] = []
        self.tables = 0
        self.rows: list[tuple[str, list[str]]] = []
        self._row: list[str] | None = None
        self._row_class = ""
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.images.append(a.get("src", ""))
        for key in ("src", "href"):
            if a.get(key) and not a[key].startswith("data:"):
                self.external.append(a[key])
        if tag in ("link", "script"):
            self.external.append(tag)
        if tag == "table":
            self.tables += 1
        if tag == "tr":
            self._row, self._row_class = [], a.get("class") or ""
        if tag == "td" and self._row is not None:
            self._cell = []

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag):
        if tag == "td" and self._row is not None and self._cell is not None:
            self._row.append("".join(self._cell))
            self._cell = None
        if tag == "tr" and self._row is not None:
            self.rows.append((self._row_class, self._row))
            self._row = None


def test_html_report_is_self_contained_with_plots(runs, tmp_path, capsys):
    out = tmp_path / "report.html"
    assert main(["report", str(runs[0]), str(runs[1]), "-o", str(out)]) == 0
    assert "3 plots" in capsys.readouterr().err
    page = _Page()
    page.feed(out.read_text(encoding="utf-8"))
    assert page.external == []  # opens offline: nothing to fetch
    assert page.tables == 2  # environment, results
    assert len(page.images) == 3
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        png = base64.b64decode(src.split(",", 1)[1])
        assert png.startswith(PNG_MAGIC) and len(png) > 10_000  # a drawn figure, not an empty canvas
    unstable = [cells for cls, cells in page.rows if cls == "unstable"]
    assert len(unstable) == 1
    assert any(re.search(r"unstable: .*(IQR|CI|CV)", c) for c in unstable[0])  # the figure, in words
    failed = [cells for cls, cells in page.rows if cls == "failed"]
    assert failed and any("deliberate failed" in c for c in failed[0])
    env_rows = {cells[0]: cells[1:] for cls, cells in page.rows if cells and cells[0] == "torch"}
    assert env_rows["torch"] == ["2.13.0", "2.14.0"]
    assert any("IQR" in c and "of median" in c for _, cells in page.rows for c in cells)  # spread column


def test_markdown_report_writes_linked_images(runs, tmp_path):
    out = tmp_path / "out" / "report.md"
    out.parent.mkdir()
    assert main(["report", str(runs[0].parent), "-o", str(out)]) == 0  # a folder of runs
    text = out.read_text(encoding="utf-8")
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(links) == 3
    for link in links:
        assert not Path(link).is_absolute()
        assert (out.parent / link).read_bytes().startswith(PNG_MAGIC)
    assert "## Environment" in text and "## Results" in text
    assert "| unstable |" in text and "unstable: " in text


def test_report_of_a_single_run_without_throughput_cells(tmp_path):
    run = make_run(tmp_path, "lat", [{"scenario": "latency", "batch_size": b} for b in (1, 2, 8)], seed=1)
    out = tmp_path / "r.html"
    assert main(["report", str(run), "-o", str(out), "--title", "Latency only"]) == 0
    html = out.read_text(encoding="utf-8")
    assert "<title>Latency only</title>" in html
    assert html.count("data:image/png;base64,") == 3  # latency-scenario throughput is plotted instead


def test_report_bad_input(tmp_path, capsys, runs):
    assert main(["report", str(runs[0]), "-o", str(tmp_path / "report.pdf")]) == 2
    assert "must end in .html or .md" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "nope"), "-o", str(tmp_path / "r.html")]) == 2
    assert "no such results directory" in capsys.readouterr().err
    assert main(["report", str(runs[0]), "-o", str(tmp_path / "missing-dir" / "r.html")]) == 2
    assert "no such directory" in capsys.readouterr().err
