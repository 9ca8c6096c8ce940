"""Byte sizes for people and for command lines: the one place that formats and parses them.

Sizes are decimal (1 MB = 1,000,000 bytes) with three significant digits, the units
``docker image ls`` uses (which quantity it shows depends on the image store: see
``stagelab.sizes.IMAGE_LS_MEANING``). Used by every notebook (tables, plots, widgets) and by the CLI
(``--max-size 20MB``).
"""
from __future__ import annotations

import math
import re

from .errors import StagelabError

#: Decimal units, as docker (go-units ``HumanSize``) prints them.
DECIMAL_UNITS: tuple[str, ...] = ("B", "kB", "MB", "GB", "TB", "PB")
#: Binary units accepted by :func:`parse_size` (``20MiB``).
BINARY_UNITS: tuple[str, ...] = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")

_FACTORS: dict[str, int] = {}
for _i, _u in enumerate(DECIMAL_UNITS):
    _FACTORS[_u.lower()] = 1000**_i
for _i, _u in enumerate(BINARY_UNITS[1:], start=1):
    _FACTORS[_u.lower()] = 1024**_i
# Short forms: "20M", "1.5G", "300k", "20MBytes" is not accepted on purpose.
_FACTORS.update({"k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4, "p": 1000**5, "": 1,
                 "bytes": 1, "byte": 1, "ki": 1024, "mi": 1024**2, "gi": 1024**3})

_SIZE_RE = re.compile(r"^\s*(?P<num>\d+(?:\.\d*)?|\.\d+)\s*(?P<unit>[a-zA-Z]*)\s*$")


class SizeParseError(StagelabError, ValueError):
    """A size given on the command line (``--max-size``) could not be read."""


def human_size(n: int | float | None, *, precision: int = 3, unknown: str = "unknown") -> str:
    """``4812345`` -> ``"4.81 MB"`` (decimal units, 3 significant digits, like ``docker image ls``).

    ``None`` gives ``unknown`` (e.g. a compressed size that was not measured).
    """
    if n is None or (isinstance(n, float) and math.isnan(n)):
        return unknown
    sign = "-" if n < 0 else ""
    value = float(abs(n))
    index = 0
    while value >= 1000 and index < len(DECIMAL_UNITS) - 1:
        value /= 1000
        index += 1
    if index == 0:
        return f"{sign}{int(round(value))} B"
    text = f"{value:.{precision}g}"
    # 999.7 kB rounds to "1e+03": carry into the next unit as people expect ("1 MB").
    if float(text) >= 1000 and index < len(DECIMAL_UNITS) - 1:
        value = float(text) / 1000
        index += 1
        text = f"{value:.{precision}g}"
    return f"{sign}{text} {DECIMAL_UNITS[index]}"


def parse_size(text: str | int | float) -> int:
    """``"20MB"`` -> ``20000000``; accepts ``20 MB``, ``20mb``, ``20M``, ``1.5GB``, ``20MiB``, ``512`` (bytes).

    Raises :class:`SizeParseError` (a ``ValueError`` too) with the accepted forms.
    """
    if isinstance(text, bool):
        raise SizeParseError(f"not a size: {text!r}", "give a size such as 20MB, 1.5GB or 512kB")
    if isinstance(text, (int, float)):
        if text < 0:
            raise SizeParseError(f"a size cannot be negative: {text!r}", "give a size such as 20MB")
        return int(text)
    match = _SIZE_RE.match(str(text))
    unit = match.group("unit").lower() if match else None
    if not match or unit not in _FACTORS:
        raise SizeParseError(
            f"cannot read the size {text!r}",
            "give a number and a unit: 20MB, 1.5GB, 512kB, 20MiB (MB = 1,000,000 bytes, as docker image ls)",
        )
    return int(round(float(match.group("num")) * _FACTORS[unit]))


def human_ratio(ratio: float | None) -> str:
    """How many times smaller than the baseline: ``52.4`` -> ``"52x smaller"``; ``0.5`` -> ``"2x larger"``."""
    if ratio is None or math.isnan(ratio) or ratio <= 0:
        return "–"
    if math.isinf(ratio):
        return "∞x smaller"
    if abs(ratio - 1) < 0.005:
        return "same size"
    if ratio > 1:
        return f"{_short(ratio)}x smaller"
    return f"{_short(1 / ratio)}x larger"


def human_percent(fraction: float | None) -> str:
    """A share of the baseline: ``0.0051`` -> ``"0.51%"``, ``0.5`` -> ``"50%"``, ``1.0`` -> ``"100%"``."""
    if fraction is None or math.isnan(fraction):
        return "–"
    pct = fraction * 100
    if pct == 0:
        return "0%"
    if abs(pct) >= 10:
        return f"{pct:.0f}%"
    if abs(pct) >= 1:
        return f"{pct:.1f}%"
    if abs(pct) < 0.01:
        return "<0.01%" if pct > 0 else ">-0.01%"
    return f"{pct:.2g}%"


def _short(x: float) -> str:
    """1.2345 -> '1.2', 12.345 -> '12', 123.4 -> '123'."""
    if x >= 10:
        return f"{x:.0f}"
    return f"{x:.1f}".rstrip("0").rstrip(".")
