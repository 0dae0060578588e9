"""What a line of text from a person may hold.

Python's e-mail and str.splitlines() treat far more than CR and LF as line breaks
(VT, FF, the file/group/record separators, NEL, U+2028, U+2029): a client name holding one
of them became a second header line in the notice (issue 10, row 7). A line also refuses
the bidirectional controls, which make text read differently from what it holds.
"""

from __future__ import annotations

import unicodedata

BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
                          "\u2066\u2067\u2068\u2069")


def unprintable(value: str, *, allow: str = "") -> str | None:
    """Why ``value`` is not printable text, or None: names the first offending character."""
    for position, char in enumerate(value):
        if char in allow:
            continue
        category = unicodedata.category(char)
        kind = ("control character" if category == "Cc"
                else "line separator" if category in ("Zl", "Zp")
                else "bidirectional control" if char in BIDI_CONTROLS else None)
        if kind:
            return f"contains the {kind} U+{ord(char):04X} at position {position}"
    return None


def printable_line(value: str) -> str:
    """A pydantic validator: one line of printable text (it may end up in a mail header)."""
    why = unprintable(value)
    if why:
        raise ValueError(f"{why}; expected one line of printable text "
                         "(it may end up in a mail header)")
    return value


def printable_text(value: str) -> str:
    """Several lines are fine in a body; other control characters are not."""
    why = unprintable(value, allow="\r\n\t")
    if why:
        raise ValueError(f"{why}; expected printable text")
    return value
