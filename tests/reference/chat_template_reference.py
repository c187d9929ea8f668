#!/usr/bin/env python3
"""Expected renders for Lethe's chat-template renderer (core/text/chat_template.cpp).

Writes FIXTURE_DIR/expected.json, which tests/unit/test_chat_template.cpp compares byte for byte:

  families   every *.jinja template in FIXTURE_DIR rendered by transformers' own
             tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=...)
             on a tokenizer object carrying that template and the family's special tokens, over
             each conversation below, with and without the generation prompt
  variables  templates rendered by apply_chat_template with tools and messages that carry
             tool calls; the exact variables the template saw are recorded (for render_variables)
  snippets   short templates rendered by the environment transformers compiles chat templates
             in (transformers.utils.chat_template_utils._compile_jinja_template) with the
             variables snippet_variables names ("default" unless given): whitespace
             control, literals, operators, filters, tests, scoping, jinja's constant folding;
             "lethe_refuses" marks the ones jinja renders and Lethe refuses (it must raise an
             error saying "unsupported"); their jinja output is not recorded
  loading    model folder layouts (tokenizer_config.json string or list, chat_template.jinja)
             loaded with AutoTokenizer.from_pretrained: which template transformers uses

An expected result is {"output": text}, {"raised": message} when the template called
raise_exception, or {"error": "Type: message"} for any other exception (the C++ test only
requires an error then).

Rerun after changing a template, a conversation or a snippet (needs transformers, tokenizers
and jinja2; Lethe's setup installs them in third_party/venv):

    third_party/venv/bin/python tests/reference/chat_template_reference.py tests/fixtures/chat_templates
"""

import json
import os
import platform
import sys
import tempfile

import jinja2
import tokenizers
import transformers
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import AutoTokenizer, PreTrainedTokenizerFast
from transformers.utils.chat_template_utils import _compile_jinja_template

