"""Go-style durations: what parses, to how long, and how durations print."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ecr_pull_secrets.model.duration import InvalidDuration, parse_duration

PARSES = [
    pytest.param("4h", timedelta(hours=4), id="hours"),
    pytest.param("90m", timedelta(minutes=90), id="minutes"),
    pytest.param("90s", timedelta(seconds=90), id="seconds"),
    pytest.param("1h30m", timedelta(hours=1, minutes=30), id="hours-minutes"),
    pytest.param("1h1m1s", timedelta(seconds=3661), id="hours-minutes-seconds"),
    pytest.param("1.5h", timedelta(minutes=90), id="fractional-hours"),
    pytest.param("0.25m", timedelta(seconds=15), id="fractional-minutes"),
    pytest.param("500ms", timedelta(milliseconds=500), id="milliseconds"),
    pytest.param("250us", timedelta(microseconds=250), id="microseconds-us"),
    pytest.param("250µs", timedelta(microseconds=250), id="microseconds-micro-sign"),
    pytest.param("3000ns", timedelta(microseconds=3), id="nanoseconds"),
    pytest.param("0s", timedelta(0), id="zero"),
    pytest.param("11h59m59s", timedelta(hours=12) - timedelta(seconds=1), id="just-under-12h"),
    pytest.param("30m1h", timedelta(minutes=90), id="units-any-order"),
    pytest.param("1h1h", timedelta(hours=2), id="repeated-unit-adds"),
]


@pytest.mark.parametrize(("text", "expected"), PARSES)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("4", id="no-unit"),
        pytest.param("h", id="no-number"),
        pytest.param("-1h", id="negative"),
        pytest.param("+1h", id="explicit-plus"),
        pytest.param("4 h", id="inner-space"),
        pytest.param(" 4h", id="leading-space"),
        pytest.param("4h ", id="trailing-space"),
        pytest.param("4h\n", id="trailing-newline"),
        pytest.param("4d", id="days"),
        pytest.param("1w", id="weeks"),
        pytest.param("4H", id="upper-case-unit"),
        pytest.param(".5h", id="no-integer-part"),
        pytest.param("1.h", id="no-fraction-digits"),
        pytest.param("1e3s", id="exponent"),
        pytest.param("4hh", id="doubled-unit"),
        pytest.param("h4", id="unit-first"),
        pytest.param("1μs", id="greek-mu"),
        pytest.param("PT4H", id="iso-8601"),
    ],
)
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(InvalidDuration) as caught:
        parse_duration(text)

    assert repr(text) in str(caught.value)
    assert "4h" in str(caught.value), "the message must show an example of a valid duration"


def test_a_duration_past_what_timedelta_holds_is_invalid_not_an_overflow() -> None:
    with pytest.raises(InvalidDuration, match="longer than any duration"):
        parse_duration("99999999999999999h")
