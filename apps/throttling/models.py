import math
from datetime import date

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import connections, models

# The bounds of the global bucket, in one place: the model (admin), the API serializer and the docs use them.
RATE_LIMIT_MIN = 0.001
RATE_LIMIT_MAX = 1_000_000.0
RATE_BURST_MIN = 1
RATE_BURST_MAX = 1_000_000


def validate_finite(value: float) -> None:
    # NaN passes every Min/MaxValueValidator (all its comparisons are false), so it is refused by name.
    if not math.isfinite(value):
        raise ValidationError("Must be a finite number.", code="invalid")


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
        default=100.0,
        validators=[validate_finite, MinValueValidator(RATE_LIMIT_MIN), MaxValueValidator(RATE_LIMIT_MAX)],
        help_text="Requests per second, refilled continuously (0.001 to 1,000,000).",
    )
    rate_burst = models.PositiveIntegerField(
        default=20,
        validators=[MinValueValidator(RATE_BURST_MIN), MaxValueValidator(RATE_BURST_MAX)],
        help_text="Bucket size: requests allowed at once (1 to 1,000,000).",
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


class QuotaUsageManager(models.Manager["QuotaUsage"]):
    def spend(self, counter: str, day: date, amount: int, limit: int) -> int | None:
        """Add `amount` to the counter's day if the total stays within `limit`: the new total, else None.

        One statement, atomic on PostgreSQL and SQLite alike: the first insert of the day and the
        conditional increment cannot race (two processes charging a new day at once end in one row
        holding both charges, with no IntegrityError to retry), and there is no gap between check
        and write that could admit past the limit. RETURNING needs SQLite 3.35 (2021).
        """
        if amount > limit:
            return None  # the insert of a first row would not check the limit
        connection = connections[self.db]
        quote = connection.ops.quote_name
        table = quote(self.model._meta.db_table)
        counter_column, day_column, used_column = (
            quote(self.model._meta.get_field(name).column) for name in ("counter", "day", "used")
        )
        sql = (
            f"INSERT INTO {table} ({counter_column}, {day_column}, {used_column}) VALUES (%s, %s, %s) "
            f"ON CONFLICT ({counter_column}, {day_column}) DO UPDATE "
            f"SET {used_column} = {table}.{used_column} + excluded.{used_column} "
            f"WHERE {table}.{used_column} + excluded.{used_column} <= %s "
            f"RETURNING {used_column}"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [counter, connection.ops.adapt_datefield_value(day), amount, limit])
            row = cursor.fetchone()
        return None if row is None else int(row[0])

    def used_on(self, counter: str, day: date) -> int:
        return self.filter(counter=counter, day=day).values_list("used", flat=True).first() or 0

    def prune(self, *, before: date) -> int:
        """Delete the rows of days before `before`; how many."""
        deleted, _ = self.filter(day__lt=before).delete()
        return deleted


class QuotaUsage(models.Model):
    """Credits a daily quota's counter has spent on one UTC day, counted in the database.

    Used with RATE_LIMIT_BACKEND=memory, and with redis while Redis is down: every process
    and every restart sees the same count. Rows of days before yesterday are pruned.
    """

    counter = models.CharField(max_length=100, help_text="The quota's counter, e.g. quota:<key id>:<YYYYMMDD>.")
    day = models.DateField(help_text="The UTC day counted.")
    used = models.PositiveBigIntegerField(default=0, help_text="Credits spent.")

    objects = QuotaUsageManager()

    class Meta:
        ordering = ["-day", "counter"]
        verbose_name = "quota usage"
        verbose_name_plural = "quota usage"
        constraints = [models.UniqueConstraint(fields=["counter", "day"], name="throttling_quota_usage_one_per_day")]
        # Pruning deletes by day alone; the unique index leads with the counter.
        indexes = [models.Index(fields=["day"], name="throttling_quota_usage_day")]

    def __str__(self) -> str:
        return f"{self.counter} on {self.day}: {self.used}"
