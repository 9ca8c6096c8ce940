"""Human sizes and size parsing (stagelab.units): decimal units like `docker image ls`."""
from __future__ import annotations

import pytest

from stagelab.errors import StagelabError
from stagelab.units import SizeParseError, human_percent, human_ratio, human_size, parse_size


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0 B"),
        (999, "999 B"),
        (1000, "1 kB"),
        (4_812_345, "4.81 MB"),
        (4_800_000, "4.8 MB"),
        (20_000_000, "20 MB"),
        (912_345_678, "912 MB"),
        (1_234_567_890, "1.23 GB"),
        (999_700, "1 MB"),  # rounds up into the next unit, never "1e+03 kB"
        (-2_500_000, "-2.5 MB"),
    ],
)
def test_human_size_is_decimal_with_three_digits(n: int, text: str) -> None:
    assert human_size(n) == text


def test_human_size_unknown() -> None:
    assert human_size(None) == "unknown"
    assert human_size(None, unknown="–") == "–"


@pytest.mark.parametrize(
    ("text", "n"),
    [
        ("20MB", 20_000_000),
        ("20 MB", 20_000_000),
        ("20mb", 20_000_000),
        ("20M", 20_000_000),
        ("1.5GB", 1_500_000_000),
        ("512kB", 512_000),
        ("512", 512),
        ("20MiB", 20 * 1024 * 1024),
        (" 3 GiB ", 3 * 1024**3),
        (7, 7),
    ],
)
def test_parse_size(text: str, n: int) -> None:
    assert parse_size(text) == n


@pytest.mark.parametrize("bad", ["", "MB", "twenty MB", "20 XB", "-5MB", "20MB5"])
def test_parse_size_rejects_with_a_fix(bad: str) -> None:
    with pytest.raises(SizeParseError) as info:
        parse_size(bad)
    assert isinstance(info.value, StagelabError) and isinstance(info.value, ValueError)
    assert "20MB" in (info.value.fix or "")


def test_round_trip_is_close() -> None:
    for n in (1234, 4_812_345, 946_000_000):
        assert abs(parse_size(human_size(n).replace(" ", "")) - n) / n < 0.01


def test_ratio_and_percent_words() -> None:
    assert human_ratio(52.4) == "52x smaller"
    assert human_ratio(2.345) == "2.3x smaller"
    assert human_ratio(0.5) == "2x larger"
    assert human_ratio(1.0) == "same size"
    assert human_ratio(None) == "–"
    assert human_percent(0.0051) == "0.51%"
    assert human_percent(0.5) == "50%"
    assert human_percent(1.0) == "100%"
    assert human_percent(0.015) == "1.5%"
    assert human_percent(None) == "–"
