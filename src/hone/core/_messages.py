"""Chat messages, tool calls and tool specs: the vocabulary shared by models and environments."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["system", "user", "assistant", "tool"]

TOOL_ERROR_PREFIX = "error: "
"""What a failed tool call's observation text starts with (the model's view; `Message.error` is the record's)."""


class ToolCall(BaseModel):
    """One call of a tool by the model.

    `arguments` is the parsed JSON object. When the model emitted arguments that are not a
    JSON object, `arguments` is empty, `arguments_raw` keeps the exact text and
    `parse_error` says what is wrong, so nothing the model wrote is lost.
    """

    model_config = ConfigDict(extra="forbid")

    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    arguments_raw: str | None = None
    parse_error: str | None = None


class ToolSpec(BaseModel):
    """A tool offered to the model: name, description and a JSON Schema for its arguments."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})

    def to_openai(self) -> dict[str, Any]:
        """The tool in the OpenAI chat-completions `tools` format."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


def duplicate_tool_name(tools: Iterable[ToolSpec | str]) -> str | None:
    """The first name that two of `tools` share, or None: a tool set must name each tool once
    (a call names its tool, so a repeated name makes a call ambiguous)."""
    seen: set[str] = set()
    for tool in tools:
        name = tool if isinstance(tool, str) else tool.name
        if name in seen:
            return name
        seen.add(name)
    return None


class Message(BaseModel):
    """A chat message. Assistant messages may carry tool calls; tool messages answer one.

    `error` is set on a tool message when the call failed (unknown tool, bad arguments, the
    tool raised): why, in one line. The model sees only `content`; `error` is the record's
    typed signal, so output that merely reads like an error (`Error rate: 3`) is not one.
    """

    model_config = ConfigDict(extra="forbid")

    role: Role
    content: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    name: str | None = None
    error: str | None = None

    @classmethod
    def system(cls, content: str) -> Message:
        return cls(role="system", content=content)

    @classmethod
    def user(cls, content: str) -> Message:
        return cls(role="user", content=content)

    @classmethod
    def assistant(cls, content: str | None = None, tool_calls: list[ToolCall] | None = None) -> Message:
        return cls(role="assistant", content=content, tool_calls=tool_calls or None)

    @classmethod
    def tool(cls, content: str, tool_call_id: str, name: str | None = None, error: str | None = None) -> Message:
        return cls(role="tool", content=content, tool_call_id=tool_call_id, name=name, error=error)

    def to_openai(self, *, object_arguments: bool = False, tool_name: bool = True) -> dict[str, Any]:
        """The message as an OpenAI chat-completions dict (also what HF chat templates and TRL read).

        Tool-call arguments are the exact text the model wrote (`arguments_raw`) when known,
        so a generated history re-renders to the same tokens, broken JSON included;
        otherwise the parsed object, as JSON text or (`object_arguments`) as a dict.
        `tool_name=False` leaves `name` off tool messages (OpenAI's API does not take it).
        """
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            out["tool_calls"] = [
                {
                    "id": tc.id,
                    "type": "function",
                    "function": {
                        "name": tc.name,
                        "arguments": tc.arguments_raw
                        if tc.arguments_raw is not None
                        else (dict(tc.arguments) if object_arguments else json.dumps(tc.arguments)),
                    },
                }
                for tc in self.tool_calls
            ]
        elif self.content is None:
            out["content"] = ""
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        if self.name is not None and (tool_name or self.role != "tool"):
            out["name"] = self.name
        return out

    @property
    def text(self) -> str:
        """The content, or an empty string."""
        return self.content or ""
