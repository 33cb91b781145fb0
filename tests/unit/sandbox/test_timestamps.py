"""The fast timestamp parser every interlock client uses reads each value as botocore's own does:
the same instant, time-zone aware, whatever form the server wrote it in."""

from __future__ import annotations

import pytest
from botocore.utils import parse_timestamp

from interlock.sandbox.aws import fast_timestamp

VALUES = [
    "2026-12-03T15:12:00.000Z",  # a listing's LastModified
    "2026-12-03T15:12:00+00:00",
    "2026-12-03T17:12:00.123456+02:00",
    "Wed, 03 Dec 2026 15:12:00 GMT",  # a HEAD or GET's Last-Modified header
    "Thu, 01 Jan 1970 00:00:00 GMT",
    "Mon, 29 Feb 2027 00:00:00 GMT",  # no such day: both refuse it
    "2026-12-03 15:12:00",  # no zone: botocore's reading decides
    "Wed, 03 Dec 2026 15:12:00 -0000",
    "1764774720",
    1764774720,
    1764774720.5,
]


@pytest.mark.parametrize("value", VALUES, ids=[repr(v) for v in VALUES])
def test_fast_timestamp_reads_every_form_as_botocore_does(value: object) -> None:
    try:
        expected = parse_timestamp(value)
    except ValueError:
        with pytest.raises(ValueError):
            fast_timestamp(value)
        return
    got = fast_timestamp(value)
    assert got == expected
    assert got.utcoffset() == expected.utcoffset()
    assert str(got) == str(expected)  # states hold str(LastModified): the same text either way
