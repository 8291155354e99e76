"""The integration expression grammar, its refusals, and the Monte-Carlo area estimate."""
import json
import math
import os
import string
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from background.expression import MAX_DEPTH, MAX_LENGTH, Constant, ExpressionError, parse
from background.montecarlo import CHUNK, compile_expression, estimate_area
from tests.helpers import job_rows
from tests.services import ROOT

# The reference evaluator below maps the grammar to NumPy on its own, from the
# generated tree, never from the parsed string.
REFERENCE_BINARY = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide,
                    "**": np.power, "%": np.mod}
REFERENCE_UNARY = {"-": np.negative, "+": np.positive}
REFERENCE_FUNCTIONS = {"sqrt": np.sqrt, "exp": np.exp, "log": np.log, "log10": np.log10,
                       "sin": np.sin, "cos": np.cos, "tan": np.tan, "arcsin": np.arcsin,
                       "arccos": np.arccos, "arctan": np.arctan, "abs": np.abs,
                       "floor": np.floor, "ceil": np.ceil}
# Constant parts are folded at parse time without NumPy, in float64 as NumPy's
# portable loops compute it: these call the C library, as Python's math module
# does. On a CPU with AVX-512, NumPy computes exp, log, log10, tan, arcsin,
# arccos, arctan and power with vector kernels of its own instead, which differ
# in the last bit for a few percent of inputs (and tan or floor of such a value
# can differ entirely), so the reference folds constant parts in a child process
# whose NumPy has those kernels switched off: NumPy 2.4's x86-64 targets above
# AVX2. https://numpy.org/doc/stable/reference/simd/build-options.html
PORTABLE_NUMPY = {"NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR"}


@cache
def portable_numpy() -> subprocess.Popen:
    """Start tests/portable_numpy.py once; it exits when this process closes its stdin."""
    return subprocess.Popen([sys.executable, str(ROOT / "tests" / "portable_numpy.py")],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, **PORTABLE_NUMPY})


def portable(operation: np.ufunc, *operands: np.float64) -> np.float64:
    """Return operation(*operands) as NumPy computes it in float64 without AVX-512 kernels."""
    child = portable_numpy()
    child.stdin.write(json.dumps([operation.__name__, *(float(x).hex() for x in operands)]) + "\n")
    child.stdin.flush()
    answer = child.stdout.readline()
    assert answer, f"tests/portable_numpy.py exited with {child.poll()}"
    return np.float64(float.fromhex(answer))


@dataclass(frozen=True)
class Node:
    """A generated expression: its source, AST depth and reference value.

    A constant node holds its float64 value, folded as the grammar promises;
    `refused` is True once any constant part is not finite.
    """

    source: str
    depth: int
    constant: bool
    value: Any  # np.float64 when constant, else a function of xs
    refused: bool = False

    def evaluate(self, xs: np.ndarray) -> Any:
        return self.value if self.constant else self.value(xs)


def combine(source: str, operation: np.ufunc, *children: Node) -> Node:
    depth = 1 + max(child.depth for child in children)
    refused = any(child.refused for child in children)
    if all(child.constant for child in children):
        if refused:
            return Node(source, depth, True, np.float64("nan"), True)
        value = portable(operation, *(child.value for child in children))
        return Node(source, depth, True, value, not np.isfinite(value))
    return Node(source, depth, False,
                lambda xs: operation(*(child.evaluate(xs) for child in children)), refused)


integers = st.integers(0, 1000).map(lambda n: Node(str(n), 1, True, np.float64(n)))
floats = st.floats(0, 100, allow_nan=False).map(lambda v: Node(repr(v), 1, True, np.float64(v)))
variables = st.sampled_from(["x", "xs"]).map(lambda name: Node(name, 1, False, lambda xs: xs))
named_constants = st.sampled_from([("pi", np.pi), ("e", np.e)]).map(
    lambda pair: Node(pair[0], 1, True, np.float64(pair[1])))
leaves = st.one_of(variables, integers, floats, named_constants)


