"""Account writes: organization memberships granted by the identity provider."""

from typing import Any

from django.db import transaction

from apps.accounts.models import Membership, Organization


def parse_membership_claim(value: Any) -> dict[str, str]:
    """{slug: role} from a claim: a list of slugs (members), or a map of slug to "admin"/"member"."""
    if isinstance(value, str):
        value = value.split()
    if isinstance(value, list):
        return {str(slug): Membership.Role.MEMBER for slug in value if isinstance(slug, str) and slug}
    if isinstance(value, dict):
        return {
            str(slug): role if role in Membership.Role.values else Membership.Role.MEMBER
            for slug, role in value.items()
        }
    return {}


def memberships_sync(user, roles: dict[str, str]) -> None:
    """Make the user's memberships match the identity provider's claim, for organizations that exist here.

    Memberships added by staff in the admin for organizations the claim does not
    mention are left alone: the claim grants, it does not revoke local grants.
    """
    if not roles:
        return
    organizations = {org.slug: org for org in Organization.objects.filter(slug__in=roles)}
    with transaction.atomic():
        for slug, organization in organizations.items():
            Membership.objects.update_or_create(organization=organization, user=user, defaults={"role": roles[slug]})
