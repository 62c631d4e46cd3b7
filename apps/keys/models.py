import ipaddress
from datetime import timedelta

from django.conf import settings
from django.db import connection, models
from django.utils import timezone

from apps.keys import endpoints
from apps.keys.choices import AuditAction, Credential, HashKind, KeySource, KeyStatus, Scope
from apps.keys.querysets import ApiKeyQuerySet

# Keys created by keys created by keys...: each level adds its limits to every request of the ones
# below (apps/keys/authentication.py), so the chain is bounded.
MAX_KEY_DEPTH = 8


class ApiKey(models.Model):
    """An API key. Only a hash of the secret is stored; the key itself is shown once."""

    key_id = models.CharField(max_length=32, unique=True, help_text="Lookup id, part of the key.")
    prefix = models.CharField(max_length=40, help_text="The key's visible start, e.g. keeper_AbC123dEf456.")
    last_chars = models.CharField(max_length=8, help_text="The key's last characters, for recognition.")
    secret_hash = models.CharField(max_length=200, help_text="Hash of the key (never the key).")
    hash_kind = models.CharField(max_length=8, choices=HashKind.choices, default=HashKind.HMAC)
    lookup_bucket = models.CharField(max_length=8, blank=True, db_index=True, help_text="Imported keys only.")
    previous_secret_hash = models.CharField(max_length=200, blank=True, help_text="Hash of the pre-rotation key.")
    previous_valid_until = models.DateTimeField(null=True, blank=True, help_text="End of the rotation grace period.")

    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys")
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, null=True, blank=True, related_name="api_keys"
    )
    scope = models.CharField(max_length=8, choices=Scope.choices, default=Scope.READ)
    allowed_endpoints = models.JSONField(
        default=list,
        blank=True,
        help_text='Path patterns the key may call, e.g. ["/servers", "/server/*"]; empty: all.',
    )
    blocked_endpoints = models.JSONField(default=list, blank=True, help_text="Path patterns refused even if allowed.")
    allowed_ips = models.JSONField(default=list, blank=True, help_text='IPs or CIDR ranges, e.g. ["10.0.0.0/8"].')
    credits_per_minute = models.PositiveIntegerField(null=True, blank=True, help_text="The key's own credit pool.")
    daily_quota = models.PositiveIntegerField(null=True, blank=True, help_text="Credits per UTC day.")
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: never expires.")
    status = models.CharField(max_length=10, choices=KeyStatus.choices, default=KeyStatus.ACTIVE)
    source = models.CharField(max_length=10, choices=KeySource.choices, default=KeySource.GENERATED)
    expiry_warned_at = models.DateTimeField(null=True, blank=True, help_text="When the owner was warned of expiry.")
    decided_by = models.JSONField(
        default=dict,
        blank=True,
        help_text='Who last set each field and the status, e.g. {"credits_per_minute": "staff"} (apps/keys/policy.py).',
    )
    listed = models.BooleanField(
        default=True, help_text="Bootstrap keys: listed in KEEPER_API_KEYS now (an unlisted one is refused)."
    )
    # A child draws from its parent's pool and quota, so it never outlives its parent: DELETE /keys
    # refuses a parent with children (409), and any other path (its owner's or organization's deletion)
    # takes the children with it rather than free them of its limits.
    parent = models.ForeignKey(
        "self",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="children",
        editable=False,
        help_text="The key that created this one: its requests also draw from the limits of the keys above it.",
    )

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_used_at = models.DateTimeField(null=True, blank=True, help_text="Written at most once a minute.")

    objects = ApiKeyQuerySet.as_manager()

    # Said for a key, and for its capability tokens, once its owner is deactivated.
    OWNER_DEACTIVATED = "The owner of this API key is deactivated."

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "API key"
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="uniq_key_name_per_owner")]
        indexes = [models.Index(fields=["status", "expires_at"], name="key_status_expiry")]

    def __str__(self) -> str:
        return f"{self.name} ({self.masked})"

    @property
    def masked(self) -> str:
        return f"{self.prefix}…{self.last_chars}"

    def is_expired(self, now=None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())

    def effective_status(self, now=None) -> str:
        if self.status == KeyStatus.ACTIVE and self.is_expired(now):
            return KeyStatus.EXPIRED
        return self.status

    def expiring_soon(self, now=None) -> bool:
        now = now or timezone.now()
        window = timedelta(days=settings.KEEPER_KEY_EXPIRY_WARNING_DAYS)
        return self.expires_at is not None and now < self.expires_at <= now + window

    def allows_endpoint(self, path: str) -> bool:
        return endpoints.allows(path, self.allowed_endpoints, self.blocked_endpoints)

    def allows_ip(self, address: str) -> bool:
        if not self.allowed_ips:
            return True
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in ipaddress.ip_network(network, strict=False) for network in self.allowed_ips)

    # Keys loaded by ApiKeyQuerySet.for_verification() carry these without further queries.
    @property
    def owner_name(self) -> str:
        return getattr(self, "owner_username", None) or self.owner.get_username()

    @property
    def owner_active(self) -> bool:
        """False once staff deactivated the owner (`is_active`): their keys and tokens are then refused."""
        loaded = getattr(self, "owner_is_active", None)
        return bool(self.owner.is_active if loaded is None else loaded)

    @property
    def organization_name(self) -> str | None:
        if not self.organization_id:
            return None
        return getattr(self, "organization_slug", None) or self.organization.slug

    def _organization_credits(self) -> int | None:
        if not self.organization_id:
            return None
        if hasattr(self, "organization_credits"):
            return self.organization_credits
        return self.organization.credits_per_minute

    @property
    def pool_key(self) -> str:
        """The credit pool this key draws from: its own, its organization's, or its owner's."""
        if self.credits_per_minute:
            return f"key:{self.key_id}"
        if self._organization_credits():
            return f"org:{self.organization_name}"
        return f"user:{self.owner_name}"

    @property
    def pool_size(self) -> int | None:
        return self.credits_per_minute or self._organization_credits() or None

    def limited_ancestors(self) -> list["ApiKey"]:
        """The keys above this one (its parent, the parent's parent, ...) with a pool or quota of their own,
        nearest first: one query, none for a key nobody's key created."""
        if self.parent_id is None:
            return []
        table = self._meta.db_table
        sql = (
            f'{self._chain_sql()} SELECT k.* FROM "{table}" k JOIN chain c ON k."id" = c.id '
            f'WHERE k."credits_per_minute" IS NOT NULL OR k."daily_quota" IS NOT NULL ORDER BY c.depth'
        )
        return list(ApiKey.objects.raw(sql, [self.parent_id, MAX_KEY_DEPTH + 1]))

    def depth(self) -> int:
        """How many keys are above this one (0: created by a person or the system)."""
        if self.parent_id is None:
            return 0
        with connection.cursor() as cursor:
            cursor.execute(f"{self._chain_sql()} SELECT MAX(depth) FROM chain", [self.parent_id, MAX_KEY_DEPTH + 1])
            return int(cursor.fetchone()[0] or 0)

    def _chain_sql(self) -> str:
        """`chain(id, depth)`: the parent (depth 1, its id a parameter), its parent, ..., at most a depth given
        as the second parameter (a guard against a cycle written by hand: key_create keeps chains shorter)."""
        table = self._meta.db_table
        # Started from the parent's row, not from the bare parameter, so that both terms have the column's type.
        return (
            f'WITH RECURSIVE chain(id, depth) AS (SELECT k."id", 1 FROM "{table}" k WHERE k."id" = %s '
            f'UNION ALL SELECT k."parent_id", c.depth + 1 FROM "{table}" k JOIN chain c ON k."id" = c.id '
            f'WHERE k."parent_id" IS NOT NULL AND c.depth < %s)'
        )


