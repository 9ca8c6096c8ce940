"""The Setup cell of every notebook: engine check, profile, base images, friendly errors.

``from stagelab.notebook import setup`` then ``lab = setup()`` at the top of each notebook
(00-08). It is the only place that touches IPython: nothing happens on import.
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import StagelabError


@dataclass
class Lab:
    """What the Setup cell found: shown as a small table, used by later cells."""

    engine: str
    engine_version: str
    api_version: str
    profile: Any                      # stagelab.profiles.Profile
    bases: list[Any] = field(default_factory=list)   # stagelab.bases.BaseStatus
    namespace: str = ""
    builder: str = ""                 # stagelab.builders.describe: which builder builds here, and why

    @property
    def profile_name(self) -> str:
        return self.profile.name

    def missing_bases(self) -> list[Any]:
        return [b for b in self.bases if not b.present]

    def _repr_html_(self) -> str:
        rows = "".join(
            "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td></tr>".format(
                html.escape(b.role), html.escape(b.image or "—"),
                "✓ present" if b.present else "✗ missing",
            )
            for b in self.bases
        )
        missing = self.missing_bases()
        hint = (
            f"<p style='color:#b03a2e'>{len(missing)} base image(s) missing: run "
            "<code>make bases</code> (or the cell in 00-start-here) first.</p>"
            if missing else ""
        )
        return (
            "<div class='stagelab-setup'>"
            f"<p><b>Engine</b> {html.escape(self.engine)} — Docker {html.escape(self.engine_version)} "
            f"(API {html.escape(self.api_version)}) · <b>namespace</b> <code>{html.escape(self.namespace)}</code></p>"
            f"<p><b>Builder</b> {html.escape(self.builder or '?')}</p>"
            f"<p><b>Base-image profile: {html.escape(self.profile.name)}</b> — {html.escape(self.profile.reason)}. "
            "Every size below is measured on these images.</p>"
            "<details><summary>Role → image</summary><table><tr><th>build arg (role)</th><th>image</th>"
            f"<th>here?</th></tr>{rows}</table></details>{hint}</div>"
        )

    def __repr__(self) -> str:
        lines = [
            f"Engine {self.engine}: Docker {self.engine_version} (API {self.api_version}), namespace {self.namespace}",
            f"Builder {self.builder or '?'}",
            f"Profile {self.profile.name}: {self.profile.reason}",
        ]
        lines += [f"  {b.role:<24} {b.image or '-':<52} {'present' if b.present else 'MISSING'}" for b in self.bases]
        return "\n".join(lines)


def _show_error(shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: Any = None) -> list[str]:
    """IPython custom exception handler: a StagelabError shows as one short box, no traceback.

    The box is for the learner; the one-line structured traceback sent through
    ``shell._showtraceback`` is a real ``error`` output, so nbval, papermill and nbclient
    fail the cell (a custom handler's return value alone never reaches the frontend).
    """
    from IPython.display import HTML, display

    display(HTML(value._repr_html_()) if hasattr(value, "_repr_html_") else str(value))
    stb = [f"{etype.__name__}: {value}"]
    shell._showtraceback(etype, value, stb)
    return stb


def install_error_display() -> None:
    """Show ``StagelabError``s as a short box instead of a traceback (notebooks 00-08)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None:
        shell.set_custom_exc((StagelabError,), _show_error)


def setup(*, check_bases: bool = True) -> Lab:
    """Connect to the engine, resolve the profile and list the base images (every Setup cell).

    Raises one ``StagelabError`` (shown as a short box) when no engine answers.
    """
    install_error_display()
    from . import engine
    from .builders import describe
    from .naming import namespace
    from .profiles import active_profile

    cli = engine.client()
    version = cli.version()
    profile = active_profile()
    bases: list[Any] = []
    if check_bases:
        from .bases import status

        bases = status(profile)
    return Lab(
        engine=engine.engine_address(),
        engine_version=str(version.get("Version", "?")),
        api_version=str(version.get("ApiVersion", "?")),
        profile=profile,
        bases=bases,
        namespace=namespace(),
        builder=describe(cli),
    )


def show_file(path: str | Path, language: str | None = None) -> Any:
    """Show a file from the repo with syntax highlighting (the Dockerfile under study)."""
    from IPython.display import Code

    from .naming import repo_root

    p = Path(path)
    if not p.is_absolute():
        p = repo_root() / p
    lang = language or ("docker" if p.name.startswith("Dockerfile") else None)
    return Code(filename=str(p), language=lang)


def show_dockerfile(app: str, variant: str) -> Any:
    """Show the Dockerfile of ``app``/``variant`` as listed in its variants.toml."""
    from .variants import get_variant

    return show_file(get_variant(app, variant).dockerfile, "docker")
