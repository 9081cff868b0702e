"""`SQLStore`: the trajectory store on SQLAlchemy Core (SQLite by default, any SQLAlchemy URL).

Each trajectory is kept whole as its JSON (`data`), beside flat columns for filtering and a
`feedback` table with one row per trajectory-level Feedback for querying grades.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, NoSuchModuleError, SQLAlchemyError

from hone.core import ConfigError, Status, StoreError, Trajectory

from ._base import RunInfo, RunKind, TrajectoryQuery
from ._lease import DEFAULT_TTL_S, LeaseKeeper
from ._migrate import KINDS, lineage_v1, migrate
from ._sqlite import HINT as _HINT
from ._sqlite import prepare_dir, readonly_sqlite, sqlite_pragmas
from ._tables import SCHEMA_VERSION, feedback, leases, meta_table, metadata, runs, trajectories

_PAGE = 500  # rows per page when streaming a query; bounds memory without holding a transaction open


def _naive_utc(value: datetime) -> datetime:
    """UTC without tzinfo: what a portable DateTime column holds (naive input is taken as UTC)."""
    return value if value.tzinfo is None else value.astimezone(UTC).replace(tzinfo=None)


def _verdict(traj: Trajectory) -> bool | None:
    """Hidden grading's verdict, or None when nothing graded pass/fail."""
    verdicts = [f.passed for f in traj.feedback if f.visibility == "hidden" and f.passed is not None]
    return all(verdicts) if verdicts else None


_PLAIN = ("id", "run_id", "task_id", "sample", "env", "split", "subset", "model", "status", "reward", "strategy")
_FB_PLAIN = ("source", "name", "score", "passed", "visibility", "step_index", "text")


def _rows(traj: Trajectory) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    row = {name: getattr(traj, name) for name in _PLAIN}
    row.update(
        passed=_verdict(traj),
        created_at=_naive_utc(traj.created_at),
        n_steps=len(traj.steps),
        calls=traj.usage.calls,
        tokens=traj.usage.tokens,
        data=traj.model_dump_json(),
    )
    fb = [
        {"trajectory_id": traj.id, "idx": i, **{name: getattr(f, name) for name in _FB_PLAIN}}
        for i, f in enumerate(traj.feedback)
    ]
    return row, fb


def _reason(exc: BaseException) -> str:
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    text = str(orig).strip().splitlines()
    return text[0] if text else type(orig).__name__