def extend(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    binary = st.tuples(children, st.sampled_from(sorted(REFERENCE_BINARY)), children).map(
        lambda t: combine(f"({t[0].source}) {t[1]} ({t[2].source})", REFERENCE_BINARY[t[1]],
                          t[0], t[2]))
    unary = st.tuples(st.sampled_from(["-", "+"]), children).map(
        lambda t: combine(f"{t[0]}({t[1].source})", np.negative if t[0] == "-" else np.positive,
                          t[1]))
    call = st.tuples(st.sampled_from(sorted(REFERENCE_FUNCTIONS)), children).map(
        lambda t: combine(f"{t[0]}({t[1].source})", REFERENCE_FUNCTIONS[t[0]], t[1]))
    chain = st.tuples(st.lists(st.sampled_from(["-", "+", *REFERENCE_FUNCTIONS]), min_size=2,
                               max_size=MAX_DEPTH), children).map(lambda t: wrap(*t))
    return st.one_of(binary, unary, call, chain)


def wrap(names: list[str], node: Node) -> Node:
    """Nest node in a chain of unary operators and calls, innermost last."""
    for name in reversed(names):
        if name in ("-", "+"):
            node = combine(f"{name}({node.source})", np.negative if name == "-" else np.positive,
                           node)
        else:
            node = combine(f"{name}({node.source})", REFERENCE_FUNCTIONS[name], node)
    return node


expressions = st.recursive(leaves, extend, max_leaves=30)
sample_arrays = st.lists(st.floats(-10, 10, allow_nan=False), min_size=1, max_size=8).map(
    lambda values: np.array(values, dtype=np.float64))


def expected_refusal(node: Node) -> str | None:
    """The pattern the refusal of node must match, or None if node must compile."""
    if len(node.source) > MAX_LENGTH:
        return "longer than"
    if node.depth > MAX_DEPTH:
        # Which of the two is met first is the parser's business.
        return "nested more than|finite" if node.refused else "nested more than"
    return "finite" if node.refused else None


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions, sample_arrays)
def test_expressions_from_the_grammar_compile_and_match_a_reference_evaluation(node, xs):
    refusal = expected_refusal(node)
    if refusal is not None:
        with pytest.raises(ExpressionError, match=refusal):
            compile_expression(node.source)
        return
    function = compile_expression(node.source)
    with np.errstate(all="ignore"):
        actual = np.broadcast_to(function(xs), xs.shape)
        expected = np.broadcast_to(node.evaluate(xs), xs.shape)
    assert actual.dtype == np.float64
    np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=0, equal_nan=True,
                               err_msg=node.source)


def number(value: float) -> Node:
    """The node of a number literal, written as repr writes value."""
    return Node(repr(float(value)), 1, True, np.float64(value))


def node_of(spec: Any) -> Node:
    """Build the node of spec: a number, "x", "pi", or (operator or function, operands...)."""
    match spec:
        case int() | float():
            return number(spec)
        case "x":
            return Node("x", 1, False, lambda xs: xs)
        case "pi" | "e":
            return Node(spec, 1, True, np.float64(getattr(np, spec)))
        case ("-" | "+" as op, operand):
            child = node_of(operand)
            return combine(f"{op}({child.source})", REFERENCE_UNARY[op], child)
        case (function, argument):
            child = node_of(argument)
            return combine(f"{function}({child.source})", REFERENCE_FUNCTIONS[function], child)
        case (op, left, right):
            children = node_of(left), node_of(right)
            return combine(f"({children[0].source}) {op} ({children[1].source})",
                           REFERENCE_BINARY[op], *children)
    raise ValueError(f"not a node: {spec!r}")


def same_bits(actual: Any, expected: Any) -> bool:
    """Whether two float64 values or arrays are equal bit for bit, any NaN equalling any NaN."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    return bool(np.all((actual.view(np.uint64) == expected.view(np.uint64))
                       | (np.isnan(actual) & np.isnan(expected))))


def assert_folds_like_numpy(node: Node, xs: np.ndarray) -> None:
    """Parsing refuses node exactly when a constant part is not finite in NumPy's float64;
    otherwise its constant parts, and so its values, are NumPy's bit for bit."""
    refusal = expected_refusal(node)
    if refusal is not None:
        with pytest.raises(ExpressionError, match=refusal):
            parse(node.source)
        return
    tree = parse(node.source)
    if node.constant:
        assert isinstance(tree, Constant) and same_bits(tree.value, node.value), node.source
    with np.errstate(all="ignore"):
        actual = np.broadcast_to(compile_expression(node.source)(xs), xs.shape)
        expected = np.broadcast_to(node.evaluate(xs), xs.shape)
    assert same_bits(actual, expected), node.source


