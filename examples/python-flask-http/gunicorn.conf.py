"""gunicorn settings for the Flask example (read with `gunicorn -c gunicorn.conf.py`)."""
import os

# Loopback by default: the runtime is private to the watchdog. The watchdog
# sets PORT from RUNTIME_URL.
bind = [f"{os.environ.get('LISTEN_HOST', '127.0.0.1')}:{os.environ.get('PORT', '8080')}"]

# The watchdog sends one invocation at a time: one worker process is enough
# and starts fastest (WEB_CONCURRENCY raises it). Threads, so that /health
# still answers while an invocation runs.
workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
worker_class = "gthread"
threads = 4

# The watchdog enforces TIMEOUT_MS itself; gunicorn must not kill a slow
# invocation on its own (0 = no worker timeout).
timeout = 0
# SIGTERM: the worker finishes the request in flight, for at most this long
# (well below the watchdog's default KILL_GRACE_MS of 2000).
graceful_timeout = 1
# No keep-alive: every answer closes its connection. On loopback a new
# connection costs next to nothing, and an idle kept-alive connection from the
# watchdog would otherwise hold a stopping worker for up to graceful_timeout.
keepalive = 0

# Logs on stderr, no access log (the watchdog logs invocations).
errorlog = "-"
loglevel = "info"
accesslog = None

# gunicorn >= 25 opens a control socket under $XDG_RUNTIME_DIR or ~/.gunicorn
# by default; a function runtime has no use for it (and no home directory).
control_socket_disable = True
