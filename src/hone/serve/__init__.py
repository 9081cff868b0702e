"""hone.serve: any hone `ChatModel` behind an OpenAI-compatible chat-completions endpoint.

Needs the `serve` extra (`pip install 'hone[serve]'`): FastAPI and uvicorn.

    hone serve --model micro            # then: openai-compatible:http://127.0.0.1:8000/v1:micro

Replies carry native `tool_calls` (only well-formed calls of offered tools; anything else
the model wrote is plain content), usage, `n` choices, `stream=true` as server-sent events,
`tool_choice`, `response_format` json_object, and (as vLLM does, on request) the prompt and
completion token ids and per-token logprobs, so hone's `OpenAICompatible` records
token-exact trajectories through it. Why not `transformers serve` (5.x): it returns
parsed `tool_calls` only for model types it knows (Qwen, Gemma 4) or tokenizers that ship a
`response_template`, rejects `return_token_ids` with a 422, ignores `logprobs` and `n`,
answers a malformed tool call with a bare 500, and generates one request at a time unless
continuous batching is on, which then applies the first request's sampling to all.
"""

from ._app import DEFAULT_MAX_BODY_MB, create_app
from ._protocol import ChatRequest, RequestError, decode_body, parse_request
from ._reply import Choice, completion_body, error_body, vet
from ._server import BackgroundServer, base_url, serve

__all__ = [
    "DEFAULT_MAX_BODY_MB",
    "BackgroundServer",
    "ChatRequest",
    "Choice",
    "RequestError",
    "base_url",
    "completion_body",
    "create_app",
    "decode_body",
    "error_body",
    "parse_request",
    "serve",
    "vet",
]
