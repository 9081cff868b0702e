"""JSON Schema export of the trajectory format (checked in at `schemas/trajectory.schema.json`)."""

from __future__ import annotations

import json
from typing import Any

from ._trajectory import SCHEMA_VERSION, Trajectory


def trajectory_schema() -> dict[str, Any]:
    """The JSON Schema of `Trajectory`, with its version as `$id`."""
    schema = Trajectory.model_json_schema()
    schema["$id"] = f"https://hone.dev/schemas/{SCHEMA_VERSION}"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def trajectory_schema_json() -> str:
    return json.dumps(trajectory_schema(), indent=2, sort_keys=True) + "\n"