class SQLStore:
    """A `TrajectoryStore` on any SQLAlchemy URL; SQLite files run in WAL mode.

    Safe for several processes at once (each opens its own `SQLStore`; SQLite serialises
    writers and `put` stays idempotent per (run_id, task_id, sample)); `lease` keeps two
    processes off one run. `readonly=True` opens an existing store without writing anything
    (not even SQLite's WAL files), so it works on a read-only file or file system. One engine
    is reused for the store's life; call `close()` or use it as a context manager.
    """

    def __init__(self, url: str, *, readonly: bool = False) -> None:
        try:
            parsed = sa.make_url(url)
        except ArgumentError as exc:
            raise StoreError(f"cannot open store {url!r}: not a path or SQLAlchemy URL; {_HINT}") from exc
        self.url: str = url
        self.path: Path | None = None
        self.readonly = readonly
        self._run_cols: list[sa.Column[Any]] = list(runs.c)
        self._v1 = False  # a v1 store opened read-only: no runs.parent_id; lineage read off ids
        is_sqlite = parsed.get_backend_name() == "sqlite"
        database = parsed.database or ""
        if is_sqlite and database in ("", ":memory:"):
            # An in-memory database is per connection: the writer thread would store every
            # trajectory somewhere no one reads, and all of it is gone when the process ends.
            raise ConfigError(
                f"store URL {url!r} names no database file (SQLite would keep the run in memory and lose it); "
                "use sqlite:///PATH or a plain path"
            )
        if is_sqlite and not database.startswith("file:"):
            self.path = Path(database).expanduser()
            if not readonly:
                prepare_dir(self.path)
        self._where = str(self.path) if self.path else parsed.render_as_string(hide_password=True)
        try:
            if readonly and self.path is not None:
                self._engine: Engine = readonly_sqlite(self.path)
            else:
                # Read-only on a server database too: every transaction refuses writes.
                ro = readonly and parsed.get_backend_name() == "postgresql"
                args = {"connect_args": {"options": "-c default_transaction_read_only=on"}} if ro else {}
                self._engine = sa.create_engine(parsed, **args)
        except (NoSuchModuleError, ImportError) as exc:
            why = f"{_reason(exc)} (unknown dialect, or its driver is not installed)"
            if parsed.get_backend_name() == "postgresql":
                why += "; pip install 'hone[postgres]' and use postgresql+psycopg://USER@HOST/DB"
            raise StoreError(f"cannot open store {self._where}: {why}; {_HINT}") from exc
        if is_sqlite and not readonly:
            sa.event.listen(self._engine, "connect", sqlite_pragmas)
        if readonly:
            self._check_schema()
        else:
            self._init_schema()
        self._ins_traj = trajectories.insert()
        self._ins_fb = feedback.insert()

    def _check_schema(self) -> None:
        """Read-only open: the store must exist and have a schema this hone can read."""
        version = sa.select(meta_table.c.value).where(meta_table.c.key == "schema_version")
        try:
            with self._engine.connect() as conn:
                found = conn.execute(version).scalar()
        except SQLAlchemyError as exc:
            self._engine.dispose()
            why = "not a hone store" if "no such table" in str(exc) else _reason(exc)
            raise StoreError(f"cannot read store at {self._where}: {why}; {_HINT}") from exc
        if found is not None and int(found) > SCHEMA_VERSION:
            msg = f"has schema version {found}, newer than this hone's {SCHEMA_VERSION}; upgrade hone or {_HINT}"
            raise StoreError(f"store at {self._where} {msg}")
        if found is not None and int(found) < 2:  # read as v1: no runs.parent_id to select
            self._run_cols = [c for c in runs.c if c.name != "parent_id"]
            self._v1 = True

    def _init_schema(self) -> None:
        # Two processes opening a fresh store can race in create_all ("table already exists",
        # or a duplicate version row); the loser's retry then finds everything in place.
        version = sa.select(meta_table.c.value).where(meta_table.c.key == "schema_version")
        found = None
        for attempt in range(3):
            try:
                with self._engine.begin() as conn:
                    if self._engine.dialect.name == "sqlite":
                        # pysqlite autocommits DDL, so two processes would interleave their
                        # CREATE TABLEs; holding the write lock makes schema creation atomic.
                        conn.exec_driver_sql("BEGIN IMMEDIATE")
                    metadata.create_all(conn)
                    found = conn.execute(version).scalar()
                    if found is None:
                        conn.execute(meta_table.insert().values(key="schema_version", value=str(SCHEMA_VERSION)))
                    elif int(found) < SCHEMA_VERSION:
                        migrate(conn, int(found))
                break
            except SQLAlchemyError as exc:
                if attempt == 2 or (not isinstance(exc, IntegrityError) and "already exists" not in str(exc)):
                    self._engine.dispose()
                    raise self._fail("write", exc) from exc
        if found is not None and int(found) > SCHEMA_VERSION:
            msg = f"has schema version {found}, newer than this hone's {SCHEMA_VERSION}; upgrade hone or {_HINT}"
            raise StoreError(f"store at {self._where} {msg}")

    def _fail(self, action: str, exc: BaseException) -> StoreError:
        return StoreError(f"cannot {action} store at {self._where}: {_reason(exc)}; {_HINT}")

    def __repr__(self) -> str:
        return f"SQLStore({self._where!r})"

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine, for read queries this class has no method for (`hone view`)."""
        return self._engine

    @property
    def where(self) -> str:
        """The store's file, or its URL without the password: for messages."""
        return self._where

    def __enter__(self) -> SQLStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the engine's connections (the store may not be used afterwards)."""
        self._engine.dispose()

    # -- runs ---------------------------------------------------------------------------

    def lease(self, run_id: str, ttl_s: float = DEFAULT_TTL_S) -> LeaseKeeper:
        """Take `run_id`'s lease for this process (renewed in the background until `close()`).

        Raises `LeaseError` naming the holder when another live process has it (see `_lease`).
        """
        if self.readonly:
            raise StoreError(f"cannot work on run {run_id!r}: store at {self._where} is open read-only")
        return LeaseKeeper(self._engine, run_id, ttl_s)

    def lease_holder(self, run_id: str) -> dict[str, Any] | None:
        """The lease row of `run_id` (owner, pid, host, node, acquired_at, expires_at), or None."""
        rows = self._select(sa.select(leases).where(leases.c.run_id == run_id))
        return dict(rows[0]._mapping) if rows else None

    def save_run(self, run: RunInfo) -> None:
        """Insert or replace the run record."""
        values = run.model_dump(exclude={"id", "config", "summary"})
        values.update(
            created_at=_naive_utc(run.created_at),
            updated_at=_naive_utc(run.updated_at),
            config=json.dumps(run.model_dump(mode="json", include={"config"})["config"]),
            summary=json.dumps(run.model_dump(mode="json", include={"summary"})["summary"]),
        )
        update = runs.update().where(runs.c.id == run.id).values(**values)
        try:
            with self._engine.begin() as conn:
                if conn.execute(update).rowcount == 0:
                    conn.execute(runs.insert().values(id=run.id, **values))
        except IntegrityError:  # another writer inserted it between our update and insert
            self._write(update)
        except SQLAlchemyError as exc:
            raise self._fail("write", exc) from exc

    def get_run(self, run_id: str) -> RunInfo | None:
        """The run record, or None."""
        found = self._runs(sa.select(*self._run_cols).where(runs.c.id == run_id))
        return found[0] if found else None

    def list_runs(self) -> list[RunInfo]:
        """All run records, newest first."""
        return self._runs(sa.select(*self._run_cols).order_by(runs.c.created_at.desc(), runs.c.id.desc()))

    def child_runs(self, parent_id: str) -> list[RunInfo]:
        """The runs whose `parent_id` is `parent_id` (a loop's, a solve's, a comparison's), oldest first."""
        order = (runs.c.created_at, runs.c.id)
        if self._v1:
            return [r for r in self._runs(sa.select(*self._run_cols).order_by(*order)) if r.parent_id == parent_id]
        return self._runs(sa.select(*self._run_cols).where(runs.c.parent_id == parent_id).order_by(*order))

    def _runs(self, stmt: sa.Select[Any]) -> list[RunInfo]:
        found = [_run_from_row(r) for r in self._select(stmt)]
        if not self._v1:
            return found
        # What migration would store, worked out on each read (a read-only store is never rewritten).
        loops = [r[0] for r in self._select(sa.select(runs.c.id).where(runs.c.kind == "loop"))]
        for run in found:
            run.parent_id, kind = lineage_v1(run.id, run.kind, loops)
            run.kind = cast(RunKind, kind)  # unchanged, or a loop child's: loop-eval, loop-collect, grpo
        return found

    def run_ids(self) -> list[str]:
        """Sorted ids of the runs that have trajectories (with or without a run record)."""
        return [r[0] for r in self._select(sa.select(trajectories.c.run_id).distinct().order_by(trajectories.c.run_id))]

    # -- trajectories -------------------------------------------------------------------

    def put(self, trajectory: Trajectory) -> bool:
        """Store a trajectory and its feedback rows in one transaction.

        Returns False, changing nothing, when its (run_id, task_id, sample) or its id is
        already stored (also when another process stored it a moment before).
        """
        row, fb = _rows(trajectory)
        return self._insert([row], fb)

    def _insert(self, rows: list[dict[str, Any]], fbs: list[dict[str, Any]]) -> bool:
        """Insert in one transaction; False (and nothing written) on a unique conflict."""
        try:
            with self._engine.begin() as conn:
                conn.execute(self._ins_traj, rows)
                if fbs:
                    conn.execute(self._ins_fb, fbs)
        except IntegrityError:
            return False
        except SQLAlchemyError as exc:
            raise self._fail("write", exc) from exc
        return True

    def put_many(self, items: Iterable[Trajectory]) -> int:
        """Store many trajectories (one transaction per 500), skipping stored keys; returns how many were new."""
        it = iter(items)
        added = 0
        while chunk := list(islice(it, _PAGE)):
            added += self._put_chunk(chunk)
        return added

    def _put_chunk(self, chunk: list[Trajectory]) -> int:
        c = trajectories.c
        key_q = sa.select(c.run_id, c.task_id, c.sample).where(
            c.run_id.in_({t.run_id for t in chunk}), c.task_id.in_({t.task_id for t in chunk})
        )
        seen: set[tuple[str, str, int]] = {(r[0], r[1], r[2]) for r in self._select(key_q)}
        seen_ids: set[str] = set()
        rows: list[dict[str, Any]] = []
        fbs: list[dict[str, Any]] = []
        fresh: list[Trajectory] = []
        for traj in chunk:
            key = (traj.run_id, traj.task_id, traj.sample)
            if key not in seen and traj.id not in seen_ids:
                seen.add(key)
                seen_ids.add(traj.id)
                row, fb = _rows(traj)
                rows.append(row)
                fbs.extend(fb)
                fresh.append(traj)
        if not rows or self._insert(rows, fbs):
            return len(rows)
        return sum(self.put(t) for t in fresh)  # a conflict (id or concurrent writer): sort it out one by one

    def get(self, trajectory_id: str) -> Trajectory | None:
        """The trajectory with this id, or None."""
        rows = self._select(sa.select(trajectories.c.data).where(trajectories.c.id == trajectory_id))
        return Trajectory.model_validate_json(rows[0][0]) if rows else None

    def query(self, query: TrajectoryQuery | None = None, **filters: Any) -> Iterator[Trajectory]:
        """Trajectories matching `query` and/or keyword filters, ordered by created_at then id.

        Keyword filters are `TrajectoryQuery` fields and override the same fields of `query`.
        Results stream page by page, so a huge run never sits in memory at once.
        """
        return (Trajectory.model_validate_json(data) for data in self.query_json(query, **filters))

    def query_json(self, query: TrajectoryQuery | None = None, **filters: Any) -> Iterator[str]:
        """Like `query`, but yields each trajectory's stored JSON text unparsed (for exports)."""
        return self._iter_json(_merge(query, filters))  # validate filters now, not at first next()

    def _iter_json(self, q: TrajectoryQuery) -> Iterator[str]:
        t = trajectories.c
        names = ("run_id", "env", "split", "task_id", "status")
        conds = [t[n] == getattr(q, n) for n in names if getattr(q, n) is not None]
        conds += [t.reward >= q.min_reward] if q.min_reward is not None else []
        conds += [t.reward <= q.max_reward] if q.max_reward is not None else []
        remaining = q.limit
        after: tuple[datetime, str] | None = None
        while remaining is None or remaining > 0:
            size = _PAGE if remaining is None else min(_PAGE, remaining)
            stmt = sa.select(t.data, t.created_at, t.id).where(*conds)
            if after is not None:
                stmt = stmt.where(sa.tuple_(t.created_at, t.id) > sa.tuple_(*after))
            page = self._select(stmt.order_by(t.created_at, t.id).limit(size))
            for row in page:
                yield row[0]
            if len(page) < size:
                return
            after = (page[-1][1], page[-1][2])
            if remaining is not None:
                remaining -= len(page)

    def done_keys(self, run_id: str) -> set[tuple[str, int]]:
        """The (task_id, sample) pairs already stored for a run."""
        stmt = sa.select(trajectories.c.task_id, trajectories.c.sample).where(trajectories.c.run_id == run_id)
        return {(r[0], r[1]) for r in self._select(stmt)}

    def count(self, run_id: str | None = None) -> int:
        """How many trajectories a run has (all runs when `run_id` is None)."""
        stmt = sa.select(sa.func.count()).select_from(trajectories)
        if run_id is not None:
            stmt = stmt.where(trajectories.c.run_id == run_id)
        return int(self._select(stmt)[0][0])

    def delete(self, run_id: str, *, status: Status | None = None) -> int:
        """Delete a run's trajectories (those with `status`, if given) and their feedback rows."""
        conds = [trajectories.c.run_id == run_id]
        if status is not None:
            conds.append(trajectories.c.status == status)
        doomed = sa.select(trajectories.c.id).where(*conds)
        return self._write(
            feedback.delete().where(feedback.c.trajectory_id.in_(doomed)), trajectories.delete().where(*conds)
        )

    def _write(self, *stmts: sa.Executable) -> int:
        """Run statements in one transaction; returns the last one's row count."""
        try:
            with self._engine.begin() as conn:
                return [int(conn.execute(stmt).rowcount) for stmt in stmts][-1]
        except SQLAlchemyError as exc:
            raise self._fail("write", exc) from exc

    def _select(self, stmt: sa.Executable) -> list[Any]:
        try:
            with self._engine.connect() as conn:
                return list(conn.execute(stmt))
        except SQLAlchemyError as exc:
            raise self._fail("read", exc) from exc


def _merge(query: TrajectoryQuery | None, filters: dict[str, Any]) -> TrajectoryQuery:
    if not filters:
        return query or TrajectoryQuery()
    unknown = sorted(set(filters) - set(TrajectoryQuery.model_fields))
    if unknown:
        known = ", ".join(TrajectoryQuery.model_fields)
        raise ConfigError(f"unknown query filter(s) {', '.join(unknown)}; known: {known}")
    base = query.model_dump(exclude_unset=True) if query else {}
    return TrajectoryQuery.model_validate({**base, **filters})


def _run_from_row(row: Any) -> RunInfo:
    m = dict(row._mapping)
    m.update(config=json.loads(m["config"]), summary=json.loads(m["summary"]))
    if m["kind"] not in KINDS:  # written by another tool or an older hone: kept, not refused
        m["summary"] = {**m["summary"], "kind": m["kind"]}
        m["kind"] = "other"
    m.update({k: m[k] if m[k].tzinfo else m[k].replace(tzinfo=UTC) for k in ("created_at", "updated_at")})
    return RunInfo.model_validate(m)
