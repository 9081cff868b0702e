"""Export trajectories as JSONL and import JSONL or Parquet, losslessly.

Exports stream from the store and write to a temporary file renamed into place, so a
failed export never leaves a truncated file under the requested name (the other formats,
Parquet included, are in `_export_formats`). Imports validate the whole file before
storing anything, so a malformed record imports nothing.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from hone.core import ConfigError, DataError, StoreError, Trajectory

from ._base import RunInfo, TrajectoryStore

_BATCH = 1000


def _stored_json(store: TrajectoryStore, run_id: str | None) -> Iterator[str]:
    raw: Callable[..., Iterator[str]] | None = getattr(store, "query_json", None)
    if raw is not None:  # SQLStore: the stored JSON is already `model_dump_json()`; skip a parse/dump
        return raw(run_id=run_id)
    return (t.model_dump_json() for t in store.query(run_id=run_id))


def _write_atomically(path: str | Path, write: Callable[[Path], int]) -> int:
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        count = write(tmp)
        os.replace(tmp, target)
    except OSError as exc:
        blocker = next((p for p in target.parents if p.exists() and not p.is_dir()), None)
        why = f"{blocker} is a file, not a directory" if blocker else (exc.strerror or str(exc))
        raise StoreError(f"cannot write {target}: {why}") from exc
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    return count


def export_jsonl(store: TrajectoryStore, run_id: str | None, path: str | Path) -> int:
    """Write one trajectory JSON per line (all runs when `run_id` is None); returns the count."""

    def write(tmp: Path) -> int:
        n = 0
        with tmp.open("w", encoding="utf-8") as fh:
            for data in _stored_json(store, run_id):
                fh.write(data)
                fh.write("\n")
                n += 1
        return n

    return _write_atomically(path, write)


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "record"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {err['msg']}{more}"


def _jsonl_records(path: Path) -> Iterator[tuple[int, str]]:
    try:
        with path.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if line.strip():
                    yield lineno, line
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text: {exc.reason}") from exc


def _parse(records: Iterable[tuple[int, str]], where: Callable[[int], str]) -> Iterator[Trajectory]:
    for pos, text in records:
        try:
            yield Trajectory.model_validate_json(text)
        except ValidationError as exc:
            raise DataError(f"{where(pos)}: {_first_error(exc)}") from exc


def _import(store: TrajectoryStore, records: Callable[[], Iterator[Trajectory]], run_id: str | None, src: Path) -> int:
    # Pass 1 validates everything (keeping only what run records need); pass 2 stores in
    # batches. Two passes keep memory flat for huge files and still import nothing on error.
    firsts: dict[str, Trajectory] = {}
    for traj in records():
        rid = run_id if run_id is not None else traj.run_id
        first = firsts.setdefault(rid, traj)
        if traj.env != first.env:
            raise DataError(
                f"{src}: run {rid!r} would mix environments {first.env!r} and {traj.env!r}; import them apart"
            )
    if not firsts:  # an empty file is a mistake (a wrong path, a failed export), never "imported 0"
        raise DataError(f"{src}: holds no trajectories")
    for rid, traj in firsts.items():
        have = _run_env(store, rid) if rid else None
        if have is not None and have != traj.env:
            raise ConfigError(
                f"run {rid!r} in the store is of environment {have!r}, but {src} holds {traj.env!r} "
                "trajectories; import with another --run-id"
            )
    for rid, traj in firsts.items():
        if rid and store.get_run(rid) is None:
            store.save_run(
                RunInfo(
                    id=rid,
                    kind="import",
                    env=traj.env,
                    model=traj.model,
                    split=traj.split,
                    status="done",
                    config={"imported_from": str(src)},
                )
            )
    put_many: Callable[[list[Trajectory]], int] | None = getattr(store, "put_many", None)
    added = 0
    batch: list[Trajectory] = []
    for traj in records():
        batch.append(traj if run_id is None else traj.model_copy(update={"run_id": run_id}))
        if len(batch) >= _BATCH:
            added += put_many(batch) if put_many else sum(store.put(t) for t in batch)
            batch = []
    if batch:
        added += put_many(batch) if put_many else sum(store.put(t) for t in batch)
    return added


def _run_env(store: TrajectoryStore, run_id: str) -> str | None:
    """The environment a stored run's trajectories are of: a stored one's, else the run record's."""
    for traj in store.query(run_id=run_id, limit=1):
        return traj.env
    run = store.get_run(run_id)
    # A record's env is the spec it was run with: a plain name is the env's name; a plugin
    # spec ("pkg.mod:factory") says nothing about it, so only trajectories can tell.
    return run.env if run is not None and ":" not in run.env else None


def import_jsonl(store: TrajectoryStore, path: str | Path, run_id: str | None = None) -> int:
    """Import trajectories written by `export_jsonl`; returns how many were new to the store.

    `run_id` reassigns every trajectory to that run. Run records missing from the store are
    created from the first trajectory of each run (kind "import"). Already stored keys are
    skipped. A malformed line raises `DataError("PATH:LINE: what")` before anything is stored;
    so do a file without any trajectory and a run that would mix environments, and importing
    into a stored run of another environment is a `ConfigError`.
    """
    src = Path(path)
    return _import(store, lambda: _parse(_jsonl_records(src), lambda n: f"{src}:{n}"), run_id, src)


# -- Parquet ------------------------------------------------------------------------------

_PARQUET_HINT = "parquet export needs pyarrow: pip install 'hone[parquet]'"


def _pyarrow() -> tuple[Any, Any]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise ConfigError(_PARQUET_HINT) from exc
    return pa, pq


def _parquet_records(pq: Any, path: Path) -> Iterator[tuple[int, str]]:
    try:
        pf = pq.ParquetFile(str(path))
    except (OSError, ValueError) as exc:  # pyarrow raises ArrowInvalid (a ValueError) for non-Parquet
        raise DataError(f"{path}: cannot read Parquet: {exc}") from exc
    if "trajectory" not in pf.schema_arrow.names:
        raise DataError(f"{path}: no 'trajectory' column; was it written by hone's export_parquet?")
    row = 0
    for batch in pf.iter_batches(batch_size=_BATCH, columns=["trajectory"]):
        for text in batch.column(0).to_pylist():
            row += 1
            if text is None:
                raise DataError(f"{path}:row {row}: empty 'trajectory' value")
            yield row, text


def import_parquet(store: TrajectoryStore, path: str | Path, run_id: str | None = None) -> int:
    """Import a file written by `export_parquet` from its `trajectory` column (as `import_jsonl`)."""
    _, pq = _pyarrow()
    src = Path(path)
    return _import(store, lambda: _parse(_parquet_records(pq, src), lambda n: f"{src}:row {n}"), run_id, src)
