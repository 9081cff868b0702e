"""Finding the final answer in a model's text and comparing numbers leniently."""

from __future__ import annotations

import math
import re

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
_FRAC = re.compile(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}")


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


def parse_number(text: str | int | float | None) -> float | None:
    """`text` as a float, or None when it is not a number.

    Accepts thousands separators, a leading `$`/`€`/`£`, a trailing `%` (dropped: `"50%"` is
    50), fractions such as `3/4`, LaTeX `\\frac{3}{4}`, negatives (`-5`, `-$5`) and a trailing
    period. Surrounding text is not accepted: use `extract_final_answer` first.
    """
    if text is None or isinstance(text, bool):
        return None
    if isinstance(text, int | float):
        return float(text)
    cleaned = _FRAC.sub(r"\1/\2", text).strip().rstrip(".").strip()
    cleaned = cleaned.replace("\u2212", "-").replace("$", "").replace("€", "").replace("£", "")
    cleaned = cleaned.replace(",", "").replace(" ", "").removesuffix("%")
    if not cleaned:
        return None
    numerator, slash, denominator = cleaned.partition("/")
    try:
        value = float(numerator)
        if slash:
            divisor = float(denominator)
            if divisor == 0:
                return None
            value /= divisor
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def numbers_match(
    a: str | int | float | None, b: str | int | float | None, rel_tol: float = 1e-6, abs_tol: float = 1e-6
) -> bool:
    """Whether `a` and `b` are the same number within tolerance; False when either is not a number."""
    x, y = parse_number(a), parse_number(b)
    if x is None or y is None:
        return False
    return math.isclose(x, y, rel_tol=rel_tol, abs_tol=abs_tol)


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
    cleaned = _FRAC.sub(r"\1/\2", part).replace("\\$", "$").replace("\\%", "%").replace("\\!", "")
    match = _NUMBER.search(cleaned)
    if match:
        return _normalize(match.group(0))
    cleaned = cleaned.strip().strip("*").strip().rstrip(".").strip()
    return cleaned or None


def _normalize(number: str) -> str:
    return re.sub(r"[\s,$€£]", "", number).replace("\u2212", "-")
