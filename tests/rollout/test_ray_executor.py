"""The Runner on a real local Ray cluster: the same results as in-process, a global budget,
resume, a worker killed mid-run, and setup mistakes refused before any episode."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

ray = pytest.importorskip("ray", reason="Ray tests need the hone[ray] extra")

from hone.cli import app as cli  # noqa: E402
from hone.core import Budget, ConfigError, Trajectory  # noqa: E402
from hone.envs import make_env  # noqa: E402
from hone.models import resolve_model  # noqa: E402
from hone.rollout import EpisodeLimits, RayExecutor, RunConfig, Runner, RunResult  # noqa: E402
from hone.store import open_store  # noqa: E402
from hone.testing import OpenAIServer  # noqa: E402

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def server() -> Iterator[OpenAIServer]:
    with OpenAIServer(delay_s=0.02) as srv:  # a little latency, so episodes are in flight together
        yield srv


def _run(server: OpenAIServer, store: Any, run_id: str, executor: RayExecutor | None, **config: Any) -> RunResult:
    spec = f"openai-compatible:{server.base_url}:x"
    env = make_env("arith", levels="1-2")
    cfg = RunConfig(run_id=run_id, n=config.pop("n", 15), k=config.pop("k", 2), **config)
    runner = Runner(env, resolve_model(spec), cfg, store=store, env_spec="arith", model_spec=spec, executor=executor)
    return asyncio.run(runner.run())


def _ray(server: OpenAIServer, **kw: Any) -> RayExecutor:
    return RayExecutor("arith", f"openai-compatible:{server.base_url}:x", {"levels": "1-2"}, **kw)


def _key(t: Trajectory) -> tuple[Any, ...]:
    return (t.task_id, t.sample, t.status, t.answer, t.reward, len(t.steps), t.usage.calls, t.usage.tool_calls)


@pytest.mark.parametrize("batch", [1, 8])  # one episode per Ray call, and micro-batches
def test_ray_gives_the_same_results_as_in_process(
    ray_cluster: None, server: OpenAIServer, tmp_path: Path, batch: int
) -> None:
    with open_store(tmp_path / "hone.db") as st:
        local = _run(server, st, "local", None)
        remote = _run(server, st, "ray", _ray(server, workers=2, per_worker=4, batch=batch))
        assert sorted(map(_key, local.trajectories)) == sorted(map(_key, remote.trajectories))
        assert len(remote.trajectories) == 30 and remote.remaining == 0
        assert st.count("ray") == 30 and st.get_run("ray").status == "done"  # type: ignore[union-attr]
        assert remote.ledger.calls == local.ledger.calls
        assert {t.env for t in st.query(run_id="ray")} == {"arith"}


def test_the_budget_is_global_and_a_rerun_resumes(ray_cluster: None, server: OpenAIServer, tmp_path: Path) -> None:
    executor = _ray(server, workers=2, per_worker=2)
    with open_store(tmp_path / "hone.db") as st:
        first = _run(server, st, "b", executor, budget=Budget(calls=20))
        # Exceeded by at most the episodes in flight when it ran out (4 here, 2 calls each at most
        # on arith levels 1-2 with this server's answers).
        assert 20 <= first.ledger.calls <= 20 + executor.capacity * 2
        assert first.stopped_by == "budget" and first.remaining > 0
        stored = st.count("b")
        assert stored == len(first.trajectories) < 30
        second = _run(server, st, "b", _ray(server, workers=2, per_worker=2))
        assert len(second.trajectories) == 30 - stored and second.remaining == 0
        assert st.done_keys("b") == {(f"arith-test-L{lv}-{i:04d}", s) for lv, i in _tasks(st, "b") for s in (0, 1)}
        assert st.count("b") == 30


def _tasks(st: Any, run_id: str) -> set[tuple[int, int]]:
    return {(int(t.task_id.split("-L")[1][0]), int(t.task_id[-4:])) for t in st.query(run_id=run_id)}


def test_a_killed_worker_loses_nothing(ray_cluster: None, tmp_path: Path) -> None:
    with OpenAIServer(delay_s=0.15) as slow, open_store(tmp_path / "hone.db") as st:
        executor = _ray(slow, workers=2, per_worker=4)
        killed: list[int] = []

        def kill_one(_: Trajectory) -> None:
            if not killed and st.count("killed") >= 3:
                pid = executor.pids()[0]
                os.kill(pid, signal.SIGKILL)  # as the OOM killer or a lost node would
                killed.append(pid)

        spec = f"openai-compatible:{slow.base_url}:x"
        runner = Runner(
            make_env("arith", levels="1-2"),
            resolve_model(spec),
            RunConfig(run_id="killed", n=15, k=2),
            store=st,
            env_spec="arith",
            model_spec=spec,
            executor=executor,
        )
        result = asyncio.run(runner.run(on_trajectory=kill_one))
        assert killed and executor.lost == 1 and executor.retried >= 1
        assert result.remaining == 0 and st.count("killed") == 30
        assert len(st.done_keys("killed")) == 30  # every pair stored once
        assert not [t for t in st.query(run_id="killed") if t.status == "error"]


def test_a_model_server_gone_midway_is_typed_errors_and_a_rerun_finishes(ray_cluster: None, tmp_path: Path) -> None:
    with socket.socket() as probe:  # a fixed port, so the server can come back on it
        probe.bind(("127.0.0.1", 0))
        number = probe.getsockname()[1]
    spec = f"openai-compatible:http://127.0.0.1:{number}/v1:x"
    server = OpenAIServer(port=number, delay_s=0.1).start()
    try:
        with open_store(tmp_path / "hone.db") as st:
            stopped: list[bool] = []

            def pull_the_plug(_: Trajectory) -> None:
                if not stopped and st.count("gone") >= 10:
                    stopped.append(True)
                    server.stop()  # the model server disappears with episodes in flight

            def run(retry: bool) -> RunResult:
                cfg = RunConfig(run_id="gone", n=20, k=2, retry_errors=retry, limits=EpisodeLimits(timeout_s=30))
                executor = RayExecutor("arith", spec, {"levels": "1-2"}, workers=2, per_worker=4)
                runner = Runner(
                    make_env("arith", levels="1-2"),
                    resolve_model(spec),
                    cfg,
                    store=st,
                    env_spec="arith",
                    model_spec=spec,
                    executor=executor,
                )
                return asyncio.run(runner.run(on_trajectory=None if retry else pull_the_plug))

            first = run(retry=False)
            errors = [t for t in st.query(run_id="gone") if t.status == "error"]
            assert stopped and first.remaining == 0 and st.count("gone") == 40
            assert errors and {t.error.type for t in errors if t.error} == {"ModelError"}
            server.start()  # back, on the same port
            run(retry=True)
            assert st.count("gone") == 40 and not [t for t in st.query(run_id="gone") if t.status == "error"]
    finally:
        server.stop()


def test_a_worker_that_cannot_build_the_environment_refuses_the_run(ray_cluster: None, server: OpenAIServer) -> None:
    executor = RayExecutor("hone_no_such_module:factory", f"openai-compatible:{server.base_url}:x")
    with pytest.raises(ConfigError, match=r"cannot build 'hone_no_such_module:factory'.*importable") as info:
        asyncio.run(executor.start())
    assert "\n" not in str(info.value)
    asyncio.run(executor.close())


def test_cli_runs_on_ray_and_refuses_bad_setups(server: OpenAIServer, tmp_path: Path) -> None:
    if ray.is_initialized():
        ray.shutdown()  # the CLI starts (and stops) its own local cluster
    db = str(tmp_path / "cli.db")
    model = f"openai-compatible:{server.base_url}:x"
    runner = CliRunner()
    ok = runner.invoke(
        cli, ["eval", "arith", "-m", model, "-n", "6", "-e", "levels=1", "--executor", "ray", "--store", db]
    )
    assert ok.exit_code == 0, ok.output
    with open_store(db, readonly=True) as st:
        (run,) = st.list_runs()
        assert st.count(run.id) == 6 and run.status == "done"
    base = ["eval", "arith", "-m", model, "-n", "2", "--store", db]
    far = runner.invoke(cli, [*base, "--executor", "ray:127.0.0.1:1"])
    assert far.exit_code == 2 and "cannot reach a Ray cluster at 127.0.0.1:1" in far.output
    other = runner.invoke(cli, [*base, "--executor", "dask"])
    assert other.exit_code == 2 and "use local, ray" in other.output
    cached = runner.invoke(cli, [*base, "--executor", "ray", "--cache", str(tmp_path / "c.db")])
    assert cached.exit_code == 2 and "--cache and --record" in cached.output
    with open_store(db, readonly=True) as st:
        assert len(st.list_runs()) == 1  # nothing started for the refused ones


def test_a_node_lost_halfway_loses_nothing(tmp_path: Path) -> None:
    """Three Ray nodes on this machine (a head, two workers); one with workers is killed mid-run."""
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    nodes = [cluster.add_node(num_cpus=1) for _ in range(2)]
    server = OpenAIServer(delay_s=0.3).start()  # slow enough that the victim has episodes in flight
    try:
        ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
        executor = _ray(server, workers=4, per_worker=4)
        with open_store(tmp_path / "hone.db") as st:
            gone: list[str] = []

            def kill_a_node(_: Trajectory) -> None:
                if not gone and st.count("nodes") >= 8:
                    on = {w["node"] for w in executor.where()}
                    victim = next(n for n in nodes if n.node_id in on)  # a node that has workers
                    gone.append(victim.node_id)
                    cluster.remove_node(victim, allow_graceful=False)  # its raylet and workers killed

            spec = f"openai-compatible:{server.base_url}:x"
            runner = Runner(
                make_env("arith", levels="1-2"),
                resolve_model(spec),
                RunConfig(run_id="nodes", n=40, k=2),
                store=st,
                env_spec="arith",
                model_spec=spec,
                executor=executor,
            )
            result = asyncio.run(runner.run(on_trajectory=kill_a_node))
            assert gone and executor.lost >= 1
            assert result.remaining == 0 and st.count("nodes") == 80 and len(st.done_keys("nodes")) == 80
            assert not [t for t in st.query(run_id="nodes") if t.status == "error"]
    finally:
        server.stop()
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()


def test_the_python_api_takes_an_executor(ray_cluster: None, server: OpenAIServer, tmp_path: Path) -> None:
    import hone
    from hone.envs import Arith

    spec = f"openai-compatible:{server.base_url}:x"
    res = hone.evaluate("arith", spec, n=6, k=2, env_args={"levels": "1"}, store=tmp_path / "h.db", executor="ray")
    assert res.summary.n_trajectories == 12 and res.remaining == 0
    local = hone.evaluate("arith", spec, n=6, k=2, env_args={"levels": "1"}, store=False)
    assert sorted(map(_key, res.trajectories)) == sorted(map(_key, local.trajectories))
    with pytest.raises(ConfigError, match="spec strings"):
        hone.evaluate(Arith(levels="1"), spec, n=2, store=False, executor="ray")
    with pytest.raises(ConfigError, match="use local, ray"):
        hone.evaluate("arith", spec, n=2, store=False, executor="spark")


def _rows(cmp: Any) -> list[tuple[Any, ...]]:
    return [(r["strategy"], r["tasks"], r["accuracy"], r["calls"], r["tokens"]) for r in cmp.rows()]


def test_improve_spreads_tasks_over_ray_with_the_same_results(
    ray_cluster: None, server: OpenAIServer, tmp_path: Path
) -> None:
    from hone.improve import Refine, acompare

    spec = f"openai-compatible:{server.base_url}:x"
    env = make_env("arith", levels="1-2")

    def go(executor: RayExecutor | None, store: Any, run_id: str) -> Any:
        work = acompare(
            [Refine(rounds=2)], env, resolve_model(spec), "calls=3", n=8, store=store, run_id=run_id,
            env_spec="arith", model_spec=spec, executor=executor,
        )  # fmt: skip
        return asyncio.run(work)

    with open_store(tmp_path / "hone.db") as st:
        local = go(None, st, "here")
        executor = _ray(server, workers=2, per_worker=3)
        remote = go(executor, st, "there")
        assert _rows(remote) == _rows(local) and [r["strategy"] for r in remote.rows()] == ["best_of_n", "refine"]
        for a, b in zip(local.reports, remote.reports, strict=True):
            assert [(r.best.task_id, r.best.passed, len(r.candidates)) for r in a.results] == [
                (r.best.task_id, r.best.passed, len(r.candidates)) for r in b.results
            ]
        assert st.count("there-refine") == 8 and st.count("there-refine-candidates") == st.count(
            "here-refine-candidates"
        )
        assert executor._actors == []  # closed after the comparison


def test_improve_refuses_a_strategy_that_cannot_travel(ray_cluster: None, server: OpenAIServer) -> None:
    import threading

    from hone.improve import BestOfN, acompare

    spec = f"openai-compatible:{server.base_url}:x"
    lock = threading.Lock()
    held = BestOfN(verifier=lambda t: float(lock.locked()))
    work = acompare([held], make_env("arith"), resolve_model(spec), "calls=2", n=2, executor=_ray(server))
    with pytest.raises(ConfigError, match=r"strategy 'best_of_n' cannot be sent to Ray workers") as info:
        asyncio.run(work)
    assert "\n" not in str(info.value)


def test_cli_improve_on_ray(server: OpenAIServer, tmp_path: Path) -> None:
    if ray.is_initialized():
        ray.shutdown()  # the CLI starts (and stops) its own local cluster
    db = str(tmp_path / "imp.db")
    model = f"openai-compatible:{server.base_url}:x"
    args = ["improve", "arith", "-m", model, "-s", "refine", "-n", "4", "-e", "levels=1", "--budget", "calls=3"]
    ok = CliRunner().invoke(cli, [*args, "--store", db, "--executor", "ray", "--workers", "2", "--json"])
    assert ok.exit_code == 0, ok.output
    with open_store(db, readonly=True) as st:
        runs = {r.id.rsplit("-", 1)[-1]: r for r in st.list_runs() if r.kind == "improve"}
        assert set(runs) == {"best_of_n", "refine"} and all(st.count(r.id) == 4 for r in runs.values())
    bad = CliRunner().invoke(cli, [*args, "--store", db, "--executor", "ray", "--per-worker", "0"])
    assert bad.exit_code == 2 and "--per-worker" in bad.output


def test_improve_survives_a_killed_worker(ray_cluster: None, tmp_path: Path) -> None:
    from hone.improve import BestOfN, acompare

    with OpenAIServer(delay_s=0.1) as slow, open_store(tmp_path / "hone.db") as st:
        spec = f"openai-compatible:{slow.base_url}:x"
        executor = _ray(slow, workers=2, per_worker=3)
        killed: list[int] = []

        def kill_one(_: str, __: Any) -> None:
            if not killed:
                pid = executor.pids()[0]
                os.kill(pid, signal.SIGKILL)  # tasks in flight there are solved again from the start
                killed.append(pid)

        work = acompare(
            [BestOfN()], make_env("arith", levels="1-2"), resolve_model(spec), "calls=3", n=12, store=st,
            run_id="imp", env_spec="arith", model_spec=spec, baseline=False, on_result=kill_one, executor=executor,
        )  # fmt: skip
        cmp = asyncio.run(work)
        assert killed and executor.lost == 1 and executor.retried >= 1
        assert cmp.reports[0].summary.n_tasks == 12 and st.count("imp-best_of_n") == 12
        assert not [r for r in cmp.reports[0].results if r.best.status == "error"]
