"""Hostile programs: each must be contained, the host unharmed, and nothing left behind.

Every program prints ESCAPED (with what it got) only if its attack worked; the `clean` fixture
then checks that no process of the run survived, that no sandbox path exists on the host, and
that the pool still runs programs.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import socket
import textwrap
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from hone.sandbox import ExecResult, Sandbox, SandboxError

Need = Callable[..., None]


def run(sb: Sandbox, code: str, **kw: object) -> ExecResult:
    result = sb.run_sync(textwrap.dedent(code), **kw)  # type: ignore[arg-type]
    assert "ESCAPED" not in result.stdout, result
    return result


@pytest.fixture
def host_secret(tmp_path: Path) -> Path:
    """A file only the host may read (root, 0600), in a directory of its own."""
    path = tmp_path / "secret.txt"
    path.write_text("host-only-" + uuid.uuid4().hex)
    path.chmod(0o600)
    return path


def test_read_etc_shadow(clean: Sandbox) -> None:
    run(clean, "print('ESCAPED', open('/etc/shadow').read())")


def test_read_ssh_keys(clean: Sandbox, tmp_path: Path) -> None:
    ssh = tmp_path / "home" / ".ssh"
    ssh.mkdir(parents=True)
    key = ssh / "id_ed25519"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY----- fake")
    key.chmod(0o600)
    run(clean, f"print('ESCAPED', open({str(key)!r}).read())")
    run(clean, "import os, glob\nfor p in glob.glob('/root/.ssh/*') + glob.glob('/home/*/.ssh/*'): print('ESCAPED', p)")


def test_read_parent_files(clean: Sandbox, host_secret: Path) -> None:
    run(clean, f"print('ESCAPED', open({str(host_secret)!r}).read())")


def test_host_tree_is_absent(clean: Sandbox, need: Need) -> None:
    need("filesystem")
    # Even world-readable host files are not there: only the read-only system and Python paths are.
    here = Path(__file__).resolve()
    probe = f"import os\nfor p in ({str(here)!r}, '/etc/shadow', '/home/.', '/root/.ssh'):\n"
    run(clean, probe + "    if os.path.exists(p): print('ESCAPED', p)")


@pytest.mark.parametrize("where", ["test_dir", "tmp", "etc"])
def test_write_outside_workdir(clean: Sandbox, tmp_path: Path, where: str, need: Need) -> None:
    name = f"hone-pwned-{uuid.uuid4().hex}"
    target = {"test_dir": tmp_path / name, "tmp": Path("/tmp") / name, "etc": Path("/etc") / name}[where]
    if where != "etc":
        need("filesystem")  # world-writable host directories are only out of reach without a view of them
        tmp_path.chmod(0o777)
    try:
        run(clean, f"open({str(target)!r}, 'w').write('x')")
        assert not target.exists()
    finally:
        target.unlink(missing_ok=True)


def test_delete_outside_workdir(clean: Sandbox, tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    victim.chmod(0o666)
    tmp_path.chmod(0o777)
    run(clean, f"import os\nos.remove({str(victim)!r})\nprint('ESCAPED')")
    assert victim.read_text() == "keep me"


def test_symlink_escape(clean: Sandbox, host_secret: Path) -> None:
    result = run(
        clean,
        f"""
        import os
        os.symlink({str(host_secret)!r}, 'link')
        os.symlink('/proc/1/root', 'root')
        for path in ('link', 'root{host_secret}'):
            try:
                print('ESCAPED', open(path).read())
            except OSError as exc:
                print('blocked', type(exc).__name__)
        try:
            open('link', 'w').write('overwritten')
        except OSError:
            pass
        """,
    )
    assert result.stdout.count("blocked") == 2, result
    assert host_secret.read_text().startswith("host-only-")


def test_dotdot_escape(clean: Sandbox, host_secret: Path) -> None:
    run(
        clean,
        f"""
        import os
        for _ in range(30):
            os.chdir('..')
        try:
            print('ESCAPED', open('.' + {str(host_secret)!r}).read())
        except OSError:
            pass
        try:
            print('ESCAPED', open('../../../../../../..' + {str(host_secret)!r}).read())
        except OSError:
            pass
        """,
    )


def test_tcp_to_host_loopback(clean: Sandbox, need: Need) -> None:
    need("network_namespace")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.3)
    port = server.getsockname()[1]
    try:
        run(
            clean,
            f"""
            import socket
            for host in ('127.0.0.1', 'localhost', '::1'):
                try:
                    socket.create_connection((host, {port}), timeout=1)
                    print('ESCAPED', host)
                except OSError:
                    pass
            """,
        )
        with pytest.raises(TimeoutError):
            server.accept()
    finally:
        server.close()


def test_internet(clean: Sandbox, need: Need) -> None:
    need("network_namespace")
    run(
        clean,
        "import socket\ntry:\n    socket.create_connection(('1.1.1.1', 53), timeout=1)\n"
        "    print('ESCAPED')\nexcept OSError:\n    pass",
    )


def test_fork_bomb(clean: Sandbox, need: Need) -> None:
    need("no_root")  # the kernel never applies RLIMIT_NPROC to uid 0: a bomb would be bounded only by the timeout
    result = run(
        clean,
        """
        import os
        while True:
            try:
                os.fork()
            except OSError:
                pass
        """,
        timeout_s=1,
    )
    assert result.status in ("timeout", "error"), result


def test_thread_bomb(clean: Sandbox) -> None:
    result = run(
        clean,
        """
        import threading, time
        while True:
            threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
        """,
        timeout_s=1,
    )
    assert result.status == "error" and "can't start new thread" in result.stderr, result


def test_memory_bomb(clean: Sandbox) -> None:
    result = run(clean, "blocks = []\nwhile True:\n    blocks.append(bytearray(50 * 2**20))", memory_mb=128)
    assert result.status == "memory", result
    result = run(clean, "x = bytearray(10**11)", memory_mb=128)
    assert result.status == "memory", result


def test_infinite_loop(clean: Sandbox) -> None:
    start = time.monotonic()
    result = run(clean, "while True:\n    pass", timeout_s=0.5)
    assert result.status == "timeout" and result.returncode is None, result
    assert time.monotonic() - start < 3


def test_spin_ignoring_sigterm(clean: Sandbox) -> None:
    code = "import signal\nfor s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):\n"
    code += "    signal.signal(s, signal.SIG_IGN)\nwhile True:\n    pass"
    result = run(clean, code, timeout_s=0.5)
    assert result.status == "timeout", result


def test_gigabytes_of_output(clean: Sandbox) -> None:
    start = time.monotonic()
    result = run(clean, "import os\nchunk = b'x' * 2**20\nwhile True:\n    os.write(1, chunk)", timeout_s=10)
    assert result.status == "output_limit", result
    assert result.stdout.endswith("[... output truncated at 1000000 bytes]")
    assert len(result.stdout) < 1_000_100
    assert time.monotonic() - start < 3
    result = run(clean, "import sys\nwhile True:\n    sys.stderr.write('e' * 4096)", timeout_s=10)
    assert result.status == "output_limit" and result.stderr.endswith("bytes]"), result.status


def test_kill_parent(clean: Sandbox) -> None:
    server_pid = clean._holder.client.server_pid
    run(
        clean,
        "import os\nfor pid in (os.getppid(), 0, -1, 1):\n    try: os.kill(pid, 9)\n    except OSError: pass",
    )
    run(clean, f"import os\ntry:\n    os.kill({server_pid}, 9); print('ESCAPED')\nexcept OSError: pass")
    run(clean, f"import os\ntry:\n    os.kill({os.getpid()}, 9); print('ESCAPED')\nexcept OSError: pass")
    os.kill(server_pid, 0)  # still there
    assert clean._holder.client.alive


def test_raise_own_rlimits(clean: Sandbox) -> None:
    run(
        clean,
        """
        import resource
        for which in (resource.RLIMIT_AS, resource.RLIMIT_CPU, resource.RLIMIT_NPROC, resource.RLIMIT_FSIZE):
            try:
                resource.setrlimit(which, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
                print('ESCAPED', which)
            except (ValueError, OSError):
                pass
        """,
    )


def test_daemon_outliving_the_run(clean: Sandbox, tmp_path: Path) -> None:
    tmp_path.chmod(0o777)
    marker = tmp_path / "daemon-was-here"
    result = run(
        clean,
        f"""
        import os, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                time.sleep(0.4)
                for path in ({str(marker)!r}, 'daemon-was-here'):
                    try:
                        open(path, 'w').write('alive')
                    except OSError:
                        pass
                time.sleep(60)
            os._exit(0)
        print('parent done')
        """,
    )
    assert result.ok, result
    time.sleep(0.8)  # the daemon would have written by now
    assert not marker.exists()


def test_environment_secret(clean: Sandbox, secret: str) -> None:
    assert os.environ.get("HONE_TEST_SECRET") == secret
    result = run(
        clean,
        f"""
        import os, glob
        if {secret!r} in repr(dict(os.environ)):
            print('ESCAPED env')
        for path in glob.glob('/proc/*/environ'):
            try:
                if b{secret!r} in open(path, 'rb').read():
                    print('ESCAPED', path)
            except OSError:
                pass
        print(sorted(os.environ))
        """,
    )
    assert "HONE_TEST_SECRET" not in result.stdout


def test_parent_proc_files(clean: Sandbox, need: Need) -> None:
    need("pid_namespace")
    pid = os.getpid()
    run(
        clean,
        f"""
        import os
        for name in ('environ', 'mem', 'cmdline', 'maps'):
            try:
                with open('/proc/{pid}/' + name, 'rb') as f:
                    print('ESCAPED', name, f.read(64))
            except OSError:
                pass
        print(os.listdir('/proc/self/..')[:0])
        """,
    )


def test_ctypes_segfault(clean: Sandbox) -> None:
    result = run(clean, "import ctypes\nctypes.string_at(0)")
    assert result.status == "killed" and result.returncode == -11, result


def test_recursion_blowup(clean: Sandbox) -> None:
    result = run(clean, "import sys\nsys.setrecursionlimit(10**6)\ndef f(n): return f(n + 1)\nf(0)", timeout_s=5)
    assert result.status in ("error", "killed"), result


def test_delete_own_workdir(clean: Sandbox) -> None:
    result = run(
        clean,
        "import os, shutil\nopen('f', 'w').write('x')\n"
        "shutil.rmtree(os.getcwd(), ignore_errors=True)\nos.rmdir(os.getcwd())",
    )
    assert result.status == "error", result
    assert clean.run_sync("open('g', 'w').write('y'); print(open('g').read())").stdout == "y\n"


def test_fill_the_disk(clean: Sandbox, need: Need) -> None:
    need("filesystem")
    result = run(
        clean,
        """
        written = 0
        try:
            with open('fill', 'wb') as f:
                while True:
                    f.write(b'\\0' * 2**20)
                    f.flush()
                    written += 2**20
        except OSError as exc:
            print(written, exc.errno)
        try:
            with open('/tmp/fill', 'wb') as f:
                f.write(b'\\0' * 2**20)
        except OSError as exc:
            print('tmp full too', exc.errno)
        """,
        memory_mb=64,
    )
    written = int(result.stdout.split()[0])
    assert 0 < written <= 64 * 2**20, result
    assert "tmp full too" in result.stdout  # /tmp shares the cap
    assert not Path("/tmp/fill").exists()


def test_shell_is_contained(clean: Sandbox, host_secret: Path, need: Need) -> None:
    need("no_root")
    # The shell runs (subprocess works in the sandbox); every layer applies to it as to Python.
    result = run(
        clean,
        f"""
        import os, sys
        script = '''
        id -u
        cat /etc/shadow && echo ESCAPED shadow
        cat {host_secret} && echo ESCAPED secret
        echo x > /etc/pwned && echo ESCAPED etc
        kill -9 1 2>/dev/null; echo survived
        ls /root/.ssh 2>/dev/null && echo ESCAPED ssh
        '''
        sys.stdout.flush()
        os.system(script)
        """,
    )
    assert result.ok and "survived" in result.stdout, result
    assert result.stdout.split()[0] != "0"


def test_no_privileges(clean: Sandbox, need: Need) -> None:
    need("no_root", "user_namespace")
    run(
        clean,
        """
        import ctypes, os
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.mount(b'tmpfs', b'/tmp', b'tmpfs', 0, None) == 0: print('ESCAPED mount')
        if libc.unshare(0x10000000) == 0: print('ESCAPED userns')
        if libc.unshare(0x00020000) == 0: print('ESCAPED mntns')
        if libc.ptrace(16, 1, 0, 0) == 0: print('ESCAPED ptrace')
        for path in ('/proc/sys/kernel/hostname', '/proc/sysrq-trigger'):
            try:
                open(path, 'w').write('x'); print('ESCAPED', path)
            except OSError:
                pass
        status = open('/proc/self/status').read()
        if 'CapEff:\\t0000000000000000' not in status: print('ESCAPED caps')
        if os.getuid() == 0 or os.geteuid() == 0: print('ESCAPED root')
        """,
    )


def test_concurrent_sandboxes_keep_files_apart(need: Need) -> None:
    need("filesystem", "pid_namespace")
    program = """
import glob, os, time
me = {i}
open('secret-%d' % me, 'w').write('mine-%d' % me)
open('/tmp/secret-%d' % me, 'w').write('mine-%d' % me)
time.sleep(0.5)  # everyone is running now
found = set()
for pattern in ('*', '/tmp/*', '/sandbox/*', '/proc/*/root/sandbox/*', '/proc/*/cwd/*', '/dev/shm/*'):
    for path in glob.glob(pattern):
        try:
            found.add(open(path).read())
        except OSError:
            pass
print(sorted(found))
"""
    with Sandbox(workers=32, timeout_s=10, memory_mb=128) as pool:
        results = pool.map([program.replace("{i}", str(i)) for i in range(32)])
        assert [r.status for r in results] == ["ok"] * 32, [r for r in results if not r.ok][:1]
        for i, result in enumerate(results):
            assert json.loads(result.stdout.replace("'", '"')) == [f"mine-{i}"], result.stdout


def test_concurrent_sandboxes_cannot_talk(need: Need) -> None:
    need("network_namespace")
    listener = """
import socket, time
s = socket.socket(socket.AF_UNIX)
s.bind('\\0hone-adversarial')
s.listen()
t = socket.socket(); t.bind(('127.0.0.1', 45873)); t.listen()
s.settimeout(1.5)
try:
    s.accept(); print('ESCAPED accepted')
except OSError:
    print('alone')
"""
    talker = """
import socket, time
time.sleep(0.3)
for family, addr in ((socket.AF_UNIX, '\\0hone-adversarial'), (socket.AF_INET, ('127.0.0.1', 45873))):
    try:
        socket.socket(family).connect(addr); print('ESCAPED', addr)
    except OSError:
        pass
"""
    with Sandbox(workers=2, timeout_s=5) as pool:
        results = pool.map([listener, talker])
    assert results[0].stdout == "alone\n", results
    assert "ESCAPED" not in results[1].stdout, results


def test_host_unharmed_by_a_storm(clean: Sandbox) -> None:
    """Many hostile programs at once; the host process and its threads carry on."""
    ticks: list[float] = []
    stop = threading.Event()

    def heartbeat() -> None:
        while not stop.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.01)

    beat = threading.Thread(target=heartbeat)
    beat.start()
    try:
        codes = ["while True: pass", "x = bytearray(10**10)", "import os\nwhile True: os.write(1, b'x' * 65536)"] * 3
        results = clean.map(codes, timeout_s=0.5, memory_mb=128)
    finally:
        stop.set()
        beat.join()
    assert {r.status for r in results} == {"timeout", "memory", "output_limit"}
    assert max(b - a for a, b in itertools.pairwise(ticks)) < 1.0  # never frozen (generous: CI is shared)


# ----- attacks on the sandbox itself, each while honest runs are in flight on the same server ------------

# Writes `payload` (bytes) to every descriptor above stdio that takes it: whatever the server may read.
SPRAY = """
import os
def spray(payload):
    hit = []
    for fd in range(3, 256):
        try:
            os.write(fd, payload)
            hit.append(fd)
        except OSError:
            pass
    return hit
"""


def frame(obj: object) -> bytes:
    """A message in the protocol's framing (4-byte length, JSON), as a forger would write it."""
    data = json.dumps(obj).encode()
    return len(data).to_bytes(4, "big") + data


def bystanders(sb: Sandbox, attack: Callable[[], object]) -> object:
    """Run `attack` while two honest runs are in flight; both must finish right, the sleeper's timeout on time."""

    def sleeper() -> tuple[str, float]:
        start = time.monotonic()
        result = sb.run_sync("import time\nprint('up', flush=True)\ntime.sleep(60)", timeout_s=1)
        return result.status, time.monotonic() - start

    server = sb._holder.client.server_pid
    with ThreadPoolExecutor(2) as pool:
        honest = pool.submit(sb.run_sync, "import time\ntime.sleep(0.5)\nprint(sum(range(10)))", timeout_s=60)
        slept = pool.submit(sleeper)
        time.sleep(0.2)  # both are running now
        outcome = attack()
        done = honest.result(timeout=120)
        status, took = slept.result(timeout=120)
    assert (done.status, done.stdout) == ("ok", "45\n"), done
    # Generous: the machine is loaded. A starved watcher takes as long as the attack lasts (15 s and more).
    assert status == "timeout" and took < 10, (status, took)
    assert sb._holder.client.server_pid == server and sb._holder.client.alive, "the fork server died"
    return outcome


def test_only_stdio_is_open(clean: Sandbox) -> None:
    # No descriptor but the program's own pipes: nothing the server reads can be written by the program.
    code = "import os\nfds = sorted(int(fd) for fd in os.listdir('/proc/self/fd'))\nprint(fds[:-1])"
    result = bystanders(clean, lambda: run(clean, code))
    assert isinstance(result, ExecResult) and result.stdout == "[0, 1, 2]\n", result


FORGERIES = {
    # A deeply nested message: a parser's recursion limit.
    "nested": (200_000).to_bytes(4, "big") + b"[" * 100_000 + b"]" * 100_000,
    # Statuses only the sandbox may report.
    "setup_error": frame({"setup_error": {"layer": "filesystem", "error": "forged"}}),
    "memory": frame({"memory": True}),
    "ready_done": frame({"ready": True}) + frame({"done": True, "rc": "not a number"}),
    # Not even valid framing.
    "garbage": b"\xff" * 4096,
}


@pytest.mark.parametrize("kind", sorted(FORGERIES))
def test_forged_status_is_ignored(clean: Sandbox, kind: str) -> None:
    payload = FORGERIES[kind]
    code = SPRAY + f"hit = spray({payload!r})\nprint('sprayed', hit, flush=True)\nimport ctypes; ctypes.string_at(0)"
    result = bystanders(clean, lambda: run(clean, code))
    # The program's own, honest outcome: it segfaulted (no forged setup error, no forged memory status).
    assert isinstance(result, ExecResult), result
    assert (result.status, result.stdout) == ("killed", "sprayed []\n"), result


def test_status_flood_starves_no_watcher(clean: Sandbox) -> None:
    # Fifteen seconds of tiny valid frames on every writable descriptor: the server must keep enforcing timeouts.
    code = SPRAY + (
        "import time\nend = time.monotonic() + 15\nhits = set()\n"
        f"while time.monotonic() < end:\n    hits.update(spray({frame({}) * 512!r}))\n"
        "    if not hits: break\nprint('flooded', sorted(hits))"
    )
    result = bystanders(clean, lambda: run(clean, code, timeout_s=30))
    assert isinstance(result, ExecResult) and result.stdout == "flooded []\n", result


def _peak_rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))