# Numbers where float64 arithmetic overflows, underflows, rounds or leaves a
# function's domain: negative ones come from unary minus.
EDGE_VALUES = [0.0, 0.5, 1.0, 2.0, 3.0, 10.0, 1e16, 1e308, sys.float_info.max,
               sys.float_info.min, 5e-324, 1e-300, 709.782712893384, 709.7827128933841, 745.2,
               1.0000000000000002, 0.9999999999999999, math.pi / 2]
edge_numbers = st.one_of(
    st.sampled_from(EDGE_VALUES).map(number),
    st.floats(min_value=0.0, allow_nan=False, allow_infinity=False).map(abs).map(number),
    # Integer literals that float64 rounds.
    st.sampled_from([2**53 + 1, 2**63, 10**22 + 1]).map(
        lambda n: Node(str(n), 1, True, np.float64(n))),
)
constant_leaves = st.one_of(edge_numbers, named_constants)
edge_expressions = st.one_of(st.recursive(constant_leaves, extend, max_leaves=12),
                             st.recursive(st.one_of(constant_leaves, variables), extend,
                                          max_leaves=12))
EDGE_XS = np.array([-2.0, -1.0, -0.5, -0.0, 0.0, 0.5, 1.0, 3.0, 1e308])


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edge_expressions)
def test_constant_parts_fold_to_numpys_float64_values_bit_for_bit(node):
    assert_folds_like_numpy(node, EDGE_XS)


EDGES = [
    ("arcsin", 1.0), ("arcsin", 1.0000000000000002), ("arccos", ("-", 1.0)),
    ("arccos", ("-", 1.0000000000000002)), ("arctan", 1e308),
    ("log", 0.0), ("log", ("-", 0.0)), ("log", 5e-324), ("log10", 5e-324), ("log10", 1000.0),
    ("log", ("-", 1.0)), ("sqrt", ("-", 0.0)), ("sqrt", ("-", 5e-324)),
    ("exp", 709.782712893384), ("exp", 709.7827128933841), ("exp", ("-", 745.2)),
    ("exp", ("-", 745.1)), ("tan", ("/", "pi", 2.0)), ("sin", 1e308), ("cos", 1e22),
    ("floor", ("-", 0.0)), ("floor", ("-", 0.5)), ("floor", 1e308), ("ceil", ("-", 0.5)),
    ("ceil", 0.5), ("abs", ("-", 0.0)), ("-", 0.0), ("+", ("-", 0.0)),
    ("**", 0.0, ("-", 1.0)), ("**", ("-", 0.0), ("-", 1.0)), ("**", 0.0, 0.0),
    ("**", ("-", 8.0), ("/", 1.0, 3.0)), ("**", ("-", 8.0), 3.0), ("**", ("-", 1.0), 1e308),
    ("**", ("-", 2.0), 1e308), ("**", ("-", 0.0), 0.5), ("**", ("-", 0.0), 3.0),
    ("**", ("-", 4.0), 0.5), ("**", 341.0162637960975, 2.0), ("**", 10.0, 308.25),
    ("**", 10.0, 308.2547), ("**", 9.0, ("**", 9.0, ("**", 9.0, 9.0))), ("**", 2.0, ("-", 1074.0)),
    ("**", 2.0, ("-", 1075.0)), ("**", 1e308, 2.0), ("**", "x", 0.5), ("**", "x", 2.0),
    ("*", 1e308, 10.0), ("+", 1e308, 1e308), ("-", ("-", 1e308), 1e308), ("/", 5e-324, 2.0),
    ("/", 1.0, 5e-324), ("/", 1.0, ("-", 0.0)), ("/", 0.0, 0.0), ("*", "x", ("/", 1.0, 0.0)),
    ("%", 1.0, 0.0), ("%", 1.0, ("-", 0.0)), ("%", ("-", 5.0), 3.0), ("%", 5.0, ("-", 3.0)),
    ("%", ("-", 0.0), 3.0), ("%", 0.0, ("-", 3.0)), ("%", 6.0, ("-", 3.0)), ("%", 5e-324, 1e308),
    ("%", ("-", 5e-324), 1e308), ("%", 1e308, 5e-324), ("%", "x", ("-", 0.0)),
    ("/", 1.0, ("-", ("floor", ("log10", 1000.0)), 3.0)),
]


