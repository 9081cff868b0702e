from __future__ import annotations

from pathlib import Path

import pytest

from hone.core import ConfigError
from hone.envs import GSM8K, Arith, Environment, envs, list_envs, make_env


def test_builtins_are_registered() -> None:
    assert {"arith", "gsm8k"} <= set(envs.names())


def test_make_env_by_name_with_string_options() -> None:
    env = make_env("arith", levels="3", n_per_level="2")
    assert isinstance(env, Arith) and isinstance(env, Environment)
    assert env.levels == [3] and len(env.tasks("test")) == 2


def test_make_env_gsm8k(tmp_path: Path) -> None:
    path = tmp_path / "g.jsonl"
    path.write_text('{"question": "1+1?", "answer": "#### 2"}\n')
    env = make_env("gsm8k", path=str(path), strict="true")
    assert isinstance(env, GSM8K) and env.tasks("test")[0].target == 2


def test_unknown_name_lists_known_envs() -> None:
    with pytest.raises(ConfigError, match=r"unknown environment 'nope'; known: .*arith.*gsm8k"):
        make_env("nope")


def test_import_path_spec() -> None:
    env = make_env("hone.envs._arith:Arith", levels="2")
    assert isinstance(env, Arith) and env.levels == [2]
    with pytest.raises(ConfigError, match="cannot import"):
        make_env("no_such_pkg.mod:factory")


def not_an_env() -> object:
    return object()


def test_factory_must_build_an_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(envs._factories, "bogus", not_an_env)
    with pytest.raises(ConfigError, match="did not build an Environment"):
        make_env("bogus")


def test_unknown_option_names_env_and_accepted_options() -> None:
    with pytest.raises(
        ConfigError, match=r"environment 'arith' has no option 'level'; accepted options: levels, tools, n_per_level"
    ):
        make_env("arith", level="3")
    with pytest.raises(ConfigError, match=r"'gsm8k' has no option 'split'; accepted options: path, strict, tools"):
        make_env("gsm8k", split="train")


def test_list_envs_gives_one_line_descriptions() -> None:
    listed = dict(list_envs())
    assert listed["arith"].startswith("Procedurally generated arithmetic")
    assert listed["gsm8k"].startswith("GSM8K grade-school math")
    assert all("\n" not in d for d in listed.values())
    assert [name for name, _ in list_envs()] == sorted(listed)
