"""Boutiques command lines that use shell syntax, run under ``sh -c`` with every value a positional parameter.

Many Boutiques descriptors are written for ``bosh``, which runs the whole command line in a shell:
``echo [INPUT] > ./out/file.txt``, ``tool [IN] && cat [LOG]``, ``cmd &> [LOG]``. dicompose runs such a template
as ``sh -c SCRIPT sh VALUE...``: the script is the template with each value-key replaced by a reference to a
positional parameter (``"${3}"``), written to suit the quoting around it in the template, so a value is
never script text, whatever characters it holds (``$(...)``, quotes, ``;``, newlines). A template without shell
syntax keeps running as a plain argv (see :mod:`dicompose.tools.invocation`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

SHELL = "/bin/sh"
#: Characters that mean something to a POSIX shell outside quotes (a template using any runs under sh -c).
_SPECIAL = set("|&;<>()$`\\\"'*?[]#~")
_PLACEHOLDER = "\x00{}\x00"


def needs_shell(template: str, value_keys: Sequence[str]) -> bool:
    """The template (value-keys set aside) uses shell syntax: operators, redirections, quotes, expansions,
    globs. Plain words and spaces run as an argv, as before."""
    text = _without_keys(template, value_keys)
    return any(char in _SPECIAL or char == "\n" for char in text.replace("\x00", ""))


def shell_argv(template: str, expansions: Mapping[str, Sequence[str]]) -> list[str]:
    """``[sh, -c, SCRIPT, sh, VALUE...]`` for ``template`` with each value-key's argv elements
    (``expansions``: value-key → elements; an absent input has none) passed as positional parameters."""
    params: list[str] = []
    script: list[str] = []
    keys = sorted(expansions, key=len, reverse=True)  # a key never matches inside a longer one
    pattern = re.compile("|".join(re.escape(k) for k in keys)) if keys else None
    # The quoting in force, innermost last: "" (none), "'" or '"'. A command substitution, $(...) or `...`,
    # starts unquoted again, even inside "...": a frame of its own ("$(" frames count their parentheses).
    frames: list[list[str | int]] = [["", 0, ""]]
    index = 0
    while index < len(template):
        frame = frames[-1]
        quote = str(frame[0])
        match = pattern.match(template, index) if pattern is not None else None
        if match is not None:
            script.append(_reference(list(expansions[match.group(0)]), params, quote))
            index = match.end()
            continue
        char, pair = template[index], template[index : index + 2]
        step = 1
        if quote == "'":
            if char == "'":
                frame[0] = ""
        elif char == "\\" and index + 1 < len(template):
            step = 2
        elif pair == "$(":
            frames.append(["", 0, "$("])
            step = 2
        elif char == "`":
            if frame[2] == "`":
                frames.pop()
            else:
                frames.append(["", 0, "`"])
        elif quote == '"':
            if char == '"':
                frame[0] = ""
        elif char in ("'", '"'):
            frame[0] = char
        elif char == "(":
            frame[1] = int(frame[1]) + 1
        elif char == ")":
            if int(frame[1]) > 0:
                frame[1] = int(frame[1]) - 1
            elif frame[2] == "$(" and len(frames) > 1:
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


def _without_keys(template: str, value_keys: Sequence[str]) -> str:
    for key in sorted(value_keys, key=len, reverse=True):
        template = template.replace(key, _PLACEHOLDER.format(""))
    return template
