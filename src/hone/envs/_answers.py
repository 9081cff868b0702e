"""Finding the final answer in a model's text (numbers are compared by `hone.core.numbers_match`)."""

from __future__ import annotations

import re

from hone.core._numbers import LATEX_FRACTION

# A number as people write it: optional sign and currency, thousands separators, decimals,
# an optional fraction part (`3/4`) and percent sign. A minus counts as a sign only when it
# does not follow a word character or `)`, so `16-3` yields 16 and 3, not 16 and -3.
_NUMBER = re.compile(
    r"(?<![\w.)])(?:[-\u2212]\s?)?[$€£]?\s?"
    r"(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?<=\d)"
    r"(?:\s?/\s?\d+(?:\.\d+)?)?%?"
)
_ANSWER_IS = re.compile(r"(?:final\s+answer|answer)\s*(?:is|:|=)\s*:?", re.IGNORECASE)
_HASHES = re.compile(r"####\s*([^\n]*)")
_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")


def extract_final_answer(text: str | None) -> str | None:
    """The final answer in `text`, or None.

    Looks, in order, for the last `\\boxed{...}` (nested braces allowed), the last `#### ...`
    line, the last "the answer is ..." / "answer: ..." (case-insensitive), and finally the
    last number in the text. When the part found holds a number, the number is returned
    normalised (no `$`, commas or spaces: `"$1,234.50"` -> `"1234.50"`); otherwise the part's
    text.
    """
    if not text:
        return None
    boxed = _last_boxed(text)
    if boxed is not None:
        return _finalize(boxed)
    hashes = _HASHES.findall(text)
    if hashes and hashes[-1].strip():
        return _finalize(hashes[-1])
    matches = list(_ANSWER_IS.finditer(text))
    if matches:
        rest = text[matches[-1].end() :]
        line = rest.strip().split("\n", 1)[0]
        found = _finalize(line)
        if found is not None:
            return found
    numbers = [m.group(0) for m in _NUMBER.finditer(text)]
    return _normalize(numbers[-1]) if numbers else None


def _last_boxed(text: str) -> str | None:
    starts = [m.end() for m in _BOXED.finditer(text)]
    for start in reversed(starts):
        depth, i = 1, start
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth == 0:
            return text[start : i - 1]
    return None


def _finalize(part: str) -> str | None:
    cleaned = LATEX_FRACTION.sub(r"\1/\2", part).replace("\\$", "$").replace("\\%", "%").replace("\\!", "")
    match = _NUMBER.search(cleaned)
    if match:
        return _normalize(match.group(0))
    cleaned = cleaned.strip().rstrip(".").strip().strip("*").strip().rstrip(".").strip()  # "**blue**." is blue
    return cleaned or None


def _normalize(number: str) -> str:
    return re.sub(r"[\s,$€£]", "", number).replace("\u2212", "-")