# The special tokens each template's tokenizer has (transformers passes special_tokens_map).
FAMILIES = {
    "llama3.jinja": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
    "llama2.jinja": {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"},
    "chatml_qwen2.jinja": {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"},
    "zephyr.jinja": {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"},
    "phi3.jinja": {"bos_token": "<s>", "eos_token": "<|endoftext|>", "unk_token": "<unk>", "pad_token": "<|endoftext|>"},
    "gemma.jinja": {"bos_token": "<bos>", "eos_token": "<eos>", "unk_token": "<unk>", "pad_token": "<pad>"},
    "gemma_system_merged.jinja": {"bos_token": "<bos>", "eos_token": "<eos>", "unk_token": "<unk>", "pad_token": "<pad>"},
    "adversarial_whitespace.jinja": {"eos_token": "</s>"},
    "adversarial_features.jinja": {"bos_token": "<s>", "eos_token": "</s>"},
    "adversarial_scoping.jinja": {},
}

TRICKY = ("Ünïcödé ✓ 日本語 😀 {{ not a tag }} {% raw %} {# nor a comment #} \"double\" 'single' "
          "\\ backslash\ttab\nnew line\r\nCRLF\u2028sep\u00a0nbsp ")

CONVERSATIONS = {
    "single_user": [{"role": "user", "content": "Hello!"}],
    "system_user": [{"role": "system", "content": "You are a concise assistant."},
                    {"role": "user", "content": "What is 2+2?"}],
    "multi_turn": [{"role": "user", "content": "Hi there"},
                   {"role": "assistant", "content": "Hello! How can I help?"},
                   {"role": "user", "content": "Tell me a joke."}],
    "system_multi_turn": [{"role": "system", "content": "Be brief."},
                          {"role": "user", "content": "Name a colour."},
                          {"role": "assistant", "content": "Blue."},
                          {"role": "user", "content": "Another one?"},
                          {"role": "assistant", "content": "Green."}],
    "unicode_and_braces": [{"role": "user", "content": TRICKY},
                           {"role": "assistant", "content": "  padded answer \u3000\n"},
                           {"role": "user", "content": "ΣΑΣ ǆ straße İ"}],
    "empty_content": [{"role": "user", "content": ""},
                      {"role": "assistant", "content": ""},
                      {"role": "user", "content": "again"}],
    "whitespace_content": [{"role": "system", "content": "  \n"},
                           {"role": "user", "content": " \t hi \n\n"}],
    "system_only": [{"role": "system", "content": "Only a system prompt."}],
    "two_users": [{"role": "user", "content": "first"}, {"role": "user", "content": "second"}],
    "assistant_first": [{"role": "assistant", "content": "I speak first."},
                        {"role": "user", "content": "ok"}],
    "tool_role": [{"role": "user", "content": "call it"}, {"role": "tool", "content": "42"}],
    "long": [{"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i} " + "word " * (i % 7)}
             for i in range(41)],
    "empty": [],
}

TOOLS = [
    {"type": "function", "function": {
        "name": "get_weather", "description": "Weather for a city, in °C.",
        "parameters": {"type": "object", "properties": {
            "city": {"type": "string", "description": "e.g. \"Zürich\""},
            "days": {"type": "integer", "enum": [1, 3, 7]}}, "required": ["city"]}}},
    {"type": "function", "function": {"name": "noop", "description": "", "parameters": {"type": "object", "properties": {}}}},
]

TOOL_CONVERSATION = [
    {"role": "system", "content": "Use tools when needed."},
    {"role": "user", "content": "Weather in Zürich?"},
    {"role": "assistant", "content": "", "tool_calls": [
        {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Zürich", "days": 3}}}]},
    {"role": "tool", "content": "{\"temp\": 21.5}"},
    {"role": "tool", "content": [{"type": "text", "text": "sunny"}]},
    {"role": "assistant", "content": "21.5 °C and sunny."},
]

M = [{"role": "system", "content": "S"}, {"role": "user", "content": " Hi {{x}} ünï ✓ \n"},
     {"role": "assistant", "content": "Hello!"}]
V = {"messages": M, "d": {"b": 2, "a": [1, {"x": None}], "c": "ç"}, "s": "  Hello, World  ", "n": 3, "f": 2.5,
     "e": "", "t": True, "l": [1, 2, 3], "nested": [[1, 2], [3, 4]], "bos_token": "<s>", "eos_token": "</s>",
     "add_generation_prompt": False}

# (template, variables) rendered by transformers' compiled environment; variables default to V.
SNIPPETS = [
    # whitespace control and comments
    "  {%- if true -%}  \n x \n  {%- endif -%}  \n y",
    "a {#- c -#} b {#+ c +#} c {# c #}\n d",
    "{% if true %}\n    a\n{% endif %}\n{% if true %}b{% endif %}\n",
    "\t{% if true %}x{% endif %}\t\n\t{{ 'y' }}\t\n",
    "line1\n   {% for i in range(2) %}\n   {{ i }}\n   {% endfor %}\nend\n\n",
    "x\r\ny\r{% if true %}\r\nz{% endif %}\r\n{{ 'a\r\nb' }}",
    "{{- '  a  ' -}}   {{ 'b' }}   {{- 'c' }}",
    "{% raw %}  {{ a }} {% if %}{% endraw %}",
    "  {% raw -%}  x  {%- endraw %}",
    "{%- raw %}\n  {{ x }}\n  {% endraw %}\ny",
    "{#\n multi\n line #}\n  text",
    "{{ '{{' }}{{ '}}' }}{{ '{%' }}",
    "{{ {'a': {'b': 1}} }}",
    "\u3000{%- if true %}x{% endif -%}\u3000y",
    "a\u00a0\n\u00a0 {% if true %}b{% endif %}",
    "a\n  {% if true %}\n  b\n  {% endif %}\n  c\n  {%- if true %} d {% endif -%}  \n e {# c #}\n   {#- c -#}  f\n {%+ if true %}g{% endif +%}\nh{{- ' i ' -}}\n j\n",
    "{{ 'v' }}{#",
    "text {% raw %}",
    # literals and strings
    "{{ 'a\\tb' }}{{ \"q'\" }}{{ 'q\"' }}{{ 'mix\\'\"' }}{{ ['a\\'', 'b\"', \"c'\\\"\"] }}",
    "{{ ['\\x00\\x1f\\x7f\\x80\\xa0\\u200b\\u2028 é ✓ 😀\\U0001F600'] }}",
    "{{ '\\q\\8\\9\\12' }}{{ 'é\\é' }}{{ '\\101\\0' }}",
    "{{ 'a' 'b' \"c\" }}",
    "{{ 0x1F }}{{ 0o17 }}{{ 0b101 }}{{ 1_000 }}{{ 1.5e3 }}{{ 1E3 }}{{ 1_0.2_5 }}",
    "{{ [1, 'a', none, true, 1.5, {'k': (1,)}] }}{{ (1, 2) }}{{ (1,) }}{{ () }}{{ [] }}{{ {} }}",
    "{{ True }}{{ False }}{{ None }}{{ true ~ false ~ none }}",
    # numbers
    "{{ 1e16 }} {{ 1e15 }} {{ 0.0001 }} {{ 0.00001 }} {{ 1/3 }} {{ 10/2 }} {{ 7//2 }} {{ -7//2 }} {{ -7 % 3 }} {{ 2**10 }} {{ 2**-1 }}",
    "{{ 0.1 + 0.2 }} {{ 1e300 * 1e10 }} {{ 2.0 ** 0.5 }} {{ 10 / 4 }} {{ -0.0 }} {{ 1e-7 }} {{ 123456789012345678.0 }} {{ 0.000123 }} {{ 5e-324 }}",
    "{{ 7 % 3 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ 7.5 % 2 }} {{ -7.5 // 2 }} {{ 2 ** 62 }} {{ 1.5 // 0.4 }} {{ -1.5 % 0.4 }}",
    "{{ n * f }} {{ n - f }} {{ n / 2 }} {{ n // 2 }} {{ -n }} {{ +f }} {{ n ** 2 }} {{ (n > 2) + 1 }} {{ true + true }}",
    "{{ -3 ** 2 }}|{{ -3 ** n }}|{{ (1 - 4) ** n }}|{{ 2 ** 3 ** 2 }}|{{ -n ** 2 }}",
    "{{ 'a' * 3 }}{{ 3 * 'b' }}{{ [1] * 2 }}{{ '' * 5 }}{{ 'x' * -1 }}",
    # comparisons and logic
    "{{ 1 < 2.5 }}{{ 2 == 2.0 }}{{ 'b' > 'a' }}{{ 'B' < 'a' }}{{ [1, 2] == [1, 2] }}{{ (1, 2) < (1, 3) }}{{ 'é' > 'z' }}{{ [1] == (1,) }}",
    "{{ 1 < 2 < 3 }}{{ 3 > 2 > 2 }}{{ 1 == 1.0 }}{{ true == 1 }}{{ {'a':1,'b':2} == {'b':2,'a':1} }}{{ none == none }}",
    "{{ 'x' in s }}{{ 'x' not in s }}{{ 'a' in d }}{{ 1 in [1.0] }}{{ [1] in [[1]] }}{{ not 'a' in d }}{{ 'a' in ['a'] }}",
    "{{ 'y' if n > 2 else 'n' }}{{ 'y' if n > 5 }}{{ n > 2 and 'and' }}{{ n > 5 or 'or' }}{{ 0 or '' or none }}{{ not n }}{{ not missing }}",
    "{{ 1 if false else 2 if false else 3 }}{{ 'a' ~ 1 + 2 ~ 'b' }}{{ 2 * 3 ~ 4 }}{{ 10 - 3 - 2 }}{{ 12 / 2 / 3 }}",
    # attribute, subscript, slicing
    "{{ messages[0]['role'] }}{{ messages[-1].content }}[{{ messages[5] }}]{{ messages[1]['content'][1:4] }}{{ s[2] }}{{ s[-3:] }}{{ l[::2] }}{{ l[5:] }}{{ l[-10:2] }}{{ l[::-1] }}{{ 'héllo'[1] }}",
    "{{ 'abc'[::-1] }}{{ [1,2,3][1:] }}[{{ 'abc'[5] }}][{{ [1][3] }}]{{ 'abcdef'[1:5:2] }}{{ (1,2,3)[1:] }}{{ d.a.1 }}",
    "{{ d }} {{ d.a }} {{ d['a'][1].x }} {{ d.get('z', 'no') }} {{ d.keys()|list }} {{ d.values()|list }} {{ d.items()|list }}",
    "{{ d.items() }} {{ d.keys() }} {{ d.values() }}",
    "[{{ messages[0].nokey }}][{{ messages[0]['nokey'] }}]{{ messages[0].nokey is defined }}[{{ s.foo }}][{{ l.append }}][{{ d.update }}]",
    "{{ range(3) }}{{ range(1, 10, 2) }}{{ range(10)[2:8:3] }}{{ range(10)[::-1] }}{{ range(5)[10:] }}{{ [range(2)] }}{{ range(3) == range(3) }}",
    "[{{ (0)[1:] }}][{{ not (7)[1:] }}][{{ (none)[1:] }}][{{ [(0)[1:]] }}]",
    "{{ 'x'|tojson(indent=1.5) }}{{ []|tojson(indent=1.5) }}{{ [1]|tojson(indent=-2) }}{{ {'a': [1]}|tojson(indent=true) }}",
    # filters
    "{{ s|trim }}|{{ s.strip() }}|{{ s.lstrip() }}|{{ s.rstrip() }}|{{ s.strip(' H') }}|{{ s|trim(' d') }}|{{ s.split(',') }}|{{ s.split() }}|{{ s.rsplit(None, 1) }}|{{ s.split(', ', 1) }}|{{ 'a,b,c'.rsplit(',', 1) }}",
    "{{ s|upper }}{{ s|lower }}{{ s.title() }}{{ 'hELLO wORLD'|capitalize }}{{ 'ÉCOLE ß ǆ'.lower() }}{{ 'straße'.upper() }}{{ 'ﬂour'.title() }}{{ \"they're bill's\".title() }}{{ 'ΣΑΣ ΑΣ'.lower() }}{{ 'ΣΑΣ'.title() }}",
    "{{ s.startswith('  H') }}{{ s.endswith(('x', '  ')) }}{{ s.replace('l', 'L') }}{{ s.replace('l', 'L', 1) }}{{ s|replace('o', '0') }}{{ s|replace('', '.', 3) }}{{ 'abc'.replace('', '-') }}",
    "{{ ', '.join(['a', 'b']) }}{{ e|default('dflt') }}{{ e|default('dflt', true) }}{{ missing|default('m') }}{{ missing|d('x') }}{{ none|default('n') }}",
    "{{ 'abc'|list }}{{ d|list }}{{ 'x'|string }}{{ 3|string }}{{ [1]|string }}{{ none|string }}{{ 3.0|string }}{{ 'abc'|first }}{{ 'abc'|last }}{{ d|first }}",
    "{{ '42'|int }}{{ ' -7 '|int }}{{ '4.9'|int }}{{ 'x'|int }}{{ 'x'|int(5) }}{{ 3.99|int }}{{ -3.99|int }}{{ true|int }}{{ none|int }}{{ '1_000'|int }}{{ '1e3'|int }}",
    "{{ '2.5'|float }}{{ 'x'|float }}{{ 3|float }}{{ ' 1e-3 '|float }}{{ 'inf'|float }}{{ '-nan'|float }}{{ none|float(1.5) }}{{ -3|abs }}{{ -2.5|abs }}",
    "{{ messages|length }}{{ messages|count }}{{ s|length }}{{ d|length }}{{ 'héllo😀'|length }}{{ messages|first|tojson }}{{ (messages|last).content }}",
    "{{ [1,2,3]|reverse|list }}{{ 'abc'|reverse }}{{ d|reverse|list }}{{ (1,2)|reverse|join }}",
    "{{ ['a', 'b']|join }}{{ [1, none, 'x']|join('-') }}{{ 'abc'|join('.') }}{{ {'a':1}|join }}{{ messages|join(', ', attribute='role') }}",
    "{{ messages[1:] | map(attribute='role') | join(',') }} {{ messages|selectattr('role','equalto','user')|list|length }} {{ messages|rejectattr('role', 'in', ['user'])|map(attribute='content')|join('|') }}",
    "{{ [1,2,3,4]|select('even')|list }}{{ [1,2,3,4]|reject('odd')|list }}{{ [0,1,'',2]|select|list }}{{ ['a','B']|map('upper')|list }}{{ ['a ',' b']|map('trim')|join }}",
    "{{ [{'a':{'b':1}},{'a':{'b':2}}]|map(attribute='a.b')|list }}{{ [{'a':1},{}]|map(attribute='a', default=0)|list }}{{ [[1,2],[3,4]]|map(attribute='1')|list }}",
    "{{ [1,2,3]|select('>', 1)|list }}{{ [1,2,3]|select('in', [1, 3])|list }}{{ messages|selectattr('content')|list|length }}{{ ['a','b']|select('equalto', 'a')|list }}",
    "{% for k, v in d|items %}{{ k }}={{ v|tojson }};{% endfor %}{{ missing|items|list }}",
    # tojson (transformers' version)
    "{{ d|tojson }}|{{ d|tojson(indent=4) }}|{{ d|tojson(indent=2, sort_keys=true) }}|{{ d|tojson(ensure_ascii=true) }}",
    "{{ d|tojson(separators=(',', ':')) }}{{ 'a\\u0000\\u001f\"\\\\/\\b\\f\\x7f'|tojson }}{{ [1.5, 1e100, -0.0, 100.0, 1e16]|tojson }}{{ d|tojson(indent='--') }}{{ [[]]|tojson(indent=0) }}",
    "{{ 'ü😀\\u2028'|tojson(ensure_ascii=true) }}{{ {}|tojson }}{{ []|tojson(indent=2) }}{{ (1, 'a')|tojson }}{{ {'k': ()}|tojson(2) }}{{ {1: 2, none: 3, true: 4, 1.5: 5}|tojson }}",
    "{{ (1e308 * 10)|tojson }}{{ [1e308 * 10, -1e308 * 10]|tojson }}",
    # tests
    "{{ n is number }}{{ n is integer }}{{ f is float }}{{ t is boolean }}{{ t is true }}{{ t is false }}{{ s is string }}{{ d is mapping }}{{ l is iterable }}{{ d is sequence }}{{ n is odd }}{{ n is even }}{{ 9 is divisibleby 3 }}{{ 10 is divisibleby(3) }}",
    "{{ 'abc' is lower }}{{ 'ABC' is upper }}{{ 'Ab' is lower }}{{ '1' is lower }}{{ 2 is in [1, 2] }}{{ 'a' is in 'cat' }}{{ none is none }}{{ 1 is eq 1.0 }}{{ 1 is ne 2 }}{{ 1 is lt 2 }}{{ 2 is ge 2 }}{{ 3 is gt 2 }}{{ none is sameas none }}{{ t is sameas true }}{{ 1 is sameas true }}",
    "{{ missing is defined }}{{ missing is undefined }}{{ n is not defined }}{{ d.x is defined }}{{ d.a is defined }}{{ raise_exception is callable }}{{ d is callable }}{{ missing is iterable }}{{ missing is sequence }}",
    # statements
    "{% set a = 1 %}{% set b, c = [2, 3] %}{% set t2 = 4, 5 %}{{ a }}{{ b }}{{ c }}{{ t2 }}",
    "{% set ns = namespace(found=false, n=0) %}{% for m in messages %}{% if m.role == 'user' %}{% set ns.found = true %}{% endif %}{% set ns.n = ns.n + 1 %}{% endfor %}{{ ns.found }}{{ ns.n }}{{ ns['n'] }}",
    "{% set x %}  block {{ n }}  {% endset %}[{{ x }}]{% set y | trim | upper %}  b {% endset %}[{{ y }}]",
    "{% macro row(a, b='B', c=none) %}<{{ a }}|{{ b }}|{{ c }}>{% endmacro %}{{ row(1) }}{{ row(1, 2) }}{{ row(1, c=3) }}{{ row(a=5) }}{{ row() }}",
    "{% macro rec(k) %}{{ k }}{% if k > 0 %}{{ rec(k - 1) }}{% endif %}{% endmacro %}{{ rec(3) }}",
    "{% set g = 'G' %}{% macro m(a, b='x') %}[{{ a }}{{ b }}{{ g }}{{ later }}]{% endmacro %}{{ m(1) }}{% set later = 'L' %}{{ m(2, b=3) }}",
    "{% set d2 = dict(a=1, b=[2]) %}{{ d2 }}{{ dict([('x', 1)]) }}{{ dict(d, z=0)|length }}{{ namespace(a=1).a }}",
    "{% generation %}gen {{ n }}{% endgeneration %}|{% print 'p', n %}",
    "{% for x in [1,2,3,4,5] %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}{% endif %}{{ x }}{% endfor %}",
    "{% for m in messages if m.role != 'system' %}{{ loop.index0 }}{{ m.role }}{{ loop.revindex }}{{ loop.length }}{% endfor %}",
    "{% for x in [1,2,3] %}{{ loop.previtem }}{{ loop.nextitem }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.depth }}{{ loop.cycle('a', 'b') }};{% endfor %}",
    "{% for x in nested %}{% for y in x %}{{ loop.index }}.{{ y }}{% if not loop.last %},{% endif %}{% endfor %}|{% endfor %}",
    "{% for k, v in d.items() %}{{ loop.index }}{{ k }}={{ v }};{% endfor %}{% for k in d %}{{ k }}{% endfor %}{% for c in 'ab' %}{{ c }}{% endfor %}",
    "{% for x in [] %}x{% else %}empty{% endfor %}{% for x in [1] %}{% break %}{% else %}else-after-break{% endfor %}{% for x in [1, 2] %}{% if x == 1 %}{% continue %}{% endif %}{% else %}not-run{% endfor %}",
    "{% for i in [1,2] %}{% for j in [] %}{% else %}[{{ loop.index }}]{% break %}{% endfor %}{% endfor %}",
    "{% set ns = namespace(ok=true) %}{% for x in [1, 2, 3] if ns.ok %}{{ x }}{% set ns.ok = false %}{% endfor %}",
    "{% set ns = namespace(ok=true) %}{% for x in [1, 2, 3] if ns.ok %}{{ x }}{{ loop.last }}{% set ns.ok = false %}{% endfor %}",
    "{% set ns = namespace(ok=true) %}{% for x in [1, 2, 3] if ns.ok %}{{ x }}/{{ loop.length }}{% set ns.ok = false %}{% endfor %}",
    # scoping
    "{% set c = 0 %}{% for i in range(3) %}{{ c }}{% set c = c + 1 %}{{ c }};{% endfor %}{{ c }}",
    "{% for i in range(2) %}{% if i == 0 %}{% set y = 5 %}{% endif %}{{ y }},{% endfor %}",
    "{% set y = 1 %}{% for i in range(2) %}{% if i == 1 %}{{ y }}{% endif %}{% set y = 7 %}{% endfor %}",
    "{% for i in [1] %}[{{ x }}]{% endfor %}{% set x = 2 %}",
    "[{{ x }}]{% set x = 2 %}[{{ x }}]",
    "{% for i in [1] %}[{{ x }}]{% endfor %}{% if false %}{% set x = 2 %}{% endif %}",
    "{% macro m() %}[{{ x }}]{% endmacro %}{{ m() }}{% set x = 2 %}{{ m() }}",
    "{% set y %}[{{ x }}]{% endset %}{{ y }}{% set x = 2 %}",
    "{% for i in [1] if x %}[{{ i }}]{% endfor %}{% set x = 2 %}",
    "{% for i in [x] %}[{{ i }}]{% endfor %}{% set x = 2 %}",
    "{% for x in [] %}{% else %}{% set z = 1 %}{% endfor %}{{ z }}",
    "{% set x %}A{% set y = 1 %}{% endset %}{{ x }}{{ y }}",
    "{% generation %}{% set g = 1 %}G{% endgeneration %}{{ g }}",
    "{% for i in [1] %}{% macro m(a) %}{{ a }}{{ loop.index }}{{ i }}{% endmacro %}{{ m(5) }}{% endfor %}",
    # raise_exception and errors
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}",
    "{% if messages[0].role == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}",
    "{{ raise_exception('count ' ~ messages|length ~ ', \"quoted\" ✓') }}",
    "{{ raise_exception(42) }}",
    "{{ 1 + none }}", "{{ missing.x }}", "{{ d.a.x.y }}", "{{ [1,2][1:2:0] }}", "{% for a, b in [[1]] %}{% endfor %}",
    "{% set ns.x = 1 %}", "{% if %}{% endif %}", "{% for x in %}", "{{ x", "{% if true %}", "{% endif %}", "{{ (1 }}",
    "{% foo %}", "{{ 'abc }}", "{% break %}", "{{ 'a' | nosuchfilter }}", "{{ x is nosuchtest }}", "{% macro m(a=1, b) %}{% endmacro %}",
    "{{ ! }}", "{{ '\\xZZ' }}", "{{ 1 + }}", "{{ range(1, 10, 0) }}", "{{ range(200000)|length }}", "{{ 1 / 0 }}", "{{ 1.0 // 0 }}",
    "{{ [] + () }}", "{{ {[1]: 2} }}", "{% set x = namespace() %}{% set x._y = 1 %}", "{{ namespace(_a=1) }}",
    "{% macro m(x) %}{{ x }}{% endmacro %}{{ m(1, 2) }}", "{% macro m(x) %}{{ x }}{% endmacro %}{{ m(1, x=2) }}",
    "{{ 'abc'.foo() }}", "{{ (5)[1:] ~ n }}", "{{ n[1:] }}", "{% set v = 1e308 * 10 %}{{ v }}", "{{ d.update({}) }}",
    "{{ missing|tojson }}", "{{ [1]|tojson(indent=1.5) }}", "{{ none|length }}", "{{ 'a' < 1 }}",
    # refused by Lethe, rendered by jinja (the test requires an "unsupported" error)
    ("{% macro m() %}{{ varargs }}{% endmacro %}{{ m(1, 2) }}", None, True),
    ("{{ d|items }}", None, True),
    ("{{ d.items }}", None, True),
    ("{% set ns = namespace(a=1) %}{{ ns }}", None, True),
    ("{{ 2 ** 100 }}", None, True),
    ("{{ '%s and %d' % ('a', 1) }}", None, True),
    ("{{ s.format(1) }}", None, True),
    ("{{ lipsum(1) }}", None, True),
    ("{{ l|sort }}", None, True),
    ("{% for x in [1, 2] %}{{ loop.changed(x) }}{% endfor %}", None, True),
    ("{% with a = 1 %}{{ a }}{% endwith %}", None, True),
]


def tokenizer_for(special_tokens, chat_template):
    vocab = {"<unk>": 0}
    for token in special_tokens.values():
        vocab.setdefault(token, len(vocab))
    model = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    model.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=model, **special_tokens)
    tok.chat_template = chat_template
    return tok


def outcome(render):
    try:
        return {"output": render()}
    except jinja2.exceptions.TemplateError as e:
        if type(e) is jinja2.exceptions.TemplateError:  # raise_exception()
            return {"raised": str(e)}
        return {"error": f"{type(e).__name__}: {e}"}
    except Exception as e:  # noqa: BLE001 - any other failure is an expected error
        return {"error": f"{type(e).__name__}: {e}"}


def families(fixture_dir):
    out = []
    for name, special in FAMILIES.items():
        with open(os.path.join(fixture_dir, name), encoding="utf-8") as f:
            text = f.read()
        tok = tokenizer_for(special, text)
        cases = []
        for conv_name, conv in CONVERSATIONS.items():
            for agp in (False, True):
                r = outcome(lambda: tok.apply_chat_template(conv, tokenize=False, add_generation_prompt=agp))
                cases.append({"conversation": conv_name, "add_generation_prompt": agp, **r})
        out.append({"template": name, "special_tokens": tok.special_tokens_map, "cases": cases})
    return out


def variables_cases(fixture_dir):
    out = []
    special = FAMILIES["phi3.jinja"]
    for name in ("adversarial_tools.jinja", "phi3.jinja", "llama3.jinja"):
        with open(os.path.join(fixture_dir, name), encoding="utf-8") as f:
            text = f.read()
        tok = tokenizer_for(special, text)
        for tools in (TOOLS, None):
            for agp in (False, True):
                conv = TOOL_CONVERSATION
                r = outcome(lambda: tok.apply_chat_template(conv, tools=tools, tokenize=False, add_generation_prompt=agp))
                variables = {**tok.special_tokens_map, "messages": conv, "tools": tools, "documents": None,
                             "add_generation_prompt": agp}
                # The variables recorded are what the template saw: check by rendering with them.
                direct = outcome(lambda: _compile_jinja_template(text).render(**variables))
                if direct != r:
                    sys.exit(f"{name}: rendering with the recorded variables differs from apply_chat_template")
                out.append({"template": name, "variables": variables, **r})
    return out


def snippets():
    out = []
    for item in SNIPPETS:
        template, variables, refuses = (item, None, False) if isinstance(item, str) else item
        r = outcome(lambda: _compile_jinja_template(template).render(**(V if variables is None else variables)))
        entry = {"template": template, "variables": "default" if variables is None else variables, **r}
        if refuses:
            if "output" not in r:
                sys.exit(f"snippet {template!r} marked lethe_refuses does not render in jinja: {r}")
            del entry["output"]  # jinja's text (addresses, lipsum) varies from run to run
            entry["lethe_refuses"] = True
        out.append(entry)
    return out


LAYOUTS = [
    ("config string", {"tokenizer_config.json": {"chat_template": "A{{ messages|length }}"}}),
    ("jinja file only", {"tokenizer_config.json": {}, "chat_template.jinja": "B{{ messages|length }}\n"}),
    ("jinja file beats config", {"tokenizer_config.json": {"chat_template": "A"}, "chat_template.jinja": "B\n"}),
    ("list with default", {"tokenizer_config.json": {"chat_template": [
        {"name": "tool_use", "template": "T"}, {"name": "default", "template": "D{{ bos_token }}"}]}}),
    ("list without default", {"tokenizer_config.json": {"chat_template": [{"name": "tool_use", "template": "T"}]}}),
    ("config null", {"tokenizer_config.json": {"chat_template": None}}),
    ("no template", {"tokenizer_config.json": {}}),
]


def loading():
    out = []
    for label, files in LAYOUTS:
        with tempfile.TemporaryDirectory() as d:
            tokenizer_for({"bos_token": "<s>"}, None).backend_tokenizer.save(os.path.join(d, "tokenizer.json"))
            config = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<s>",
                      **files["tokenizer_config.json"]}
            with open(os.path.join(d, "tokenizer_config.json"), "w", encoding="utf-8") as f:
                json.dump(config, f)
            if "chat_template.jinja" in files:
                with open(os.path.join(d, "chat_template.jinja"), "w", encoding="utf-8") as f:
                    f.write(files["chat_template.jinja"])
            tok = AutoTokenizer.from_pretrained(d)
            try:
                template = tok.get_chat_template()
                result = {"template": template}
            except ValueError as e:
                result = {"error": f"ValueError: {e}"}
            if tok.chat_template is None:
                result = {"template": None}
        out.append({"layout": label, "files": {**files, "tokenizer_config.json": config}, **result})
    return out


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    fixture_dir = sys.argv[1]
    result = {
        "generated_by": "tests/reference/chat_template_reference.py",
        "rerun": "third_party/venv/bin/python tests/reference/chat_template_reference.py tests/fixtures/chat_templates",
        "versions": {"python": platform.python_version(), "transformers": transformers.__version__,
                     "jinja2": jinja2.__version__, "tokenizers": tokenizers.__version__},
        "conversations": CONVERSATIONS,
        "families": families(fixture_dir),
        "variables": variables_cases(fixture_dir),
        "snippet_variables": {"default": V},
        "snippets": snippets(),
        "loading": loading(),
    }
    with open(os.path.join(fixture_dir, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, ensure_ascii=False, indent=1)
        f.write("\n")
    n_family = sum(len(f["cases"]) for f in result["families"])
    print(f"wrote {fixture_dir}/expected.json: {n_family} family renders, {len(result['variables'])} variable "
          f"renders, {len(result['snippets'])} snippets, {len(result['loading'])} folder layouts")


if __name__ == "__main__":
    main()
