"""``stagelab report`` / ``make report``: execute the notebooks and write each one as HTML.

First version (issue 6): every ``notebooks/NN-*.ipynb`` is executed in a fresh kernel (in the
notebooks folder, like JupyterLab would), then written to ``reports/NN-*.html`` with
nbconvert, together with ``reports/index.html``: each notebook, whether it ran through and how
long it took; the notebook map (title, summary, time estimate, read from each notebook's first
Markdown cell); and the "claims vs measured" table (``stagelab.claims``: each size the source
article states next to the same image measured here, its profile and build date; issue 7). A notebook that fails is still written (up to the
failing cell, whose error is shown) and the command exits 1.

Nothing runs on import. ``STAGELAB_REPORT_DIR`` overrides the output folder.
"""
from __future__ import annotations

import argparse
import html
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import StagelabError
from .sizes import SIZE_LABEL

NOTEBOOK_RE = re.compile(r"^\d\d-[a-z0-9-]+\.ipynb$")


class ReportError(StagelabError):
    """The report could not be written (no notebooks found, unknown name, folder not writable)."""


@dataclass
class ReportEntry:
    """One executed notebook: where its HTML is, whether it ran through, how long it took."""

    notebook: Path
    html: Path
    ok: bool
    seconds: float
    error: str = ""

    @property
    def name(self) -> str:
        return self.notebook.stem


def notebooks_dir() -> Path:
    """``<repo>/notebooks``."""
    from .naming import repo_root

    return repo_root() / "notebooks"


def report_dir() -> Path:
    """``STAGELAB_REPORT_DIR`` or ``<repo>/reports``."""
    from .naming import repo_root

    env = os.environ.get("STAGELAB_REPORT_DIR")
    return Path(env).resolve() if env else repo_root() / "reports"


def find_notebooks(names: Sequence[str] | None = None) -> list[Path]:
    """The numbered notebooks in order; ``names`` selects some (``01``, ``01-the-single...``, a path)."""
    folder = notebooks_dir()
    every = sorted(p for p in folder.glob("*.ipynb") if NOTEBOOK_RE.match(p.name))
    if not names:
        if not every:
            raise ReportError(f"No notebooks NN-*.ipynb in {folder}.", "run from the lab's checkout")
        return every
    chosen: list[Path] = []
    for name in names:
        path = Path(name)
        if path.suffix == ".ipynb" and path.is_file():
            chosen.append(path.resolve())
            continue
        hits = [p for p in every if p.stem == name or p.name == name or p.name.startswith(f"{name}-")]
        if not hits:
            raise ReportError(f"No notebook matches {name!r}.",
                              "use a number or name from: " + ", ".join(p.stem for p in every))
        chosen.extend(hits)
    return chosen


def execute_notebook(path: Path, out_dir: Path, *, timeout: int = 900, kernel: str = "python3") -> ReportEntry:
    """Execute one notebook in a fresh kernel and write ``<out_dir>/<name>.html`` (also on failure)."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    from nbconvert import HTMLExporter

    nb = nbformat.read(path, as_version=4)
    # store_widget_state=False: the HTML then shows each widget's static fallback (its
    # figure and table) instead of a widget view that needs JavaScript from a CDN, which
    # a workshop room or an offline machine cannot reach.
    client = NotebookClient(nb, timeout=timeout, kernel_name=kernel, store_widget_state=False,
                            resources={"metadata": {"path": str(path.parent)}})
    started = time.monotonic()
    ok, error = True, ""
    try:
        client.execute()
    except CellExecutionError as exc:
        ok = False
        lines = [line for line in str(exc).splitlines() if line.strip()]
        error = lines[-1] if lines else "a cell failed"
    except Exception as exc:  # kernel died, timeout
        ok = False
        error = f"{type(exc).__name__}: {exc}"
    seconds = time.monotonic() - started
    body, _resources = HTMLExporter().from_notebook_node(nb)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{path.stem}.html"
    target.write_text(body, encoding="utf-8")
    return ReportEntry(path, target, ok, seconds, error)


@dataclass
class MapEntry:
    """One row of the notebook map: read from the notebook's first Markdown cell."""

    notebook: Path
    title: str
    summary: str
    time: str

    @property
    def name(self) -> str:
        return self.notebook.stem


