"""Agent-controlled text, made safe to show a human. A leaf module: stdlib only.

Everything an agent controls (its reason, resource names, object bodies in a text diff, command
output, container names) reaches the approver's terminal and the agent's own plan text. A raw
escape sequence in that text could move the cursor and erase a line of the diff; a carriage
return could overwrite a line; a right-to-left override could reorder a name; a zero-width space
or a Cyrillic letter could make two different buckets look alike. So:

- ``visible(text)`` renders one string on one line with every character that a terminal would
  act on, or that renders as nothing, written as a Python-style escape: ``\\x1b``, ``\\r``,
  ``\\n``, ``\\t``, ``\\x7f``, ``\\x9b``, ``\\u202e``, ``\\U000e0041``.
- ``visible_lines(text)`` splits on ``"\\n"`` only (never ``str.splitlines``, which also splits
  on ``\\r``, ``\\x0b``, ``\\x0c``, ``\\x1c``-``\\x1e``, ``\\x85``, U+2028 and U+2029, so those
  would silently vanish) and renders each line with ``visible``.
- ``visible_json(value)`` is JSON (sort_keys, UTF-8 kept) in which the same characters are
  ``\\uXXXX`` escapes, so it stays valid JSON and shows everything.
- ``suspicious(name)`` says in one sentence why a resource name could mislead (an invisible,
  control or format character, a space that is not U+0020, or letters of more than one script).

Backslashes: a literal backslash is shown doubled (``\\\\``), as a Python string literal would
show it. On the screen ``\\x1b`` therefore always means the ESC character itself, and an agent
that writes the four characters ``\\x1b`` is shown ``\\\\x1b``: it cannot fake an escape, and an
escape cannot be mistaken for text. ``visible_json`` needs no such rule: JSON already writes a
backslash as ``\\\\``.

What is escaped (``needs_escape``): the categories Cc (C0, DEL, C1 controls), Cf (format: zero-width
space and joiners, bidi embeddings, overrides, isolates and marks, U+2060-U+2064, U+FEFF, soft
hyphen, tag characters, ...), Zl and Zp (U+2028, U+2029), Cs (lone surrogates), Co (private use)
and Cn (unassigned), plus the other Default_Ignorable_Code_Point characters that render as
nothing though they are not Cf (U+034F, the Hangul fillers, Mongolian variation selectors,
variation selectors U+FE00-U+FE0F and U+E0100-U+E01EF, which can smuggle hidden bytes).
"""

from __future__ import annotations

import json
import unicodedata
from typing import Any

_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})

# Default_Ignorable_Code_Point characters outside the categories above (DerivedCoreProperties.txt).
_IGNORABLE_RANGES = (
    (0x034F, 0x034F),  # COMBINING GRAPHEME JOINER
    (0x115F, 0x1160),  # HANGUL CHOSEONG / JUNGSEONG FILLER
    (0x17B4, 0x17B5),  # KHMER VOWEL INHERENT AQ / AA
    (0x180B, 0x180F),  # MONGOLIAN FREE VARIATION SELECTORS (U+180E is Cf)
    (0x3164, 0x3164),  # HANGUL FILLER
    (0xFE00, 0xFE0F),  # VARIATION SELECTORS
    (0xFFA0, 0xFFA0),  # HALFWIDTH HANGUL FILLER
    (0x1D173, 0x1D17A),  # MUSICAL SYMBOL BEGIN BEAM ... (format-like)
    (0xE0000, 0xE0FFF),  # tags and VARIATION SELECTOR-17..256
)

_NAMED = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}

# unicodedata.name() has no names for control characters; these are their Unicode aliases.
_CONTROL_NAMES = {
    0x00: "NULL",
    0x07: "BELL",
    0x08: "BACKSPACE",
    0x09: "CHARACTER TABULATION",
    0x0A: "LINE FEED",
    0x0B: "LINE TABULATION",
    0x0C: "FORM FEED",
    0x0D: "CARRIAGE RETURN",
    0x1B: "ESCAPE",
    0x7F: "DELETE",
    0x85: "NEXT LINE",
    0x9B: "CONTROL SEQUENCE INTRODUCER",
}

