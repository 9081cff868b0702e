"""Confidence intervals, pass@k and harmony against brute force, tables and simulation."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest

from hone.metrics import harmony, mean_ci, pass_at_k, t_quantile, wilson_interval


def _brute_pass_at_k(n: int, c: int, k: int) -> float:
    """Share of all k-subsets of n samples (the first c correct) that hold a correct one."""
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(i < c for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n", range(1, 8))
def test_pass_at_k_matches_enumeration(n: int) -> None:
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(_brute_pass_at_k(n, c, k), abs=1e-12), (n, c, k)


def test_pass_at_k_large_n_is_stable() -> None:
    n, c, k = 1000, 7, 100
    exact = 1 - Fraction(math.comb(n - c, k), math.comb(n, k))
    assert pass_at_k(n, c, k) == pytest.approx(float(exact), rel=1e-12)
    assert pass_at_k(200, 0, 50) == 0.0
    assert pass_at_k(10, 1, 1) == pytest.approx(0.1)


@pytest.mark.parametrize(("n", "c", "k"), [(3, 4, 1), (3, -1, 1), (3, 1, 0), (3, 1, 4)])
def test_pass_at_k_rejects_impossible_arguments(n: int, c: int, k: int) -> None:
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


@pytest.mark.parametrize(
    ("df", "expected"),  # two-sided 95% critical values of Student's t (standard tables)
    [(1, 12.706204736), (2, 4.302652730), (4, 2.776445105), (10, 2.228138852), (30, 2.042272456), (1000, 1.962339081)],
)
def test_t_quantile_table(df: int, expected: float) -> None:
    assert t_quantile(0.95, df) == pytest.approx(expected, rel=1e-8)


def test_t_quantile_other_levels_and_the_switch_at_200() -> None:
    assert t_quantile(0.99, 5) == pytest.approx(4.032142984, rel=1e-8)
    assert t_quantile(0.90, 20) == pytest.approx(1.724718243, rel=1e-8)
    # The exact series (df <= 200) and the expansion (df > 200) agree where they meet.
    assert t_quantile(0.99, 200) == pytest.approx(t_quantile(0.99, 201), rel=1e-4)
    assert t_quantile(0.99, 200) > t_quantile(0.99, 201)


def test_mean_ci_t_interval() -> None:
    mean, lo, hi = mean_ci([1.0, 2.0, 3.0, 4.0, 5.0])
    half = 2.776445105 * math.sqrt(2.5) / math.sqrt(5)
    assert mean == 3.0
    assert (lo, hi) == pytest.approx((3.0 - half, 3.0 + half), rel=1e-9)
    _, lo99, hi99 = mean_ci([1.0, 2.0, 3.0, 4.0, 5.0], confidence=0.99)
    assert lo99 < lo and hi99 > hi


def test_mean_ci_degenerate_cases() -> None:
    assert mean_ci([0.5, 0.5, 0.5]) == (0.5, 0.5, 0.5)
    assert mean_ci([0.7]) == (0.7, 0.7, 0.7)
    with pytest.raises(ValueError):
        mean_ci([])
    with pytest.raises(ValueError):
        mean_ci([1.0, 2.0], confidence=1.0)


def test_wilson_at_zero_and_one() -> None:
    mean, lo, hi = mean_ci([0] * 10)
    assert (mean, lo) == (0.0, 0.0)
    assert hi == pytest.approx(0.2775328, abs=1e-6)  # z^2 / (n + z^2) at n = 10
    mean, lo, hi = mean_ci([1] * 10)
    assert (mean, hi) == (1.0, 1.0)
    assert lo == pytest.approx(1 - 0.2775328, abs=1e-6)
    assert mean_ci([1, 0, 1, 1]) == (0.75, *wilson_interval(3, 4))
    lo, hi = wilson_interval(5, 10)
    assert (lo, hi) == pytest.approx((0.2365931, 0.7634069), abs=1e-6)


def test_intervals_cover_about_95_percent() -> None:
    rng = np.random.default_rng(7)
    p, n, reps = 0.2, 40, 2000
    hits = 0
    for _ in range(reps):
        _, lo, hi = mean_ci(rng.binomial(1, p, size=n).tolist())
        hits += lo <= p <= hi
    assert 0.93 <= hits / reps <= 0.975
    hits = 0
    for _ in range(reps):
        _, lo, hi = mean_ci(rng.normal(0.3, 1.0, size=8).tolist())
        hits += lo <= 0.3 <= hi
    assert 0.935 <= hits / reps <= 0.965  # t, not z: with n = 8 a z interval covers only ~91%


def test_harmony() -> None:
    assert harmony({"a": 0.6, "b": 0.6, "c": 0.6}) == pytest.approx(1.0)
    assert harmony({"a": 0.9, "b": 0.9}) == harmony({"a": 0.1, "b": 0.1})  # scale-free
    skewed = harmony({"a": 0.9, "b": 0.3, "c": 0.1})
    assert 0.0 < skewed < harmony({"a": 0.5, "b": 0.4, "c": 0.4}) < 1.0
    shares = [0.9 / 1.3, 0.3 / 1.3, 0.1 / 1.3]
    assert skewed == pytest.approx(-sum(p * math.log(p) for p in shares) / math.log(3))
    assert harmony({"a": 1.0, "b": 0.0, "c": 0.0}) == 0.0
    assert harmony({"only": 0.3}) == 1.0
    assert harmony({"a": 0.0, "b": 0.0}) == 1.0
    with pytest.raises(ValueError):
        harmony({})
    with pytest.raises(ValueError):
        harmony({"a": -0.1, "b": 0.5})


@pytest.mark.parametrize("df", [201, 230, 400, 1000])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_the_large_df_expansion_inverts_the_exact_distribution(df: int, confidence: float) -> None:
    """Above 200 degrees of freedom t_quantile switches to Cornish-Fisher; every term of it matters to 1e-10."""
    from hone.metrics._stats import _t_two_sided

    assert _t_two_sided(t_quantile(confidence, df), df) == pytest.approx(confidence, abs=1e-10)


def test_interval_edges_and_bad_input() -> None:
    assert wilson_interval(5, 5)[1] == 1.0 and wilson_interval(0, 5)[0] == 0.0
    with pytest.raises(ValueError, match="confidence must be in"):
        wilson_interval(1, 2, 0.0)
    with pytest.raises(ValueError, match="need 0 <= successes <= n and n > 0"):
        wilson_interval(0, 0)
    with pytest.raises(ValueError, match="need 0 <= successes"):
        wilson_interval(3, 2)
    with pytest.raises(ValueError, match="mean_ci needs at least one value"):
        mean_ci([])
    with pytest.raises(ValueError, match="harmony needs at least one subset score"):
        harmony({})
    with pytest.raises(ValueError, match="harmony needs non-negative scores"):
        harmony({"a": -0.1})
    with pytest.raises(ValueError, match="pass@k needs"):
        pass_at_k(3, 4, 1)
    assert pass_at_k(5, 4, 2) == 1.0 and pass_at_k(5, 0, 2) == 0.0  # n - c < k: every draw of k has a pass
    # binary values: a Wilson interval at the confidence asked for
    assert mean_ci([1.0, 0.0, 1.0, 1.0], 0.9)[1:] == pytest.approx(wilson_interval(3, 4, 0.9))


def test_wilson_bounds_are_exactly_0_and_1_at_the_extremes() -> None:
    # In floating point the formula's upper bound at n of n successes is 0.9999999999999999 for n = 10, 13, 25...
    for n in range(1, 300):
        assert wilson_interval(n, n)[1] == 1.0 and wilson_interval(0, n)[0] == 0.0, n
