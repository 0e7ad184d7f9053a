"""Text from outside (display names, keys, Graph error messages, ticket fields) inside markdown reports.

Reports are read rendered (a pull request, a wiki, a mail): a guest's display name must stay text there, not
become a link, an image, a heading, a table column or raw HTML.
"""

from __future__ import annotations

import re

_BREAKS = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]+")
# Brackets escaped, so "(" and "!" cannot make a link or an image; "#", "-", "+", "=" and "1." only at the start.
_INLINE = re.compile(r"([\\`*_\[\]|~<>])")
_LINE_START = re.compile(r"^(\s*)([-+=#]|\d+[.)])")


def md(value: object) -> str:
    """``value`` as literal markdown text on one line: ``&`` as an entity (no entity or HTML injection),
    markdown punctuation backslash-escaped, line breaks and control characters as one space."""
    text = _BREAKS.sub(" ", str(value)).replace("&", "&amp;")
    text = _INLINE.sub(r"\\\1", text)
    return _LINE_START.sub(lambda m: f"{m.group(1)}\\{m.group(2)}", text)
