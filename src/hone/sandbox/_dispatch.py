"""The host's requests to the server (length-prefixed JSON): run, open, exec, close, cancel."""

from __future__ import annotations

import base64
import os
from typing import Any

from . import _proto
from ._child import SetupError
from ._jobs import RunJob, SessionJob
from ._limits import Limits
from ._loop import Loop


class Dispatcher(Loop):
    """Turns each request into a job or an action on one; a bad request fails alone."""

    def __init__(self, proto_in: int, proto_out: int, workers: int) -> None:
        super().__init__(proto_in, proto_out, workers)
        self.inbox = _proto.FrameBuffer()

    def _on_host(self) -> None:
        data = os.read(self.proto_in, 1 << 20)
        if not data:
            self._shutdown()
        for msg in self.inbox.feed(data):
            try:
                self._handle(msg)
            except Exception as exc:  # one bad request fails alone
                rid = msg.get("id")
                error = f"the sandbox server could not handle a request: {type(exc).__name__}: {exc}"
                self.reply({"id": rid if isinstance(rid, int) else 0, "error": error})

    def _handle(self, msg: dict[str, Any]) -> None:
        op, rid = msg.get("op"), int(msg.get("id", 0))
        if op == "run":
            stdin = base64.b64decode(msg["stdin"])
            spec = self.spec(Limits.from_wire(msg["limits"]), code=msg["code"], files=msg["files"])
            self.queue.append(RunJob(rid, spec, stdin_data=stdin))
            self.pump()
        elif op == "open":
            try:
                self.spawn(SessionJob(rid, self.spec(Limits.from_wire(msg["limits"]), session=True)))
            except (OSError, SetupError) as exc:
                self.reply({"id": rid, "error": f"could not start a session: {exc}"})
        elif op == "exec":
            self._exec(rid, int(msg["sid"]), str(msg["code"]), float(msg["timeout_s"]))
        elif op == "close":
            sess = self.jobs.get(int(msg["sid"]))
            if isinstance(sess, SessionJob):
                self.stop(sess, "exited")
        elif op == "cancel":
            for queued in [j for j in self.queue if j.id == rid]:
                self.queue.remove(queued)
            running = self.jobs.get(rid)
            if isinstance(running, RunJob):
                self.stop(running, "timeout")

    def _exec(self, rid: int, sid: int, code: str, timeout_s: float) -> None:
        sess = self.jobs.get(sid)
        if not isinstance(sess, SessionJob) or not sess.ready or sess.cmd is None or sess.watch is None:
            self.reply({"id": rid, "error": f"the session is dead ({self.dead_sessions.get(sid, 'closed')})"})
            return
        if sess.cell_id is not None:
            self.reply({"id": rid, "error": "a call is already running in this session"})
            return
        sess.start_cell(rid, code, timeout_s, self)
