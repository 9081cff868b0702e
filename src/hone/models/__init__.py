"""hone.models: the `ChatModel` protocol and its backends."""

from ._base import ChatModel, aclose_model, request_digest
from ._scripted import Scripted, call_tool

__all__ = ["ChatModel", "Scripted", "aclose_model", "call_tool", "request_digest"]
