"""Numbers as models and datasets write them, compared leniently (answers, graders, voting, verifiers)."""

from __future__ import annotations

import math
import re

LATEX_FRACTION = re.compile(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}")


def parse_number(text: str | int | float | None) -> float | None:
    """`text` as a float, or None when it is not a number.

    Accepts thousands separators, a leading `$`/`€`/`£`, a trailing `%` (dropped: `"50%"` is
    50), fractions such as `3/4`, LaTeX `\\frac{3}{4}`, negatives (`-5`, `-$5`) and a trailing
    period. Surrounding text is not accepted: use `hone.envs.extract_final_answer` first.
    """
    if text is None or isinstance(text, bool):
        return None
    if isinstance(text, int | float):
        return float(text)
    cleaned = LATEX_FRACTION.sub(r"\1/\2", text).strip().rstrip(".").strip()
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