class KeyUsageDay(models.Model):
    """A key's use on one UTC day (requests are counted in each process and added here in batches)."""

    key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="usage_days")
    day = models.DateField()
    requests = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0, help_text="Responses with status >= 400.")
    rate_limited = models.PositiveIntegerField(default=0, help_text="429 responses.")
    credits = models.PositiveIntegerField(default=0)
    endpoints = models.JSONField(default=dict, help_text="Requests per route.")
    # Set once each (a conditional update), so a key's quota events are recorded at most once a day.
    quota_warned_at = models.DateTimeField(null=True, blank=True, help_text="When key.quota_warning was recorded.")
    quota_exhausted_at = models.DateTimeField(null=True, blank=True, help_text="When key.quota_exhausted was recorded.")

    class Meta:
        ordering = ["-day"]
        constraints = [models.UniqueConstraint(fields=["key", "day"], name="uniq_key_usage_day")]
        # The staff overview sums the last 30 days of every key (the unique index leads with the key).
        indexes = [models.Index(fields=["day"], name="key_usage_by_day")]

    def __str__(self) -> str:
        return f"{self.key_id} {self.day}: {self.requests}"


class AuditEvent(models.Model):
    """Who did what to which key, when and from where. Append-only."""

    key = models.ForeignKey(ApiKey, on_delete=models.SET_NULL, null=True, blank=True, related_name="audit_events")
    key_ref = models.CharField(max_length=64, help_text="The key's masked value (kept after deletion).")
    owner_username = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=16, choices=AuditAction.choices)
    actor = models.CharField(max_length=200, help_text="Who: user, token subject or key.")
    ip = models.GenericIPAddressField(null=True, blank=True)
    at = models.DateTimeField(default=timezone.now, db_index=True)
    changes = models.JSONField(default=dict, blank=True, help_text="Field: [before, after].")
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.action} {self.key_ref} by {self.actor}"


