from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from apps.accounts.identity import caller_of


class IsAuthenticatedCaller(BasePermission):
    """Any authenticated caller; anonymous callers get a 401."""

    def has_permission(self, request: Request, view) -> bool:
        return caller_of(request.user) is not None


class IsStaffCaller(BasePermission):
    """Staff users, staff tokens and admin-scoped API keys; others get a 403, anonymous a 401."""

    message = "Only staff may do this."

    def has_permission(self, request: Request, view) -> bool:
        caller = caller_of(request.user)
        return caller is not None and (caller.is_staff or caller.scope == "admin")
