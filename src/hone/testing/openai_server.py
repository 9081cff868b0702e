"""Run the mock OpenAI-compatible server in the foreground.

    python -m hone.testing.openai_server --port 0 --policy arith --delay 0 --fail-rate 0
    python -m hone.testing.openai_server --policy toolenv --env toolgen --slip-rate 0.3   # or --env DIR (built)
    python -m hone.testing.openai_server --policy bfcl --slip-rate 0.2   # BFCL ground truth with seeded slips

prints `READY http://127.0.0.1:PORT/v1` once listening, then serves until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from ._openai_server import OpenAIServer
from ._policies import Policy, arith_policy, bfcl_policy, code_policy, humaneval_solutions, toolenv_policy

POLICIES = ("arith", "humaneval", "toolenv", "bfcl")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m hone.testing.openai_server", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    parser.add_argument("--policy", choices=POLICIES, default="arith")
    parser.add_argument(
        "--slip-rate",
        type=float,
        default=0.2,
        help="chance of a wrong answer when sampling (off by one, `return None`)",
    )
    parser.add_argument(
        "--data", default=None, help="humaneval: the HumanEval file; bfcl: the data directory (default as the env)"
    )
    parser.add_argument("--env", default=None, help="toolenv policy: a built directory or a built env's name (toolgen)")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds to sleep before each answer")
    parser.add_argument("--fail-rate", type=float, default=0.0, help="fraction of requests that answer 500")
    parser.add_argument("--seed", type=int, default=0, help="seed of the injected failures (and of toolenv's slips)")
    parser.add_argument("--reject-vllm-params", action="store_true", help="answer 400 to vLLM token-id parameters")
    return parser.parse_args(argv)


async def _main(args: argparse.Namespace) -> None:
    if args.policy == "humaneval":
        policy: Policy = code_policy(humaneval_solutions(args.data), args.slip_rate)
    elif args.policy == "toolenv":
        from hone.envs import make_env

        policy = toolenv_policy(make_env(args.env or "toolgen"), args.slip_rate, args.seed)
    elif args.policy == "bfcl":
        policy = bfcl_policy(args.slip_rate, args.seed, args.data)
    else:
        policy = arith_policy(args.slip_rate)
    server = OpenAIServer(
        policy,
        host=args.host,
        port=args.port,
        delay_s=args.delay,
        fail_rate=args.fail_rate,
        seed=args.seed,
        reject_params=args.reject_vllm_params,
        record_requests=False,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):  # not on Windows
            loop.add_signal_handler(sig, stop.set)
    await server.serve(stop, lambda url: print(f"READY {url}", flush=True))


def main(argv: list[str] | None = None) -> int:
    """Entry point: serve until interrupted; returns the exit status."""
    args = _parse(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
