"""Issue 20, row 8: a person's name (the ``by`` of every message) names one person however
it is spelled. ``fix-contact --by dana`` then the same change ``--by 'dana\\u200b'`` (or
with a Cyrillic a, U+0430) was accepted as the second ops person of a four-eyes change."""

from __future__ import annotations

import string
import unicodedata
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from offboarding.models.client_file import ClientFile
from offboarding.models.messages import Cancel, FixContact
from offboarding.models.stages import Stage
from offboarding.models.text import CONFUSABLES, person_key
from offboarding.workflows.rules import Rejected, apply, validate
from offboarding.workflows.state import OffboardingState
from tests.helpers import client_file

NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)

LOOKALIKES: list[Any] = [
    # (what was typed, why it is not a second person)
    ("dana\u200b", "zero width space (format character)"),
    ("\u200bdana", "zero width space in front"),
    ("da\u200dna", "zero width joiner"),
    ("da\u200cna", "zero width non-joiner"),
    ("dana\u2060", "word joiner"),
    ("\ufeffdana", "byte order mark"),
    ("da\u00adna", "soft hyphen"),
    ("dana\u034f", "combining grapheme joiner (default ignorable)"),
    ("dana\ufe0f", "variation selector"),
    ("dana\u3164", "Hangul filler: a letter that prints as nothing"),
    ("dana\u202e", "right-to-left override (bidi control)"),
    ("dana\u2066", "left-to-right isolate (bidi control)"),
    ("d\u0430na", "Cyrillic small a inside a Latin word"),
    ("\u0501ana", "Cyrillic komi de"),
    ("dan\u03b1", "Greek alpha"),
    ("\uff44\uff41\uff4e\uff41", "fullwidth Latin"),
    # Found by an attacker's pass: whole words in scripts whose letters read as Latin ones.
    ("\ua4d3\ua4ee\ua4e0\ua4ee", "Lisu letters reading DANA"),
    ("d\u1d00na", "Latin small capital A"),
    ("\u13a0\u13aa\u13a5", "Cherokee letters reading DAi"),
    ("\U0001d41d\U0001d41a\U0001d427\U0001d41a", "mathematical bold"),
    ("dana ", "trailing space"),
    (" dana", "leading space"),
    ("dana\u00a0", "no-break space"),
    ("DANA", "capitals"),
    ("\u0430\u0251na", "Cyrillic a next to a Latin alpha"),
    # Lookalikes within the Latin script: the same person by person_key.
    ("d\u0251na", "Latin alpha (same script)"),
    ("dan\u0251", "Latin alpha at the end"),
]


@pytest.fixture(scope="module")
def cf() -> ClientFile:
    return client_file(end_in_days=40)


def _proposed_by_dana(cf: ClientFile) -> OffboardingState:
    s = OffboardingState("offboarding-x", cf)
    s.status.stage = Stage.NOTICE_PERIOD
    first = FixContact(by="dana", role="billing", email="ap@new.example")
    validate(s, "fix-contact", first, "cli", NOW)
    assert "proposed" in apply(s, "fix-contact", first, "cli", NOW)
    return s


@pytest.mark.parametrize(("typed", "why"), LOOKALIKES)
def test_a_lookalike_of_dana_is_not_a_second_ops_person(cf: ClientFile, typed: str,
                                                        why: str) -> None:
    s = _proposed_by_dana(cf)
    try:
        second = FixContact(by=typed, role="billing", email="ap@new.example")
    except ValidationError as err:
        text = str(err)
        assert "by" in text and "expected" in text, text
        return
    assert person_key(second.by) == person_key("dana"), why
    with pytest.raises(Rejected, match="proposed this already"):
        validate(s, "fix-contact", second, "cli", NOW)


