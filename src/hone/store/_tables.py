"""The store's tables (SQLAlchemy Core): portable across SQLite and server databases."""

from __future__ import annotations

import sqlalchemy as sa

SCHEMA_VERSION = 3
"""Bumped when a table changes; `migrate` brings an older store up to it on open (new tables,
such as `leases`, are simply created). 2: `runs.parent_id`. 3: the `ix_trajectories_view` index."""

metadata = sa.MetaData()

meta_table = sa.Table("meta", metadata, sa.Column("key", sa.String(64), primary_key=True), sa.Column("value", sa.Text))

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.String(128), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("parent_id", sa.String(128), index=True),
    sa.Column("env", sa.String(256), nullable=False),
    sa.Column("model", sa.String(512), nullable=False),
    sa.Column("split", sa.String(64)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.Column("config", sa.Text, nullable=False),  # JSON text: portable across dialects
    sa.Column("summary", sa.Text, nullable=False),
)

# Indexes: the unique key (its run_id prefix serves done_keys and delete); (run_id, created_at, id)
# and (created_at, id) let `query` page in order without re-sorting the run for every page.
# `ix_trajectories_view` covers every column a run's figures and trajectory table read, so
# `hone view` aggregates and pages a 30,000-trajectory run from the index alone, never
# touching the rows (each holds its whole JSON, kilobytes with token ids).
trajectories = sa.Table(
    "trajectories",
    metadata,
    sa.Column("id", sa.String(128), primary_key=True),
    sa.Column("run_id", sa.String(128), nullable=False),
    sa.Column("task_id", sa.String(512), nullable=False),
    sa.Column("sample", sa.Integer, nullable=False),
    sa.Column("env", sa.String(256), nullable=False),
    sa.Column("split", sa.String(64)),
    sa.Column("subset", sa.String(256)),
    sa.Column("model", sa.String(512), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("reward", sa.Float),
    sa.Column("passed", sa.Boolean),
    sa.Column("strategy", sa.String(128)),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("n_steps", sa.Integer, nullable=False),
    sa.Column("calls", sa.Integer, nullable=False),
    sa.Column("tokens", sa.Integer, nullable=False),
    sa.Column("data", sa.Text, nullable=False),
    sa.UniqueConstraint("run_id", "task_id", "sample", name="uq_trajectory_key"),
    sa.Index("ix_trajectories_run_order", "run_id", "created_at", "id"),
    sa.Index("ix_trajectories_order", "created_at", "id"),
    sa.Index(
        "ix_trajectories_view",
        "run_id",
        "task_id",
        "sample",
        "subset",
        "status",
        "passed",
        "reward",
        "n_steps",
        "calls",
        "tokens",
        "created_at",
        "id",
    ),
)

feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("trajectory_id", sa.String(128), sa.ForeignKey("trajectories.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("idx", sa.Integer, primary_key=True),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("score", sa.Float),
    sa.Column("passed", sa.Boolean),
    sa.Column("visibility", sa.String(8), nullable=False),
    sa.Column("step_index", sa.Integer),
    sa.Column("text", sa.Text),
)

# One row per run being worked on: who holds it and until when (see `_lease.py`). A plain row
# taken in a transaction works on any SQL database, unlike SQLite's file locks.
leases = sa.Table(
    "leases",
    metadata,
    sa.Column("run_id", sa.String(128), primary_key=True),
    sa.Column("owner", sa.String(64), nullable=False),  # a random token per holder
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("host", sa.String(256), nullable=False),
    sa.Column("node", sa.String(256), nullable=False),  # host + boot + pid namespace: where `pid` means something
    sa.Column("acquired_at", sa.Float, nullable=False),  # Unix seconds (the holder's clock)
    sa.Column("expires_at", sa.Float, nullable=False),
)
