"""Every mutant that survived `make mutate` is triaged in docs/testing.md, and only those.

`benchmarks/results/mutation.json` (written by `make mutate`) lists each group's survivors; the table
"Every survivor" in docs/testing.md must name each one (group, function, mutant numbers) with why it
may live. A rerun that leaves a new survivor, or kills a listed one, fails here until the doc is updated.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "mutation.json"
DOC = ROOT / "docs" / "testing.md"
KINDS = {"equivalent", "below resolution", "message", "covered elsewhere", "timeout"}
ROW = re.compile(r"^\| (?P<group>[\w-]+) \| `(?P<fn>[^`]+)` \| (?P<nums>[\d, \-]+) \| (?P<kind>[a-z ]+) \| .+\|$")

Key = tuple[str, str, int]


def label(mutant: str) -> tuple[str, int]:
    """`hone.metrics._stats.x_t_quantile__mutmut_5` -> (`_stats.t_quantile`, 5); methods as `_ledger.Account.add`."""
    prefix, _, number = mutant.rpartition("__mutmut_")
    module, _, fn = prefix.rpartition(".")
    if fn.startswith("xǁ"):
        cls, _, method = fn[2:].partition("ǁ")
        fn = f"{cls}.{method}"
    else:
        fn = fn.removeprefix("x_")
    return f"{module.rsplit('.', 1)[-1]}.{fn}", int(number)


def numbers(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def triaged(doc: str) -> dict[Key, str]:
    rows: dict[Key, str] = {}
    for line in doc.splitlines():
        m = ROW.match(line)
        if m:
            for n in numbers(m["nums"]):
                rows[(m["group"], m["fn"], n)] = m["kind"].strip()
    return rows


def survivors(results: dict[str, object]) -> set[Key]:
    found: set[Key] = set()
    for group in results["groups"]:  # type: ignore[attr-defined]
        for s in group.get("survivors", []):
            found.add((group["group"], *label(s["mutant"])))
    return found


def test_labels_and_ranges_parse() -> None:
    assert label("hone.metrics._stats.x_t_quantile__mutmut_53") == ("_stats.t_quantile", 53)
    assert label("hone.core._ledger.xǁAccountǁ_check_before__mutmut_2") == ("_ledger.Account._check_before", 2)
    assert numbers("3, 5-7,10") == [3, 5, 6, 7, 10]
    row = "| metrics | `_stats.t_quantile` | 53-55, 57 | below resolution | the fourth term |"
    assert triaged(row) == {("metrics", "_stats.t_quantile", n): "below resolution" for n in (53, 54, 55, 57)}


def test_every_mutation_survivor_is_triaged_in_the_docs() -> None:
    if not RESULTS.is_file():
        pytest.skip("no make mutate results committed")
    live = survivors(json.loads(RESULTS.read_text()))
    rows = triaged(DOC.read_text())
    untriaged = sorted(live - set(rows))
    assert not untriaged, f"{len(untriaged)} survivors not in docs/testing.md, first: {untriaged[:5]}"
    stale = sorted(set(rows) - live)
    assert not stale, f"{len(stale)} rows of docs/testing.md name mutants that no longer survive: {stale[:5]}"
    assert set(rows.values()) <= KINDS, set(rows.values()) - KINDS