def test_server_memory_is_not_the_programs(clean: Sandbox) -> None:
    # Announce a 250 MB message, then send 200 MB of it (one 1 MB buffer, so the program itself stays small).
    server = clean._holder.client.server_pid
    before = _peak_rss_kb(server)
    code = SPRAY + (
        "hits = spray((250 << 20).to_bytes(4, 'big'))\nchunk = b'[' * (1 << 20)\n"
        "for _ in range(200):\n    hits += spray(chunk)\nprint('sent', sorted(set(hits)))"
    )
    result = bystanders(clean, lambda: run(clean, code, timeout_s=30, memory_mb=128))
    assert isinstance(result, ExecResult) and result.stdout == "sent []\n", result
    assert _peak_rss_kb(server) - before < 64 * 1024, "the server buffered what a program wrote"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"code": "#" * (5 << 20)}, r"code is \d+ bytes, over the sandbox's limit of 4194304"),
        ({"code": "#" + "\u00e9" * (3 << 20)}, r"code is 6291457 bytes"),  # 3 Mi characters, 6 MiB as UTF-8
        ({"stdin": "x" * (17 << 20)}, r"stdin is \d+ bytes, over the sandbox's limit of 16777216"),
        ({"files": {"big.bin": b"x" * (200 << 20)}}, r"files hold over 16777216 bytes"),
        ({"files": {f"f{i}": "" for i in range(1001)}}, r"1001 files, over the sandbox's limit of 1000"),
        ({"files": {"d/" * 600 + "f": ""}}, r"too long: at most 1024 bytes"),
        ({"files": {"n" * 300: ""}}, r"255 per part"),
        ({"max_output_bytes": 1 << 30}, r"max_output_bytes must be an int in 1\.\.16777216"),
    ],
)
def test_oversized_inputs_are_refused_up_front(clean: Sandbox, kwargs: dict[str, object], match: str) -> None:
    args = {"code": "print(1)", **kwargs}

    def attack() -> None:
        with pytest.raises(SandboxError, match=match):
            clean.run_sync(**args)  # type: ignore[arg-type]

    bystanders(clean, attack)


