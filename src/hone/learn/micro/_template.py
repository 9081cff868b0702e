"""The micro model's chat template (Jinja, as transformers renders it).

Hermes/Qwen conventions in a compact form, because the micro model reads characters:
turns are `<|im_start|>ROLE\\n...<|im_end|>\\n`; tools are listed as signatures inside
`<tools>...</tools>` in the system turn; a tool call is
`<tool_call>{"name": ..., "arguments": {...}}</tool_call>` after the assistant's text;
tool results are `tool` turns. Assistant turns are wrapped in `{% generation %}` so
`return_assistant_tokens_mask` (and TRL's assistant-only loss) can find them.
Arguments given as a string are rendered verbatim, so a history rendered from what the
model generated reproduces its text exactly.
"""

# Every tag trims whitespace ({%- -%}); newlines and spaces that belong in the output are
# written as expressions so the layout cannot drift with the template's own formatting.
CHAT_TEMPLATE = (
    "{%- set nl = '\\n' -%}"
    "{%- set sys = messages[0].content if messages and messages[0].role == 'system' else none -%}"
    "{%- if sys is not none or tools -%}"
    "{{ '<|im_start|>system' + nl }}"
    "{%- if sys is not none -%}{{ sys }}{%- endif -%}"
    "{%- if tools -%}"
    "{%- if sys is not none -%}{{ nl }}{%- endif -%}"
    "{{ '<tools>' }}"
    "{%- for t in tools -%}"
    "{%- set f = t.function if t.function is defined else t -%}"
    "{%- if not loop.first -%}{{ '; ' }}{%- endif -%}"
    "{{ f.name + '(' }}"
    "{%- if f.parameters is defined and f.parameters.properties is defined -%}"
    "{{ f.parameters.properties | list | join(', ') }}"
    "{%- endif -%}"
    "{{ ')' }}"
    "{%- endfor -%}"
    "{{ '</tools>' }}"
    "{%- endif -%}"
    "{{ '<|im_end|>' + nl }}"
    "{%- endif -%}"
    "{%- for m in messages -%}"
    "{%- if m.role == 'system' -%}"
    "{%- if not loop.first -%}{{ '<|im_start|>system' + nl + m.content + '<|im_end|>' + nl }}{%- endif -%}"
    "{%- elif m.role == 'assistant' -%}"
    "{{ '<|im_start|>assistant' + nl }}"
    "{%- generation -%}"
    "{%- if m.content -%}{{ m.content }}{%- endif -%}"
    "{%- if m.tool_calls is defined and m.tool_calls -%}"
    "{%- for tc in m.tool_calls -%}"
    "{%- set f = tc.function if tc.function is defined else tc -%}"
    '{{ \'<tool_call>{"name": "\' + f.name + \'", "arguments": \' }}'
    "{%- if f.arguments is string -%}{{ f.arguments }}{%- else -%}{{ f.arguments | tojson }}{%- endif -%}"
    "{{ '}</tool_call>' }}"
    "{%- endfor -%}"
    "{%- endif -%}"
    "{{ '<|im_end|>' }}"
    "{%- endgeneration -%}"
    "{{ nl }}"
    "{%- else -%}"
    "{{ '<|im_start|>' + m.role + nl + (m.content if m.content else '') + '<|im_end|>' + nl }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant' + nl }}{%- endif -%}"
)
