"""Tools: a `ToolSpec` for the model plus the Python function that runs the call."""

from __future__ import annotations

import asyncio
import inspect
import re
import typing
from collections.abc import Callable, Mapping
from typing import Any, overload

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from hone.core import ConfigError, ToolError, ToolSpec

ToolFunction = Callable[..., Any]

_SECTION = re.compile(r"^(Args|Arguments|Parameters|Returns|Raises|Yields|Examples?|Notes?):\s*$")
_ARG_LINE = re.compile(r"^(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")


class ToolFailure(ToolError):
    """The tool ran and reported a failure (a `ValueError`: division by zero, bad syntax).

    Unlike a protocol error (unknown tool, broken JSON, arguments that do not fit the
    schema) or a crash, this is ordinary public feedback: environments show it to the
    model as the tool's output and the episode goes on.
    """

    kind = "ToolError"


class Tool:
    """A tool the model may call: `spec` (name, description, JSON Schema) and `fn`, the function behind it.

    `fn` takes the call's arguments as keyword arguments, may be sync or async, and returns a
    string (anything else is passed through `str`). Arguments are validated against `fn`'s
    signature (or against `arguments_model`, a pydantic model) before the call. Calling the
    `Tool` object itself calls `fn` unchanged, so a function decorated with `@tool` stays
    usable as a function. `in_thread=True` runs a sync `fn` in a worker thread so a slow tool
    does not block the event loop.
    """

    def __init__(
        self,
        spec: ToolSpec,
        fn: ToolFunction,
        *,
        in_thread: bool = False,
        arguments_model: type[BaseModel] | None = None,
    ) -> None:
        self.spec = spec
        self.fn = fn
        self.in_thread = in_thread
        self._arguments = arguments_model or _arguments_model(fn, spec.name, {})

    @property
    def name(self) -> str:
        return self.spec.name

    @classmethod
    def from_function(
        cls, fn: ToolFunction, name: str | None = None, description: str | None = None, *, in_thread: bool = False
    ) -> Tool:
        """Build a tool from `fn`: parameters from its type hints, description and argument docs from its docstring.

        The docstring's text before an `Args:` section is the description; `name: text` lines
        in the `Args:` section describe the parameters.
        """
        tool_name = name or fn.__name__
        summary, arg_docs = _parse_docstring(inspect.getdoc(fn) or "")
        model = _arguments_model(fn, tool_name, arg_docs)
        spec = ToolSpec(name=tool_name, description=description or summary, parameters=_clean_schema(model))
        return cls(spec, fn, in_thread=in_thread, arguments_model=model)

    def validate(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """The keyword arguments for `fn`, validated; raises `ToolError` naming the tool and the problem."""
        try:
            parsed = self._arguments.model_validate(dict(arguments))
        except ValidationError as exc:
            raise ToolError(f"{self.name}: invalid arguments: {_describe(exc)} (expected {self._expected()})") from None
        return {key: getattr(parsed, key) for key in type(parsed).model_fields}

    async def run(self, arguments: Mapping[str, Any]) -> str:
        """Validate `arguments`, call `fn` and return its output as text; every failure is a `ToolError`."""
        kwargs = self.validate(arguments)
        try:
            if self.in_thread and not inspect.iscoroutinefunction(self.fn):
                result = await asyncio.to_thread(self.fn, **kwargs)
            else:
                result = self.fn(**kwargs)
            if inspect.isawaitable(result):
                result = await result
        except ToolError:
            raise
        except ValueError as exc:  # the conventional "bad input" of a tool: its message is enough
            raise ToolFailure(f"{self.name}: {exc}") from exc
        except Exception as exc:
            raise ToolError(f"{self.name}: {type(exc).__name__}: {exc}") from exc
        return result if isinstance(result, str) else str(result)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def fresh(self) -> Tool:
        """The instance an episode uses: `self` for stateless tools; tools with per-episode state
        (an interpreter session) return a new instance."""
        return self

    async def aclose(self) -> None:
        """Release per-episode resources (nothing for stateless tools)."""

    def __repr__(self) -> str:
        return f"Tool(name={self.name!r})"

    def _expected(self) -> str:
        props: dict[str, Any] = self.spec.parameters.get("properties", {})
        required = set(self.spec.parameters.get("required", []))
        parts = [f"{key}: {value.get('type', 'any')}{'' if key in required else '?'}" for key, value in props.items()]
        return f"{self.name}({', '.join(parts)})"


@overload
def tool(fn: ToolFunction, /) -> Tool: ...


@overload
def tool(
    *, name: str | None = None, description: str | None = None, in_thread: bool = False
) -> Callable[[ToolFunction], Tool]: ...


def tool(
    fn: ToolFunction | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    in_thread: bool = False,
) -> Tool | Callable[[ToolFunction], Tool]:
    """Decorator turning a function into a `Tool`: `@tool` or `@tool(name=..., description=...)`."""
    if fn is not None:
        return Tool.from_function(fn)

    def deco(f: ToolFunction) -> Tool:
        return Tool.from_function(f, name=name, description=description, in_thread=in_thread)

    return deco


def _arguments_model(fn: ToolFunction, name: str, arg_docs: dict[str, str]) -> type[BaseModel]:
    try:
        sig = inspect.signature(fn)
        hints = typing.get_type_hints(fn, include_extras=True)
    except (TypeError, ValueError, NameError) as exc:
        raise ConfigError(f"tool {name!r}: cannot read the signature of {fn!r}: {exc}") from exc
    fields: dict[str, Any] = {}
    for param in sig.parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
            raise ConfigError(f"tool {name!r}: parameter {param.name!r} must be a named (keyword) parameter")
        default = ... if param.default is param.empty else param.default
        fields[param.name] = (hints.get(param.name, Any), Field(default, description=arg_docs.get(param.name)))
    try:
        return create_model(f"{name}_arguments", __config__=ConfigDict(extra="forbid"), **fields)
    except Exception as exc:  # pydantic refuses some names and types
        raise ConfigError(f"tool {name!r}: cannot build an argument schema: {exc}") from exc


def _clean_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON Schema without pydantic's generated titles, which only add noise to a prompt."""
    schema = model.model_json_schema()
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        if isinstance(prop, dict):
            prop.pop("title", None)
    return schema


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    summary: list[str] = []
    args: dict[str, str] = {}
    section: str | None = None
    current: str | None = None
    for line in doc.splitlines():
        stripped = line.strip()
        header = _SECTION.match(stripped)
        if header and not line.startswith(" "):
            section, current = header.group(1), None
            continue
        if section is None:
            summary.append(line)
        elif section in ("Args", "Arguments", "Parameters") and stripped:
            match = _ARG_LINE.match(stripped)
            if match and not line.startswith(" " * 8):
                current = match.group(1).lstrip("*")
                args[current] = match.group(2).strip()
            elif current is not None:
                args[current] = f"{args[current]} {stripped}".strip()
    return "\n".join(summary).strip(), args


def _describe(exc: ValidationError) -> str:
    parts: list[str] = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"])
        if err["type"] == "missing":
            parts.append(f"missing argument {loc!r}")
        elif err["type"] == "extra_forbidden":
            parts.append(f"unexpected argument {loc!r}")
        else:
            parts.append(f"{loc or 'arguments'}: {err['msg']}")
    return "; ".join(parts)
