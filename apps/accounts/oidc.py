"""Staff sign-in to the admin through OpenID Connect (mozilla-django-oidc).

The identity provider decides who is staff, on every sign-in: the Django user is
a copy of the claims, refreshed each time, so removing someone from the staff
group at the provider takes effect at their next sign-in. The admin is
staff-only, so a sign-in without staff status is refused rather than leaving a
session that can do nothing. Superuser status is never granted here; the
password login stays for local accounts such as the first superuser.
"""

import logging
from typing import Any
from urllib.parse import urlencode

import requests
from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import AbstractUser, Group
from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from apps.accounts.identity import IDP_HASHED_PREFIX, IDP_PREFIX
from apps.accounts.verification import claims_grant_staff

logger = logging.getLogger(__name__)


class ProviderAnswerUnusable(Exception):
    """The provider answered something no sign-in can use (not a JSON object, nested without end)."""


def username_from_claims(claims: dict[str, Any]) -> str:
    """The Django username: `preferred_username`, else the provider's stable `sub`."""
    for name in ("preferred_username", "sub"):
        value = claims.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


class StaffOIDCBackend(OIDCAuthenticationBackend):
    """Signs staff in with the authorization code flow; anyone else is refused."""

    def authenticate(self, request: HttpRequest | None, **kwargs: Any) -> AbstractUser | None:
        """Authenticate only calls made by the OIDC callback view.

        Django asks every backend about every login, including the admin's
        password form. The library would then exchange any `code` found in the
        query string without the session's state check; only the callback view
        passes `nonce`, so its absence means "not an OIDC callback".
        A provider that is down or refuses the code is a failed sign-in
        (a redirect to the login page), not a server error.
        """
        if request is None or "nonce" not in kwargs:
            return None
        try:
            return super().authenticate(request, **kwargs)
        except (requests.RequestException, ProviderAnswerUnusable) as exc:
            logger.warning("OIDC sign-in failed talking to the provider: %s", exc.__class__.__name__)
            return None

    def verify_token(self, token: str, **kwargs: Any) -> dict[str, Any]:
        """Also check the id_token's audience, which the library leaves unchecked.

        With RS256 the provider's key signs tokens for all its clients, so a token
        issued to another application must not sign anyone in here. Only the
        id_token is verified with a `nonce` argument; a signed userinfo response
        need not carry `aud`.
        """
        payload: dict[str, Any] = super().verify_token(token, **kwargs)
        if "nonce" in kwargs:
            audience = payload.get("aud")
            audiences = [audience] if isinstance(audience, str) else audience
            if not isinstance(audiences, list) or self.OIDC_RP_CLIENT_ID not in audiences:
                raise SuspiciousOperation("The id_token was issued to another client.")
        return payload

    def get_userinfo(self, access_token: str, id_token: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The library's, refusing an answer that is not a JSON object.

        The library parses userinfo with Python's json module, which recurses once per level: claims
        nested thousands deep end in RecursionError, a provider error like any other, not a 500.
        (The id_token's payload is parsed by PyJWT, which already turns that into a refused token.)
        """
        try:
            userinfo = super().get_userinfo(access_token, id_token, payload)
        except RecursionError as exc:
            raise ProviderAnswerUnusable("userinfo nests too deep to parse") from exc
        if not isinstance(userinfo, dict):
            raise ProviderAnswerUnusable("userinfo is not a JSON object")
        return userinfo

    def get_or_create_user(self, access_token: str, id_token: str, payload: dict[str, Any]) -> AbstractUser | None:
        """Like the library's, but over the id_token's claims merged with userinfo's.

        Providers differ in where they put groups (Azure AD only in the id_token,
        others only in userinfo), so both count. OIDC Core 5.3.2 requires the
        userinfo `sub` to match the id_token's, or userinfo must not be used.
        """
        userinfo = self.get_userinfo(access_token, id_token, payload)
        if userinfo.get("sub") != payload.get("sub"):
            raise SuspiciousOperation("The userinfo subject differs from the id_token subject.")
        claims = {**payload, **userinfo}
        if not self.verify_claims(claims):
            raise SuspiciousOperation("The claims name no user (no preferred_username or sub).")
        username = username_from_claims(claims)
        if username.startswith((IDP_PREFIX, IDP_HASHED_PREFIX)):
            # Those names belong to token callers (apps.accounts.identity): an SSO account named so
            # would take over a token user's keys and pool, which has no password to refuse it.
            logger.warning("OIDC sign-in refused: the user name is in the token callers' namespace")
            return None
        longest = self.UserModel._meta.get_field(self.UserModel.USERNAME_FIELD).max_length
        if len(username) > longest:
            # Never cut: two names alike in their first 150 characters would be one account.
            logger.warning("OIDC sign-in refused: a user name of %d characters (at most %d)", len(username), longest)
            return None
        user = self.filter_users_by_claims(claims).first()
        if user is not None:
            return self.update_user(user, claims)
        if not self.get_settings("OIDC_CREATE_USER", True):
            logger.info("OIDC sign-in refused: no user %s and OIDC_CREATE_USER is off", username_from_claims(claims))
            return None
        return self.create_user(claims)

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        """A username is all that is required; the library's default demands an email."""
        return bool(username_from_claims(claims))

    def get_username(self, claims: dict[str, Any]) -> str:
        return username_from_claims(claims)

    def filter_users_by_claims(self, claims: dict[str, Any]) -> Any:
        """Match on the username, never on the email.

        The library matches on email, so anyone able to set that address at the
        provider would sign in as the local account holding it.
        """
        return self.UserModel.objects.filter(username=username_from_claims(claims))

    def create_user(self, claims: dict[str, Any]) -> AbstractUser | None:
        """Create staff only: a non-staff account could never use the admin."""
        username = username_from_claims(claims)
        if not claims_grant_staff(claims):
            logger.info("OIDC sign-in refused: %s is not staff", username)
            return None
        user = self.UserModel(username=username, is_staff=True, is_superuser=False)
        self._copy_profile(user, claims)
        # The provider holds the credentials; an unusable password also marks the
        # account as one that SSO may update (see update_user).
        user.set_unusable_password()
        user.save()
        _join_staff_group(user)
        logger.info("OIDC sign-in created staff user %s", username)
        return user

    def update_user(self, user: AbstractUser, claims: dict[str, Any]) -> AbstractUser | None:
        """Refresh the profile and staff status, then refuse the sign-in if staff is gone.

        Accounts with a password or superuser status are local (the first
        superuser, say) and are never taken over: a provider user who picks the
        same `preferred_username` must not become that account.
        """
        if user.is_superuser or user.has_usable_password():
            logger.warning("OIDC sign-in refused: %s is a local account, not an SSO one", user.get_username())
            return None
        user.is_staff = claims_grant_staff(claims)
        self._copy_profile(user, claims)
        user.save(update_fields=["is_staff", "email", "first_name", "last_name"])
        if not user.is_staff:
            user.groups.remove(*Group.objects.filter(name=settings.KEEPER_STAFF_DJANGO_GROUP))
            logger.info("OIDC sign-in refused: %s is not staff", user.get_username())
            return None
        _join_staff_group(user)
        return user

    def get_user(self, user_id: Any) -> AbstractUser | None:
        """Keep ModelBackend's check that the account is active; the library drops it."""
        return ModelBackend.get_user(self, user_id)

    @staticmethod
    def _copy_profile(user: AbstractUser, claims: dict[str, Any]) -> None:
        user.email = _text(claims.get("email"))
        user.first_name = _text(claims.get("given_name"))[:150]
        user.last_name = _text(claims.get("family_name"))[:150]


def _join_staff_group(user: AbstractUser) -> None:
    """SSO staff get the permissions of the KEEPER_STAFF_DJANGO_GROUP group (created by a migration)."""
    group = Group.objects.filter(name=settings.KEEPER_STAFF_DJANGO_GROUP).first()
    if group is not None:
        user.groups.add(group)


def provider_logout_url(request: HttpRequest) -> str:
    """Signing out of the admin also ends the session at the provider (OIDC_OP_LOGOUT_ENDPOINT)."""
    query = urlencode(
        {
            "client_id": settings.OIDC_RP_CLIENT_ID,
            "post_logout_redirect_uri": request.build_absolute_uri(settings.LOGOUT_REDIRECT_URL),
        }
    )
    return f"{settings.OIDC_OP_LOGOUT_ENDPOINT}?{query}"


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""