@pytest.mark.parametrize("spec", EDGES, ids=repr)
def test_constant_parts_at_domain_edges_fold_to_numpys_float64_values_bit_for_bit(spec):
    assert_folds_like_numpy(node_of(spec), EDGE_XS)


# ast.parse warns about source such as "1in x" or a bad string escape: no failure.
PARSER_WARNINGS = pytest.mark.filterwarnings("ignore::SyntaxWarning",
                                             "ignore:invalid escape sequence:DeprecationWarning")


def assert_compiles_or_is_refused(source: str) -> None:
    """Anything compiles or raises ExpressionError; what compiles evaluates to floats."""
    try:
        function = compile_expression(source)
    except ExpressionError:
        return
    xs = np.linspace(-2, 2, 5)
    with np.errstate(all="ignore"):
        result = np.broadcast_to(function(xs), xs.shape)
    assert result.dtype == np.float64


@PARSER_WARNINGS
@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(exclude_categories=()), max_size=2 * MAX_LENGTH))
def test_any_unicode_text_compiles_or_is_refused_with_expression_error(source):
    assert_compiles_or_is_refused(source)


@PARSER_WARNINGS
@settings(max_examples=300, deadline=None)
@given(st.text(string.printable, max_size=80))
def test_any_ascii_text_compiles_or_is_refused_with_expression_error(source):
    assert_compiles_or_is_refused(source)


PYTHON_TOKENS = [
    "x", "xs", "y", "pi", "e", "1", "0", "2.5", "1e999", "9", "1j", "True", "None", "...",
    "sqrt", "log", "floor", "open", "eval", "__import__", "__class__", "__bases__", "numpy",
    "(", ")", "[", "]", "{", "}", ",", ".", ":", ";", ":=", "=", "'", '"', "b'", "f'", "\\",
    "+", "-", "*", "/", "**", "%", "//", "@", "~", "<<", ">>", "&", "|", "^", "<", "==", "!=",
    "lambda", "if", "else", "for", "in", "and", "or", "not", "is", "await", "yield", "from",
    "async", "#", "\n", "\t", " ", "\x00",
]


@PARSER_WARNINGS
@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(PYTHON_TOKENS), max_size=25), st.sampled_from(["", " "]))
def test_python_like_snippets_compile_or_are_refused_with_expression_error(tokens, separator):
    assert_compiles_or_is_refused(separator.join(tokens))


