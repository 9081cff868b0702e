"""BFCL grader agreement: hone's `bfcl` grading vs bfcl-eval's official AST checker on the same outputs.

Model outputs are native (FC) tool calls as BFCL records them, `[(tool name, arguments JSON)]`
under the names the `bfcl` environment offers (`math_factorial` for `math.factorial`): the
ground-truth answer of every question of the four categories (simple_python, multiple,
parallel, parallel_multiple; 1,000 questions) plus systematic perturbations of it (wrong value,
missing required argument, unknown extra argument, wrong function, wrong type, int for float,
float for int, another acceptable value, omitted optional arguments, string case, whitespace
and punctuation variants, reordered, missing and extra parallel calls, broken JSON). Both
graders see each output: hone through the environment's `grade_message` (names mapped back,
`hone.feedback._toolmatch`), the official side as bfcl-eval's FC pipeline runs it (the FC
handlers' `decode_ast` = `json.loads` of each call's arguments, `is_function_calling_format_output`,
then `ast_checker` for language Python, with a model whose names had dots replaced by `_`).
Writes benchmarks/results/bfcl_agreement.json: agreement, counts by variant and category, and
every disagreement with its reason. Exit 1 when agreement < 99.5%.

Getting the official checker without breaking hone's environment: bfcl-eval pins numpy==1.26.4
and tree_sitter==0.21.3 (no wheels for Python 3.13) and pulls torch, sentence-transformers and
eight provider SDKs, so it is not in `hone[bench]`. Its checker is pure Python; install the
package alone into a separate directory and point this script at it:

    pip install --no-deps --target /tmp/bfcl_eval bfcl-eval==2026.3.23
    .venv/bin/python benchmarks/bfcl_agreement.py --bfcl-eval /tmp/bfcl_eval

`ast_checker` imports `bfcl_eval.constants.model_config` only for `MODEL_CONFIG_MAPPING`
(whose module imports every provider SDK); this script puts a one-entry stand-in for that
module in `sys.modules` (`underscore_to_dot=True`, what BFCL sets for OpenAI-style FC models)
and imports the rest of bfcl-eval unchanged.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import types
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hone.core import Message, Task, ToolCall, stable_int
from hone.envs._bfcl import CATEGORIES, Entry, _pick, grade_message, load, reference_answer, resolve_dir, tool_names
from hone.envs._bfcl import _make_task as make_task
from hone.feedback._toolmatch import CallsVerdict

ROOT = Path(__file__).resolve().parents[1]
MODEL = "hone-fc"
Calls = list[tuple[str, Any]]  # (BFCL name, arguments: a dict, or raw text for broken JSON)


@dataclass
class Output:
    """One model output: the question, the perturbation that made it, the calls as sent (tool names, JSON)."""

    entry: Entry
    task: Task
    variant: str
    raw: list[tuple[str, str]]


# --- the official checker -----------------------------------------------------------------------------


def load_official(path: str | None) -> tuple[Callable[..., dict[str, Any]], Callable[[Any], bool], Any, str]:
    """(ast_checker, is_function_calling_format_output, Language.PYTHON, version) from bfcl-eval at `path`."""
    if path:
        sys.path.insert(0, str(Path(path).resolve()))
    # eval_config creates result/score/lock directories under BFCL_PROJECT_ROOT at import: keep them in /tmp.
    os.environ.setdefault("BFCL_PROJECT_ROOT", tempfile.mkdtemp(prefix="bfcl_project_"))
    stand_in = types.ModuleType("bfcl_eval.constants.model_config")
    stand_in.MODEL_CONFIG_MAPPING = {MODEL: types.SimpleNamespace(underscore_to_dot=True)}  # type: ignore[attr-defined]
    sys.modules["bfcl_eval.constants.model_config"] = stand_in
    try:
        from importlib.metadata import PathDistribution

        from bfcl_eval.constants.enums import Language
        from bfcl_eval.eval_checker.ast_eval.ast_checker import ast_checker
        from bfcl_eval.utils import is_function_calling_format_output
    except ImportError as exc:
        raise SystemExit(
            f"bfcl_agreement: cannot import bfcl-eval's checker ({exc}); install it with "
            "`pip install --no-deps --target /tmp/bfcl_eval bfcl-eval` and pass --bfcl-eval /tmp/bfcl_eval"
        ) from None
    import bfcl_eval

    version = "unknown"
    for info in Path(bfcl_eval.__file__).resolve().parents[1].glob("bfcl_eval-*.dist-info"):
        version = PathDistribution(info).version
    return ast_checker, is_function_calling_format_output, Language.PYTHON, version


def official_verdict(official: Any, out: Output) -> tuple[bool, str, str]:
    """(valid, error_type, first error) as bfcl-eval's FC pipeline grades `out`."""
    ast_checker, format_ok, python, _ = official
    try:
        decoded = [{name: json.loads(args)} for name, args in out.raw]  # the FC handlers' decode_ast
    except Exception as exc:
        return False, "ast_decoder:decoder_failed", str(exc)
    if not format_ok(decoded):
        return False, "ast_decoder:decoder_wrong_output_format", "not a list of {name: {arguments}}"
    entry = out.entry
    try:
        result = ast_checker(list(entry.functions), decoded, list(entry.ground_truth), python, entry.category, MODEL)
    except Exception as exc:  # the official harness would stop here; count it as invalid and list it
        return False, "checker_crashed", f"{type(exc).__name__}: {exc}"
    return bool(result["valid"]), str(result.get("error_type", "")), _first_error(result.get("error"))


