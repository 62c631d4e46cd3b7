import hashlib
import secrets

from django.db import models


class WatchStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"


def new_feed_token() -> str:
    return f"wft_{secrets.token_urlsafe(24)}"


def feed_token_hash(token: str) -> str:
    """Stored instead of the token: it is only ever compared (a SHA-256 suffices for a random 192-bit token)."""
    return hashlib.sha256(token.encode()).hexdigest()


class Watch(models.Model):
    """A caller's saved catalog query (a GET path with its query string), re-run after each sync.

    `caller` rebuilds the owner's Caller for the re-runs (keeper.api.callers.caller_reference: a key's
    lookup id or a snapshot of the Caller's fields, never a secret). `rows` is the last answer seen, as
    rows keyed by their ids (apps/catalog/watches/rows.py); `evaluated_sync` the last sync it was
    compared after, so that one sync makes one event at most.
    """

    owner = models.CharField(max_length=200, help_text="Local user name of the caller (Caller.owner).")
    name = models.CharField(max_length=100)
    query = models.CharField(max_length=2000, help_text="A catalog GET path with its query string.")
    route = models.CharField(max_length=100, help_text="The catalog route's URL name.")
    caller = models.JSONField(default=dict, help_text="Who the re-runs act as (no secrets).")
    status = models.CharField(max_length=10, choices=WatchStatus.choices, default=WatchStatus.ACTIVE)
    paused_reason = models.TextField(blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    feed_token_hash = models.CharField(max_length=64, editable=False, help_text="SHA-256 of the feed token.")
    rows = models.JSONField(default=dict, blank=True, help_text="The last answer seen, keyed by row id.")
    evaluated_sync = models.BigIntegerField(null=True, blank=True, help_text="The last sync compared after.")
    evaluated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        app_label = "catalog"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["owner", "-created_at"], name="watch_owner_recent"),
            models.Index(fields=["status", "evaluated_sync"], name="watch_pending"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.query})"

    @property
    def subject(self) -> str:
        return f"watch:{self.pk}"

    def feed_token_matches(self, token: str) -> bool:
        return bool(self.feed_token_hash) and secrets.compare_digest(feed_token_hash(token), self.feed_token_hash)


class WatchSweep(models.Model):
    """The watches' evaluation after one sync: durable, so that whichever process ran the sync, the worker
    (or the in-process schedule) evaluates every watch once; `finished_at` is set when none is left."""

    sync_id = models.BigIntegerField(unique=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    evaluated = models.PositiveIntegerField(default=0)
    changed = models.PositiveIntegerField(default=0)
    paused = models.PositiveIntegerField(default=0)
    seconds = models.FloatField(default=0)

    class Meta:
        app_label = "catalog"
        ordering = ["-sync_id"]

    def __str__(self) -> str:
        return f"watches after sync #{self.sync_id}"