def test_session_results_cannot_be_forged(clean: Sandbox) -> None:
    # A cell leaves a thread behind that forges "cell done, rc 0" (as a record without the nonce, and as
    # the old protocol's frame) on every descriptor while the next cell runs: that cell must not report
    # ok without having run.
    record, old = bytes(16) + bytes(4), frame({"done": True, "rc": 0})
    thief = SPRAY + (
        "import threading, time\n"
        "def forge():\n    time.sleep(0.3)\n    while True:\n"
        f"        spray({record!r})\n        time.sleep(0.05)\n        spray({old!r})\n"
        "threading.Thread(target=forge, daemon=True).start()"
    )

    def attack() -> list[object]:
        seen: list[object] = []
        with clean.session(timeout_s=5) as s:
            seen.append(s.run(thief))
            for _ in range(3):
                try:
                    seen.append(s.run("import time\ntime.sleep(0.5)\nprint('really ran')"))
                except SandboxError as exc:
                    seen.append(str(exc))
        return seen

    seen = bystanders(clean, attack)
    assert isinstance(seen, list)
    for cell in seen[1:]:
        # Killed for tampering (or refused as dead afterwards), or really run: never "ok" without running.
        if isinstance(cell, ExecResult) and cell.status == "ok":
            assert cell.stdout == "really ran\n", seen
    assert any(isinstance(c, str) and "result channel" in c for c in seen) or any(
        isinstance(c, ExecResult) and c.status == "killed" for c in seen
    ), seen


