"""The API's documentation pages, Swagger UI (/docs) and ReDoc (/redoc), from Keeper alone.

Each page is sent with a Content-Security-Policy that lets it load, connect to and run only what
this origin serves: a browser refuses anything else. ReDoc's bundle (drf-spectacular-sidecar's)
draws the Redocly logo from Redocly's CDN under its menu, and no option leaves it out: /redoc loads
the bundle from `redoc_bundle`, which serves it with that address replaced by the same picture
inline (a data: URL), so the page asks nothing of another host and the policy refuses nothing.

The pages' inline <script> elements carry the answer's nonce (`csp_nonce` in the templates,
templates/drf_spectacular/), and so do Swagger UI's <style> elements. ReDoc's are not all
reachable (it builds some inline styles before its `nonce` option applies), so /redoc allows inline
styles, and only styles: a style can change how the page looks, not what it runs or loads.
"""

import secrets
from functools import cache
from pathlib import Path
from typing import Any

import drf_spectacular_sidecar
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_GET
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerSplitView
from rest_framework.request import Request
from rest_framework.response import Response


def content_security_policy(nonce: str, *, inline_styles: bool = False) -> str:
    own = "'self'"
    # With a nonce listed, a browser ignores 'unsafe-inline': one or the other.
    styles = "'unsafe-inline'" if inline_styles else f"'nonce-{nonce}'"
    return "; ".join(
        [
            f"default-src {own}",
            f"script-src {own} 'nonce-{nonce}'",
            f"style-src {own} {styles}",
            # Swagger UI draws its icons as data: images.
            f"img-src {own} data:",
            f"connect-src {own}",
            # ReDoc's search index runs in a worker it builds from a blob.
            f"worker-src {own} blob:",
            "object-src 'none'",
            f"base-uri {own}",
            f"form-action {own}",
            f"frame-ancestors {own}",
        ]
    )


class OwnOriginOnly:
    """A documentation page with the Content-Security-Policy above and a fresh nonce for each answer."""

    inline_styles = False

    @extend_schema(exclude=True)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().get(request, *args, **kwargs)
        nonce = secrets.token_urlsafe(18)
        response.data["csp_nonce"] = nonce
        response["Content-Security-Policy"] = content_security_policy(nonce, inline_styles=self.inline_styles)
        return response


class SwaggerView(OwnOriginOnly, SpectacularSwaggerSplitView):
    """Swagger UI; its start-up script is a file of its own (`/docs?script`), not inline."""


class RedocView(OwnOriginOnly, SpectacularRedocView):
    inline_styles = True

    def _redoc_standalone(self) -> str:
        return reverse("redoc-bundle")


REDOC_BUNDLE = (
    Path(drf_spectacular_sidecar.__file__).parent / "static/drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js"
)
REDOCLY_LOGO_URL = "https://cdn.redoc.ly/redoc/logo-mini.svg"
# A plain mark in the logo's place: the attribution's link and text stay as ReDoc draws them.
REDOCLY_LOGO_INLINE = (
    "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E"
    "%3Ccircle cx='8' cy='8' r='7' fill='%2332329f'/%3E%3C/svg%3E"
)


@cache
def _redoc_bundle() -> bytes:
    text = REDOC_BUNDLE.read_text(encoding="utf-8")
    if REDOCLY_LOGO_URL not in text:
        raise RuntimeError(f"{REDOC_BUNDLE} no longer names {REDOCLY_LOGO_URL}: check what it loads from elsewhere")
    return text.replace(REDOCLY_LOGO_URL, REDOCLY_LOGO_INLINE).encode()


@require_GET
def redoc_bundle(request: HttpRequest) -> HttpResponse:
    """ReDoc's standalone bundle with the Redocly logo inline (read once per process, cached a day by browsers)."""
    response = HttpResponse(_redoc_bundle(), content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = "public, max-age=86400"
    return response
