"""Opaque API keys of another system, checked by its verification service (AUTH_API_KEY_VERIFY_URL).

Keeper POSTs `{AUTH_API_KEY_VERIFY_REQUEST_FIELD: <key>}` as JSON, with `Authorization: Bearer
AUTH_API_KEY_VERIFY_BEARER` when set. The answer:
- 200 with a JSON object whose AUTH_API_KEY_VERIFY_SUBJECT_FIELD is a non-empty string: a valid key of that
  subject; its AUTH_API_KEY_VERIFY_CLAIMS_FIELD (an object, optional) are the caller's extra fields;
- 200 without a subject (absent or null), or 400, 404, 410 or 422: the key is not valid;
- anything else (401/403: Keeper's own bearer refused; 5xx, timeouts, not JSON, over MAX_ANSWER_BYTES,
  a subject or claims of the wrong type): the service cannot be used now (503, not cached).
Verdicts are cached like introspection's (verification.VerdictCache), under an HMAC of the key.
"""

import logging
import time
from typing import Any

import requests
from django.conf import settings

from apps.accounts.verification import (
    CREDITS_CLAIM,
    TokenVerdict,
    VerdictCache,
    VerifierUnavailable,
    _read_at_most,
    credits_from,
    json_object,
)

logger = logging.getLogger(__name__)

MAX_ANSWER_BYTES = 1024 * 1024
# The service judged the key itself: the key is not valid (cached as a rejection).
REFUSING_STATUSES = frozenset({400, 404, 410, 422})


class KeyServiceUnavailable(VerifierUnavailable):
    """The API key verification service did not answer usably."""


class RemoteKeyVerifier(VerdictCache):
    def __init__(self):
        # Its own HMAC domain: a key's verdict is never read as an introspected token's.
        super().__init__(domain="api-key-service:")
        self.url = settings.AUTH_API_KEY_VERIFY_URL
        self.timeout = settings.AUTH_API_KEY_VERIFY_TIMEOUT_SECONDS
        self.request_field = settings.AUTH_API_KEY_VERIFY_REQUEST_FIELD
        self.subject_field = settings.AUTH_API_KEY_VERIFY_SUBJECT_FIELD
        self.claims_field = settings.AUTH_API_KEY_VERIFY_CLAIMS_FIELD
        self.headers = {"Accept": "application/json"}
        if settings.AUTH_API_KEY_VERIFY_BEARER:
            self.headers["Authorization"] = f"Bearer {settings.AUTH_API_KEY_VERIFY_BEARER}"
        self.session = requests.Session()

    def verify(self, token: str) -> TokenVerdict:
        key = self.cache_key(token)
        verdict = self.get(key)
        if verdict is not None:
            return verdict
        verdict = self._ask(token)
        self.remember(key, verdict)
        return verdict

    def _ask(self, token: str) -> TokenVerdict:
        try:
            with self.session.post(
                self.url,
                json={self.request_field: token},
                headers=self.headers,
                timeout=self.timeout,
                stream=True,
                allow_redirects=False,
            ) as response:
                if response.status_code in REFUSING_STATUSES:
                    return TokenVerdict(valid=False, reason="API key is not valid.")
                if response.status_code != 200:
                    raise KeyServiceUnavailable(f"the API key service answered HTTP {response.status_code}")
                body = _read_at_most(response, MAX_ANSWER_BYTES, KeyServiceUnavailable, "the API key service")
        except requests.RequestException as exc:
            raise KeyServiceUnavailable(f"the API key service request failed: {exc.__class__.__name__}") from exc
        return self.judge(json_object(body, KeyServiceUnavailable, "the API key service"))

    def judge(self, answer: dict[str, Any]) -> TokenVerdict:
        subject = answer.get(self.subject_field)
        if subject is None:
            return TokenVerdict(valid=False, reason="API key is not valid.")
        if not isinstance(subject, str):
            raise KeyServiceUnavailable(f"the API key service answered a {type(subject).__name__} subject")
        if not subject.strip():
            return TokenVerdict(valid=False, reason="API key is not valid.")
        claims = answer.get(self.claims_field)
        if claims is None:
            claims = {}
        if not isinstance(claims, dict):
            raise KeyServiceUnavailable(f"the API key service answered {type(claims).__name__} claims")
        expires_at = claims.get("exp")
        if isinstance(expires_at, bool) or not isinstance(expires_at, (int, float)):
            expires_at = None
        elif expires_at <= time.time():
            return TokenVerdict(valid=False, reason="API key has expired.")
        return TokenVerdict(
            valid=True,
            user_id=subject,
            claims={**claims, "sub": subject},
            # As the newest Spare Cores API does: the service's claims are the caller's extra fields (/me).
            extra=claims,
            credits_per_minute=credits_from(claims.get(CREDITS_CLAIM)),
            expires_at=float(expires_at) if expires_at is not None else None,
        )
