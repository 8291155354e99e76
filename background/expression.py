"""The integrand's grammar: parse a user's expression in x into a small tree.

The expression is parsed with the ast module and rebuilt from a short list of
allowed nodes: it is never passed to eval or exec. Constant parts are computed
here, once, in float64 as NumPy computes them (see fold). Only the standard
library is imported, so that the web process validates an expression without
loading NumPy, which only the worker needs.
"""
import ast
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass

MAX_LENGTH = 500
MAX_DEPTH = 32

FUNCTIONS = ("sqrt", "exp", "log", "log10", "sin", "cos", "tan",
             "arcsin", "arccos", "arctan", "abs", "floor", "ceil")
CONSTANTS = {"pi": math.pi, "e": math.e}
VARIABLES = frozenset({"xs", "x"})
# Every refusal of a name or construct ends with this, so that a client learns
# what to write instead.
ALLOWED = ("The expression may use numbers, xs (or x), pi, e, + - * / ** %, parentheses "
           f"and the functions {', '.join(FUNCTIONS)}.")
BINARY = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**", ast.Mod: "%"}
UNARY = {ast.USub: "-", ast.UAdd: "+"}
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


class ExpressionError(ValueError):
    """The expression is outside the allowed grammar; the message says what was refused."""


@dataclass(frozen=True, slots=True)
class Variable:
    """The sample points, xs (or x)."""


@dataclass(frozen=True, slots=True)
class Constant:
    """A finite float64 value: a number, pi, e, or a constant part computed at parse time."""

    value: float


@dataclass(frozen=True, slots=True)
class Unary:
    """A unary operator, "-" or "+", applied to operand."""

    op: str
    operand: "Tree"


@dataclass(frozen=True, slots=True)
class Binary:
    """A binary operator, one of + - * / ** %, applied to left and right."""

    op: str
    left: "Tree"
    right: "Tree"


@dataclass(frozen=True, slots=True)
class Call:
    """One of FUNCTIONS applied to argument."""

    function: str
    argument: "Tree"


Tree = Variable | Constant | Unary | Binary | Call


def parse(source: str) -> Tree:
    """Return the tree of source, or raise ExpressionError naming what is not allowed."""
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


def build(node: ast.AST, depth: int) -> Tree:
    """Return the tree for node, refusing anything outside the grammar."""
    if depth > MAX_DEPTH:
        raise ExpressionError(f"The expression is nested more than {MAX_DEPTH} levels deep.")
    match node:
        case ast.Constant(value=str() | bytes()):
            raise ExpressionError(f"The expression may not contain strings. {ALLOWED}")
        case ast.Constant(value=bool() | complex() | None as value):
            raise ExpressionError(f"Only real numbers are allowed, not {value!r}. {ALLOWED}")
        case ast.Constant(value=int() | float() as value):
            try:
                return constant(float(value))
            except OverflowError:
                raise ExpressionError("A number in the expression is too large.") from None
        case ast.Name(id=name) if name in VARIABLES:
            return Variable()
        case ast.Name(id=name) if name in CONSTANTS:
            return constant(CONSTANTS[name])
        case ast.Name(id=name) if name in FUNCTIONS:
            raise ExpressionError(f"The function {name!r} must be called, as in {name}(x).")
        case ast.Name(id=name):
            raise ExpressionError(f"Unknown name {name!r}. {ALLOWED}")
        case ast.BinOp(left=left, op=op, right=right) if type(op) in BINARY:
            symbol = BINARY[type(op)]
            return fold(Binary(symbol, build(left, depth + 1), build(right, depth + 1)))
        case ast.UnaryOp(op=op, operand=operand) if type(op) in UNARY:
            return fold(Unary(UNARY[type(op)], build(operand, depth + 1)))
        case ast.Call(func=ast.Name(id=name), args=[argument], keywords=[]) if name in FUNCTIONS:
            return fold(Call(name, build(argument, depth + 1)))
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


# Constant parts are computed with Python floats, which are IEEE 754 float64
# like NumPy's, and the math module, which calls the same C library functions
# as NumPy's portable loops. Where NumPy answers inf or nan, Python raises
# (ZeroDivisionError, OverflowError, ValueError for a math domain error) or,
# for a negative number to a fractional power, answers a complex number: all
# of these are refused as not finite. On a CPU with AVX-512, NumPy's own
# kernels for exp, log, log10, tan, arcsin, arccos, arctan and power can differ
# from the C library in the last bit; the worker evaluates the tree parsed
# here, constants included, so the web process and the worker still agree.

def power(base: float, exponent: float) -> float:
    """Raise base to exponent as np.power does.

    np.power squares for an exponent of 2 and takes the square root for 0.5,
    which can differ from C's pow in the last bit, or in the sign of a zero:
    https://github.com/numpy/numpy/blob/main/numpy/_core/src/umath/loops_umath_fp.dispatch.c.src
    """
    if exponent == 2.0:
        return base * base
    if exponent == 0.5:
        return math.sqrt(base)
    return base ** exponent


def floor(value: float) -> float:
    """Round down as np.floor does: to a float, keeping the sign of a zero (floor(-0.0) is -0.0)."""
    return math.copysign(math.floor(value), value)


def ceil(value: float) -> float:
    """Round up as np.ceil does: to a float, keeping the sign of a zero (ceil(-0.5) is -0.0)."""
    return math.copysign(math.ceil(value), value)


FOLD_BINARY: dict[str, Callable[[float, float], float]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
    "**": power, "%": operator.mod,
}
FOLD_UNARY: dict[str, Callable[[float], float]] = {"-": operator.neg, "+": operator.pos}
FOLD_FUNCTIONS: dict[str, Callable[[float], float]] = {
    "sqrt": math.sqrt, "exp": math.exp, "log": math.log, "log10": math.log10,
    "sin": math.sin, "cos": math.cos, "tan": math.tan, "arcsin": math.asin,
    "arccos": math.acos, "arctan": math.atan, "abs": abs, "floor": floor, "ceil": ceil,
}


def fold(tree: Unary | Binary | Call) -> Tree:
    """Return tree, computed once now if all its operands are constants.

    Folding also catches 9**9**9**9 at parse time: in float64 it is inf at
    once, where Python integers would keep a worker busy for hours.
    """
    match tree:
        case Unary(op, Constant(value)):
            return compute(FOLD_UNARY[op], value)
        case Binary(op, Constant(left), Constant(right)):
            return compute(FOLD_BINARY[op], left, right)
        case Call(function, Constant(value)):
            return compute(FOLD_FUNCTIONS[function], value)
    return tree


def compute(operation: Callable[..., float], *operands: float) -> Constant:
    """Return operation(*operands) as a constant, refusing a result that is not a finite float."""
    try:
        value = operation(*operands)
    except (ArithmeticError, ValueError):
        value = math.nan
    if not isinstance(value, float):
        value = math.nan
    return constant(value)


def constant(value: float) -> Constant:
    """Return value as a constant, refusing inf and nan."""
    if not math.isfinite(value):
        raise ExpressionError("A constant part of the expression is not a finite number.")
    return Constant(value)
