"""Group commit: finished trajectories are written as soon as the store is free.

One commit per trajectory costs more CPU than the rest of a turn on SQLite; the writer
drains whatever finished while the previous write ran and stores it in one transaction,
off the event loop. With no backlog each trajectory is written alone, at once.
"""

from __future__ import annotations

import asyncio

from hone.core import Trajectory
from hone.store import TrajectoryStore


class StoreWriter:
    """Writes trajectories to a store from a background task; `close()` flushes."""

    def __init__(self, store: TrajectoryStore) -> None:
        self.store = store
        self._queue: asyncio.Queue[Trajectory | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.written = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    def put(self, trajectory: Trajectory) -> None:
        self._queue.put_nowait(trajectory)

    async def _run(self) -> None:
        closing = False
        while not closing:
            first = await self._queue.get()
            if first is None:
                return
            batch = [first]
            while not self._queue.empty():
                item = self._queue.get_nowait()
                if item is None:
                    closing = True
                    break
                batch.append(item)
            # Shielded: a cancelled run still stores what had finished.
            await asyncio.shield(asyncio.to_thread(self._write, batch))

    def _write(self, batch: list[Trajectory]) -> None:
        self.written += self.store.put_many(batch)

    async def close(self) -> None:
        """Write everything queued, then stop. Re-raises a store failure."""
        if self._task is None:
            return
        self._queue.put_nowait(None)
        await self._task
