from typing import Any

from django.conf import settings
from django.http import HttpRequest


def oidc(request: HttpRequest) -> dict[str, Any]:
    """Lets the admin login page offer single sign-on only when it is configured."""
    return {"oidc_enabled": settings.OIDC_ENABLED}
