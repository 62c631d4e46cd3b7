from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models


class Organization(models.Model):
    """A group of users that may own API keys together and share a credit pool."""

    slug = models.SlugField(max_length=64, unique=True, help_text="Short id, also matched against the IdP claim.")
    name = models.CharField(max_length=200)
    credits_per_minute = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="A credit pool shared by the organization's keys that have no pool of their own.",
    )
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="Membership", related_name="organizations")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug

    def is_admin(self, user) -> bool:
        return self.memberships.filter(user=user, role=Membership.Role.ADMIN).exists()


class Membership(models.Model):
    """A user's place in an organization; admins manage the organization's keys.

    Granted here (staff, the admin) or by the identity provider's organizations claim, one row per
    origin: the claim's row follows the claim, up, down and away (`memberships_sync`), and never
    touches the local one. A user with both stands at the higher of the two roles.
    """

    class Role(models.TextChoices):
        MEMBER = "member", "member"
        ADMIN = "admin", "admin"

    class Source(models.TextChoices):
        LOCAL = "local", "granted here"
        CLAIM = "claim", "identity provider's claim"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=8, choices=Role.choices, default=Role.MEMBER)
    source = models.CharField(
        max_length=8,
        choices=Source.choices,
        default=Source.LOCAL,
        help_text="Granted here, or by the identity provider's claim (changed or removed when the claim changes).",
    )

    class Meta:
        ordering = ["organization", "user", "source"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "user", "source"], name="uniq_membership_per_source")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.role})"
