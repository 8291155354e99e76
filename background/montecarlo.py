"""Monte-Carlo integration of a user's expression, evaluated with NumPy.

expression.py parses the expression into a tree and refuses anything outside
the grammar; this module evaluates the tree over arrays of sample points. Only
the worker imports it: the web process validates with expression.py alone.
"""
from collections.abc import Callable

import numpy as np

from background.expression import FUNCTIONS, Binary, Call, Constant, Tree, Unary, Variable, parse

# Samples are drawn and tested this many at a time, so that memory stays
# bounded whatever `size` is: at most about one 0.8 MB array per nesting level.
CHUNK = 100_000

UFUNCS = {name: getattr(np, name) for name in FUNCTIONS}
BINARY = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide,
          "**": np.power, "%": np.mod}
UNARY = {"-": np.negative, "+": np.positive}

Function = Callable[[np.ndarray], np.ndarray | np.float64]


def compile_expression(source: str) -> Function:
    """Return f(xs) for source, or raise ExpressionError naming what is not allowed."""
    tree = parse(source)
    return lambda xs: evaluate(tree, xs)


def evaluate(tree: Tree, xs: np.ndarray) -> np.ndarray | np.float64:
    """Evaluate tree at every point of xs; a constant is one float64 scalar."""
    match tree:
        case Variable():
            return xs
        case Constant(value):
            return np.float64(value)
        case Unary(op, operand):
            return UNARY[op](evaluate(operand, xs))
        case Binary(op, left, right):
            return BINARY[op](evaluate(left, xs), evaluate(right, xs))
        case Call(function, argument):
            return UFUNCS[function](evaluate(argument, xs))
    raise TypeError(f"Not an expression tree: {tree!r}")


def estimate_area(
    f: str, a: float, b: float, c: float, d: float, size: int, seed: int | None = None
) -> dict[str, float | int]:
    """Estimate the area under f inside the box [a, b] x [c, d] from size random points."""
    tree = parse(f)
    rng = np.random.default_rng(seed)
    hits = 0
    for start in range(0, size, CHUNK):
        count = min(CHUNK, size - start)
        xs = rng.uniform(a, b, count)
        ys = rng.uniform(c, d, count)
        with np.errstate(all="ignore"):
            fx = np.broadcast_to(evaluate(tree, xs), xs.shape)
            # A NaN or infinite f(x) is no hit: inf >= y would count otherwise.
            hits += int(np.count_nonzero(np.isfinite(fx) & (ys <= fx)))
    return {"estimate": (b - a) * (d - c) * hits / size, "samples": size, "hits": hits}
