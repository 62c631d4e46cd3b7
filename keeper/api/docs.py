"""The API's documentation pages, Swagger UI (/docs) and ReDoc (/redoc), from Keeper alone.

Each page is sent with a Content-Security-Policy that lets it load, connect to and run only what
this origin serves: a browser refuses anything else, such as the Redocly logo ReDoc links from its
CDN. Their inline <script> elements carry the answer's nonce (`csp_nonce` in the templates,
templates/drf_spectacular/), and so do Swagger UI's <style> elements. ReDoc's are not all
reachable (it builds some inline styles before its `nonce` option applies), so /redoc allows inline
styles, and only styles: a style can change how the page looks, not what it runs or loads.
"""

import secrets
from typing import Any

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