@pytest.mark.parametrize("typed", ["dana\u200b", "d\u0430na", "dana\u202e"])
def test_a_refused_name_names_the_field_the_character_and_what_is_expected(typed: str) -> None:
    with pytest.raises(ValidationError) as err:
        Cancel(by=typed, reason="x")
    text = str(err.value)
    assert "by" in text and "U+" in text and "expected" in text, text


@pytest.mark.parametrize("name", [
    "dana", "Dana Scully", "ops-lead", "finance.lead@example.com", "José Álvarez",
    "Zoë O'Brien", "Дана", "Δανάη", "山田花子", "やまだ はなこ", "김민준", "I\u015f\u0131k",
    "محمد", "דנה", "Nguyễn Văn An", "tom.becker@acme-analytics.example", "ops-2",
])
def test_genuine_names_in_any_one_script_are_accepted(name: str) -> None:
    assert Cancel(by=name, reason="x").by == unicodedata.normalize("NFKC", name)


def test_a_name_is_normalised_nfkc_with_its_spaces_collapsed() -> None:
    assert Cancel(by="  \uff44ana\u00a0  scully ", reason="x").by == "dana scully"


# ----- generated: every lookalike of an accepted name is refused or is the same person ----

LATIN_WORDS = st.text(alphabet=st.sampled_from(string.ascii_letters), min_size=1, max_size=12)
FORMAT_CHARS = [chr(c) for c in range(0x110000)
                if unicodedata.category(chr(c)) == "Cf"]
SPACES = [" ", "\u00a0", "\u2002", "\u2009", "\u3000", "  "]
HOMOGLYPHS = {latin: [k for k, v in CONFUSABLES.items() if v == latin]
              for latin in set(CONFUSABLES.values())}


@st.composite
def lookalike(draw: st.DrawFn) -> tuple[str, str]:
    """A Latin name and a spelling of it that reads the same."""
    words = draw(st.lists(LATIN_WORDS, min_size=1, max_size=3))
    name = " ".join(words)
    kind = draw(st.sampled_from(["format", "homoglyph", "width", "space", "case"]))
    chars = list(name)
    at = draw(st.integers(0, len(chars)))
    if kind == "format":
        chars.insert(at, draw(st.sampled_from(FORMAT_CHARS)))
    elif kind == "homoglyph":
        swappable = [i for i, c in enumerate(chars) if HOMOGLYPHS.get(c)]
        if swappable:
            i = draw(st.sampled_from(swappable))
            chars[i] = draw(st.sampled_from(HOMOGLYPHS[chars[i]]))
    elif kind == "width":
        chars = [chr(ord(c) + 0xFEE0) if c.isascii() and c.isalpha() and draw(st.booleans())
                 else c for c in chars]
    elif kind == "space":
        where = draw(st.sampled_from(["start", "end", "between"]))
        space = draw(st.sampled_from(SPACES))
        if where == "between":
            chars = list(space.join(words))
        else:
            chars = [space, *chars] if where == "start" else [*chars, space]
    else:
        chars = [c.swapcase() if draw(st.booleans()) else c for c in chars]
    return name, "".join(chars)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lookalike())
def test_generated_lookalikes_are_refused_or_the_same_person(pair: tuple[str, str]) -> None:
    name, typed = pair
    original = Cancel(by=name, reason="x").by
    try:
        spelled = Cancel(by=typed, reason="x").by
    except ValidationError as err:
        assert "expected" in str(err)
        return
    assert person_key(spelled) == person_key(original), (name, typed, spelled)


@settings(max_examples=400, deadline=None)
@given(st.text(min_size=1, max_size=40))
def test_any_accepted_name_is_normal_and_holds_no_format_character(text: str) -> None:
    try:
        by = Cancel(by=text, reason="x").by
    except ValidationError as err:
        assert "by" in str(err)
        return
    assert by == unicodedata.normalize("NFKC", by) == by.strip()
    assert not any(unicodedata.category(c).startswith("C") for c in by)
    assert Cancel(by=by, reason="x").by == by, "normalising twice changes nothing"
