"""DRF authentication by OAuth 2.0 token introspection (RFC 7662)."""

import logging

from django.conf import settings
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from apps.accounts.identity import idp_username
from apps.accounts.services import parse_membership_claim
from apps.accounts.verification import IdentityProviderUnavailable, TokenVerdict, get_verifier
from keeper.api.callers import Caller
from keeper.api.exceptions import ServiceUnavailable

logger = logging.getLogger(__name__)

# Keeper API keys travel as bearer tokens too; those are for the key authenticator, not the IdP.
API_KEY_PREFIX = "keeper_"
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


class TokenIntrospectionAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <token>` checked at AUTH_TOKEN_INTROSPECTION_URL; off when unset."""

    def authenticate(self, request: Request) -> tuple[Caller, TokenVerdict] | None:
        verifier = get_verifier()
        if verifier is None:
            return None
        token = bearer_token(request)
        if token is None or token.startswith(API_KEY_PREFIX):
            return None
        try:
            verdict = verifier.verify(token)
        except IdentityProviderUnavailable as exc:
            logger.error("Token introspection failed: %s", exc)
            raise IdentityProviderDown() from exc
        if not verdict.valid:
            raise InvalidToken(verdict.reason)
        caller = Caller(
            user_id=verdict.user_id,
            auth_method="token",
            credits_per_minute=verdict.credits_per_minute,
            # The same namespace as the keys this subject owns (user idp:<sub>), never a local user's pool.
            pool_key=f"user:{idp_username(verdict.user_id)}",
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


class SessionCookieAuthentication(authentication.SessionAuthentication):
    """DRF's session authentication, consulted only when the request carries a session cookie.

    Reading the session marks it accessed, which makes Django add `Vary: Cookie` to every answer,
    and shared caches then keep one copy per cookie. A request without the cookie has no session.
    """

    def authenticate(self, request: Request):
        if settings.SESSION_COOKIE_NAME not in request._request.COOKIES:
            return None
        return super().authenticate(request)
