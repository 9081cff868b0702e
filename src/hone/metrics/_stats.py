"""Small, dependency-free statistics: confidence intervals, pass@k and harmony."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from statistics import NormalDist


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval for a proportion `successes / n`.

    Unlike the normal (Wald) interval it stays inside [0, 1] and does not collapse to a
    point at 0 or n successes: 0 of 10 gives about (0, 0.28), not (0, 0).
    """
    _check_confidence(confidence)
    if n <= 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n > 0, got successes={successes}, n={n}")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / n
    z2n = z * z / n
    centre = (p + z2n / 2) / (1 + z2n)
    half = z * math.sqrt(p * (1 - p) / n + z2n / (4 * n)) / (1 + z2n)
    # Clamp: at p = 0 or 1 the bound is exact in theory but can be off by one ulp.
    lo = 0.0 if successes == 0 else max(0.0, centre - half)
    hi = 1.0 if successes == n else min(1.0, centre + half)
    return lo, hi


def _t_two_sided(t: float, df: int) -> float:
    """P(|T| <= t) for Student's t with integer `df` (Abramowitz & Stegun 26.7.3-4, exact)."""
    theta = math.atan(t / math.sqrt(df))
    cos2 = math.cos(theta) ** 2
    term = total = 1.0
    if df % 2:  # odd: 2/pi * (theta + sin cos (1 + 2/3 cos^2 + 2*4/(3*5) cos^4 + ...))
        for j in range(1, (df - 1) // 2):
            term *= 2 * j / (2 * j + 1) * cos2
            total += term
        series = 0.0 if df == 1 else math.sin(theta) * math.cos(theta) * total
        return 2 / math.pi * (theta + series)
    for j in range(1, df // 2):  # even: sin (1 + 1/2 cos^2 + 1*3/(2*4) cos^4 + ...)
        term *= (2 * j - 1) / (2 * j) * cos2
        total += term
    return math.sin(theta) * total


def t_quantile(confidence: float, df: int) -> float:
    """The two-sided Student-t critical value: P(|T| <= t) = confidence for `df` degrees of freedom.

    Exact series inverted by bisection up to 200 degrees of freedom; above that the
    Cornish-Fisher expansion (A&S 26.7.5), whose error there is below 1e-9.
    """
    _check_confidence(confidence)
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    if df > 200:
        z = NormalDist().inv_cdf(0.5 + confidence / 2)
        z3, z5, z7, z9 = z**3, z**5, z**7, z**9
        g1 = (z3 + z) / 4
        g2 = (5 * z5 + 16 * z3 + 3 * z) / 96
        g3 = (3 * z7 + 19 * z5 + 17 * z3 - 15 * z) / 384
        g4 = (79 * z9 + 776 * z7 + 1482 * z5 - 1920 * z3 - 945 * z) / 92160
        return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4
    lo, hi = 0.0, 1.0
    while _t_two_sided(hi, df) < confidence:
        lo, hi = hi, hi * 2
    for _ in range(100):
        mid = (lo + hi) / 2
        if _t_two_sided(mid, df) < confidence:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-13 * hi:
            break
    return (lo + hi) / 2


def mean_ci(values: Iterable[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """(mean, lo, hi): the mean and a `confidence` interval for it.

    When every value is 0 or 1 (pass/fail), the interval is the Wilson score interval for
    the proportion, which behaves at 0% and 100%. Otherwise it is the Student-t interval
    `mean ± t * s / sqrt(n)` with the sample standard deviation `s`. A single non-binary
    value has no spread to estimate, so its interval collapses to the value. Raises
    ValueError on no values.
    """
    _check_confidence(confidence)
    xs = [float(v) for v in values]
    n = len(xs)
    if n == 0:
        raise ValueError("mean_ci needs at least one value")
    mean = math.fsum(xs) / n
    if all(x in (0.0, 1.0) for x in xs):
        lo, hi = wilson_interval(round(math.fsum(xs)), n, confidence)
        return mean, lo, hi
    if n == 1:
        return mean, mean, mean
    sd = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1))
    half = t_quantile(confidence, n - 1) * sd / math.sqrt(n)
    return mean, mean - half, mean + half


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased pass@k estimator (Chen et al. 2021, "Evaluating Large Language Models
    Trained on Code"): `1 - C(n-c, k) / C(n, k)` for `n` samples of which `c` passed.

    Computed as `1 - prod_{i=n-c+1..n} (1 - k/i)`, which never forms huge binomials.
    Needs 0 <= c <= n and 1 <= k <= n.
    """
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


def harmony(subset_scores: Mapping[str, float]) -> float:
    """How evenly success spreads across subsets, in [0, 1]; 1 is perfectly even.

    Uzunoglu, Li & Khashabi, "The Flaw of Averages: Quantifying Uniformity of Performance
    on Benchmarks" (2025) define HARMONY as the normalised entropy of a model's performance
    distribution over a benchmark's subdomains. This is that core definition: with shares
    `p_i = s_i / sum(s)`, harmony is `-sum(p_i log p_i) / log(m)` over the `m` subsets.
    (Secondary summaries of the paper mention a Gaussian-kernel tempering of the scores
    first; its exact form was not available, so it is not applied here.)

    It is scale-free: (0.2, 0.2) and (0.9, 0.9) are both 1.0, so report it beside accuracy.
    One subset gives 1.0, and so do all-zero scores (evenly nothing). Scores must be >= 0.
    """
    scores = [float(s) for s in subset_scores.values()]
    if not scores:
        raise ValueError("harmony needs at least one subset score")
    if any(s < 0 or math.isnan(s) for s in scores):
        raise ValueError(f"harmony needs non-negative scores, got {subset_scores}")
    total = math.fsum(scores)
    if len(scores) == 1 or total == 0.0:
        return 1.0
    entropy = -math.fsum(s / total * math.log(s / total) for s in scores if s > 0)
    return min(1.0, entropy / math.log(len(scores)))
