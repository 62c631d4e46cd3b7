"""gunicorn's logger for Keeper (`logger_class` in keeper/gunicorn.conf.py).

- Its own messages (booting workers, timeouts) in KEEPER_LOG_FORMAT, like Django's.
- No second line per request: Django's answers are logged by keeper.observability.middleware
  (they carry X-Request-ID). Only answers Django never saw (keeper/server.py's 408 and 413 for
  bodies too slow or too large) get a line here, in the same shape, from the `keeper.requests`
  logger; and they are counted in the request metrics under the route `unmatched`.
"""

import logging
from types import SimpleNamespace
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from gunicorn import glogging

from keeper.observability.logging import JSON, JsonFormatter, default_log_format


def configured_log_format() -> str:
    try:
        from django.conf import settings

        return settings.KEEPER_LOG_FORMAT
    except ImproperlyConfigured:
        # Settings that cannot load: on_starting (keeper/gunicorn.conf.py) says why and stops.
        return default_log_format()


class KeeperGunicornLogger(glogging.Logger):
    def setup(self, cfg) -> None:
        super().setup(cfg)
        if configured_log_format() == JSON:
            for handler in self.error_log.handlers:
                if getattr(handler, "_gunicorn", False):
                    handler.setFormatter(JsonFormatter())

    def access(self, resp, req, environ: dict[str, Any], request_time) -> None:
        if any(name.lower() == "x-request-id" for name, _ in resp.headers):
            return  # Django answered, and logged it
        from keeper.api.callers import client_ip
        from keeper.observability import metrics
        from keeper.observability.middleware import request_id_for

        # A timedelta from gunicorn's sync workers, an object of seconds and microseconds from its ASGI worker.
        seconds = request_time.seconds + request_time.microseconds / 1_000_000
        status = int(str(resp.status).split(None, 1)[0])
        method = environ.get("REQUEST_METHOD", "")
        path = environ.get("PATH_INFO", "")
        fields = {
            "request_id": request_id_for(environ.get("HTTP_X_REQUEST_ID")),
            "method": method,
            "route": None,
            "path": path,
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
            "response_bytes": resp.sent or 0,
            "caller_kind": None,
            "caller_id": None,
            "credits_charged": None,
            "credits_remaining": None,
            "credits_limit": None,
            # The same trusted-proxy rule as the limits (client_ip reads only META).
            "client_ip": client_ip(SimpleNamespace(META=environ)),
        }
        metrics.request_observed(route=None, method=method, status=status, seconds=seconds)
        logging.getLogger("keeper.requests").info("%s %s %s", method, path, status, extra={"fields": fields})