def test_session_frame_with_bad_return_code(clean: Sandbox) -> None:
    # Old protocol: a "done" frame with a non-integer return code crashed the server with every run in flight.
    code = SPRAY + f"print('sprayed', spray({frame({'done': True, 'rc': 'x'})!r}))"

    def attack() -> ExecResult:
        with clean.session() as s:
            return s.run(code)

    result = bystanders(clean, attack)
    # The session's result channel took the frame: that session alone is killed for it.
    assert isinstance(result, ExecResult) and result.status == "killed", result


def test_a_bad_request_fails_alone(clean: Sandbox) -> None:
    # Whatever goes wrong while the server handles one request is that request's error, not every run's.
    def attack() -> None:
        bad = {"op": "run", "code": "print(1)", "stdin": "", "files": {}, "limits": {"timeout_s": "soon"}}
        _, fut = clean._holder.client.submit(bad)
        with pytest.raises(SandboxError, match="could not handle a request"):
            fut.result(timeout=60)

    bystanders(clean, attack)


def test_a_timeout_of_months_fails_no_run(clean: Sandbox) -> None:
    # Alone in flight, a run's deadline set the server's poll() wait: past about 24 days poll() raised
    # OverflowError and the server died with every session and run it held.
    def attack() -> tuple[ExecResult, ExecResult]:
        with clean.session(timeout_s=30) as s:
            assert s.run("x = 41").ok
            long = run(clean, "import time\ntime.sleep(2)\nprint('slept')", timeout_s=1e7)  # the bystanders are over
            return long, s.run("print(x + 1)")

    long, cell = bystanders(clean, attack)  # type: ignore[misc]
    assert (long.status, long.stdout) == ("ok", "slept\n"), long
    assert (cell.status, cell.stdout) == ("ok", "42\n"), cell