ATTACKS = [
    ("__import__('os')", "'__import__'"),
    ("x.__class__", "attribute"),
    ("().__class__.__bases__", "attribute"),
    ("x.real", "attribute"),
    ("open('/etc/passwd')", "'open'"),
    ("lambda: 1", "lambda"),
    ("[x for x in (1,)]", "comprehension"),
    ("{x for x in (1,)}", "comprehension"),
    ("(x for x in (1,))", "comprehension"),
    ("{x: 1 for x in (1,)}", "comprehension"),
    ("'abc'", "string"),
    ("b'abc'", "string"),
    ("f'{x}'", "string"),
    ("eval('1')", "'eval'"),
    ("exec('1')", "'exec'"),
    ("globals()", "'globals'"),
    ("x if x else 1", "conditional"),
    ("x < 1", "comparison"),
    ("x and 1", "boolean"),
    ("(y := 1)", "assignment"),
    ("x[0]", "subscript"),
    ("1j", "real numbers"),
    ("True", "True"),
    ("None", "None"),
    ("...", "Constant"),
    ("sqrt(x, x)", "exactly one argument"),
    ("sqrt()", "exactly one argument"),
    ("sqrt(x=1)", "exactly one argument"),
    ("sqrt(**x)", "exactly one argument"),
    ("sqrt(*x)", "starred"),
    ("numpy.sqrt(x)", "attribute access (numpy.sqrt)"),
    ("sqrt(x)(1)", "calls of a call's result"),
    ("numpy", "Unknown name 'numpy'"),
    ("__builtins__", "Unknown name '__builtins__'"),
    ("y", "Unknown name 'y'"),
    ("X", "Unknown name 'X'"),
    ("[x]", "lists"),
    ("(x, x)", "tuples"),
    ("{1: x}", "dicts"),
    ("{x}", "sets"),
    ("await x", "await"),
    ("(yield x)", "yield"),
    ("9**9**9**9", "finite"),
    ("x + 9**9**9**9", "finite"),
    ("1/0", "finite"),
    ("1 % 0", "finite"),
    ("0**-1", "finite"),
    ("log(0)", "finite"),
    ("sqrt(-1)", "finite"),
    ("1e999", "finite"),
    ("1" * 400, "too large"),
    ("x @ x", "MatMult"),
    ("~x", "Invert"),
    ("not x", "Not"),
    ("x << 1", "LShift"),
    ("x >> 1", "RShift"),
    ("x & 1", "BitAnd"),
    ("x | 1", "BitOr"),
    ("x ^ 1", "BitXor"),
    ("x // 2", "FloorDiv"),
    ("x+" * 50_000 + "x", "longer than"),
    ("(" * 1000 + "x" + ")" * 1000, "longer than"),
    ("(" * 240 + "x" + ")" * 240, "not valid"),
    ("sqrt(" * 40 + "x" + ")" * 40, "nested more than"),
    ("-" * 499 + "x", "nested more than"),
    ("x\x00", "null bytes"),
    ("\x00", "null bytes"),
    ("\ud800", "not valid"),
    ("", "not valid"),
    ("   ", "not valid"),
    ("x; x", "not valid"),
    ("x\nx", "not valid"),
    ("import os", "not valid"),
]


@pytest.mark.parametrize(("source", "named"), ATTACKS, ids=[repr(s[:30]) for s, _ in ATTACKS])
def test_source_outside_the_grammar_is_refused(source, named):
    with pytest.raises(ExpressionError) as refusal:
        compile_expression(source)
    assert named in str(refusal.value)


@pytest.mark.parametrize(("source", "named"), [(s, n) for s, n in ATTACKS if len(s) < 200])
def test_estimate_area_refuses_source_outside_the_grammar(source, named):
    with pytest.raises(ExpressionError):
        estimate_area(source, 0, 1, 0, 1, 10, seed=1)


# A refusal names the first thing refused in the text, and what may be written instead.
FUNCTION_LIST = "sqrt, exp, log, log10, sin, cos, tan, arcsin, arccos, arctan, abs, floor, ceil"
NAME_LIST = "xs (or x), pi, e"
NAMED_REFUSALS = [
    ("__import__('os').system('id')", "Calls to '__import__' are not allowed."),
    ("x.__class__.__mro__[1].__subclasses__()", "attribute access (x.__class__)"),
    ("(lambda: 1)()", "lambdas"),
    ("open('/etc/passwd')", "Calls to 'open' are not allowed."),
    ("y + 1", "Unknown name 'y'."),
    ("x.real", "attribute access (x.real)"),
    ("().__class__.__bases__", "attribute access (.__class__)"),
    ("sqrt(x).real", "attribute access (.real)"),
    ("x[0]", "subscripts"),
    ("lambda: 1", "lambdas"),
    ("[x for x in (1,)]", "comprehensions"),
    ("'abc'", "strings"),
    ("sqrt(x)(1)", "calls of a call's result"),
    ("(x + 1)(2)", "calls of anything but a function by name"),
]


@pytest.mark.parametrize(("source", "named"), NAMED_REFUSALS)
def test_a_refusal_names_what_was_refused_and_lists_what_is_allowed(source, named):
    with pytest.raises(ExpressionError) as refusal:
        compile_expression(source)
    message = str(refusal.value)
    assert named in message
    assert FUNCTION_LIST in message and NAME_LIST in message


