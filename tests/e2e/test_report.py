"""`trnbench report`: self-contained HTML and Markdown with tables and plots."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from bench.cli import main
from tests.support.compare import make_run

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
    assert page.tables == 4  # the comparison's verdicts and environment differences, environment, results
    assert len(page.images) == 4  # the forest plot first, then the three plots
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
    assert len(links) == 4  # two runs: the forest plot of the comparison, then the three plots
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


def _text(html_text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html_text))


def test_a_report_of_two_runs_starts_with_what_changed(tmp_path):
    a = make_run(tmp_path, "20250101-000000-aaaa", CELLS, seed=1)
    # B: every cell 10 % slower (the machine), and one cell 60 % slower on top (a real change)
    b = make_run(tmp_path, "20250101-000100-bbbb", [dict(c, _scale=1.6) if i == 0 else c for i, c in enumerate(CELLS)],
                 seed=2, scale=1.1, env={"torch": "2.14.0"})
    out = tmp_path / "r.html"
    assert main(["report", str(a), str(b), "-o", str(out)]) == 0
    html_text = out.read_text(encoding="utf-8")
    text = _text(html_text)
    first = html_text.index("<h2>")
    assert html_text[first:].startswith("<h2>What changed: B (bbbb) against A (aaaa)</h2>")
    assert re.search(r"p50: B ran 1\d% slower across all 8 cells", text)  # the run-wide shift, first
    page = _Page()
    page.feed(html_text)
    verdicts = [cells for cls, cells in page.rows if len(cells) == 9 and cells[1] in ("p50", "p99", "throughput")]
    assert verdicts[0][7] == "slower" and "latency b1" in verdicts[0][0]  # the regression first
    # the rest moved with the shift (p50 and p99 have one: 8 cells; throughput's 4 cells are too few for one)
    assert all(v[7] == "~" for v in verdicts[1:] if v[0] != verdicts[0][0] and v[1] != "throughput")
    assert "Environment differences" in text and "2.13.0 2.14.0" in text
    assert 'alt="B / A per cell and metric: Each line is one cell' in html_text  # the plot's text alternative


def test_a_report_of_five_runs_has_a_history_with_the_change_marked(tmp_path):
    root = tmp_path / "runs"
    for i in range(5):
        cells = [dict(c, _scale=1.5) if (i >= 3 and j == 0) else c for j, c in enumerate(CELLS)]
        make_run(root, f"2025010{i + 1}-000000-r{i}xx", cells, seed=i, env={"torch": f"2.1{i}.0"})
        meta = root / f"2025010{i + 1}-000000-r{i}xx" / "run.json"
        import json

        data = json.loads(meta.read_text())
        data["created"] = 1.7e9 + 86400 * i
        meta.write_text(json.dumps(data))
    out = tmp_path / "h.html"
    assert main(["report", str(root), "-o", str(out)]) == 0
    html_text = out.read_text(encoding="utf-8")
    text = _text(html_text)
    assert html_text[html_text.index("<h2>"):].startswith("<h2>History over 5 runs (by time)</h2>")
    flagged = re.findall(r"<li>([^<]*slower than the run before[^<]*)</li>", html_text)
    assert len(flagged) >= 1 and all("latency b1" in f for f in flagged)  # the change, where it happened
    assert "History: p50" in text and "History: throughput" in text
    assert main(["report", str(root), "-o", str(out), "--by", "sdk"]) == 0
    assert "History over 5 runs (by sdk)" in out.read_text(encoding="utf-8")


def test_a_history_of_runs_with_no_common_cells_is_one_line_and_exit_2(tmp_path, capsys):
    for i, batch in enumerate((1, 2, 4)):
        make_run(tmp_path / "runs", f"run{i}", [{"scenario": "latency", "batch_size": batch}], seed=i)
    assert main(["report", str(tmp_path / "runs"), "-o", str(tmp_path / "h.html")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "share none" in err[0] and not (tmp_path / "h.html").exists()


def test_the_forest_plot_stays_readable_for_60_cells(tmp_path):
    import io

    from matplotlib.image import imread

    cells = [{"scenario": "latency", "batch_size": b, "seq_len": s} for b in (1, 2, 4, 8, 16, 32) for s in range(8, 88, 8)]
    a = make_run(tmp_path, "a", cells, seed=1, n=300)
    b = make_run(tmp_path, "b", cells, seed=2, n=300)
    from bench.render.report import build

    report = build([a, b])
    (title, _, png), = [p for p in report.comparison.plots]
    height, width = imread(io.BytesIO(png)).shape[:2]
    assert height / 100 >= 0.24 * 60  # about a quarter inch a cell: labels do not overlap


def _chromium() -> str | None:
    import shutil

    return next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p), None)


@pytest.mark.skipif(_chromium() is None, reason="needs a headless Chromium (Debian: apt-get install chromium)")
def test_reports_load_in_a_real_browser_with_every_image(runs, tmp_path):
    """Headless Chromium opens the two-run report and a history report: every image decodes."""
    import subprocess

    for i in range(3, 5):
        make_run(runs[0].parent, f"20250101-00{i}00-c{i}cc", CELLS, seed=i)
    probe = ("<script>window.addEventListener('load', () => { const imgs = [...document.images]; "
             "const ok = imgs.filter(i => i.complete && i.naturalWidth > 0).length; "
             "document.title = 'IMAGES ' + ok + '/' + imgs.length; });</script></body>")
    for name, argv in (("two", [str(runs[0]), str(runs[1])]), ("history", [str(runs[0].parent)])):
        out = tmp_path / f"{name}.html"
        assert main(["report", *argv, "-o", str(out)]) == 0
        page = tmp_path / f"{name}-probe.html"
        page.write_text(out.read_text(encoding="utf-8").replace("</body>", probe), encoding="utf-8")
        shot = tmp_path / f"{name}.png"
        base = [_chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                "--virtual-time-budget=10000", "--window-size=1300,2000"]
        dom = subprocess.run([*base, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
        loaded = re.search(r"<title>IMAGES (\d+)/(\d+)</title>", dom.stdout)
        assert loaded, dom.stderr[-500:]
        assert loaded.group(1) == loaded.group(2) and int(loaded.group(2)) >= 3, loaded.group(0)
        subprocess.run([*base, f"--screenshot={shot}", out.as_uri()], capture_output=True, timeout=120)
        assert shot.read_bytes().startswith(PNG_MAGIC) and shot.stat().st_size > 50_000
