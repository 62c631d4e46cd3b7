"""Failed password sign-ins are limited per client address and per user name.

Django's `authenticate()` asks the backends of AUTHENTICATION_BACKENDS in turn, and LoginThrottleBackend
is the first: once KEEPER_LOGIN_FAILURE_LIMIT sign-ins failed within KEEPER_LOGIN_FAILURE_WINDOW_SECONDS
from the client's address, or for the user name given (from any address), it refuses the attempt with
PermissionDenied, which ends `authenticate()` before ModelBackend hashes the password: a refused attempt
costs two counter reads, the right password included. RateLimitMiddleware answers such a request with a
JSON 429 and Retry-After. Every attempt that reached the password check and failed is counted under both
names (the `user_login_failed` signal); refused ones are not, so a lockout ends when the oldest failure
leaves the window, however long an attacker keeps trying.

Nothing here depends on whether the user exists: the decision reads the address and the name as typed,
and ModelBackend hashes the password of an unknown user as it checks a known one's (Django's own defence
against timing), so neither the answer nor its cost tells which names exist.

The failures are counted where the credit pools are (apps/throttling/limiters.py: in each process's memory,
or in Redis shared by every process, falling back to memory while Redis fails), not in the database: a
failure costs no write, which a long sync holding SQLite's write lock would make wait.
"""

import hashlib
import math
from typing import Any

from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.core.exceptions import PermissionDenied
from django.dispatch import receiver
from django.http import HttpRequest, JsonResponse

from apps.throttling import services
from keeper.api.callers import client_ip
from keeper.api.exceptions import error_body
from keeper.observability import metrics

# Set on a request whose sign-in was refused: the seconds until one may be tried again.
REFUSED_ATTRIBUTE = "login_refused_seconds"


def _failure_keys(request: HttpRequest, username: str) -> tuple[str, str]:
    # The name as a digest: any length or character fits a bounded key, and none is kept in clear.
    name = hashlib.sha256(username.casefold().encode()).hexdigest()[:32]
    return f"ip:{client_ip(request)}", f"user:{name}"


def login_refusal(*, request: HttpRequest, username: str) -> int | None:
    """Seconds until a password sign-in from this request's address for `username` may be tried, or None
    when it may be tried now."""
    limit = settings.KEEPER_LOGIN_FAILURE_LIMIT
    limiters = services.limiters()
    waits = []
    for key in _failure_keys(request, username):
        if limiters.consume_login_failures(key, 0, limit).remaining > 0:
            continue
        # Refused (and so not counted) while the failures fill the limit: its wait is the oldest one's time left.
        decision = limiters.consume_login_failures(key, 1, limit)
        if not decision.allowed:
            waits.append(max(math.ceil(decision.retry_after), 1))
    return max(waits) if waits else None


def login_failure_record(*, request: HttpRequest, username: str) -> None:
    """One failed sign-in, counted for the request's address and for `username`."""
    limit = settings.KEEPER_LOGIN_FAILURE_LIMIT
    for key in _failure_keys(request, username):
        services.limiters().consume_login_failures(key, 1, limit, force=True)


def login_refused_response(seconds: int) -> JsonResponse:
    response = JsonResponse(
        error_body(
            "Too many failed sign-ins from this address or for this user name; "
            f"sign-in is refused for {seconds} more seconds.",
            "login_throttled",
        ),
        status=429,
    )
    response["Retry-After"] = str(seconds)
    return response


class LoginThrottleBackend:
    """The first authentication backend: refuses password sign-ins past the failure limits (see the module
    docstring); it never signs anyone in.

    It has no `get_user`, so that Django never picks it as a session's backend (the test client's
    force_login takes the first backend that has one).
    """

    def authenticate(
        self, request: HttpRequest | None, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> None:
        # Only password sign-ins (the OIDC callback passes no user name; its provider checks the password).
        if request is None or username is None:
            return None
        seconds = login_refusal(request=request, username=str(username))
        if seconds is not None:
            setattr(request, REFUSED_ATTRIBUTE, seconds)
            metrics.throttle_refused("login")
            raise PermissionDenied("Too many failed sign-ins.")
        return None


@receiver(user_login_failed, dispatch_uid="keeper-login-failures")
def count_login_failure(sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs) -> None:
    """Counts a password sign-in that failed at the password check (not one refused by the limits)."""
    username = credentials.get("username")
    if request is None or username is None or getattr(request, REFUSED_ATTRIBUTE, None) is not None:
        return
    login_failure_record(request=request, username=str(username))
