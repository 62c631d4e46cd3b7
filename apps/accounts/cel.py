"""CEL rules on token claims (cel-python), compiled once."""

from typing import Any

import celpy
from celpy import celtypes
from django.core.exceptions import ImproperlyConfigured


class CelRule:
    """A compiled CEL expression evaluated with `{"claims": <introspection response>}`."""

    def __init__(self, expression: str, setting: str):
        self.expression = expression
        environment = celpy.Environment()
        try:
            self.program = environment.program(environment.compile(expression))
        except celpy.CELParseError as exc:
            raise ImproperlyConfigured(f"{setting} is not a valid CEL expression: {exc}") from None

    def evaluate(self, claims: dict[str, Any]) -> Any:
        """The result as plain Python; CelEvaluationError when the rule cannot be evaluated."""
        try:
            result = self.program.evaluate({"claims": celpy.json_to_cel(claims)})
        except (celpy.CELEvalError, TypeError, ValueError) as exc:
            raise CelEvaluationError(str(exc)) from exc
        if isinstance(result, celpy.CELEvalError):
            raise CelEvaluationError(str(result))
        return to_python(result)


class CelEvaluationError(Exception):
    pass


def to_python(value: Any) -> Any:
    """Plain Python from a CEL value; an error held inside a map or list fails the whole result."""
    if isinstance(value, celpy.CELEvalError):
        raise CelEvaluationError(str(value.args[0]) if value.args else "evaluation error")
    if isinstance(value, celtypes.BoolType):
        return bool(value)
    if isinstance(value, (celtypes.IntType, celtypes.UintType)):
        return int(value)
    if isinstance(value, celtypes.DoubleType):
        return float(value)
    if isinstance(value, celtypes.StringType):
        return str(value)
    if isinstance(value, celtypes.MapType):
        return {str(to_python(k)): to_python(v) for k, v in value.items()}
    if isinstance(value, celtypes.ListType):
        return [to_python(item) for item in value]
    if value is None or isinstance(value, celtypes.NullType):
        return None
    return str(value)
