"""What Keeper tells its operators: request logs, Prometheus metrics, Sentry reports.

- logging.py: the JSON and text formatters and the LOGGING dict settings.py uses.
- middleware.py: one log line, the request id and the request metrics per request.
- metrics.py: every Prometheus metric, the helpers the apps call, and the gauges they register to be
  read at each scrape (`gauge_at_scrape`: the catalog's age, from apps.catalog.apps).
- views.py: GET /metrics.
- gunicorn.py: gunicorn's logger (JSON error log; access lines only for answers Django never saw).
- sentry.py: sentry_sdk set up with a before_send that scrubs secrets.
"""
