"""Boutiques output conditions (``conditional-path-template``: "min > 2 and scope == 'series'"), evaluated
without ``eval``: comparisons, arithmetic, and/or/not, literals and input ids. A condition naming an input
without a value is false as a whole, as ``bosh`` takes it."""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from typing import Any

Value = str | float | int | bool | list[Any]


def condition_holds(condition: str, values: Mapping[str, Value], ids: frozenset[str] = frozenset()) -> bool:
    """A Boutiques output condition ("min > 2 and scope == 'series'", "(n + 1) > 3") over input ids, evaluated
    without ``eval``: comparisons, and/or/not, arithmetic, literals and input ids. As ``bosh`` does, a condition
    naming an id (of ``ids``) that has no value is false as a whole; one that cannot be evaluated is false."""
    try:
        tree = ast.parse(condition.strip(), mode="eval")
        named = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
        if any(name in ids and values.get(name) is None for name in named):
            return False
        return bool(_evaluate(tree.body, values))
    except (SyntaxError, ValueError, TypeError, ArithmeticError):
        return False


def condition_problem(condition: str, ids: frozenset[str]) -> str | None:
    """Why a condition can never be evaluated (a syntax error, something other than comparisons, arithmetic,
    and/or/not, literals and ids, or a name no input has), for ``tool validate``'s warnings; None if sound."""
    if condition.strip() == "default":
        return None
    try:
        tree = ast.parse(condition.strip(), mode="eval")
    except SyntaxError as exc:
        return f"not an expression ({exc.msg})"
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id not in ids and node.id not in _NAMED:
            return f"{node.id!r} is no input id"
    try:
        _evaluate(tree.body, dict.fromkeys(ids, 1))
    except ValueError as exc:
        return str(exc)
    except (TypeError, ArithmeticError):
        pass  # a type or value question for the actual values
    return None


_NAMED = {"true": True, "false": False, "True": True, "False": False}


def _evaluate(node: ast.AST, values: Mapping[str, Value]) -> object:
    if isinstance(node, ast.BoolOp):
        results = [_evaluate(v, values) for v in node.values]
        return all(results) if isinstance(node.op, ast.And) else any(results)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(node.operand, values))
    if isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:
        return _ARITHMETIC[type(node.op)](_evaluate(node.left, values), _evaluate(node.right, values))
    if isinstance(node, ast.Compare):
        left = _evaluate(node.left, values)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = _evaluate(right_node, values)
            if left is None or right is None or not _AST_OPS[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return _NAMED[node.id] if node.id in _NAMED else values.get(node.id)
    raise ValueError(f"unsupported in a condition: {type(node).__name__}")


_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.Not: operator.not_,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}
_ARITHMETIC: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}


_AST_OPS: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
