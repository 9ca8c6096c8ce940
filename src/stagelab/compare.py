"""Compare measured images against a baseline: sizes, ratios, layers and attack surface.

``compare([report, ...], baseline=...)`` turns :class:`stagelab.inspect.ImageReport`
objects into a :class:`Comparison`, shown as an HTML table in notebooks 01-07 and as
text, Markdown or JSON by ``stagelab compare`` in CI, where :meth:`Comparison.check`
enforces ``--max-size`` / ``--min-ratio``. Nothing here talks to the engine.
"""
from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from .errors import StagelabError
from .naming import APP_LABEL, PROFILE_LABEL, VARIANT_LABEL
from .sizes import SIZE_LABEL
from .units import human_percent, human_ratio, human_size

#: What "size" means in every rendering: true on both image stores (see stagelab.sizes).
SIZE_DEFINITION = (SIZE_LABEL + "; docker image ls shows the same on the classic image store, "
                   "more on the containerd store")
COMPRESSED_DEFINITION = "compressed size, what a docker pull transfers (gzip of each layer)"
JSON_SCHEMA = "stagelab.compare/1"


class UnknownBaseline(StagelabError):
    """The baseline named is not one of the compared images."""


# --- reading an ImageReport ------------------------------------------------------------------

def _get(obj: Any, name: str, default: Any = None) -> Any:
    """``obj.name`` (``default`` when ``obj`` is None or has no such attribute)."""
    if obj is None:
        return default
    return getattr(obj, name, default)


def _names(value: Sequence[str] | None) -> tuple[str, ...] | None:
    """Tool names from the surface's list; None stays None (= not measured)."""
    return None if value is None else tuple(str(v) for v in value)


def _count(value: int | Sequence[str] | None) -> int | None:
    """A count from an int or a list (the surface's setuid files); None stays None."""
    if value is None or isinstance(value, int):
        return value
    return len(value)


# --- the data --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Row:
    """One image in a comparison; sizes are bytes, ``ratio`` = baseline size / this size."""

    image: str
    image_id: str
    app: str | None
    variant: str | None
    profile: str | None
    size: int
    compressed_size: int | None
    ratio: float | None
    percent_of_baseline: float | None
    is_baseline: bool
    layers: int
    shell: str | None
    package_managers: tuple[str, ...] | None   # None: contents not read
    compilers: tuple[str, ...] | None
    executables: int | None
    setuid: int | None
    os_packages: int | None
    user: str
    runs_as_root: bool | None
    surface_known: bool = True   # False: inspected with contents=False (shell etc. unknown)
    builder: str | None = None   # "classic" | "buildkit": the builder that made the image, when known
    engine: str = ""             # "Docker 20.10.24, classic image store": where it was measured

    @property
    def name(self) -> str:
        """``go-server:scratch`` when the image carries the lab's labels, else its reference."""
        if self.app and self.variant:
            return f"{self.app}:{self.variant}"
        return self.image

    @property
    def ratio_text(self) -> str:
        return "baseline" if self.is_baseline else human_ratio(self.ratio)

    @property
    def percent_text(self) -> str:
        return human_percent(None if self.percent_of_baseline is None else self.percent_of_baseline / 100)

    @property
    def user_text(self) -> str:
        """``root`` or the configured user (``node``, ``65532:65532``)."""
        if self.runs_as_root or self.runs_as_root is None and not self.user:
            return "root"
        return self.user or "?"


