"""An asynctask that writes down the context it ran in; workers load it with --include."""
import json
from pathlib import Path

from flask import current_app, g, has_request_context, request

from background.asynctask import asynctask


@asynctask
def report_context(report: str) -> None:
    """Write what this task sees of the request, the user and the app to the file report."""
    seen = {"app": current_app.name, "request": has_request_context(), "user": None}
    if g.user is not None:
        seen["user"] = g.user.name
    if has_request_context():
        seen |= {
            "method": request.method, "path": request.path,
            "query": request.args.to_dict(), "remote_addr": request.remote_addr,
            "headers": dict(request.headers),
        }
    Path(report).write_text(json.dumps(seen))
