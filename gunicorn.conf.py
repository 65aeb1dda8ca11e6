"""gunicorn settings for `make serve` (the Makefile passes --bind and --workers).

Each worker builds its own app with create_app() (no preload: no database connection is shared
across a fork). Threads let a worker go on serving while one of its requests waits on the database
or on a slow upload; the app's work is mostly in PostgreSQL, so 4 workers × 4 threads fit 2–4 cores.
"""

from config import LOG_FORMAT

wsgi_app = "app:create_app()"
worker_class = "gthread"
threads = 4
timeout = 120  # a 100,000-row file checked inline (no Redis) takes a few seconds; never minutes
graceful_timeout = 30
# An idle keep-alive connection is kept this long (gthread parks it in the poller: no thread). With
# gunicorn's default of 2 s, a client whose next request comes about 2 s after its last one can send it
# just as the server closes the connection, and gets "Connection reset by peer" (the load test's 2
# errors: its clerks pause 1-3 s). Longer than a proxy's idle time (nginx upstream keepalive_timeout,
# a cloud load balancer's 60 s), so the side that sends requests is the one that closes.
keepalive = 75
max_requests = 5000  # recycle workers now and then (memory of big files), staggered
max_requests_jitter = 500
control_socket_disable = True  # no `gunicornc` admin socket in ~/.gunicorn (several servers may share a machine)
accesslog = None  # the app writes one line per request itself, with its request id and user

# gunicorn's own lines (worker boot/exit) go to stdout in the app's format (config.py)
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request": {"()": "config.RequestContext"}},
    "formatters": {"app": {"format": LOG_FORMAT}},
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "app",
            "filters": ["request"],
        }
    },
    "root": {"level": "INFO", "handlers": []},  # create_app adds the app's handler in each worker
    "loggers": {"gunicorn.error": {"handlers": ["stdout"], "level": "INFO", "propagate": False}},
}


def post_worker_init(worker):
    """The worker's app is built: its start-up objects leave the garbage collector's walks (serving.py)."""
    from serving import settle_worker

    settle_worker()
