"""The micro-tools model's chat template (Jinja, as transformers renders it).

Hermes/ChatML conventions, compact because the model is tiny and every prompt holds tool
documents: turns are `<|im_start|>ROLE\\n...<|im_end|>\\n`; the tools are documents inside
`<tools>...</tools>`, in a system turn of their own right after the first user message (after the
system prompt when there is no user message), one per tool, its description first:

    * Create a new order and return its order ID.
    take_order
    - product_id (string): The product ID, like BP-101.
    - kind (string, one of "bread", "pastry", "cake"): The kind of the product.
    - days (integer, optional, default 7): Days ahead.

Both orders are for a causal model choosing a tool. After the request, each document's tokens can
attend to the request's words; in Hermes' place (the end of the system turn) only the request can
look back at the documents. Description before name: the name then follows the words that match the
request, which is the pattern an induction head completes (match, then copy the next token); with the
name first, choosing it means copying the token *before* the match. Run J (Hermes' order) chose the
wrong tool on 14 of 20 held-out `choice` tasks ("Get artist followers ..." answered `add_plays`), and
so did run L (after the request, name first), whose first name token went to `get`/`find`/`count`
whatever the request said. Later turns follow the documents, so every prompt extends the last.

A parameter is required unless marked `optional`; `one of` lists enum values as JSON (what a
call must write); arrays read `array of T`; an object's properties (or an array's item
object's) follow as indented lines. A tool call is
`<tool_call>{"name": ..., "arguments": {...}}</tool_call>` after the assistant's text, calls
of one turn back to back; tool results are `tool` turns, in call order. Assistant turns are
wrapped in `{% generation %}` for assistant-only loss (`return_assistant_tokens_mask`,
TRL). Arguments given as a string are rendered verbatim, so a history rendered from what
the model generated reproduces its text exactly.
"""

# Every tag trims whitespace ({%- -%}); newlines and spaces that belong in the output are
# written as expressions so the layout cannot drift with the template's own formatting.
# Schemas are read by subscript (`s['items']`): attribute access on a dict would find its methods.
_MACROS = (
    "{%- macro ty(s) -%}"
    "{%- if 'type' not in s -%}{{ 'any' }}"
    "{%- elif s['type'] is string -%}{{ s['type'] }}"
    "{%- else -%}{{ s['type'] | join('|') }}{%- endif -%}"
    "{%- if 'items' in s and s['items'] is mapping -%}{{ ' of ' + ty(s['items']) }}{%- endif -%}"
    "{%- endmacro -%}"
    "{%- macro params(s, depth) -%}"
    "{%- set inner = s['items'] if 'items' in s and s['items'] is mapping else s -%}"
    "{%- set props = inner['properties'] if 'properties' in inner and inner['properties'] is mapping else {} -%}"
    "{%- set req = inner['required'] if 'required' in inner and inner['required'] is iterable else [] -%}"
    "{%- for name, p in props.items() -%}"
    "{{ '\\n' + '  ' * depth + '- ' + name + ' (' + ty(p) }}"
    "{%- if name not in req -%}{{ ', optional' }}{%- endif -%}"
    "{%- if 'enum' in p and p['enum'] -%}{{ ', one of ' + (p['enum'] | map('tojson') | join(', ')) }}{%- endif -%}"
    "{%- if 'default' in p -%}{{ ', default ' + (p['default'] | tojson) }}{%- endif -%}"
    "{{ ')' }}"
    "{%- if p['description'] -%}{{ ': ' + (p['description'] | string | trim | replace('\\n', ' ')) }}{%- endif -%}"
    "{{ params(p, depth + 1) }}"
    "{%- endfor -%}"
    "{%- endmacro -%}"
)

_TOOLS = (
    "{%- macro tools_turn() -%}"
    "{%- set nl = '\\n' -%}"
    "{{ '<|im_start|>system' + nl + '<tools>' }}"
    "{%- for t in tools -%}"
    "{%- set f = t['function'] if 'function' in t else t -%}"
    "{%- if f['description'] -%}{{ nl + '* ' + (f['description'] | string | trim | replace(nl, ' ')) }}{%- endif -%}"
    "{{ nl + f['name'] }}"
    "{%- if 'parameters' in f and f['parameters'] is mapping -%}{{ params(f['parameters'], 0) }}{%- endif -%}"
    "{%- endfor -%}"
    "{{ nl + '</tools><|im_end|>' + nl }}"
    "{%- endmacro -%}"
)

# The tools turn follows the first user message (`ns.user`), or the system turn when there is none.
_SYSTEM = (
    "{%- set nl = '\\n' -%}"
    "{%- set ns = namespace(user=-1) -%}"
    "{%- for m in messages -%}"
    "{%- if m.role == 'user' and ns.user < 0 -%}{%- set ns.user = loop.index0 -%}{%- endif -%}"
    "{%- endfor -%}"
    "{%- if messages and messages[0].role == 'system' -%}"
    "{{ '<|im_start|>system' + nl + (messages[0].content or '') + '<|im_end|>' + nl }}"
    "{%- endif -%}"
    "{%- if tools and ns.user < 0 -%}{{ tools_turn() }}{%- endif -%}"
)

_TURNS = (
    "{%- for m in messages -%}"
    "{%- if m.role == 'system' -%}"
    "{%- if not loop.first -%}{{ '<|im_start|>system' + nl + m.content + '<|im_end|>' + nl }}{%- endif -%}"
    "{%- elif m.role == 'assistant' -%}"
    "{{ '<|im_start|>assistant' + nl }}"
    "{%- generation -%}"
    "{%- if m.content -%}{{ m.content }}{%- endif -%}"
    "{%- if m.tool_calls is defined and m.tool_calls -%}"
    "{%- for tc in m.tool_calls -%}"
    "{%- set f = tc['function'] if 'function' in tc else tc -%}"
    "{%- if f['hone_raw_call'] is defined and f['hone_raw_call'] -%}"
    "{{ '<tool_call>' + f['hone_raw_call'] + '</tool_call>' }}"
    "{%- else -%}"
    "{{ '<tool_call>{\"name\": ' + (f['name'] | tojson) + ', \"arguments\": ' }}"
    "{%- if f['arguments'] is string -%}{{ f['arguments'] }}{%- else -%}{{ f['arguments'] | tojson }}{%- endif -%}"
    "{{ '}</tool_call>' }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- endif -%}"
    "{{ '<|im_end|>' }}"
    "{%- endgeneration -%}"
    "{{ nl }}"
    "{%- else -%}"
    "{{ '<|im_start|>' + m.role + nl + (m.content if m.content else '') + '<|im_end|>' + nl }}"
    "{%- endif -%}"
    "{%- if tools and loop.index0 == ns.user -%}{{ tools_turn() }}{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant' + nl }}{%- endif -%}"
)

CHAT_TEMPLATE = _MACROS + _TOOLS + _SYSTEM + _TURNS
"""The micro-tools chat template (Hermes tool calls, compact tool documents)."""
