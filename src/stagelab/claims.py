"""The source article's stated image sizes next to the same images measured here.

Notebooks 02 and 05 show one row each ("the article says 823 MB, we measured ..."); the
report site (``make report``) shows the whole "claims vs measured" table on its index page.
Nothing here runs on import; ``measure_claims()`` reads the local images through the engine.
"""
from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

from .sizes import SIZE_LABEL, image_size
from .units import human_size

ARTICLE = "Multi-stage builds in Docker: smaller, cleaner images"


@dataclass(frozen=True)
class Claim:
    """One image size the article states (its `docker images` SIZE column, decimal MB)."""

    key: str
    app: str
    variant: str
    article_label: str      # what the article calls the image
    article_size: int       # bytes, decimal (823 MB = 823_000_000)
    article_text: str       # the size as the article prints it
    notebook: str           # the notebook that builds and discusses the image here


CLAIMS: tuple[Claim, ...] = (
    Claim("go-single", "go-server", "single", "Go, single stage on golang:1.22",
          823_000_000, "823MB", "01-the-single-stage-problem"),
    Claim("go-scratch", "go-server", "scratch", "Go, builder -> scratch (CGO off, -w -s)",
          11_200_000, "11.2MB", "02-multi-stage-go-to-scratch"),
    Claim("ts-single", "ts-server", "single", "TypeScript, single stage",
          687_000_000, "687MB", "05-typescript-multi-stage"),
    Claim("ts-multi", "ts-server", "multi", "TypeScript, builder + production on node:20-alpine",
          198_000_000, "198MB", "05-typescript-multi-stage"),
)


@dataclass(frozen=True)
class ClaimRow:
    """A claim and what was measured for the same variant here (``measured`` None: not built)."""

    claim: Claim
    image: str
    measured: int | None
    profile: str | None
    built: str | None        # image creation time, ISO date and time (local)

    @property
    def ratio(self) -> float | None:
        """measured / article (1.0 = the same size)."""
        if not self.measured:
            return None
        return self.measured / self.claim.article_size

    @property
    def measured_text(self) -> str:
        return human_size(self.measured) if self.measured else "not built yet"

    @property
    def ratio_text(self) -> str:
        r = self.ratio
        return f"{r:.2f} x the article's" if r is not None else "-"


def get_claim(key_or_variant: str, app: str | None = None) -> Claim:
    """A claim by key (``"ts-multi"``) or by ``app`` and variant name."""
    for claim in CLAIMS:
        if claim.key == key_or_variant or (app and claim.app == app and claim.variant == key_or_variant):
            return claim
    raise KeyError(f"no article claim {key_or_variant!r}; known: {', '.join(c.key for c in CLAIMS)}")


def _created(attrs: dict[str, Any]) -> str | None:
    """``Created`` of an image (RFC 3339, UTC) as ``YYYY-MM-DD HH:MM UTC``."""
    raw = str(attrs.get("Created") or "")
    if len(raw) < 16 or raw[10] != "T":
        return raw or None
    return raw[:16].replace("T", " ") + " UTC"


def measure_claim(claim: Claim, client: Any = None) -> ClaimRow:
    """The lab's image of ``claim`` as it is on this engine now (size: :func:`stagelab.sizes.image_size`)."""
    import docker.errors

    from .naming import PROFILE_LABEL, image_tag

    if client is None:
        from .engine import client as engine_client

        client = engine_client()
    tag = image_tag(claim.app, claim.variant)
    try:
        image = client.images.get(tag)
    except docker.errors.ImageNotFound:
        return ClaimRow(claim, tag, None, None, None)
    attrs = image.attrs
    labels = (attrs.get("Config") or {}).get("Labels") or {}
    return ClaimRow(claim, tag, image_size(client, image) or 0, labels.get(PROFILE_LABEL), _created(attrs))


def measure_claims(client: Any = None) -> list[ClaimRow]:
    """Every claim with its measured image (report index page, notebook 05)."""
    if client is None:
        from .engine import client as engine_client

        client = engine_client()
    return [measure_claim(c, client) for c in CLAIMS]


def _head() -> tuple[str, ...]:
    """Column titles naming the versions each side used (versions.toml: [article] and the lab's)."""
    from .versions import current

    v = current()
    return ("image", f"the article says (Go {v.article_go}, Node.js {v.article_node})",
            f"measured here (Go {v.go_minor}, Node.js {v.node_major}, Debian {v.debian}; {SIZE_LABEL})", "measured / article", "profile", "built", "notebook")


def _cells(row: ClaimRow) -> list[str]:
    c = row.claim
    return [f"{c.article_label} ({c.app}:{c.variant})", c.article_text, row.measured_text,
            row.ratio_text, row.profile or "-", row.built or "-", c.notebook]


def claims_markdown(rows: list[ClaimRow]) -> str:
    """The table as Markdown (report, scorecards)."""
    head = _head()
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in _cells(row)) + " |")
    return "\n".join(lines)


def claims_html(rows: list[ClaimRow], *, link_notebooks: bool = False) -> str:
    """The table as HTML; ``link_notebooks`` links the notebook column to ``<name>.html``."""
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in _head())
    body = []
    for row in rows:
        cells = [esc(x) for x in _cells(row)]
        if link_notebooks:
            cells[-1] = f"<a href='{esc(row.claim.notebook)}.html'>{cells[-1]}</a>"
        body.append("<tr>" + "".join(f"<td>{x}</td>" for x in cells) + "</tr>")
    return (f"<table class='claims'><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")


class ClaimsTable:
    """Rows shown as an HTML table in a notebook (``ClaimsTable(measure_claims())``)."""

    def __init__(self, rows: list[ClaimRow]) -> None:
        self.rows = rows

    def _repr_html_(self) -> str:
        return claims_html(self.rows)

    def __repr__(self) -> str:
        return claims_markdown(self.rows)
