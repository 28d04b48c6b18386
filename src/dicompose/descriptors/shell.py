"""Boutiques command lines that use shell syntax, run under ``sh -c`` with every value a positional parameter.

Many Boutiques descriptors are written for ``bosh``, which runs the whole command line in a shell:
``echo [INPUT] > ./out/file.txt``, ``tool [IN] && cat [LOG]``, ``cmd &> [LOG]``. dicompose runs such a template
as ``sh -c SCRIPT sh VALUE...``: the script is the template with each value-key replaced by a reference to a
positional parameter (``"${3}"``), written to suit the quoting around it in the template, so a value is
never script text, whatever characters it holds (``$(...)``, quotes, ``;``, newlines). A template without shell
syntax keeps running as a plain argv (see :mod:`dicompose.descriptors.invocation`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

SHELL = "/bin/sh"
#: Characters that mean something to a POSIX shell outside quotes (a template using any runs under sh -c).
_SPECIAL = set("|&;<>()$`\\\"'*?[]#~\n")


def needs_shell(template: str, value_keys: Sequence[str]) -> bool:
    """The template (value-keys set aside) uses shell syntax: operators, redirections, quotes, expansions,
    globs. Plain words and spaces run as an argv, as before."""
    for key in sorted(value_keys, key=len, reverse=True):
        template = template.replace(key, " ")
    return any(char in _SPECIAL for char in template)


@dataclass
class _Frame:
    """Quoting state: the quote in force ("", "'" or '"'), open parentheses, and what opened the frame
    ("" for the script itself, "$(" or "`" for a command substitution)."""

    quote: str = ""
    parens: int = 0
    opener: str = ""


def shell_argv(template: str, expansions: Mapping[str, Sequence[str]]) -> list[str]:
    """``[sh, -c, SCRIPT, sh, VALUE...]`` for ``template`` with each value-key's argv elements
    (``expansions``: value-key → elements; an absent input has none) passed as positional parameters."""
    params: list[str] = []
    script: list[str] = []
    keys = sorted(expansions, key=len, reverse=True)  # a key never matches inside a longer one
    pattern = re.compile("|".join(re.escape(k) for k in keys)) if keys else None
    # The quoting in force, innermost last. A command substitution, $(...) or `...`, starts unquoted again,
    # even inside "...": a frame of its own.
    frames = [_Frame()]
    index = 0
    while index < len(template):
        frame = frames[-1]
        match = pattern.match(template, index) if pattern is not None else None
        if match is not None:
            script.append(_reference(list(expansions[match.group(0)]), params, frame.quote))
            index = match.end()
            continue
        char, step = template[index], 1
        if frame.quote == "'":
            frame.quote = "" if char == "'" else frame.quote
        elif char == "\\" and index + 1 < len(template):
            step = 2
        elif template.startswith("$(", index):
            frames.append(_Frame(opener="$("))
            step = 2
        elif char == "`" and frame.opener == "`":
            frames.pop()
        elif char == "`":
            frames.append(_Frame(opener="`"))
        elif frame.quote == '"':
            frame.quote = "" if char == '"' else frame.quote
        elif char in ("'", '"'):
            frame.quote = char
        elif char == "(":
            frame.parens += 1
        elif char == ")" and frame.parens:
            frame.parens -= 1
        elif char == ")" and frame.opener == "$(":
            frames.pop()
        script.append(template[index : index + step])
        index += step
    return [SHELL, "-c", "".join(script), "sh", *params]


def _reference(elements: list[str], params: list[str], quote: str) -> str:
    """Script text standing for ``elements`` where the template had the value-key, under ``quote``."""
    if quote:  # inside quotes: one word, the elements joined by spaces (as the text would have been)
        if not elements:
            return ""
        params.append(" ".join(elements))
        reference = f"${{{len(params)}}}"
        return reference if quote == '"' else f"'\"{reference}\"'"  # in '...': close, refer, reopen
    words = []
    for element in elements:
        params.append(element)
        words.append(f'"${{{len(params)}}}"')
    return " ".join(words)
