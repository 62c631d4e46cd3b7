from django.core.validators import MinValueValidator, RegexValidator
from django.db import models


class RouteCost(models.Model):
    """Credits one request to a route costs; routes without a row cost RATE_LIMIT_DEFAULT_CREDIT_COST."""

    route = models.CharField(
        max_length=255,
        unique=True,
        validators=[RegexValidator(r"^/", "A route starts with /.")],
        help_text="The route as declared, e.g. /servers or /server/<str:vendor>/<path:server> (not a prefix).",
    )
    cost = models.PositiveIntegerField(help_text="Credits per request.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["route"]

    def __str__(self) -> str:
        return f"{self.route} = {self.cost}"


class GlobalRateLimit(models.Model):
    """The token bucket over the whole API (all callers together). A single row."""

    SINGLETON_ID = 1

    rate_limit = models.FloatField(
        default=100.0, validators=[MinValueValidator(0.001)], help_text="Requests per second, refilled continuously."
    )
    rate_burst = models.PositiveIntegerField(
        default=20, validators=[MinValueValidator(1)], help_text="Bucket size: requests allowed at once."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        verbose_name = "global rate limit"

    def __str__(self) -> str:
        return f"{self.rate_limit}/s, burst {self.rate_burst}"

    @classmethod
    def current(cls) -> "GlobalRateLimit":
        limit, _ = cls.objects.get_or_create(pk=cls.SINGLETON_ID)
        return limit
