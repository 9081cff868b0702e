"""The prompts of `LLMGenerator` (one per stage, each with the answer's JSON shape and one example)
and the pydantic shapes its answers are read with (lenient: unknown keys are ignored)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

VERSION = 1
"""Bumped when a prompt changes what a model would answer (part of the generator's cache key)."""

SYSTEM = (
    "You help build tool-use training environments. Reply with exactly one JSON object of the shape "
    "asked for, and nothing else: no prose, no code fences."
)


def _json(value: Any, limit: int) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + " ...(cut)"


DECOMPOSE = """Split this tool set into scenarios: situations a user could be in, each needing a few tools that \
belong together (every tool in at least one scenario; 3-8 tools per scenario when there are many).

Source: {name} ({kind}). {description}
{tools}

Answer: {{"scenarios": [{{"name": "snake_case_id", "title": "short title", "description": "one or two sentences", \
"tool_names": ["tool", ...]}}]}}
Example: {{"scenarios": [{{"name": "trip_planning", "title": "Planning a trip", "description": "A traveller checks \
the weather and books a hotel.", "tool_names": ["get_weather", "book_hotel"]}}]}}"""

DOCUMENT = """Write the tool documents for this scenario.

Scenario: {title}. {description}
Tools to document: {names}

For each tool: name (from the list), description (one clear sentence), parameters (a JSON Schema object: \
"type": "object", "properties" giving each argument a "type" and a "description", "required"), returns (what the \
result holds), effect ("write" if it changes the world, else "read"), utterances (2-3 ways a user asks for it, with \
each argument as a {{slot}} named after it).

Answer: {{"tools": [...]}}
Example: {{"tools": [{{"name": "get_weather", "description": "Current weather for a city.", \
"parameters": {{"type": "object", "properties": {{"city": {{"type": "string", "description": "City name"}}}}, \
"required": ["city"]}}, "returns": "temperature in C and sky", "effect": "read", \
"utterances": ["What's the weather in {{city}}?", "Is it raining in {{city}} right now?"]}}]}}"""

REWRITE = """Improve these tool descriptions and add ways a user might ask for each tool. Do not change names or \
parameters.

Tools: {tools}

For each tool: name (unchanged), description (one or two clear sentences), utterances (2-3 requests, with every \
required argument as a {{slot}} named after it).

Answer: {{"tools": [{{"name": "...", "description": "...", "utterances": ["..."]}}]}}
Example: {{"tools": [{{"name": "get_weather", "description": "Current temperature and sky for a city.", \
"utterances": ["What's the weather in {{city}}?"]}}]}}"""

BACKEND = """Write the Python backend behind these tools: a small in-memory world.

Tools: {tools}

Rules: a Python module. A global dict `state` holds the world; it is set to your initial state before the module \
runs. One module-level function per tool, named as the tool, taking its arguments as keyword arguments, reading and \
writing `state`, returning JSON values (str, number, bool, None, list, dict). Raise ValueError with a clear message \
for bad input (unknown id, ...). Standard library only; no files, network, randomness or clock.
Also give state (the initial world: a JSON object with a few realistic records) and pools (argument name -> 3-8 \
values that exist in the world).

Answer: {{"source": "python code", "state": {{...}}, "pools": {{"argument": [values]}}}}
Example: {{"source": "def get_weather(city):\\n    if city not in state['weather']:\\n        raise \
ValueError(f'unknown city {{city}}')\\n    return state['weather'][city]\\n", "state": {{"weather": {{"Paris": \
{{"temp_c": 18, "sky": "cloudy"}}}}}}, "pools": {{"city": ["Paris"]}}}}"""

POOLS = """Propose argument values for these tools that make sense in this world (ids, names and values that exist \
in its state).

Tools: {tools}
Initial state: {state}

Answer: {{"pools": {{"argument": [3-8 values]}}}}
Example: {{"pools": {{"city": ["Paris", "Lima"], "nights": [1, 3]}}}}"""

ATOMS = """Write {n} different requests a user could make in this scenario, each answered by exactly one call of one \
tool. State every argument value in the request, in varied natural wording (questions, commands, some context). Use \
values that exist in the world.

Scenario: {title}. {description}
Tools: {tools}
Known values: {pools}
Initial state: {state}
{avoid}
For each request: tool, arguments (a JSON object fitting the tool's parameters), text (the user's message), mentions \
(argument -> the exact words of text that state its value).

Answer: {{"requests": [...]}}
Example: {{"requests": [{{"tool": "get_weather", "arguments": {{"city": "Paris"}}, "text": "Heading to Paris \
tomorrow, what's the weather like there?", "mentions": {{"city": "Paris"}}}}]}}"""

PARAPHRASE = """Rewrite this request {n} different ways (other words, order or tone). Keep every name, number, date \
and identifier exactly as written; add no new facts.

Request: {text}

Answer: {{"paraphrases": ["...", ...]}}
Example: for "Book a table for 4 at Chez Marcel at 19:30." -> {{"paraphrases": ["Could you reserve Chez Marcel for \
4 people at 19:30?"]}}"""

RETRY = "Your answer was not accepted:\n{errors}\nReply again with the corrected JSON object only."


def tool_lines(tools: list[tuple[str, str]]) -> str:
    """`- name: description` lines (the decomposition prompt's view of a tool set)."""
    return "Tools:\n" + "\n".join(f"- {name}: {description[:200]}" for name, description in tools) if tools else ""


def show(value: Any, limit: int = 4000) -> str:
    """A JSON excerpt for a prompt (long states and tool sets are cut)."""
    return _json(value, limit)


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


class DraftAnswer(_Loose):
    """One scenario of a decomposition answer."""

    name: str
    title: str = ""
    description: str = ""
    tool_names: list[str] = Field(min_length=1)


class RewriteAnswer(_Loose):
    """One tool of a rewrite answer (description and utterances only)."""

    name: str
    description: str = Field(min_length=1, max_length=1024)
    utterances: list[str] = Field(default_factory=list)


class BackendAnswer(_Loose):
    """A backend answer: module source, initial state, value pools."""

    source: str = Field(min_length=1)
    state: dict[str, Any] = Field(default_factory=dict)
    pools: dict[str, list[Any]] = Field(default_factory=dict)


class RequestAnswer(_Loose):
    """One request of a task-generation answer."""

    tool: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    text: str = Field(min_length=1)
    mentions: dict[str, str] = Field(default_factory=dict)


DOC_KEYS = ("name", "description", "parameters", "returns", "effect", "utterances")
"""The keys of a proposed tool document that are read (`ToolDoc` forbids others)."""


def items(data: dict[str, Any], key: str) -> list[Any]:
    """The list under `key` of an answer; ValueError (fed back to the model) when there is none."""
    value = data.get(key)
    if not isinstance(value, list):
        raise ValueError(f'the answer needs a list under "{key}"')
    return value


def why(exc: ValidationError) -> str:
    """The first problem of a validation error, in one line."""
    first = exc.errors()[0]
    return f"{'.'.join(str(p) for p in first['loc']) or 'value'}: {first['msg']}"