# Scans every readable mapping of its own memory for anything shaped like a secret of the test
# below, raw or base64 (the form files and stdin travel in). Its own literals are split so that
# they never match.
MEMORY_SCAN = r"""
import base64, re, sys
mine = sys.stdin.read()
head = b"hone-" + b"s3cr3t-"
raw = re.compile(re.escape(head) + rb"[0-9a-f]{30}")
b64 = re.compile(re.escape(base64.b64encode(head)) + rb"[A-Za-z0-9+/]{40}")
found = set()
with open("/proc/self/maps") as maps, open("/proc/self/mem", "rb", 0) as mem:
    for line in maps:
        span, perms = line.split()[:2]
        lo, hi = (int(v, 16) for v in span.split("-"))
        if "r" not in perms or hi - lo > 1 << 28 or line.rstrip().endswith(("[vvar]", "[vsyscall]")):
            continue
        try:
            mem.seek(lo)
            block = mem.read(hi - lo)
        except (OSError, OverflowError, ValueError):
            continue
        found.update(m.decode() for m in raw.findall(block))
        for m in b64.findall(block):
            found.add(base64.b64decode(m).decode("ascii", "replace"))
print("\n".join(sorted(found)))
"""


def test_a_run_cannot_read_other_runs_data(clean: Sandbox) -> None:
    # The fork server holds every request (queued, running, and the freed bytes of finished ones);
    # a program forked from it could copy a sibling's code. No run may see another's code, stdin, files
    # or output, whether that run finished before or is running alongside.
    def secret() -> str:
        return "hone-s3cr3t-" + uuid.uuid4().hex[:30]

    others: set[str] = set()

    def victim(sleep: float) -> tuple[str, str, dict[str, str | bytes]]:
        code_s, stdin_s, file_s, bin_s, out_s = (secret() for _ in range(5))
        others.update((code_s, stdin_s, file_s, bin_s, out_s))
        # The output secret is built at run time: it is in no request, only in what the run printed.
        code = f"import sys, time\nsys.stdin.read()\nprint({out_s[::-1]!r}[::-1])\ntime.sleep({sleep})\n# {code_s}\n"
        return code, stdin_s, {"notes.txt": file_s, "sub/blob.bin": bin_s.encode()}

    for _ in range(3):  # finished before the hostile run starts
        code, stdin, files = victim(0)
        assert clean.run_sync(code, stdin=stdin, files=files).ok

    async def scan() -> tuple[str, ExecResult]:
        running = []
        for _ in range(2):  # in flight while it runs (the pool has 4 workers)
            code, stdin, files = victim(60)
            running.append(asyncio.ensure_future(clean.run(code, stdin=stdin, files=files, timeout_s=60)))
        mine = secret()
        hostile = await clean.run(MEMORY_SCAN, stdin=mine, timeout_s=60, memory_mb=512)
        assert not any(task.done() for task in running), "a victim ended before the scan did: it proves nothing"
        for task in running:
            task.cancel()  # kills its run
        await asyncio.gather(*running, return_exceptions=True)
        return mine, hostile

    mine, hostile = asyncio.run(scan())
    assert hostile.ok, hostile
    found = set(hostile.stdout.split())
    assert mine in found, f"the scan did not even find its own stdin: {hostile}"
    assert not found & others, f"a run read {len(found & others)} secrets of other runs from its memory"
