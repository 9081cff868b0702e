"""hone.store: where runs and trajectories are kept."""

from ._base import (
    RUN_ID_MAX,
    RunInfo,
    RunKind,
    RunStatus,
    TrajectoryQuery,
    TrajectoryStore,
    check_run_id,
    run_id_filename,
)
from ._export import export_jsonl, import_jsonl, import_parquet
from ._export_formats import EXPORT_FORMATS, export_openai, export_parquet, openai_record
from ._export_inspect import export_inspect
from ._lease import DEFAULT_TTL_S as DEFAULT_LEASE_TTL_S
from ._lease import LeaseError, LeaseKeeper
from ._open import DEFAULT_PATH, ENV_VAR, open_store, store_url
from ._sql import SQLStore
from ._tables import SCHEMA_VERSION

__all__ = [
    "DEFAULT_LEASE_TTL_S",
    "EXPORT_FORMATS",
    "RUN_ID_MAX",
    "DEFAULT_PATH",
    "ENV_VAR",
    "LeaseError",
    "LeaseKeeper",
    "SCHEMA_VERSION",
    "RunInfo",
    "RunKind",
    "RunStatus",
    "SQLStore",
    "TrajectoryQuery",
    "TrajectoryStore",
    "check_run_id",
    "export_inspect",
    "export_jsonl",
    "export_openai",
    "export_parquet",
    "import_jsonl",
    "import_parquet",
    "open_store",
    "openai_record",
    "run_id_filename",
    "store_url",
]