@pytest.mark.parametrize(("source", "named"), NAMED_REFUSALS)
def test_the_api_answers_a_refused_expression_with_what_was_refused(client, app, source, named):
    response = client.post("/api/v1/jobs/integrate",
                           json={"f": source, "a": 0, "b": 1, "c": 0, "d": 1})
    assert response.status_code == 422
    [message] = response.json["errors"]["f"]
    assert named in message
    assert FUNCTION_LIST in message and NAME_LIST in message
    assert job_rows(app) == []


def test_a_function_named_without_a_call_is_refused_with_how_to_call_it():
    with pytest.raises(ExpressionError, match=r"The function 'sqrt' must be called, as in sqrt\(x\)"):
        compile_expression("sqrt + 1")


def test_expression_error_is_a_value_error():
    assert issubclass(ExpressionError, ValueError)


def test_an_expression_of_exactly_the_maximum_length_is_accepted():
    function = compile_expression(" " * (MAX_LENGTH - 1) + "x")
    assert function(np.float64(3)) == 3


def test_an_expression_one_character_over_the_maximum_length_is_refused():
    with pytest.raises(ExpressionError, match="longer than"):
        compile_expression(" " * MAX_LENGTH + "x")


def test_an_expression_exactly_the_maximum_depth_is_accepted():
    source = "abs(" * (MAX_DEPTH - 1) + "x" + ")" * (MAX_DEPTH - 1)
    assert compile_expression(source)(np.float64(-2)) == 2


def test_an_expression_one_level_over_the_maximum_depth_is_refused():
    source = "abs(" * MAX_DEPTH + "x" + ")" * MAX_DEPTH
    with pytest.raises(ExpressionError, match="nested more than"):
        compile_expression(source)


def test_redundant_parentheses_do_not_count_as_nesting():
    assert compile_expression("(" * 100 + "x" + ")" * 100)(np.float64(5)) == 5


XS = np.array([-1.5, -0.5, 0.0, 0.5, 1.0, 2.0])


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("x", XS),
        ("xs", XS),
        ("-x", [1.5, 0.5, -0.0, -0.5, -1.0, -2.0]),
        ("+x", XS),
        ("2**-1", [0.5] * 6),
        ("pi*e", [math.pi * math.e] * 6),
        ("abs(floor(x)) % 3", [2.0, 1.0, 0.0, 0.0, 1.0, 2.0]),
        ("log10(100)", [2.0] * 6),
        ("-x**2", [-2.25, -0.25, -0.0, -0.25, -1.0, -4.0]),
        ("2**3**2", [512.0] * 6),
        ("1 - 2 - 3", [-4.0] * 6),
        ("8 / 4 / 2", [1.0] * 6),
        ("1 + 2 * x", [-2.0, 0.0, 1.0, 2.0, 3.0, 5.0]),
        ("x % 2", [0.5, 1.5, 0.0, 0.5, 1.0, 0.0]),
        ("ceil(x)", [-1.0, -0.0, 0.0, 1.0, 1.0, 2.0]),
        ("1_000 + 0x10", [1016.0] * 6),
        ("  x  ", XS),
    ],
)
def test_accepted_expressions_evaluate_to_the_expected_values(source, expected):
    result = np.broadcast_to(compile_expression(source)(XS), XS.shape)
    np.testing.assert_array_equal(result, expected)


def test_quarter_circle_evaluates_exactly_inside_its_domain_and_nan_outside():
    function = compile_expression("sqrt(4-xs**2)")
    with np.errstate(invalid="ignore"):
        result = function(np.array([0.0, 2.0, -2.0, 3.0]))
    np.testing.assert_array_equal(result, [2.0, 0.0, 0.0, np.nan])


def test_constant_expressions_are_folded_to_float64_scalars():
    assert type(compile_expression("log10(100)")(XS)) is np.float64


def test_area_of_a_quarter_circle_of_radius_two_is_pi():
    result = estimate_area("sqrt(4-xs**2)", 0, 2, 0, 2, 1_000_000, seed=1)
    assert abs(result["estimate"] - math.pi) < 0.01
    assert result["samples"] == 1_000_000
    assert result["estimate"] == 4 * result["hits"] / 1_000_000


