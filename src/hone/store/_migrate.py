"""Bringing a store written by an older hone up to the current schema, on open, in place."""

from __future__ import annotations

import re
from typing import get_args

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ._base import RunKind
from ._tables import SCHEMA_VERSION, meta_table, runs, trajectories

KINDS: frozenset[str] = frozenset(get_args(RunKind))

_LOOP_CHILD = {"eval": "loop-eval", "collect": "loop-collect", "grpo": "grpo"}
_CANDIDATES = "-candidates"


def migrate(conn: Connection, found: int) -> None:
    """Upgrade the schema from version `found` inside the caller's transaction (nothing is lost)."""
    if found < 2:
        _add_parent_id(conn)
    if found < 3:  # v2 -> v3: the covering index `hone view` reads runs' figures from
        for index in trajectories.indexes:
            index.create(conn, checkfirst=True)
    conn.execute(meta_table.update().where(meta_table.c.key == "schema_version").values(value=str(SCHEMA_VERSION)))


def _add_parent_id(conn: Connection) -> None:
    """v1 -> v2: `runs.parent_id`, filled in from the id suffixes v1 encoded lineage in.

    A v1 loop named its runs `<loop>-eval-<i>`, `<loop>-collect-<i>` and `<loop>-grpo-<i>`
    (evaluations and collections with kind "eval"), and a solve kept its candidates as run
    `<run>-candidates`; those get their parent and, for a loop's, their kind.
    """
    conn.execute(sa.text("ALTER TABLE runs ADD COLUMN parent_id VARCHAR(128)"))
    for index in runs.indexes:
        index.create(conn, checkfirst=True)
    found = {row[0]: row[1] for row in conn.execute(sa.select(runs.c.id, runs.c.kind))}
    loops = [rid for rid, kind in found.items() if kind == "loop"]
    for rid, kind in found.items():
        parent, new_kind = lineage_v1(rid, kind, loops)
        if parent is not None:
            conn.execute(runs.update().where(runs.c.id == rid).values(parent_id=parent, kind=new_kind))


def lineage_v1(run_id: str, kind: str, loops: list[str]) -> tuple[str | None, str]:
    """(parent id, kind) of a v1 run, read off its id; (None, kind) when the id says nothing."""
    if kind.endswith(_CANDIDATES) and run_id.endswith(_CANDIDATES):
        return run_id.removesuffix(_CANDIDATES), kind
    for loop in loops:
        match = re.fullmatch(re.escape(loop) + r"-(eval|collect|grpo)-\d+", run_id)
        if match:
            return loop, _LOOP_CHILD[match[1]]
    return None, kind
