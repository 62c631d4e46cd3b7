"""DRF authentication of bearer tokens that are not Keeper's own: static tokens, a key service, JWTs, introspection."""

import logging

from django.conf import settings
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from apps.accounts.bearer import API_KEY_PREFIX, get_bearer_verifiers
from apps.accounts.identity import idp_username
from apps.accounts.jwt_tokens import JwksUnavailable
from apps.accounts.key_service import KeyServiceUnavailable
from apps.accounts.services import parse_membership_claim
from apps.accounts.verification import TokenVerdict, VerifierUnavailable
from keeper.api.callers import Caller, CredentialAuthentication
from keeper.api.exceptions import ServiceUnavailable

logger = logging.getLogger(__name__)

IDP_RETRY_AFTER_SECONDS = 30


def bearer_token(request: Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, else None."""
    header = authentication.get_authorization_header(request)
    if not header:
        return None
    parts = header.split()
    if len(parts) != 2 or parts[0].lower() != b"bearer":
        return None
    try:
        return parts[1].decode("ascii")
    except UnicodeDecodeError:
        raise exceptions.AuthenticationFailed("Malformed bearer token.") from None


class InvalidToken(exceptions.AuthenticationFailed):
    default_code = "invalid_token"


class IdentityProviderDown(ServiceUnavailable):
    default_detail = "The identity provider is unavailable; try again later."
    default_code = "identity_provider_unavailable"
    retry_after = IDP_RETRY_AFTER_SECONDS


class JwksDown(ServiceUnavailable):
    default_detail = "The token issuer's signing keys (JWKS) cannot be fetched; try again later."
    default_code = "jwks_unavailable"
    retry_after = IDP_RETRY_AFTER_SECONDS


class KeyServiceDown(ServiceUnavailable):
    default_detail = "The API key verification service is unavailable; try again later."
    default_code = "api_key_service_unavailable"
    retry_after = IDP_RETRY_AFTER_SECONDS


def unavailable_answer(exc: VerifierUnavailable) -> ServiceUnavailable:
    if isinstance(exc, JwksUnavailable):
        return JwksDown()
    if isinstance(exc, KeyServiceUnavailable):
        return KeyServiceDown()
    return IdentityProviderDown()


class TokenIntrospectionAuthentication(CredentialAuthentication, authentication.BaseAuthentication):
    """`Authorization: Bearer <token>` judged by apps.accounts.bearer (introspection at AUTH_TOKEN_INTROSPECTION_URL,
    JWTs, the API key service, static tokens); bearer tokens are ignored when none of them is configured.

    The name is the one settings, the OpenAPI extension and the benchmarks know it by (introspection came first).
    """

    def authenticate(self, request: Request) -> tuple[Caller, TokenVerdict] | None:
        verifiers = get_bearer_verifiers()
        if not verifiers.enabled:
            return None
        token = bearer_token(request)
        if token is None or token.startswith(API_KEY_PREFIX):
            return None
        try:
            verdict = verifiers.verify(token)
        except VerifierUnavailable as exc:
            # Logged by bearer.py, naming the verifier and what failed (never the token).
            raise unavailable_answer(exc) from exc
        if not verdict.valid:
            raise InvalidToken(verdict.reason)
        caller = Caller(
            user_id=verdict.user_id,
            auth_method="token",
            credits_per_minute=verdict.credits_per_minute,
            # The same namespace as the keys this subject owns (user idp:<sub>), never a local user's pool.
            pool_key=f"user:{idp_username(verdict.user_id)}",
            local_username=idp_username(verdict.user_id),
            extra=verdict.extra,
            is_staff=verdict.is_staff,
            organization_roles=parse_membership_claim(
                {**verdict.claims, **verdict.extra}.get(settings.KEEPER_ORGANIZATIONS_CLAIM)
            ),
        )
        return caller, verdict

    def authenticate_header(self, request: Request) -> str:
        # Always answer 401 (not 403) to anonymous callers of protected endpoints.
        return 'Bearer realm="keeper"'


class SessionCookieAuthentication(CredentialAuthentication, authentication.SessionAuthentication):
    """DRF's session authentication, consulted only when the request carries a session cookie.

    Reading the session marks it accessed, which makes Django add `Vary: Cookie` to every answer,
    and shared caches then keep one copy per cookie. A request without the cookie has no session.
    """

    def authenticate(self, request: Request):
        if settings.SESSION_COOKIE_NAME not in request._request.COOKIES:
            return None
        return super().authenticate(request)
