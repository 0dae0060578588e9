"""What a line of text from a person may hold.

Python's e-mail and str.splitlines() treat far more than CR and LF as line breaks
(VT, FF, the file/group/record separators, NEL, U+2028, U+2029): a client name holding one
of them became a second header line in the notice. A line also refuses
the bidirectional controls, which make text read differently from what it holds.
"""

from __future__ import annotations

import re
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


# ----- a person's name ----------------------------------------------------------------
# ``fix-contact --by dana`` and then ``--by 'dana\u200b'`` (or with a Cyrillic a, U+0430) were two
# people to the four-eyes rule. A name is normalised (NFKC, spaces collapsed), refuses what
# prints as nothing and words that mix scripts or only look Latin (as Unicode's UTS #39
# "highly restrictive" profile does), and ``person_key`` folds what is left of lookalikes
# for comparing two names. Pure: it also runs in the workflow sandbox on deserialisation.

INVISIBLE = ((0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160),
             (0x17B4, 0x17B5), (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E),
             (0x2060, 0x206F), (0x2800, 0x2800), (0x3164, 0x3164), (0xFE00, 0xFE0F),
             (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3),
             (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF))
"""Unicode's Default_Ignorable_Code_Point ranges (fillers, joiners, variation selectors),
and the blank braille pattern: characters that print as nothing."""

CONFUSABLES: dict[str, str] = {
    **dict(zip("\u0430\u0435\u043e\u0440\u0441\u0443\u0445\u0455"  # Cyrillic
               "\u0456\u0458\u0501\u051b\u051d\u04bb\u04cf\u04af", "aeopcyxsijdqwhly",
               strict=True)),
    **dict(zip("\u0410\u0412\u0415\u041a\u041c\u041d\u041e\u0420\u0421\u0422"
               "\u0425\u0423\u0405\u0406\u0408\u04c0\u04ae\u051a\u051c",
               "ABEKMHOPCTXYSIJIYQW", strict=True)),
    **dict(zip("\u03b1\u03bf\u03bd\u03c1\u03c5\u03b9\u03c7\u03ba", "aovpuixk",  # Greek
               strict=True)),
    **dict(zip("\u0391\u0392\u0395\u0396\u0397\u0399\u039a\u039c\u039d\u039f"
               "\u03a1\u03a4\u03a5\u03a7", "ABEZHIKMNOPTYX", strict=True)),
    **dict(zip("\u0585\u0570\u057d\u0566\u0578\u0581", "ohuqng", strict=True)),  # Armenian
    **dict(zip("\u0251\u0131\u0269\u0237\u0261\u028f\u026a\ua7b5\u0185\u0275",
               "aiijgyibbo", strict=True)),  # Latin letters that read as ASCII ones
    **dict(zip("\u1d00\u0299\u1d04\u1d05\u1d07\u0262\u029c\u1d0a\u1d0b\u029f\u1d0d"
               "\u0274\u1d0f\u1d18\u0280\ua731\u1d1b\u1d1c\u1d20\u1d21\u1d22",
               "abcdeghjklmnoprstuvwz", strict=True)),  # Latin small capitals
    **dict(zip("\ua4d0\ua4d1\ua4d3\ua4d4\ua4d6\ua4d7\ua4d9\ua4da\ua4dc\ua4dd\ua4df"
               "\ua4e0\ua4e1\ua4e2\ua4e3\ua4e6\ua4e7\ua4ea\ua4eb\ua4ec\ua4ee\ua4f0"
               "\ua4f2\ua4f3\ua4f4", "BPDTGKJCZFMNLSRVHWXYAEIOU", strict=True)),  # Lisu
    **dict(zip("\u13aa\u13f4\u13df\u13a0\u13ac\u13c0\u13bb\u13ab\u13e6\u13de\u13b7"
               "\u13e2\u13da\u13a2\u13d9\u13b3\u13c3\u13a5", "ABCDEGHJKLMPSTVWZi",
               strict=True)),  # Cherokee
}
"""Letters that read as a Latin letter (after NFKC), from Unicode's confusables.txt."""
MAX_NAME = 200
_SAME_SCRIPT = frozenset({"CJK", "HIRAGANA", "KATAKANA", "HANGUL", "BOPOMOFO",
                          "IDEOGRAPHIC"})
