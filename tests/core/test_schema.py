import json
from pathlib import Path

from hone.core import (
    SCHEMA_VERSION,
    ErrorInfo,
    Message,
    ModelCall,
    Step,
    ToolCall,
    ToolError,
    Trajectory,
    trajectory_schema_json,
)

ROOT = Path(__file__).resolve().parents[2]


def test_checked_in_schema_is_current() -> None:
    path = ROOT / "schemas" / "trajectory.schema.json"
    assert path.read_text() == trajectory_schema_json(), "run: hone schema > schemas/trajectory.schema.json"


def test_trajectory_json_round_trip_and_version() -> None:
    call = ModelCall(
        model="m",
        request_digest="d",
        message=Message.assistant(None, [ToolCall(id="c", name="calc", arguments_raw="{bad", parse_error="x")]),
        prompt_token_ids=[1, 2],
        completion_token_ids=[3],
        completion_logprobs=[-0.5],
    )
    tr = Trajectory(task_id="t", env="e", model="m", steps=[Step(call=call)], parent_ids=["a", "b"])
    tr.error = ErrorInfo.from_exception(ToolError("broken"), step_index=0, raw="{bad")
    data = json.loads(tr.model_dump_json())
    assert data["schema_version"] == SCHEMA_VERSION
    back = Trajectory.model_validate_json(tr.model_dump_json())
    assert back == tr
    assert back.error is not None and back.error.type == "ToolError"
    assert back.messages()[-1].tool_calls is not None