def _plain(text: str) -> str:
    """Markdown inline markup removed (links keep their text)."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    return re.sub(r"[*_`]+", "", text).strip()


def notebook_map(paths: Sequence[Path] | None = None) -> list[MapEntry]:
    """Title, one-line summary and time estimate of each notebook (README map, report index)."""
    import nbformat

    out = []
    for path in paths if paths is not None else find_notebooks():
        nb = nbformat.read(path, as_version=4)
        first = next((c.source for c in nb.cells if c.cell_type == "markdown"), "")
        lines = [line.strip() for line in first.splitlines()]
        title = next((_plain(line[2:]) for line in lines if line.startswith("# ")), path.stem)
        italic = [line for line in lines if re.match(r"^\*[^*].*\*$", line)]
        plain = [line for line in lines[1:] if line and not line.startswith(("#", "-", "*", ">", "|"))]
        summary = _plain((italic or plain or [""])[0])
        found = re.search(r"(?:\*\*time:?\*\*:?|time:|⏱)\s*(.+)", first, re.I)
        minutes = _plain(found.group(1).split("·")[0]) if found else ""
        out.append(MapEntry(path, title, summary, minutes))
    return out


def _map_html(entries: Sequence[ReportEntry]) -> str:
    by_name = {e.name: e for e in entries}
    rows = []
    for m in notebook_map():
        ran = by_name.get(m.name)
        link = (f"<a href='{html.escape(ran.html.name)}'>{html.escape(m.title)}</a>" if ran
                else html.escape(m.title))
        status = "-" if ran is None else ("✓ ran through" if ran.ok else f"✗ failed: {html.escape(ran.error)}")
        secs = f"{ran.seconds:.0f} s" if ran else "-"
        rows.append(f"<tr><td>{link}</td><td>{html.escape(m.summary)}</td><td>{html.escape(m.time)}</td>"
                    f"<td>{status}</td><td>{secs}</td></tr>")
    return ("<table><tr><th>notebook</th><th>what you do</th><th>time (estimate)</th><th>result</th>"
            f"<th>ran in</th></tr>{''.join(rows)}</table>")


def _claims_html() -> str:
    """The article's sizes next to the lab's images as they are on the engine now."""
    from .claims import ARTICLE, claims_html, measure_claims

    try:
        rows = measure_claims()
    except StagelabError as exc:
        return f"<p>Not measured: {html.escape(exc.message)}</p>"
    return (f"<p>Each size the source article (<i>{html.escape(ARTICLE)}</i>) states, next to the same variant "
            f"built and measured here ({html.escape(SIZE_LABEL)}: the same quantity on every image store), the "
            "base-image profile the image was built with, and when it was built. The apps and base images "
            "differ from the article's, so compare the ratios, not the megabytes.</p>"
            + claims_html(rows, link_notebooks=True))


def write_index(entries: Sequence[ReportEntry], out_dir: Path) -> Path:
    """A plain ``index.html``: one row per notebook (link, status, seconds, error), the map, the claims."""
    from .naming import namespace

    profile = os.environ.get("STAGELAB_PROFILE", "auto")
    rows = "".join(
        "<tr><td><a href='{href}'>{name}</a></td><td>{status}</td><td>{secs:.0f} s</td><td>{err}</td></tr>".format(
            href=html.escape(e.html.name), name=html.escape(e.name),
            status="✓ ran through" if e.ok else "✗ failed", secs=e.seconds, err=html.escape(e.error))
        for e in entries
    )
    stamp = time.strftime("%Y-%m-%d %H:%M %Z")
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Multi-stage builds lab: report</title>"
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}td,th{padding:4px 10px;"
        "text-align:left;border-bottom:1px solid #ddd}</style></head><body>"
        "<h1>Multi-stage builds lab: executed notebooks</h1>"
        f"<p>Executed {html.escape(stamp)}, profile setting <code>{html.escape(profile)}</code>, namespace "
        f"<code>{html.escape(namespace())}</code>. Every size in the notebooks says which image and profile it measured.</p>"
        f"<table><tr><th>notebook</th><th>result</th><th>time</th><th>error</th></tr>{rows}</table>"
        f"<h2>Notebook map</h2>{_map_html(entries)}"
        f"<h2>Claims vs measured</h2>{_claims_html()}</body></html>"
    )
    target = out_dir / "index.html"
    target.write_text(page, encoding="utf-8")
    return target


def report(names: Sequence[str] | None = None, *, out_dir: Path | None = None, timeout: int = 900,
           progress: bool = True) -> list[ReportEntry]:
    """Execute the notebooks (all, or ``names``) and write their HTML plus an index (``make report``)."""
    out = Path(out_dir) if out_dir else report_dir()
    entries = []
    for path in find_notebooks(names):
        if progress:
            print(f"[report] executing {path.name} ...", flush=True)
        entry = execute_notebook(path, out, timeout=timeout)
        if progress:
            mark = "ok" if entry.ok else f"FAILED: {entry.error}"
            print(f"[report] {path.name}: {mark} ({entry.seconds:.0f} s) -> {entry.html}", flush=True)
        entries.append(entry)
    write_index(entries, out)
    return entries


def cmd_report(args: argparse.Namespace) -> int:
    entries = report(args.notebooks or None, out_dir=args.out, timeout=args.timeout)
    failed = [e for e in entries if not e.ok]
    out = Path(args.out) if args.out else report_dir()
    print(f"{len(entries) - len(failed)} of {len(entries)} notebooks ran through; open {out / 'index.html'}")
    return 1 if failed else 0


def add_cli(sub: argparse._SubParsersAction) -> None:
    """Register ``stagelab report [NOTEBOOK...] [--out DIR] [--timeout S]``."""
    p = sub.add_parser("report", help="execute the notebooks and write them as HTML under reports/")
    p.add_argument("notebooks", nargs="*", help="numbers or names (default: every NN-*.ipynb)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: reports/)")
    p.add_argument("--timeout", type=int, default=900, help="seconds a single cell may run (default 900)")
    p.set_defaults(func=cmd_report)
