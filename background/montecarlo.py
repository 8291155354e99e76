"""Monte-Carlo integration of a user's expression, parsed safely and evaluated with NumPy.

The expression is parsed with the ast module and rebuilt from a short list
of allowed nodes into NumPy calls: it is never passed to eval or exec.
"""
import ast
from collections.abc import Callable

import numpy as np

MAX_LENGTH = 500
MAX_DEPTH = 32
# Samples are drawn and tested this many at a time, so that memory stays
# bounded whatever `size` is: at most about one 0.8 MB array per nesting level.
CHUNK = 100_000

FUNCTIONS = {
    name: getattr(np, name)
    for name in ("sqrt", "exp", "log", "log10", "sin", "cos", "tan",
                 "arcsin", "arccos", "arctan", "abs", "floor", "ceil")
}
CONSTANTS = {"pi": np.pi, "e": np.e}
VARIABLES = {"xs", "x"}
# Every refusal of a name or construct ends with this, so that a client learns
# what to write instead.
ALLOWED = ("The expression may use numbers, xs (or x), pi, e, + - * / ** %, parentheses "
           f"and the functions {', '.join(FUNCTIONS)}.")
BINARY = {
    ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply,
    ast.Div: np.divide, ast.Pow: np.power, ast.Mod: np.mod,
}
UNARY = {ast.USub: np.negative, ast.UAdd: np.positive}
LINKS = (ast.Call, ast.Attribute, ast.Subscript)
REFUSED = {
    ast.Subscript: "subscripts", ast.Lambda: "lambdas", ast.ListComp: "comprehensions",
    ast.SetComp: "comprehensions", ast.DictComp: "comprehensions",
    ast.GeneratorExp: "comprehensions",
    ast.Compare: "comparisons", ast.BoolOp: "boolean operators", ast.IfExp: "conditionals",
    ast.NamedExpr: "assignments", ast.Starred: "starred arguments",
    ast.JoinedStr: "strings", ast.List: "lists", ast.Tuple: "tuples", ast.Dict: "dicts",
    ast.Set: "sets", ast.Await: "await", ast.Yield: "yield", ast.YieldFrom: "yield",
}

Function = Callable[[np.ndarray], np.ndarray | np.float64]


class ExpressionError(ValueError):
    """The expression is outside the allowed grammar; the message says what was refused."""


def compile_expression(source: str) -> Function:
    """Return f(xs) for source, or raise ExpressionError naming what is not allowed."""
    if len(source) > MAX_LENGTH:
        raise ExpressionError(f"The expression is longer than {MAX_LENGTH} characters.")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except (SyntaxError, ValueError) as error:
        reason = getattr(error, "msg", None) or str(error)
        raise ExpressionError(f"The expression is not valid: {reason}.") from None
    except (RecursionError, MemoryError):
        raise ExpressionError("The expression is nested too deeply.") from None
    return build(tree.body, depth=1)


