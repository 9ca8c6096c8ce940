"""Which base images are present (every notebook's Setup cell), the error for a missing one
(``stagelab.build``), and the README's stand-in table (``stagelab bases status --markdown``).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .. import catalogue as _catalogue
from .. import profiles as _profiles
from ..errors import StagelabError
from ..sizes import HISTORY_LABEL, image_size, stored_size
from ..units import human_size
from .common import (
    MissingBaseImage, PREPARE_FIX, StandIn, _bpd, _client, _get_image, _read_upstream_record,
    _resolve, standin,
)
from .inputs import _extra_ca_info, _up_to_date


@dataclass
class BaseStatus:
    """One role's image on this engine (notebook Setup cells, ``stagelab bases status``)."""

    role: str
    image: str
    present: bool
    size: int | None                    # stagelab.sizes.stored_size: sum of docker history (size_label says what)
    image_id: str | None
    imitates: str | None = None
    digest: str | None = None
    up_to_date: bool | None = None      # offline: built from the current recipe (None: unknown)
    note: str = ""
    size_label: str = HISTORY_LABEL     # uncompressed on the classic store, disk usage on the containerd store


def _sized(client: Any, img: Any) -> dict[str, Any]:
    """``size`` and ``size_label`` of an image (metadata only: the Setup cells stay fast); also prepare's events."""
    if img is None:
        return {"size": None}
    size, label = stored_size(client, img)
    return {"size": size, "size_label": label}


def status(profile: Any = None, *, helpers: bool = False) -> list[BaseStatus]:
    """Each role of the profile: its image, present or missing, size (and helper stand-ins if asked)."""
    prof = _resolve(profile)
    client = _client()
    out: list[BaseStatus] = []
    ca = _extra_ca_info(strict=False)
    if prof.name == "offline":
        seen: set[str] = set()
        for role in _catalogue.roles():
            tag = prof.images.get(role.arg)
            if tag is None:
                continue
            out.append(_offline_status(client, role.arg, standin(tag), ca))
            seen.add(tag)
        if helpers:
            for s in _catalogue.standins():
                if s.tag not in seen:
                    st = _offline_status(client, "", s, ca)
                    st.note = "helper stand-in (base of others)" if s.tag == _bpd() else "extra tag"
                    out.append(st)
        return out
    record = _read_upstream_record()
    for role in _catalogue.roles():
        ref = prof.images[role.arg]
        img = _get_image(client, ref)
        digest = None
        if img is not None:
            digest = next(iter(img.attrs.get("RepoDigests") or []), None) or record.get(ref, {}).get("digest")
        out.append(BaseStatus(role=role.arg, image=ref, present=img is not None, image_id=img.id if img else None,
                              imitates=ref, digest=digest, **_sized(client, img)))
    return out


def _offline_status(client, arg: str, s: StandIn, ca: dict[str, str]) -> BaseStatus:
    img = _get_image(client, s.tag)
    up = None
    if img is not None:
        labels = (img.attrs.get("Config") or {}).get("Labels") or {}
        up = _up_to_date(s, labels, ca)
    return BaseStatus(role=arg, image=s.tag, present=img is not None, image_id=img.id if img else None,
                      imitates=s.imitates, up_to_date=up, **_sized(client, img))


def status_text(rows: Iterable[BaseStatus], profile: Any = None) -> str:
    """A plain table of ``status()`` rows (the CLI prints it)."""
    lines = []
    if profile is not None:
        prof = _resolve(profile)
        lines.append(f"profile: {prof.name} ({prof.reason})")
    rows = list(rows)
    lines.append(f"size: {next((r.size_label for r in rows if r.size is not None), HISTORY_LABEL)}")
    for r in rows:
        state = "present" if r.present else "MISSING"
        if r.present and r.up_to_date is False:
            state = "stale (recipe changed: prepare rebuilds it)"
        size = human_size(r.size) if r.size is not None else "-"
        lines.append(f"  {r.role or '(helper)':<24} {r.image:<54} {state:<8} {size:>9}"
                     + (f"  {r.note}" if r.note else ""))
    return "\n".join(lines)


def missing_base_error(arg: str, profile: Any) -> StagelabError:
    """The error for a build whose base image (role ``arg``) is not on the engine."""
    prof = profile if isinstance(profile, _profiles.Profile) else None
    if prof is None:
        try:
            prof = _resolve(profile)
        except StagelabError:
            prof = None
    name = prof.name if prof else str(profile)
    try:
        role = _profiles.role(arg)
    except StagelabError:
        role = None
    images = prof.images if prof else (_profiles.profile(name).images if name in _profiles.PROFILE_NAMES else {})
    image = images.get(arg) or (role.offline if role and name == "offline" else role.upstream if role else None)
    title = f" ({role.title})" if role else ""
    if name == "offline" and role is not None and role.offline is None:
        return MissingBaseImage(
            f"Role {arg}{title} has no offline stand-in: profile offline cannot build this variant.",
            fix="skip this variant offline, or use the upstream profile on a machine that reaches "
                "Docker Hub (STAGELAB_PROFILE=upstream)",
        )
    if name == "upstream":
        return MissingBaseImage(
            f"Base image {image} for role {arg}{title} is not on this engine (profile upstream"
            + (f": {prof.reason}" if prof else "") + ").",
            fix="stagelab bases prepare --profile upstream   (pulls the official images; without a "
                f"registry use the offline profile: {PREPARE_FIX})",
        )
    return MissingBaseImage(
        f"Base image {image} for role {arg}{title} is not on this engine (profile {name}"
        + (f": {prof.reason}" if prof else "") + "). It is a local stand-in that has to be prepared once.",
        fix=PREPARE_FIX,
    )


def check_bases(build_args: Mapping[str, str], profile: Any = None) -> None:
    """Raise ``missing_base_error`` for the first role image in ``build_args`` not on the engine."""
    prof = _resolve(profile)
    client = _client()
    roles = {r.arg for r in _catalogue.roles()}
    for arg, image in build_args.items():
        if arg not in roles or not image or image == "scratch":
            continue
        if _get_image(client, image) is None:
            if image != prof.images.get(arg):
                raise MissingBaseImage(
                    f"Base image {image} (build arg {arg}, given instead of the profile's "
                    f"{prof.images.get(arg, 'none')}) is not on this engine.",
                    fix=f"docker load / docker pull {image}, or drop the override to use the "
                        f"{prof.name} profile's image",
                )
            raise missing_base_error(arg, prof)


def table_markdown(client=None) -> str:
    """The stand-ins table of the README (used by `stagelab bases status --markdown`), sizes measured here."""
    from ..versionsync import stand_in_table

    return stand_in_table(table_sizes(client))


def table_sizes(client=None) -> dict[str, str]:
    """Stand-in tag -> its size on this engine, as the README writes it (stand-ins present only)."""
    client = client or _client()
    sizes = {}
    for s in _catalogue.standins():
        img = _get_image(client, s.tag)
        if img is not None:
            sizes[s.tag] = human_size(image_size(client, img))
    return sizes