# Bidi classes of the embeddings, overrides, isolates and marks (U+202A-U+202E, U+2066-U+2069, ...).
_BIDI_CONTROLS = frozenset({"LRE", "RLE", "LRO", "RLO", "PDF", "LRI", "RLI", "FSI", "PDI"})
_BIDI_MARKS = frozenset({"\u200e", "\u200f", "\u061c"})

# Cyrillic and Greek letters that look like Latin ones.
_LATIN_LOOKALIKES = frozenset(
    "аеорсухѕіјԁһԛԝӏАВЕКМНОРСТХЅІЈҮԚԜ"  # Cyrillic
    "οινΑΒΕΖΗΙΚΜΝΟΡΤΥΧ"  # Greek
)

# Scripts that legitimately appear together in one name (UTS #39 "highly restrictive").
_ALLOWED_SCRIPT_MIXES = (
    frozenset({"LATIN", "HAN", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "HAN", "BOPOMOFO"}),
    frozenset({"LATIN", "HAN", "HANGUL"}),
)


def needs_escape(ch: str) -> bool:
    """True for a character a terminal acts on or that renders as nothing (see the module docstring)."""
    if unicodedata.category(ch) in _ESCAPED_CATEGORIES:
        return True
    cp = ord(ch)
    return any(lo <= cp <= hi for lo, hi in _IGNORABLE_RANGES)


def _escape(ch: str) -> str:
    cp = ord(ch)
    if cp < 0x100:
        return f"\\x{cp:02x}"
    if cp < 0x10000:
        return f"\\u{cp:04x}"
    return f"\\U{cp:08x}"


def visible(text: str) -> str:
    """``text`` on one line, every control, format or invisible character and every backslash escaped."""
    if text.isascii() and text.isprintable() and "\\" not in text:
        return text  # printable ASCII (U+0020-U+007E) but the backslash: nothing to escape
    out = []
    for ch in text:
        named = _NAMED.get(ch)
        if named is not None:
            out.append(named)
        elif needs_escape(ch):
            out.append(_escape(ch))
        else:
            out.append(ch)
    return "".join(out)


def visible_lines(text: str) -> list[str]:
    """Lines of ``text`` split on ``"\\n"`` only, each through ``visible``.

    A final ``"\\n"`` ends the last line rather than starting an empty one; ``""`` has no lines.
    """
    if not text:
        return []
    parts = text.split("\n")
    if parts[-1] == "":
        parts.pop()
    return [visible(p) for p in parts]


def visible_json(value: Any, indent: int | None = None) -> str:
    """JSON of ``value`` (sorted keys, UTF-8 kept) with every character ``visible`` would escape as ``\\uXXXX``.

    With ``indent``, the only raw newlines are the layout's. Still valid JSON: those characters
    can only occur inside strings, where ``\\uXXXX`` is their
    JSON escape (a character beyond U+FFFF becomes its surrogate pair, as JSON requires).
    """
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str, indent=indent)
    if not any(needs_escape(ch) and ch != "\n" for ch in text):
        return text
    out = []
    for ch in text:
        if needs_escape(ch) and ch != "\n":  # a raw newline is indentation: JSON strings escape theirs
            out.append(json.dumps(ch, ensure_ascii=True)[1:-1])
        else:
            out.append(ch)
    return "".join(out)


def char_name(ch: str) -> str:
    """``U+202E RIGHT-TO-LEFT OVERRIDE``: the code point and its name (or alias, for controls)."""
    cp = ord(ch)
    name = unicodedata.name(ch, "") or _CONTROL_NAMES.get(cp, "")
    if not name:
        category = unicodedata.category(ch)
        name = {
            "Cc": "a control character",
            "Cs": "a lone surrogate",
            "Co": "a private-use character",
            "Cn": "an unassigned code point",
        }.get(category, "")
    return f"U+{cp:04X} {name}".rstrip()


