"""Table key encoding: reversible, free of the characters Table keys forbid, bounded in length."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.table_keys import MAX_ENCODED_LENGTH, bucket_of, decode_key, encode_key, is_hashed

FORBIDDEN = re.compile(r"[/\\#?\x00-\x1f\x7f-\x9f]")


@given(st.text(min_size=1, max_size=120))
def test_any_key_round_trips_and_is_table_safe(key: str) -> None:
    """Every short key encodes to a string with no forbidden character and decodes back to itself."""
    encoded = encode_key(key)
    assert not FORBIDDEN.search(encoded)
    assert decode_key(encoded) == key


@given(st.text(min_size=1, max_size=60), st.text(min_size=1, max_size=60))
def test_distinct_keys_stay_distinct(first: str, second: str) -> None:
    """Two different keys never encode to the same row key."""
    if first != second:
        assert encode_key(first) != encode_key(second)


def test_guest_upn_is_readable_after_encoding() -> None:
    """A #EXT# UPN stays recognisable: only the forbidden characters are escaped."""
    assert encode_key("jane_contoso.com#EXT#@t.onmicrosoft.com") == "jane_contoso.com~23EXT~23@t.onmicrosoft.com"


@given(st.text(alphabet="/#?~ab", min_size=MAX_ENCODED_LENGTH, max_size=3 * MAX_ENCODED_LENGTH))
def test_long_keys_are_bounded_and_hashed(key: str) -> None:
    """A key too long for a row key becomes a bounded, safe, hashed form that is never a plain encoding."""
    encoded = encode_key(key)
    assert len(encoded) <= MAX_ENCODED_LENGTH and not FORBIDDEN.search(encoded)
    assert is_hashed(encoded)
    assert not re.search(r"~(?![0-9A-F]{2}|~)", encoded.split("~~")[0]), "an escape was cut in half"


def test_empty_key_is_refused() -> None:
    """An empty key is a bug upstream, never a row."""
    with pytest.raises(ValueError):
        encode_key("")


def test_bucket_is_stable_and_two_digits() -> None:
    """The partition bucket depends only on the key."""
    assert bucket_of("k") == bucket_of("k") and re.fullmatch(r"\d\d", bucket_of("k"))
