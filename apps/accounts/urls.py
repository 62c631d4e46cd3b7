from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import path
from mozilla_django_oidc import views as oidc_views

from apps.accounts import views


def _when_oidc_enabled(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """404 (the JSON one) while OIDC is not configured, checked per request.

    The library's views would otherwise fail on the missing endpoints with a 500.
    """

    @wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not settings.OIDC_ENABLED:
            raise Http404
        return view(request, *args, **kwargs)

    return guarded


# The routes and names of mozilla_django_oidc.urls, which the library reverses.
oidc_urlpatterns = [
    path(
        "oidc/authenticate/",
        _when_oidc_enabled(oidc_views.OIDCAuthenticationRequestView.as_view()),
        name="oidc_authentication_init",
    ),
    path(
        "oidc/callback/",
        _when_oidc_enabled(oidc_views.OIDCAuthenticationCallbackView.as_view()),
        name="oidc_authentication_callback",
    ),
    path("oidc/logout/", _when_oidc_enabled(oidc_views.OIDCLogoutView.as_view()), name="oidc_logout"),
]

urlpatterns = [
    path("me", views.MeView.as_view(), name="me"),
    *oidc_urlpatterns,
]