def build(node: ast.AST, depth: int) -> Function:
    """Return the NumPy function for node, refusing anything outside the grammar."""
    if depth > MAX_DEPTH:
        raise ExpressionError(f"The expression is nested more than {MAX_DEPTH} levels deep.")
    match node:
        case ast.Constant(value=str() | bytes()):
            raise ExpressionError(f"The expression may not contain strings. {ALLOWED}")
        case ast.Constant(value=bool() | complex() | None as value):
            raise ExpressionError(f"Only real numbers are allowed, not {value!r}. {ALLOWED}")
        case ast.Constant(value=int() | float() as value):
            try:
                return Constant(np.float64(value))
            except OverflowError:
                raise ExpressionError("A number in the expression is too large.") from None
        case ast.Name(id=name) if name in VARIABLES:
            return lambda xs: xs
        case ast.Name(id=name) if name in CONSTANTS:
            return Constant(np.float64(CONSTANTS[name]))
        case ast.Name(id=name) if name in FUNCTIONS:
            raise ExpressionError(f"The function {name!r} must be called, as in {name}(x).")
        case ast.Name(id=name):
            raise ExpressionError(f"Unknown name {name!r}. {ALLOWED}")
        case ast.BinOp(left=left, op=op, right=right) if type(op) in BINARY:
            return fold(BINARY[type(op)], build(left, depth + 1), build(right, depth + 1))
        case ast.UnaryOp(op=op, operand=operand) if type(op) in UNARY:
            return fold(UNARY[type(op)], build(operand, depth + 1))
        case ast.Call(func=ast.Name(id=name), args=[argument], keywords=[]) if name in FUNCTIONS:
            return fold(FUNCTIONS[name], build(argument, depth + 1))
        case ast.Call(func=ast.Name(id=name)) if name in FUNCTIONS:
            raise ExpressionError(f"{name}() takes exactly one argument.")
        case ast.Call(func=ast.Name(id=name)):
            raise ExpressionError(f"Calls to {name!r} are not allowed. {ALLOWED}")
        case ast.Call(func=inner) | ast.Attribute(value=inner) | ast.Subscript(value=inner) if (
                isinstance(node, ast.Call) or isinstance(inner, LINKS)):
            # A chain of calls, attributes and subscripts is checked from its start, then
            # refused below: the refusal names its first link refused, `__import__` in
            # `__import__('os').system('id')`, `.__class__` in `x.__class__.__mro__`.
            build(inner, depth + 1)
        case ast.BinOp(op=op) | ast.UnaryOp(op=op):
            raise ExpressionError(f"The operator {type(op).__name__} is not allowed. {ALLOWED}")
    raise ExpressionError(f"The expression may not contain {construct(node)}. {ALLOWED}")


def construct(node: ast.AST) -> str:
    """Name the construct that node is, for a refusal."""
    match node:
        case ast.Attribute(value=ast.Name(id=name), attr=attribute):
            return f"attribute access ({name}.{attribute})"
        case ast.Attribute(attr=attribute):
            return f"attribute access (.{attribute})"
        case ast.Call(func=ast.Call()):
            return "calls of a call's result"
        case ast.Call():
            return "calls of anything but a function by name"
    return REFUSED.get(type(node), type(node).__name__)


class Constant:
    """A function of xs that does not depend on xs."""

    def __init__(self, value: np.float64) -> None:
        if not np.isfinite(value):
            raise ExpressionError("A constant part of the expression is not a finite number.")
        self.value = value

    def __call__(self, xs: np.ndarray) -> np.float64:
        return self.value


def fold(operation: np.ufunc, *operands: Function) -> Function:
    """Combine operands with operation, computing constant parts once, now.

    Folding also catches 9**9**9**9 at parse time: in float64 it is inf at
    once, where Python integers would keep a worker busy for hours.
    """
    if all(isinstance(operand, Constant) for operand in operands):
        with np.errstate(all="ignore"):
            return Constant(operation(*(operand.value for operand in operands)))
    return lambda xs: operation(*(operand(xs) for operand in operands))


def estimate_area(
    f: str, a: float, b: float, c: float, d: float, size: int, seed: int | None = None
) -> dict[str, float | int]:
    """Estimate the area under f inside the box [a, b] x [c, d] from size random points."""
    function = compile_expression(f)
    rng = np.random.default_rng(seed)
    hits = 0
    for start in range(0, size, CHUNK):
        count = min(CHUNK, size - start)
        xs = rng.uniform(a, b, count)
        ys = rng.uniform(c, d, count)
        with np.errstate(all="ignore"):
            fx = np.broadcast_to(function(xs), xs.shape)
            # A NaN or infinite f(x) is no hit: inf >= y would count otherwise.
            hits += int(np.count_nonzero(np.isfinite(fx) & (ys <= fx)))
    return {"estimate": (b - a) * (d - c) * hits / size, "samples": size, "hits": hits}