def _first_error(errors: Any) -> str:
    if not errors:
        return ""
    first = errors[0]
    return first if isinstance(first, str) else json.dumps(first, default=str)[:300]


# --- hone ---------------------------------------------------------------------------------------------


def hone_message(out: Output) -> Message:
    """The assistant message the OpenAI client would record for `out` (broken JSON kept raw)."""
    calls = []
    for i, (name, args) in enumerate(out.raw):
        try:
            parsed = json.loads(args)
        except ValueError as exc:
            calls.append(ToolCall(id=f"c{i}", name=name, arguments_raw=args, parse_error=f"invalid JSON: {exc}"))
            continue
        if isinstance(parsed, dict):
            calls.append(ToolCall(id=f"c{i}", name=name, arguments=parsed, arguments_raw=args))
        else:
            calls.append(ToolCall(id=f"c{i}", name=name, arguments_raw=args, parse_error="not a JSON object"))
    return Message.assistant(None, calls)


def hone_verdict(out: Output, message: Message | None = None) -> CallsVerdict:
    return grade_message(out.task, message if message is not None else hone_message(out))


# --- outputs: the ground truth and its perturbations ---------------------------------------------------


def _props(entry: Entry, name: str) -> dict[str, Any]:
    fn = next((f for f in entry.functions if f["name"] == name), None)
    return dict(fn["parameters"].get("properties", {})) if fn else {}


def _required(entry: Entry, name: str) -> list[str]:
    fn = next((f for f in entry.functions if f["name"] == name), None)
    return list(fn["parameters"].get("required", [])) if fn else []


def _other_value(value: Any, rng: random.Random) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + rng.choice((1, 7, 100))
    if isinstance(value, str):
        return value + rng.choice((" extra", "X", "2"))
    if isinstance(value, list):
        return [*value, value[-1]] if value else ["extra"]
    if isinstance(value, dict):
        return {**value, "extra_key": 1}
    return "changed"


