"""gunicorn's settings for the web dyno: https://docs.gunicorn.org/en/stable/settings.html

gunicorn reads two settings from the environment by itself: it binds
0.0.0.0:$PORT when PORT is set (Heroku sets it), and runs WEB_CONCURRENCY
worker processes (Heroku sets a default for the dyno size).
"""

# No access log: Heroku's router already logs every request, with its
# status, time and bytes (https://devcenter.heroku.com/articles/http-routing#heroku-router-log-format),
# and writing a second line costs the web process CPU on every request.
# Where no router logs them: GUNICORN_CMD_ARGS="--access-logfile -" (the
# environment variable overrides this file).
accesslog = None
# Heroku's router gives up on a request after 30 s; a worker stuck that long is restarted.
# https://devcenter.heroku.com/articles/request-timeout
timeout = 30
# Heroku sends SIGTERM and kills 30 s later: let requests in flight finish first.
graceful_timeout = 20
# The default sync workers serve one request per connection (they ignore
# keepalive), which is the simplest model to reason about: a slow request
# holds one process, and WEB_CONCURRENCY processes serve that many at once.
