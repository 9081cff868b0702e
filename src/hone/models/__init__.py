"""hone.models: the `ChatModel` protocol and its backends."""

from ._base import ChatModel, aclose_model, arelease_loop, request_digest
from ._cache import Cached
from ._capabilities import MICRO, Capabilities, capabilities
from ._hf import HFLocal
from ._hf_stats import HFStats
from ._openai import OpenAICompatible, OpenAIStats
from ._registry import MICRO_SPECS, micro_checkpoint, micro_spec_checkpoint, models, parse_compatible, resolve_model
from ._replay import Replay, ReplayMode, replay_key
from ._scripted import Scripted, call_tool

__all__ = [
    "Cached",
    "Capabilities",
    "ChatModel",
    "HFLocal",
    "HFStats",
    "OpenAICompatible",
    "OpenAIStats",
    "Replay",
    "ReplayMode",
    "Scripted",
    "aclose_model",
    "arelease_loop",
    "call_tool",
    "MICRO",
    "MICRO_SPECS",
    "capabilities",
    "micro_checkpoint",
    "micro_spec_checkpoint",
    "models",
    "parse_compatible",
    "replay_key",
    "request_digest",
    "resolve_model",
]
