"""Reading request bodies: JSON errors a client can act on, and the size limit whatever the framing."""
from flask import Flask, Request, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON, keeping the schemas' field order; deep nesting is a client error."""

    sort_keys = False

    def loads(self, s, **kwargs):
        try:
            return super().loads(s, **kwargs)
        except RecursionError as error:
            # The stdlib parser recurses per nesting level; Werkzeug turns a
            # ValueError into a 400, but lets a RecursionError become a 500.
            raise ValueError("JSON is nested too deeply.") from error


class JSONRequest(Request):
    """Flask's request, saying plainly what was wrong with a body that is not JSON."""

    def on_json_loading_failed(self, e: ValueError | None):
        if e is None:
            return super().on_json_loading_failed(e)
        raise BadRequest(f"The request body is not valid JSON: {e}")


def refuse_oversized_stream() -> None:
    """Answer 413 to a chunked body over MAX_CONTENT_LENGTH, as to any other.

    A body sent without Content-Length cannot be refused up front, and
    Werkzeug stops reading it at the limit, handing the view what it read
    so far: a small JSON object followed by megabytes of spaces would parse.
    So read it here, then look one byte past the limit in the server's own
    stream (PEP 3333's wsgi.input), which ends where the body does.
    """
    if request.content_length is not None or "chunked" not in request.headers.get(
            "Transfer-Encoding", "").lower():
        return
    request.get_data(cache=True)
    if request.environ["wsgi.input"].read(1):
        raise RequestEntityTooLarge(
            f"The request body is larger than {request.max_content_length} bytes.")


def init_app(app: Flask) -> None:
    """Make app read JSON bodies this way."""
    app.json = JSONProvider(app)
    app.request_class = JSONRequest
    app.before_request(refuse_oversized_stream)