@dataclass(frozen=True)
class Violation:
    """A broken CI threshold: which image, what was measured and the limit."""

    image: str
    check: str  # "max-size" | "min-ratio"
    measured: float
    limit: float
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass
class Comparison:
    """The result of :func:`compare`: rows in the given order, the baseline first if it was added."""

    rows: list[Row]
    baseline: str | None
    measured_at: datetime = field(default_factory=lambda: datetime.now().astimezone())
    _checked: frozenset[str] = field(default_factory=frozenset, repr=False)

    # -- look-ups
    @property
    def profiles(self) -> list[str]:
        """The base-image profiles the images were built with (one, unless mixed)."""
        return sorted({r.profile for r in self.rows if r.profile})

    @property
    def engines(self) -> list[str]:
        """The engines (version and image store) the images were measured on."""
        return sorted({r.engine for r in self.rows if r.engine})

    @property
    def builders(self) -> list[str]:
        """The builders that made the images, where known."""
        return sorted({r.builder for r in self.rows if r.builder})

    @property
    def profile_text(self) -> str:
        profiles = self.profiles
        if not profiles:
            return "unknown"
        if len(profiles) == 1:
            some_unknown = any(not r.profile for r in self.rows)
            return profiles[0] + (" (other images: unknown)" if some_unknown else "")
        return "MIXED " + " + ".join(profiles) + " (sizes are not comparable across profiles)"

    def row(self, image: str) -> Row:
        """The row of an image, by reference, short name (``app:variant``), variant or id prefix."""
        for r in self.rows:
            if _matches(r, image):
                return r
        raise KeyError(f"{image!r} is not in this comparison: {', '.join(r.name for r in self.rows)}")

    def ratio(self, image: str) -> float | None:
        """How many times smaller ``image`` is than the baseline."""
        return self.row(image).ratio

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.rows)

    # -- CI thresholds
    def check(self, max_size: int | str | None = None, min_ratio: float | None = None) -> list[Violation]:
        """Violations of ``max_size`` (bytes or ``"20MB"``) and ``min_ratio`` (x smaller than the baseline).

        The baseline itself is exempt from ``min_ratio``; it is checked against ``max_size``
        only when it was one of the compared images (not only named as ``baseline``).
        """
        from .units import parse_size

        limit = parse_size(max_size) if max_size is not None else None
        out: list[Violation] = []
        for r in self.rows:
            if limit is not None and r.image in self._checked and r.size > limit:
                out.append(Violation(
                    r.image, "max-size", r.size, limit,
                    f"{r.image}: size {human_size(r.size)} ({r.size:,} bytes, uncompressed) "
                    f"is over the limit --max-size {human_size(limit)} ({limit:,} bytes)",
                ))
            if min_ratio is not None and not r.is_baseline:
                if r.ratio is None:
                    out.append(Violation(
                        r.image, "min-ratio", math.nan, float(min_ratio),
                        f"{r.image}: no baseline to compute a ratio against; --min-ratio {min_ratio:g} needs --baseline",
                    ))
                elif r.ratio < min_ratio:
                    out.append(Violation(
                        r.image, "min-ratio", r.ratio, float(min_ratio),
                        f"{r.image}: {r.ratio:.1f}x smaller than the baseline {self.baseline} "
                        f"({human_size(r.size)} vs {human_size(self._baseline_size)}), "
                        f"below the limit --min-ratio {min_ratio:g}",
                    ))
        return out

    @property
    def _baseline_size(self) -> int | None:
        for r in self.rows:
            if r.is_baseline:
                return r.size
        return None

    # -- renderings
    def caption(self) -> str:
        """What was measured, on what, when: shown above every rendering."""
        base = ""
        if self.baseline:
            names = [r.name for r in self.rows if r.is_baseline]
            base = f"; baseline: {names[0] if names else self.baseline}"
        where = ""
        if self.engines:
            where += f"; engine: {' + '.join(self.engines)}"
        if self.builders:
            where += f"; builder: {' + '.join(self.builders)}"
        return (
            f"Size = {SIZE_DEFINITION}; profile: {self.profile_text}{base}{where}; "
            f"measured {self.measured_at:%Y-%m-%d %H:%M}"
        )

    def _cells(self, r: Row) -> list[str]:
        return [
            r.name,
            r.profile or "?",
            human_size(r.size),
            human_size(r.compressed_size, unknown="–"),
            r.ratio_text,
            "100%" if r.is_baseline else r.percent_text,
            str(r.layers),
            (r.shell or "no") if r.surface_known else "?",
            _tools(r.package_managers),
            _tools(r.compilers),
            _opt(r.executables, r.surface_known),
            _opt(r.setuid, r.surface_known),
            ("none" if r.surface_known else "?") if r.os_packages is None else f"{r.os_packages:,}",
            r.user_text,
        ]

    HEADERS = (
        "image", "profile", "size", "compressed", "vs baseline", "% of baseline", "layers",
        "shell", "package managers", "compilers", "executables", "setuid", "OS packages", "user",
    )
    _NUMERIC = {2, 3, 4, 5, 6, 10, 11, 12}

    def to_text(self) -> str:
        """A fixed-width table for terminals, the caption on the first line."""
        rows = [list(self.HEADERS)] + [self._cells(r) for r in self.rows]
        widths = [max(len(row[i]) for row in rows) for i in range(len(self.HEADERS))]
        lines = [self.caption()]
        for n, row in enumerate(rows):
            parts = [c.rjust(w) if i in self._NUMERIC and n else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
            lines.append("  ".join(parts).rstrip())
            if n == 0:
                lines.append("  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self.to_text())

    def to_markdown(self) -> str:
        """A GitHub-flavoured Markdown table (e.g. for a CI job summary), the caption in italics above."""
        def esc(text: str) -> str:
            return text.replace("|", "\\|")

        lines = [f"_{esc(self.caption())}_", ""]
        lines.append("| " + " | ".join(self.HEADERS) + " |")
        lines.append("|" + "|".join("---:" if i in self._NUMERIC else "---" for i in range(len(self.HEADERS))) + "|")
        for r in self.rows:
            cells = [esc(c) for c in self._cells(r)]
            if r.is_baseline:
                cells[0] = f"**{cells[0]}**"
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"

    def to_dict(self, violations: Sequence[Violation] | None = None) -> dict[str, Any]:
        """The machine-readable form; sizes in bytes, ratio as a plain number, percent in percent."""
        images = []
        for r in self.rows:
            d = asdict(r)
            d["name"] = r.name
            d["package_managers"] = None if r.package_managers is None else list(r.package_managers)
            d["compilers"] = None if r.compilers is None else list(r.compilers)
            images.append(d)
        out: dict[str, Any] = {
            "schema": JSON_SCHEMA,
            "measured_at": self.measured_at.isoformat(timespec="seconds"),
            "profiles": self.profiles,
            "engines": self.engines,
            "builders": self.builders,
            "baseline": self.baseline,
            "units": {
                "size": "bytes (" + SIZE_DEFINITION + ")",
                "compressed_size": "bytes (" + COMPRESSED_DEFINITION + "; null when not measured)",
                "ratio": "baseline size / image size (times smaller; null without a baseline)",
                "percent_of_baseline": "percent: 100 * image size / baseline size",
                "layers": "count",
                "executables": "count of executable files",
                "setuid": "count of setuid/setgid files",
                "os_packages": "count of installed OS packages (dpkg/apk); null when unknown",
                "shell": "path of the first shell found, null when none (or not measured: see surface_known)",
                "package_managers": "names found; null when not measured",
                "compilers": "names found; null when not measured",
            },
            "images": images,
        }
        if violations is not None:
            out["violations"] = [asdict(v) for v in violations]
            out["ok"] = not violations
        return out

    def to_json(self, violations: Sequence[Violation] | None = None, *, indent: int | None = 2) -> str:
        """:meth:`to_dict` as JSON text (NaN written as null)."""
        return json.dumps(_no_nan(self.to_dict(violations)), indent=indent)

    def _repr_html_(self) -> str:
        esc = html.escape
        head = "".join(
            f'<th style="text-align:{"right" if i in self._NUMERIC else "left"};padding:2px 8px">{esc(h)}</th>'
            for i, h in enumerate(self.HEADERS)
        )
        body = []
        for r in self.rows:
            cells = self._cells(r)
            tds = []
            for i, c in enumerate(cells):
                title = ""
                if i == 2:
                    title = f' title="{r.size:,} bytes"'
                elif i == 3 and r.compressed_size is not None:
                    title = f' title="{r.compressed_size:,} bytes"'
                elif i == 0:
                    title = f' title="{esc(r.image)} {esc(r.image_id[:19])}"'
                align = "right" if i in self._NUMERIC else "left"
                wrap = "" if i in (8, 9) else ";white-space:nowrap"
                tds.append(f'<td style="text-align:{align};padding:2px 8px{wrap}"{title}>{esc(c)}</td>')
            style = ' style="font-weight:bold;background:#f3f6fa"' if r.is_baseline else ""
            cls = ' class="stagelab-baseline"' if r.is_baseline else ""
            body.append(f"<tr{cls}{style}>{''.join(tds)}</tr>")
        return (
            '<table class="stagelab-comparison" style="border-collapse:collapse;font-family:sans-serif;'
            'font-size:0.9em">'
            f'<caption style="caption-side:top;text-align:left;padding:4px 0;color:#444">{esc(self.caption())}</caption>'
            f'<thead><tr style="border-bottom:1px solid #999">{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>"
        )


def _opt(n: int | None, known: bool = True) -> str:
    if n is None:
        return "–" if known else "?"
    return f"{n:,}"


def _tools(names: tuple[str, ...] | None) -> str:
    if names is None:
        return "?"
    return ", ".join(names) or "none"


def _no_nan(obj: Any) -> Any:
    if isinstance(obj, float) and (math.isnan(obj) or math.isinf(obj)):
        return None
    if isinstance(obj, dict):
        return {k: _no_nan(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_no_nan(v) for v in obj]
    return obj


def _matches(r: Row, key: str) -> bool:
    if key in (r.image, r.name, r.variant):
        return True
    bare = r.image_id.split(":", 1)[-1]
    k = key.split(":", 1)[-1] if key.startswith("sha256:") else key
    return len(k) >= 6 and (bare.startswith(k) or r.image_id.startswith(key))


# --- building a comparison ---------------------------------------------------------------

def display_name(report: Any) -> str:
    """``go-server:scratch`` for a lab image (from its labels), else the reference or short id.

    The one name used for an image in tables, plots and widgets.
    """
    labels = _get(report, "labels") or {}
    app, variant = labels.get(APP_LABEL), labels.get(VARIANT_LABEL)
    if app and variant:
        return f"{app}:{variant}"
    ref = _get(report, "ref")
    if ref:
        return str(ref)
    return str(_get(report, "image_id") or "?").removeprefix("sha256:")[:12]


def profile_of(report: Any) -> str | None:
    """The base-image profile an image was built with (``offline``/``upstream``), if known."""
    return _get(report, "profile") or (_get(report, "labels") or {}).get(PROFILE_LABEL)


def report_row_fields(report: Any) -> dict[str, Any]:
    """The per-image fields of a row (everything but the ratios), read from an ImageReport."""
    labels = _get(report, "labels") or {}
    surface = _get(report, "surface")
    layers = _get(report, "layers") or ()
    user = _get(report, "user") or ""
    runs_as_root = _get(surface, "runs_as_root")
    if runs_as_root is None:
        runs_as_root = user.split(":")[0] in ("", "root", "0")
    known = surface is not None and bool(_get(surface, "from_contents", True)) and bool(_get(report, "contents", True))
    return {
        "image": str(_get(report, "ref") or _get(report, "image_id") or "?"),
        "image_id": str(_get(report, "image_id") or ""),
        "app": labels.get(APP_LABEL),
        "variant": labels.get(VARIANT_LABEL),
        "profile": profile_of(report),
        "size": int(_get(report, "size") or 0),
        "compressed_size": _get(report, "compressed_size"),
        "layers": len(layers),
        "shell": _get(surface, "shell") or None,
        "package_managers": _names(_get(surface, "package_managers")),
        "compilers": _names(_get(surface, "compilers")),
        "executables": _count(_get(surface, "executables")),
        "setuid": _count(_get(surface, "setuid")),
        "os_packages": _count(_get(surface, "os_packages")),
        "user": user,
        "runs_as_root": runs_as_root,
        "surface_known": known,
        "builder": _get(report, "builder"),
        "engine": _get(report, "engine") or "",
    }


def _pick_baseline(reports: Sequence[Any], baseline: Any) -> tuple[Any | None, bool]:
    """(baseline report, whether it was among ``reports``)."""
    if baseline is None:
        if len(reports) < 2:
            return None, True
        return max(reports, key=lambda rep: int(_get(rep, "size") or 0)), True
    if not isinstance(baseline, str):
        listed = any(rep is baseline for rep in reports)
        return baseline, listed
    for rep in reports:
        fields = report_row_fields(rep)
        probe = Row(**fields, ratio=None, percent_of_baseline=None, is_baseline=False)
        if _matches(probe, baseline):
            return rep, True
    names = ", ".join(str(_get(rep, "ref")) for rep in reports)
    raise UnknownBaseline(
        f"the baseline {baseline!r} is not one of the compared images ({names})",
        "name one of them as baseline, or pass its ImageReport: compare(reports, baseline=report)",
    )


def compare(reports: Sequence[Any], baseline: Any = None, *, builds: Sequence[Any] = ()) -> Comparison:
    """Compare images against a baseline (notebooks 01-07, ``stagelab compare``).

    ``reports``: ImageReports in display order. ``baseline``: an ImageReport, or the
    reference / ``app:variant`` / variant name / id prefix of one of them; ``None``
    picks the largest image (so ratios read "N x smaller"). A baseline report that is
    not in ``reports`` is shown first and is not checked against ``max_size``.
    ``builds``: the ``BuildResult`` objects that made the images; each row takes its
    ``builder`` from the build with the same image id.
    """
    reports = list(reports)
    _take_builders(reports if baseline is None or isinstance(baseline, str) else [*reports, baseline], builds)
    if not reports:
        raise StagelabError("nothing to compare: no images given", "pass at least one ImageReport")
    base, listed = _pick_baseline(reports, baseline)
    ordered = reports if (base is None or listed) else [base, *reports]
    base_size = int(_get(base, "size") or 0) if base is not None else None
    rows: list[Row] = []
    for rep in ordered:
        f = report_row_fields(rep)
        is_base = base is not None and rep is base
        ratio = pct = None
        if base_size:
            ratio = base_size / f["size"] if f["size"] else math.inf
            pct = 100.0 * f["size"] / base_size
        rows.append(Row(**f, ratio=ratio, percent_of_baseline=pct, is_baseline=is_base))
    checked = frozenset(report_row_fields(rep)["image"] for rep in reports)
    return Comparison(
        rows=rows,
        baseline=report_row_fields(base)["image"] if base is not None else None,
        _checked=checked,
    )


def _take_builders(reports: Sequence[Any], builds: Sequence[Any]) -> None:
    """Set ``report.builder`` from the build that made it (matched by image id), when not known yet."""
    by_id = {getattr(b, "image_id", None): getattr(b, "builder", None) for b in builds}
    for rep in reports:
        if getattr(rep, "builder", None) is None and by_id.get(rep.image_id):
            rep.builder = by_id[rep.image_id]


def compare_images(
    images: Sequence[str],
    baseline: str | None = None,
    *,
    compressed: bool = False,
    contents: bool = True,
) -> Comparison:
    """Inspect local images by name or id and compare them (``stagelab compare``, notebooks).

    The baseline may be one of ``images`` (by the same name, ``app:variant`` or id) or
    another image, which is then inspected too and shown first as the reference only.
    Raises :class:`stagelab.inspect.ImageNotFound` for a name that is not a local image.
    """
    from . import inspect as inspect_mod

    names = list(dict.fromkeys(images))
    reports = [inspect_mod.inspect(name, contents=contents, compressed=compressed) for name in names]
    if baseline is None:
        return compare(reports)
    if baseline in names:
        return compare(reports, baseline=reports[names.index(baseline)])
    try:
        return compare(reports, baseline=baseline)   # app:variant, variant or id prefix of a listed image
    except UnknownBaseline:
        pass
    base = inspect_mod.inspect(baseline, contents=contents, compressed=compressed)
    for rep in reports:
        if rep.image_id == base.image_id:
            return compare(reports, baseline=rep)
    return compare(reports, baseline=base)
