"""`{% staff_overview as overview %}`: the staff overview's sections for the admin's index page (keeper.admin)."""

from typing import Any

from django import template

from keeper.admin import staff_overview as overview_for

register = template.Library()


@register.simple_tag(takes_context=True)
def staff_overview(context: template.Context) -> list[dict[str, Any]] | None:
    request = context.get("request")
    return overview_for(request.user) if request is not None else None
