"""hone.core: the data model every other layer speaks (pydantic, stdlib only)."""

from ._aio import run_sync
from ._errors import (
    BudgetExceeded,
    ConfigError,
    ContextOverflow,
    DataError,
    EnvError,
    EpisodeTimeout,
    GradeError,
    HoneError,
    ModelError,
    StoreError,
    ToolError,
)
from ._ids import new_id, stable_hash, stable_int
from ._ledger import Account, Budget, Ledger
from ._messages import TOOL_ERROR_PREFIX, Message, Role, ToolCall, ToolSpec, duplicate_tool_name
from ._model_call import ModelCall, Sampling, Usage
from ._numbers import numbers_match, parse_number
from ._options import options_model, parse_options, validate_options
from ._registry import Registry, import_object
from ._schema import trajectory_schema, trajectory_schema_json
from ._trajectory import (
    SCHEMA_VERSION,
    ErrorInfo,
    Feedback,
    FeedbackSource,
    Status,
    Step,
    StopReason,
    Task,
    Trajectory,
    Visibility,
    hidden_reward,
    upgrade_v1,
    utcnow,
)

__all__ = [
    "SCHEMA_VERSION",
    "TOOL_ERROR_PREFIX",
    "Account",
    "Budget",
    "BudgetExceeded",
    "ConfigError",
    "ContextOverflow",
    "DataError",
    "EnvError",
    "EpisodeTimeout",
    "ErrorInfo",
    "Feedback",
    "FeedbackSource",
    "GradeError",
    "HoneError",
    "Ledger",
    "Message",
    "ModelCall",
    "ModelError",
    "Registry",
    "options_model",
    "parse_options",
    "validate_options",
    "Role",
    "Sampling",
    "Status",
    "Step",
    "StopReason",
    "StoreError",
    "Task",
    "ToolCall",
    "ToolError",
    "ToolSpec",
    "Trajectory",
    "Usage",
    "Visibility",
    "duplicate_tool_name",
    "hidden_reward",
    "import_object",
    "new_id",
    "numbers_match",
    "parse_number",
    "run_sync",
    "stable_hash",
    "stable_int",
    "trajectory_schema",
    "trajectory_schema_json",
    "upgrade_v1",
    "utcnow",
]
