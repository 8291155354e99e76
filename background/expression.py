from background.montecarlo import ALLOWED, MAX_DEPTH, MAX_LENGTH, ExpressionError, compile_expression as parse  # noqa  TEMPORARY