def _script(ch: str) -> str | None:
    """The script of a letter, from the first word of its Unicode name; None for non-letters."""
    if not unicodedata.category(ch).startswith("L"):
        return None
    word = unicodedata.name(ch, "").split(" ", 1)[0]
    if word in ("CJK", "IDEOGRAPHIC"):
        return "HAN"
    if word == "KATAKANA-HIRAGANA":
        return "KATAKANA"
    return word or None


def _words(name: str) -> list[tuple[int, str]]:
    """(position, word) for each maximal run of letters and combining marks."""
    out: list[tuple[int, str]] = []
    start = -1
    for i, ch in enumerate(name + " "):
        if unicodedata.category(ch)[0] in "LM" and i < len(name):
            if start < 0:
                start = i
        elif start >= 0:
            out.append((start, name[start:i]))
            start = -1
    return out


def suspicious(name: str) -> str | None:
    """One sentence saying why ``name`` (a resource name or address) could mislead a human, else None.

    Flags, in this order:

    - a control, format or invisible character (one that ``visible`` escapes), or a space other
      than U+0020;
    - a word (a run of letters) that mixes scripts, such as Latin with Cyrillic, Greek, fullwidth
      or mathematical letters ("cost-rеports" with a Cyrillic е); Latin with Han, Kana, Bopomofo
      or Hangul is allowed, as real names mix those;
    - a fullwidth or mathematical letter (a styled copy of a Latin one: "ｐｒｏｄ", "𝐩𝐫𝐨𝐝");
    - a word written only in Cyrillic or Greek letters that look like Latin ones, in a name that
      also has Latin words ("сое-reports").

    Scripts are judged per word, not per name, so an address with a Latin scheme and a Cyrillic
    key ("aws:s3:::docs/Отчёт.pdf") is not flagged. Digits, punctuation and combining accents
    belong to no script ("café" is Latin only).
    """
    if name.isascii() and name.isprintable():
        return None  # printable ASCII: one script, no invisible or look-alike characters
    for i, ch in enumerate(name):
        if needs_escape(ch):
            if unicodedata.category(ch) == "Cc":
                kind = "a control character"
            elif unicodedata.bidirectional(ch) in _BIDI_CONTROLS or ch in _BIDI_MARKS:
                kind = "a bidirectional-text control that can reorder what is shown"
            else:
                kind = "an invisible character"
            return f"contains {char_name(ch)} ({kind}) at position {i}"
        if ch != " " and unicodedata.category(ch) == "Zs":
            return f"contains {char_name(ch)} (a space that is not an ordinary space) at position {i}"
    words = _words(name)
    for start, word in words:
        scripts = [_script(ch) for ch in word]
        found = {s for s in scripts if s}
        if len(found) < 2 or any(found <= allowed for allowed in _ALLOWED_SCRIPT_MIXES):
            continue
        ordered = sorted(found, key=scripts.index)
        main = max(ordered, key=scripts.count)
        odd = next(s for s in ordered if s != main)
        pos = scripts.index(odd)
        listed = " and ".join(s.title() for s in ordered)
        return f"mixes {listed} letters in '{word}' ({char_name(word[pos])} at position {start + pos})"
    for i, ch in enumerate(name):
        if _script(ch) in ("FULLWIDTH", "MATHEMATICAL"):
            return f"contains {char_name(ch)} (a lookalike of a Latin letter) at position {i}"
    if any(_script(ch) == "LATIN" for ch in name):
        for start, word in words:
            letters = [ch for ch in word if _script(ch)]
            if letters and all(ch in _LATIN_LOOKALIKES for ch in letters):
                script = (_script(letters[0]) or "").title()
                return (
                    f"'{word}' is written in {script} letters that look like Latin ones "
                    f"({char_name(word[0])} at position {start}) among Latin words"
                )
    return None
