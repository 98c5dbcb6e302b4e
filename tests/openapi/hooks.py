"""Schemathesis hooks of the OpenAPI run (loaded by run.sh through
SCHEMATHESIS_HOOKS).

The document states every rule of a request's form the server enforces, so
schemathesis' positive_data_acceptance holds with one exception, which the
document itself names: answers that depend on the data, not on the form of
the request. This check is positive_data_acceptance with those answers
allowed, and nothing else:

- OUT_OF_RANGE (400): a revision past the store's head;
- ABORTED (412): If-Match or options.expectedRevision is not the head;
- INVALID_ARGUMENT (400) for an integer written with a fraction (`5.0`):
  JSON Schema does not tell 5.0 from 5, and the server's JSON mapping
  (pbjson) reads integers without one;
- INVALID_ARGUMENT (400) for the rules across fields that JSON Schema
  cannot state (the document's descriptions do): one change per list and
  country, each country once in a membership, a body's listId equal to the
  path's, Idempotency-Key equal to options.requestId, If-Match equal to
  options.expectedRevision.

Query parameters that exclude each other are said so in the document's
parameter descriptions (OpenAPI has no keyword for it across parameters):
filter_case keeps positive cases from giving both.
"""

import schemathesis
from schemathesis.specs.openapi.checks import positive_data_acceptance

DATA_DEPENDENT = {400: {"OUT_OF_RANGE"}, 412: {"ABORTED"}}
CROSS_FIELD = ("is already changed by", "is listed twice", "differs from")


def _has_integral_float(value):
    if isinstance(value, float):
        return value.is_integer()
    if isinstance(value, dict):
        return any(_has_integral_float(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_integral_float(v) for v in value)
    return False


def _documented_exception(response, case):
    if response.status_code not in DATA_DEPENDENT:
        return False
    try:
        body = response.json()
    except Exception:
        return False
    if not isinstance(body, dict):
        return False
    if body.get("code") in DATA_DEPENDENT[response.status_code]:
        return True
    detail = body.get("detail") or ""
    if body.get("code") != "INVALID_ARGUMENT":
        return False
    return any(rule in detail for rule in CROSS_FIELD) or _has_integral_float(case.body)


@schemathesis.check
def positive_data_accepted_unless_data_dependent(ctx, response, case):
    if _documented_exception(response, case):
        return None
    return positive_data_acceptance(ctx, response, case)


# As the document's parameter descriptions say (the second only with these values).
EXCLUSIVE = [("at_revision", "min_revision", None), ("after_revision", "snapshot", {"true", ""})]


@schemathesis.hook
def filter_case(ctx, case):
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return True
    query = case.query or {}
    for a, b, values in EXCLUSIVE:
        if a in query and b in query and (values is None or str(query[b]) in values):
            return False
    return True
