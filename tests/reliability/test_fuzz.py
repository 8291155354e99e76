"""Fuzzing from /openapi.json: documented answers, never a 500, and no valid request refused.

Schemathesis generates requests for every operation in the document, both
valid ones and ones that break it, half of them with a valid token; every
response must have a documented status, content type, body and headers.
A second run sends valid requests only, with a valid token: the document
states every rule the API enforces, so none of them may be refused.
Jobs really go to Redis, a private one that no worker reads, so they stay
queued and an integration's size costs nothing.
"""
import re
import time
from collections import Counter

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, ignored_auth,
                                               negative_data_rejection, positive_data_acceptance,
                                               response_headers_conformance,
                                               response_schema_conformance,
                                               status_code_conformance)

from background.expression import ExpressionError, parse
from tests.helpers import add_job

# Examples per operation and generation mode; enough for 2,000 requests in all.
EXAMPLES = 90
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    # A request the document calls invalid is refused with a 4xx.
    negative_data_rejection,
    # An operation that needs a token refuses the request without it, or with a wrong one.
    ignored_auth,
]
# Each example is an HTTP request and a database write or two: slower than
# Hypothesis expects of a unit test, and that is fine here.
FUZZ_SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None,
                         suppress_health_check=list(HealthCheck))
# Enough valid requests per operation that a rule the document leaves out (a NUL
# or a blank name) is found in most runs.
VALID_SETTINGS = settings(FUZZ_SETTINGS, max_examples=100)


def accepting(*statuses: str) -> dict:
    """Configure positive_data_acceptance to take 2xx and these statuses."""
    return {"positive_data_acceptance": {"expected-statuses": ["2xx", *statuses]}}


# A valid request with a valid token is a 2xx, but for a resource that does not
# exist (a drawn id, or a product deleted meanwhile), a job that has finished, and
# an integration's rules that JSON Schema cannot express, which its description
# states in words (see refused_only_for_rules_in_words).
ACCEPTANCE = schemathesis.Config.from_dict({
    "checks": accepting(),
    "operations": [
        {"include-path-regex": r"\{\w+_id\}$", "checks": accepting("404")},
        {"include-path-regex": r"\{\w+_id\}/cancel$", "checks": accepting("404", "409")},
        {"include-operation-id": "jobs.start_integration", "checks": accepting("422")},
    ],
})
# The messages of the rules that Integrate states in words (schemas.py).
BOX_RULES = {"b": {"Must be greater than a.", "The box is too large to measure in float64."},
             "d": {"Must be greater than c."}}


def existing_resources(app, client, auth) -> dict[str, list]:
    """Create products and jobs in every state, so that fuzzed ids sometimes find one."""
    products = [client.post("/api/v1/products", json={"name": f"Lamp {n}"}, headers=auth).json["id"]
                for n in range(5)]
    jobs = [
        client.post("/async_process/start", json={"steps": 3}, headers=auth).json["result_id"],
        add_job(app, "SUCCESS", result={"steps": 3}, progress_current=3, progress_total=3),
        add_job(app, "FAILURE", error_type="ValueError", error_message="math domain error"),
        add_job(app, "PROGRESS", progress_current=1, progress_total=4),
        add_job(app, "REVOKED"),
    ]
    # The stored answer that /api/v1/add/2/3 serves.
    add_job(app, "SUCCESS", result=5, polling_url="/api/v1/add/2/3")
    return {"product_id": products, "job_id": jobs, "a": [2], "b": [3]}


def strategy(operation, mode: GenerationMode, known: dict[str, list]):
    """Cases for operation; valid ones half the time name a resource that exists."""
    generated = operation.as_strategy(generation_mode=mode)
    names = re.findall(r"{(\w+)}", operation.path)
    if mode.is_negative or not names:
        return generated
    existing = st.fixed_dictionaries({name: st.sampled_from(known[name]) for name in names})
    return st.one_of(generated, existing.flatmap(
        lambda path: operation.as_strategy(generation_mode=mode, path_parameters=path)))


def modes(operation) -> list[GenerationMode]:
    """Valid requests, and invalid ones where the operation takes something to get wrong."""
    raw = operation.definition.raw
    takes_input = raw.get("parameters") or raw.get("requestBody") or raw.get("security")
    return list(GenerationMode) if takes_input else [GenerationMode.POSITIVE]


def with_token(case, authorization: str) -> None:
    """Send the valid token in place of a generated one, and where a token is optional.

    A case that leaves out a token the operation requires keeps it out: that is its point.
    """
    requirements = case.operation.definition.raw.get("security", [])
    required = requirements and {} not in requirements
    if not required or (case.headers and "Authorization" in case.headers):
        case.headers = {**(case.headers or {}), "Authorization": authorization}


def test_fuzzed_requests_get_documented_answers_and_never_a_500(app, client, auth):
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    known = existing_resources(app, client, auth)
    statuses: Counter[int] = Counter()
    operations = [result.ok() for result in schema.get_all_operations()]
    started = time.monotonic()

    for operation in operations:
        for mode in modes(operation):
            @FUZZ_SETTINGS
            @given(case=strategy(operation, mode, known), authenticated=st.booleans())
            def fuzz(case, authenticated):
                if authenticated:
                    with_token(case, auth["Authorization"])
                response = case.call_and_validate(checks=CHECKS)
                statuses[response.status_code] += 1

            fuzz()

    seconds = time.monotonic() - started
    requests = sum(statuses.values())
    classes = Counter(f"{status // 100}xx" for status in statuses.elements())
    print(f"FIGURE fuzz_requests={requests} operations={len(operations)} seconds={seconds:.0f} "
          f"status_2xx={classes['2xx']} status_4xx={classes['4xx']} status_500={statuses[500]}")
    print(f"FIGURE fuzz_statuses={dict(sorted(statuses.items()))}")
    assert requests >= 2000
    assert statuses[500] == 0


def refused_only_for_rules_in_words(body: dict, errors: dict[str, list[str]]) -> bool:
    """Whether an integration was refused only for f's grammar or the box's rules."""
    rules = dict(BOX_RULES)
    try:
        parse(body["f"])
    except ExpressionError as refusal:
        rules["f"] = {str(refusal)}
    return all(set(messages) <= rules.get(field, set()) for field, messages in errors.items())


def test_valid_requests_with_a_valid_token_are_accepted(app, client, auth):
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app, config=ACCEPTANCE)
    known = existing_resources(app, client, auth)
    statuses: Counter[int] = Counter()
    started = time.monotonic()

    for operation in (result.ok() for result in schema.get_all_operations()):
        @VALID_SETTINGS
        @given(case=strategy(operation, GenerationMode.POSITIVE, known))
        def send(case):
            case.headers = {**(case.headers or {}), **auth}
            response = case.call_and_validate(checks=[not_a_server_error,
                                                      positive_data_acceptance])
            if response.status_code == 422:
                assert refused_only_for_rules_in_words(case.body, response.json()["errors"]), (
                    case.body, response.json())
            statuses[response.status_code] += 1

        send()

    seconds = time.monotonic() - started
    print(f"FIGURE valid_requests={sum(statuses.values())} seconds={seconds:.0f} "
          f"statuses={dict(sorted(statuses.items()))}")
    assert sum(statuses.values()) >= 500