class SigningKey(models.Model):
    """A key pair that signs capability tokens (apps/keys/signing.py).

    The private half is stored only encrypted (AES-GCM, under a key derived from
    KEEPER_TOKEN_KEY_SECRET) and is never shown; the public half is published at
    /.well-known/jwks.json from its creation until the last token it signed has expired.
    """

    kid = models.CharField(max_length=64, unique=True, help_text="Key id: the `kid` header of the tokens it signs.")
    algorithm = models.CharField(max_length=16, help_text="JWS algorithm, e.g. ES256.")
    public_jwk = models.JSONField(help_text="The public key as a JWK (published).")
    private_key_encrypted = models.TextField(editable=False, help_text="The private key, encrypted. Never shown.")
    created_at = models.DateTimeField(auto_now_add=True)
    activates_at = models.DateTimeField(
        help_text="From when it signs; published before, so that verifiers caching the key set know it in time."
    )

    class Meta:
        ordering = ["-activates_at", "-id"]
        verbose_name = "token signing key"

    def __str__(self) -> str:
        return f"{self.kid} ({self.algorithm})"


class TokenDenial(models.Model):
    """The capability tokens of a key issued before `not_before_ms` are refused at Keeper.

    Written when a key is revoked, suspended, changed, rotated or deleted, and kept as long as
    the longest-lived token (apps/keys/capability.py); copied to Redis when REDIS_URL is set.
    """

    key_id = models.CharField(max_length=32, unique=True, help_text="The key's lookup id.")
    not_before_ms = models.BigIntegerField(help_text="Tokens issued before this time (Unix ms) are refused.")
    reason = models.CharField(max_length=16, help_text="revoked, suspended, changed, ...")
    expires_at = models.DateTimeField(db_index=True, help_text="When no token it refuses can still be valid.")

    class Meta:
        ordering = ["-not_before_ms"]

    def __str__(self) -> str:
        return f"{self.key_id}: {self.reason}"


class TrafficDay(models.Model):
    """Every API request of one UTC day, by what it presented: requests, credits and refusals by reason.

    Counted in each process and added here in batches (apps/keys/traffic.py), as KeyUsageDay is.
    """

    day = models.DateField()
    credential = models.CharField(max_length=16, choices=Credential.choices)
    requests = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0, help_text="Responses with status >= 400.")
    credits = models.PositiveBigIntegerField(default=0, help_text="Credits the rate limits charged (none for a 429).")
    unauthorized = models.PositiveIntegerField(default=0, help_text="401: no valid credentials.")
    forbidden = models.PositiveIntegerField(default=0, help_text="403: not allowed.")
    pool = models.PositiveIntegerField(default=0, help_text="429: the caller's credit pool.")
    quota = models.PositiveIntegerField(default=0, help_text="429: a key's daily quota.")
    global_bucket = models.PositiveIntegerField(default=0, help_text="429: the global token bucket.")

    class Meta:
        ordering = ["-day", "credential"]
        verbose_name = "traffic day"
        constraints = [models.UniqueConstraint(fields=["day", "credential"], name="uniq_traffic_day_credential")]

    def __str__(self) -> str:
        return f"{self.day} {self.credential}: {self.requests}"