"""Scripts one word may mix: a Japanese name is written in kanji and kana."""


def _invisible(char: str) -> bool:
    point = ord(char)
    return unicodedata.category(char).startswith("C") or any(
        low <= point <= high for low, high in INVISIBLE)


def _script(char: str) -> str | None:
    """The script of a letter or a non-ASCII digit, as the first word of its Unicode name;
    None for everything that belongs to no one script (marks, ASCII digits, symbols)."""
    category = unicodedata.category(char)
    if not (category.startswith("L") and category != "Lm") and \
            not (category == "Nd" and not char.isascii()):
        return None
    script = unicodedata.name(char, "UNNAMED").split(" ")[0].split("-")[0]
    return "CJK" if script in _SAME_SCRIPT else script


def _described(char: str, position: int) -> str:
    return f"U+{ord(char):04X} ({unicodedata.name(char, 'unnamed')}) at position {position}"


def _at(char: str, value: str, name: str) -> int:
    """Where ``char`` is in what was typed (or, if normalising made it, in the name)."""
    where = value.find(char)
    return where if where >= 0 else name.find(char)


def person_name(value: str) -> str:
    """A pydantic validator for who acts: NFKC, spaces collapsed, one script per word."""
    printable_line(value)
    for position, char in enumerate(value):
        if _invisible(char):
            raise ValueError(f"contains the invisible character {_described(char, position)}; "
                             "expected a person's name in characters that print")
    name = unicodedata.normalize("NFKC", " ".join(unicodedata.normalize("NFKC", value).split()))
    if not name:
        raise ValueError("is blank; expected a person's name")
    if len(name) > MAX_NAME:
        raise ValueError(f"is {len(name)} characters once normalised (NFKC); expected at "
                         f"most {MAX_NAME}")
    for word in re.findall(r"[^\W_]+", name):  # letters, digits and marks
        scripts: dict[str, str] = {}
        for char in word:
            script = _script(char)
            if script is not None:
                scripts.setdefault(script, char)
        if len(scripts) > 1:
            (first, a), (second, b) = list(scripts.items())[:2]
            raise ValueError(
                f"the word {word!r} mixes {first.title()} and {second.title()} letters "
                f"({_described(a, _at(a, value, name))}, {_described(b, _at(b, value, name))}); "
                "expected each word of a name in one script")
        letters = [c for c in word if _script(c) is not None]
        if letters and "LATIN" not in scripts and all(c in CONFUSABLES for c in letters):
            latin = "".join(CONFUSABLES.get(c, c) for c in word)
            raise ValueError(
                f"the word {word!r} is written in {next(iter(scripts)).title()} letters that "
                f"read as the Latin {latin!r}; expected a name in the letters it reads as")
    return name


_ASCII_LOOKALIKES = str.maketrans({"i": "l", "1": "l", "|": "l", "0": "o"})


def person_key(name: str) -> str:
    """What two names are compared by: one person however their name is spelled. Case,
    accents, width and lookalike letters are folded (``Dana``, ``dána``, a fullwidth
    ``dana``, one with a Latin alpha U+0251 and ``dana`` are one key); use it wherever two
    ``by`` are compared."""
    folded = []
    for char in unicodedata.normalize("NFKD", name):
        category = unicodedata.category(char)
        if category == "Mn" or _invisible(char):
            continue
        folded.append(str(unicodedata.digit(char)) if category == "Nd"
                      else CONFUSABLES.get(char, char))
    key = " ".join("".join(folded).casefold().split())
    return key.replace("rn", "m").replace("vv", "w").translate(_ASCII_LOOKALIKES)


def safe_segment(text: str) -> str:
    """``text`` as one safe path segment: a data set's folder in the export's zip, a
    client or workflow id in a store key (activities/stores.py's ``safe_key``)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text).strip(".") or "_"
