"""hone.store: where runs and trajectories are kept."""

from ._base import RunInfo, RunStatus, TrajectoryQuery, TrajectoryStore
from ._export import export_jsonl, export_parquet, import_jsonl, import_parquet
from ._open import DEFAULT_PATH, ENV_VAR, open_store, store_url
from ._sql import SCHEMA_VERSION, SQLStore

__all__ = [
    "DEFAULT_PATH",
    "ENV_VAR",
    "SCHEMA_VERSION",
    "RunInfo",
    "RunStatus",
    "SQLStore",
    "TrajectoryQuery",
    "TrajectoryStore",
    "export_jsonl",
    "export_parquet",
    "import_jsonl",
    "import_parquet",
    "open_store",
    "store_url",
]
