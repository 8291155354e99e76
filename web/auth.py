"""Bearer-token authentication for the API's write endpoints."""
import functools
from collections.abc import Callable

from flask import g, request
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Unauthorized

from models import User, user_for_token


def bearer_user() -> User | None:
    """Return the user named by the request's bearer token, None if none was sent.

    A token that was sent but matches no user is a 401, never an anonymous call.
    """
    header = request.authorization
    if header is None and "Authorization" not in request.headers:
        return None
    if header is None or header.type != "bearer" or not header.token:
        raise unauthorized("The Authorization header must be 'Bearer <token>'.")
    user = user_for_token(header.token)
    if user is None:
        raise unauthorized("The token is not valid.")
    return user


def unauthorized(message: str) -> Unauthorized:
    return Unauthorized(message, www_authenticate=WWWAuthenticate("bearer"))


def token(required: bool) -> Callable[[Callable], Callable]:
    """Check the bearer token before the view and set g.user: the user, or None when none was sent.

    A token that is sent must be valid (else 401); with required=True one must be sent.
    """

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            g.user = bearer_user()
            if g.user is None and required:
                raise unauthorized("This endpoint needs 'Authorization: Bearer <token>'.")
            return view(*args, **kwargs)

        return wrapped

    return decorator
