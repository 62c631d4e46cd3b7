"""DRF authentication by Keeper API key (`Authorization: Bearer <key>` or `X-API-Key: <key>`),
and by the capability tokens Keeper signs for a key (`Authorization: Bearer <JWT>`)."""

import dataclasses

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from apps.accounts.authentication import API_KEY_PREFIX, bearer_token
from apps.keys.bootstrap import ensure_merged
from apps.keys.capability import AuthenticatedToken, TokenRefused, looks_like_capability_token, token_authenticate
from apps.keys.models import ApiKey
from apps.keys.services import KeyRejected, key_authenticate
from apps.keys.throttles import quota_counter_key
from keeper.api.callers import Caller, CredentialAuthentication, client_ip
from keeper.observability import metrics


class KeyRefused(exceptions.AuthenticationFailed):
    default_code = "invalid_api_key"


class KeyForbidden(exceptions.PermissionDenied):
    default_code = "api_key_forbidden"


def presented_key(request: Request) -> str | None:
    header = request.META.get("HTTP_X_API_KEY")
    if header:
        return header.strip()
    token = bearer_token(request)
    if token and token.startswith(API_KEY_PREFIX):
        return token
    return None


def caller_for_key(key: ApiKey) -> Caller:
    # The limits of the keys above it, as they stand now (a query only for a key that a key created).
    ancestors = key.limited_ancestors()
    return Caller(
        user_id=key.owner_name,
        auth_method="api_key",
        credits_per_minute=key.pool_size,
        is_staff=False,
        scope=key.scope,
        organization=key.organization_name,
        pool_key=key.pool_key,
        pool_requested=key.pool_size is not None,
        daily_quota=key.daily_quota,
        quota_key=quota_counter_key(key) if key.daily_quota else None,
        api_key=key,
        ancestor_pools=tuple(
            (above.pool_key, above.credits_per_minute) for above in ancestors if above.credits_per_minute
        ),
        ancestor_quotas=tuple(
            (quota_counter_key(above), above.daily_quota) for above in ancestors if above.daily_quota
        ),
    )


class ApiKeyAuthentication(CredentialAuthentication, authentication.BaseAuthentication):
    """Keeper keys (`keeper_...`) as bearer tokens, or any key in X-API-Key (imported keys included)."""

    def authenticate(self, request: Request) -> tuple[Caller, ApiKey] | None:
        value = presented_key(request)
        if value is None:
            return None
        ensure_merged()
        try:
            key = key_authenticate(value, ip=client_ip(request._request), path=request._request.path)
        except KeyRejected as exc:
            metrics.key_verified("forbidden" if exc.status == 403 else "invalid")
            if exc.status == 403:
                raise KeyForbidden(str(exc)) from None
            raise KeyRefused(str(exc)) from None
        metrics.key_verified("valid")
        request._request.api_key = key
        return caller_for_key(key), key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="keeper"'


class CapabilityTokenRefused(exceptions.AuthenticationFailed):
    default_code = "invalid_capability_token"


class CapabilityTokenForbidden(exceptions.PermissionDenied):
    default_code = "capability_token_forbidden"


# A capability token stands for its key on the catalog API (and /me); managing keys and /config take the key.
CAPABILITY_TOKEN_VIEWS = ("apps.catalog.", "apps.accounts.")


class CapabilityTokenAuthentication(CredentialAuthentication, authentication.BaseAuthentication):
    """Keeper's own capability tokens (apps.keys.capability), judged here and never sent to the identity provider.

    First of the authentication classes: a bearer JWT with Keeper's kid or issuer is Keeper's, valid or
    not (a forged or expired one is a 401 here); any other bearer token is left to the next classes.
    """

    def authenticate(self, request: Request) -> tuple[Caller, AuthenticatedToken] | None:
        token = bearer_token(request)
        if token is None or not looks_like_capability_token(token):
            return None
        ensure_merged()
        try:
            verified = token_authenticate(token, ip=client_ip(request._request), path=request._request.path)
        except TokenRefused as exc:
            if exc.status == 403:
                raise CapabilityTokenForbidden(str(exc)) from None
            raise CapabilityTokenRefused(str(exc)) from None
        view = (request.parser_context or {}).get("view")
        if not type(view).__module__.startswith(CAPABILITY_TOKEN_VIEWS):
            raise CapabilityTokenForbidden("Capability tokens work on the catalog API only; use the key itself here.")
        key = verified.key
        # The key's own pool, organization pool and daily quota: the same counters as the key's requests.
        request._request.api_key = key
        return dataclasses.replace(caller_for_key(key), auth_method="capability_token"), verified

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="keeper"'


class CapabilityTokenScheme(OpenApiAuthenticationExtension):
    target_class = CapabilityTokenAuthentication
    name = "capabilityToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": (
                "A capability token from POST /keys/validate (catalog API only; its keys: /.well-known/jwks.json)."
            ),
        }