def _other_type(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return 42
    return json.dumps(value)


def _strings(value: Any, change: Callable[[str], str]) -> Any:
    """`value` with `change` applied to every string in it (one level into lists and dict values)."""
    if isinstance(value, str):
        return change(value)
    if isinstance(value, list):
        return [change(v) if isinstance(v, str) else v for v in value]
    if isinstance(value, dict):
        return {k: change(v) if isinstance(v, str) else v for k, v in value.items()}
    return value


def _has_string(value: Any) -> bool:
    if isinstance(value, str):
        return True
    items = value if isinstance(value, list) else value.values() if isinstance(value, dict) else []
    return any(isinstance(v, str) for v in items)


def _respace(text: str) -> str:
    return text.replace(" ", "") if " " in text else " ".join(text[i : i + 3] for i in range(0, len(text), 3))


def _repunct(text: str) -> str:
    return text.replace(" ", "-") if " " in text else text + "."


def _edit_one(
    calls: Calls, rng: random.Random, pick: Callable[[str, str, Any], bool], edit: Callable[..., Any]
) -> Calls | None:
    """`calls` with `edit` applied to one argument chosen among those `pick` accepts (None if none)."""
    spots = [(i, k) for i, (n, a) in enumerate(calls) for k, v in a.items() if pick(n, k, v)]
    if not spots:
        return None
    i, key = rng.choice(spots)
    out = [(n, dict(a)) for n, a in calls]
    out[i][1][key] = edit(out[i][1][key])
    return out


def variants(entry: Entry) -> Iterator[tuple[str, Calls]]:
    """The ground truth and every perturbation that applies to `entry`."""
    truth = reference_answer(entry)
    yield "ground_truth", truth

    def rng(kind: str) -> random.Random:
        return random.Random(stable_int(entry.id, kind))

    def typed(kind: str) -> Callable[[str, str, Any], bool]:
        return lambda n, k, v: _props(entry, n).get(k, {}).get("type") == kind

    answers = [(n, args) for call in entry.ground_truth for n, args in call.items()]
    alt = [
        (n, {k: _pick([[o for o in opts if o != ""][-1]]) for k, opts in args.items() if k in a})
        for (n, args), (_, a) in zip(answers, truth, strict=True)
    ]
    if alt != truth:
        yield "other_acceptable_value", alt
    optional = [
        (n, {k: v for k, v in a.items() if "" not in args.get(k, [])})
        for (n, args), (_, a) in zip(answers, truth, strict=True)
    ]
    if optional != truth:
        yield "optional_omitted", optional
    edits: list[tuple[str, Callable[[str, str, Any], bool], Callable[..., Any]]] = [
        ("wrong_value", lambda n, k, v: True, lambda v: _other_value(v, rng("wrong_value"))),
        ("wrong_type", lambda n, k, v: True, _other_type),
        ("int_for_float", lambda n, k, v: typed("float")(n, k, v) and isinstance(v, float) and v.is_integer(), int),
        ("float_for_int", lambda n, k, v: typed("integer")(n, k, v) and type(v) is int, float),
        ("string_case", lambda n, k, v: _has_string(v), lambda v: _strings(v, str.swapcase)),
        ("string_whitespace", lambda n, k, v: _has_string(v), lambda v: _strings(v, _respace)),
        ("string_punctuation", lambda n, k, v: _has_string(v), lambda v: _strings(v, _repunct)),
        ("string_typo", lambda n, k, v: isinstance(v, str) and len(v) > 1, lambda v: v[1:] + v[0]),
        ("bool_for_int", lambda n, k, v: type(v) is int and v in (0, 1), bool),
        ("null_value", lambda n, k, v: True, lambda v: None),
        (
            "list_item_type",
            lambda n, k, v: isinstance(v, list) and bool(v) and not isinstance(v[0], dict),
            lambda v: [str(x) if not isinstance(x, str) else 1 for x in v],
        ),
        ("dict_key_dropped", lambda n, k, v: isinstance(v, dict) and bool(v), lambda v: dict(list(v.items())[1:])),
        (
            "dict_key_case",
            lambda n, k, v: isinstance(v, dict) and bool(v),
            lambda v: {str(x).upper(): y for x, y in v.items()},
        ),
    ]
    for kind, pick, edit in edits:
        changed = _edit_one(truth, rng(kind), pick, edit)
        if changed is not None:
            yield kind, changed
    r = rng("missing_required")
    spots = [(i, k) for i, (n, a) in enumerate(truth) for k in _required(entry, n) if k in a]
    if spots:
        i, key = r.choice(spots)
        yield (
            "missing_required",
            [(n, {k: v for k, v in a.items() if (j, k) != (i, key)}) for j, (n, a) in enumerate(truth)],
        )
    i = rng("extra_argument").randrange(len(truth))
    yield "extra_argument", [(n, {**a, "unknown_param": "x"} if j == i else a) for j, (n, a) in enumerate(truth)]
    i = rng("wrong_function").randrange(len(truth))
    others = sorted({f["name"] for f in entry.functions} - {truth[i][0]})
    renamed = rng("wrong_function").choice(others) if others else truth[i][0] + "_v2"
    yield "wrong_function", [(renamed if j == i else n, a) for j, (n, a) in enumerate(truth)]
    if len(truth) > 1:
        yield "parallel_reordered", list(reversed(truth))
        shuffled = list(truth)
        rng("parallel_shuffled").shuffle(shuffled)
        if shuffled != truth and shuffled != list(reversed(truth)):
            yield "parallel_shuffled", shuffled
    yield "call_missing", truth[:-1]
    yield "call_extra", [*truth, truth[0]]
    yield "broken_json", [(n, json.dumps(a)[:-1] if j == 0 else a) for j, (n, a) in enumerate(truth)]


def outputs(data_dir: Path) -> list[Output]:
    """Every variant of every question of the four categories, as FC outputs under the offered tool names."""
    found: list[Output] = []
    for category in CATEGORIES:
        for entry in load(data_dir, category):
            task = make_task(entry)
            to_tool = {orig: tool for tool, orig in tool_names(entry.functions).items()}
            for variant, calls in variants(entry):
                raw = [
                    (to_tool.get(n, n.replace(".", "_")), a if isinstance(a, str) else json.dumps(a)) for n, a in calls
                ]
                found.append(Output(entry, task, variant, raw))
    return found


# --- the comparison -----------------------------------------------------------------------------------

REASONS = {
    "greedy": (
        "bfcl-eval pairs parallel calls greedily (each expected call takes the first unused output call that "
        "matches it), so a call that fits two expected calls can be taken by the wrong one; hone uses a maximum "
        "bipartite assignment, the rule BFCL states (order-insensitive matching). Not copied on purpose."
    ),
}


def explain(official: Any, out: Output, hone: CallsVerdict, valid: bool, error_type: str) -> str:
    """Why the two graders differ on `out`: a known cause, checked, else 'unexplained'."""
    if hone.ok and not valid and "cannot_find_match" in error_type:
        # Greedy pairing is the cause when the official checker accepts every pair of hone's assignment.
        ast_checker, _, python, _ = official
        decoded = [{name: json.loads(args)} for name, args in out.raw]
        functions, truth = list(out.entry.functions), list(out.entry.ground_truth)
        if all(
            ast_checker(functions, [decoded[i]], [truth[j]], python, "multiple", MODEL)["valid"]
            for i, j, _ in hone.pairs
        ):
            return REASONS["greedy"]
    return "unexplained"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bfcl-eval", default=os.environ.get("BFCL_EVAL_PATH", "/tmp/bfcl_eval"))
    parser.add_argument("--data", default=None, help="BFCL data directory (default as the bfcl environment)")
    parser.add_argument("-o", "--output", default=str(ROOT / "benchmarks/results/bfcl_agreement.json"))
    args = parser.parse_args()
    official = load_official(args.bfcl_eval)
    data_dir = resolve_dir(args.data)
    outs = outputs(data_dir)
    by_variant: dict[str, Counter[str]] = defaultdict(Counter)
    by_category: dict[str, Counter[str]] = defaultdict(Counter)
    disagreements: list[dict[str, Any]] = []
    for out in outs:
        hone = hone_verdict(out)
        valid, error_type, error = official_verdict(official, out)
        same = hone.ok == valid
        for table, key in ((by_variant, out.variant), (by_category, out.entry.category)):
            table[key].update(n=1, agree=int(same), hone_ok=int(hone.ok), official_ok=int(valid))
        if not same:
            disagreements.append(
                {
                    "id": out.entry.id,
                    "variant": out.variant,
                    "output": [{n: a} for n, a in out.raw],
                    "hone": {"ok": hone.ok, "kind": hone.kind, "reason": hone.reason},
                    "official": {"valid": valid, "error_type": error_type, "error": error},
                    "reason": explain(official, out, hone, valid, error_type),
                }
            )
    agree = sum(c["agree"] for c in by_variant.values())
    result = {
        "benchmark": "bfcl_agreement",
        "bfcl_eval_version": official[3],
        "data": str(data_dir),
        "categories": list(CATEGORIES),
        "questions": len({o.entry.id for o in outs}),
        "n_outputs": len(outs),
        "agree": agree,
        "agreement": round(agree / len(outs), 6),
        "target": 0.995,
        "hone_ok": sum(c["hone_ok"] for c in by_variant.values()),
        "official_ok": sum(c["official_ok"] for c in by_variant.values()),
        "by_variant": {k: dict(v) for k, v in sorted(by_variant.items())},
        "by_category": {k: dict(v) for k, v in sorted(by_category.items())},
        "disagreements": disagreements,
        "python": sys.version.split()[0],
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=1, default=str) + "\n")
    print(
        f"bfcl agreement: {agree}/{len(outs)} = {100 * agree / len(outs):.2f}% "
        f"(hone ok {result['hone_ok']}, official ok {result['official_ok']}, {len(disagreements)} disagreement(s)) "
        f"-> {args.output}"
    )
    for d in disagreements[:10]:
        hone_kind, official_type = d["hone"]["kind"], d["official"]["error_type"]
        print(f"  {d['id']} {d['variant']}: hone {hone_kind}, official {official_type}: {d['reason'][:80]}")
    return 0 if agree / len(outs) >= 0.995 else 1


if __name__ == "__main__":
    raise SystemExit(main())