def test_the_same_seed_gives_the_same_result():
    first = estimate_area("sqrt(4-xs**2)", 0, 2, 0, 2, 50_000, seed=7)
    assert estimate_area("sqrt(4-xs**2)", 0, 2, 0, 2, 50_000, seed=7) == first


def test_a_different_seed_gives_a_different_hit_count():
    first = estimate_area("sqrt(4-xs**2)", 0, 2, 0, 2, 50_000, seed=1)
    second = estimate_area("sqrt(4-xs**2)", 0, 2, 0, 2, 50_000, seed=2)
    assert first["hits"] != second["hits"]


@pytest.mark.parametrize("source", ["log(-1-x*x)", "sqrt(-1-x*x)", "1/(x-x)", "-1/(x-x)",
                                    "exp(1000+x*x)"])
def test_a_function_that_is_nan_or_infinite_everywhere_has_no_hits(source):
    result = estimate_area(source, 0, 1, -1, 1, 10_000, seed=1)
    assert result == {"estimate": 0.0, "samples": 10_000, "hits": 0}


@pytest.mark.parametrize("size", [1, 2, CHUNK - 1, CHUNK, CHUNK + 1, 250_001])
@pytest.mark.parametrize("source", ["10", "x + 10"])
def test_every_one_of_size_samples_is_tested(source, size):
    result = estimate_area(source, 0, 1, 0, 1, size, seed=3)
    assert result == {"estimate": 1.0, "samples": size, "hits": size}


@pytest.mark.parametrize("source", ["-10", "x - 10"])
def test_a_function_below_the_box_has_no_hits(source):
    assert estimate_area(source, 0, 1, 0, 1, 1_000, seed=3)["hits"] == 0


def test_a_single_sample_gives_all_or_nothing():
    result = estimate_area("x", 0, 1, 0, 1, 1, seed=5)
    assert result["samples"] == 1
    assert result["hits"] in (0, 1)
    assert result["estimate"] == result["hits"]


def test_without_a_seed_the_estimate_still_counts_size_samples():
    result = estimate_area("x", 0, 1, 0, 1, 1_000)
    assert result["samples"] == 1_000
    assert 0 <= result["hits"] <= 1_000


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(["x", "sqrt(x)", "sin(x)", "x**2 - 1", "1/x", "log(x)", "2"]),
    st.floats(-5, 5), st.floats(0.01, 5), st.floats(-5, 5), st.floats(0.01, 5),
    st.integers(1, 3_000), st.integers(0, 2**63 - 1),
)
def test_estimate_is_box_area_times_hit_fraction(source, a, width, c, height, size, seed):
    b, d = a + width, c + height
    result = estimate_area(source, a, b, c, d, size, seed)
    assert result["samples"] == size
    assert 0 <= result["hits"] <= size
    assert result["estimate"] == (b - a) * (d - c) * result["hits"] / size
    assert estimate_area(source, a, b, c, d, size, seed) == result


# Run in a fresh interpreter: this test process has imported NumPy already.
WEB_PROCESS = """
import sys
import wsgi
from web.schemas import integrate_schema
wsgi.app
errors = integrate_schema.validate({"f": "sqrt(4 - x**2) + log(0)", "a": 0, "b": 2, "c": 0, "d": 2})
assert "finite" in errors["f"][0], errors
print(sorted(name for name in sys.modules if name.split(".")[0] == "numpy"))
"""


def test_the_web_process_imports_and_validates_expressions_without_numpy(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", WEB_PROCESS], capture_output=True, text=True, cwd=ROOT,
        timeout=60, env={**os.environ, "APP_ENV": "test", "INSTANCE_PATH": str(tmp_path),
                         "DATABASE_URL": f"sqlite:///{tmp_path / 'web.sqlite'}",
                         # Nothing connects to the broker at import time.
                         "REDIS_URL": "redis://127.0.0.1:1/0"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_expression_imports_only_the_standard_library():
    # -S leaves site-packages off the path: a third-party import would fail.
    probe = ("import sys, background.expression\n"
             "print(sorted({name.split('.')[0] for name in sys.modules}"
             " - set(sys.stdlib_module_names) - {'__main__', 'background'}))")
    result = subprocess.run([sys.executable, "-S", "-c", probe], capture_output=True, text=True,
                            cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
