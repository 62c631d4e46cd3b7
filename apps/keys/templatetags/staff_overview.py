"""`{% staff_overview as overview %}`: the staff overview for the admin's index page (apps.keys.overview)."""

from typing import Any

from django import template

from apps.keys.overview import staff_overview as overview_for

register = template.Library()


@register.simple_tag(takes_context=True)
def staff_overview(context: template.Context) -> dict[str, Any] | None:
    request = context.get("request")
    return overview_for(request.user) if request is not None else None
