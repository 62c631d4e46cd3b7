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
    """Make the user's claim memberships exactly what the identity provider's claim grants now.

    Created, raised, lowered and removed to match, an absent or empty claim included (it grants
    nothing); slugs of organizations that do not exist here are ignored. Memberships granted here
    are never touched. Reads first and writes only a difference, so an unchanged claim costs a
    query or two and no write (every management request of a token runs this).
    """
    granted: dict[int, str] = {}
    if roles:
        for pk, slug in Organization.objects.filter(slug__in=roles).values_list("pk", "slug"):
            granted[pk] = roles[slug]
    claimed = Membership.objects.filter(user=user, source=Membership.Source.CLAIM)
    if dict(claimed.values_list("organization_id", "role")) == granted:
        return
    with transaction.atomic():
        claimed.exclude(organization_id__in=granted).delete()
        # An upsert: two requests of the same user syncing at once both succeed.
        Membership.objects.bulk_create(
            [
                Membership(organization_id=pk, user=user, role=role, source=Membership.Source.CLAIM)
                for pk, role in granted.items()
            ],
            update_conflicts=True,
            unique_fields=["organization", "user", "source"],
            update_fields=["role"],
        )
