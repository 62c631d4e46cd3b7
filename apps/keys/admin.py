"""API keys in the admin. Every write goes through apps.keys.services, so it is validated and audited.

A key's value exists only in the response that creates or rotates it: it is rendered
into that page and nowhere else (not the messages framework, the session or a log).
The hashes are never part of a form, a page or a changelist lookup.
"""

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import router, transaction
from django.db.models import Q, QuerySet
from django.db.models.constants import LOOKUP_SEP
from django.forms import Form
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.text import capfirst

from apps.keys import policy, services
from apps.keys.choices import KeyStatus
from apps.keys.forms import ApiKeyForm, ReasonForm, RotateForm
from apps.keys.models import ApiKey, AuditEvent, KeyUsageDay, SigningKey, TokenDenial, TrafficDay
from apps.keys.signing import signing_key_state
from keeper.admin import ReadOnlyAdmin
from keeper.charts import Series, stacked_bar_chart

# Never in a form, a page, a search or a filter (a `?secret_hash__startswith=` filter would leak it).
SECRET_FIELDS = frozenset({"secret_hash", "previous_secret_hash", "lookup_bucket"})
ACCESS_FIELDSET = ("Access", {"fields": ["allowed_endpoints", "blocked_endpoints", "allowed_ips"]})
LIMITS_FIELDSET = ("Limits", {"fields": ["credits_per_minute", "daily_quota", "expires_at"]})
CHART_DAYS = 30
RECENT_AUDIT_EVENTS = 20


def _actor(request: HttpRequest) -> policy.Actor:
    """Staff in the admin: above every owner, below the operator (KEEPER_API_KEYS)."""
    return policy.Actor(
        f"admin:{request.user.get_username()}",
        request.META.get("REMOTE_ADDR"),
        standing=policy.Rank.STAFF,
        user_id=request.user.pk,
    )


# --- Usage chart ----------------------------------------------------------------

USAGE_SERIES = [
    Series("ok", "ok", "#417690"),
    Series("errors", "errors", "#e0a800"),
    Series("rate_limited", "rate-limited", "#ba2121"),
]


def usage_chart(key: ApiKey, *, days: int = CHART_DAYS, today: date | None = None) -> dict[str, Any]:
    """A key's requests per UTC day, split into ok, errors and rate-limited (keeper.charts draws it)."""
    today = today or timezone.now().date()
    first = today - timedelta(days=days - 1)
    rows = {
        row["day"]: row
        for row in KeyUsageDay.objects.filter(key=key, day__gte=first, day__lte=today).values(
            "day", "requests", "errors", "rate_limited", "credits"
        )
    }
    parts = {}
    for day, row in rows.items():
        rate_limited = min(row["rate_limited"], row["requests"])
        errors = min(max(row["errors"] - rate_limited, 0), row["requests"] - rate_limited)
        parts[day] = {"ok": row["requests"] - errors - rate_limited, "errors": errors, "rate_limited": rate_limited}

    def title(day: date, split: dict) -> str:
        row = rows[day]
        return (
            f"{day.isoformat()}: {row['requests']:,} requests, {row['errors']:,} errors "
            f"({row['rate_limited']:,} rate-limited), {row['credits']:,} credits"
        )

    chart = stacked_bar_chart(
        parts, USAGE_SERIES, days=days, today=today, title=title, y_title="requests per day", chart_id="key-usage-chart"
    )
    totals = {name: sum(row[name] for row in rows.values()) for name in ("requests", "errors", "rate_limited")}
    return {**chart, **totals}


def _display(value: Any) -> str:
    if value is None or value == "":
        return "—"
    return value if isinstance(value, str) else json.dumps(value)


def recent_audit_events(key: ApiKey, limit: int = RECENT_AUDIT_EVENTS) -> list[dict[str, Any]]:
    return [
        {
            "event": event,
            "changes": [(field, _display(pair[0]), _display(pair[1])) for field, pair in (event.changes or {}).items()],
        }
        for event in key.audit_events.order_by("-at", "-id")[:limit]
    ]


# --- API keys -------------------------------------------------------------------


class EffectiveStatusFilter(admin.SimpleListFilter):
    """The status a caller sees: an active key past its expiry is expired even before the nightly job marks it."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return list(KeyStatus.choices)

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        now = timezone.now()
        past_expiry = Q(status=KeyStatus.ACTIVE, expires_at__lte=now)
        if self.value() == KeyStatus.ACTIVE:
            return queryset.filter(status=KeyStatus.ACTIVE).exclude(expires_at__lte=now)
        if self.value() == KeyStatus.EXPIRED:
            return queryset.filter(Q(status=KeyStatus.EXPIRED) | past_expiry)
        if self.value() in (KeyStatus.SUSPENDED, KeyStatus.REVOKED):
            return queryset.filter(status=self.value())
        return queryset


class ExpiryFilter(admin.SimpleListFilter):
    title = "expiry"
    parameter_name = "expiry"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [
            ("soon", f"expiring within {settings.KEEPER_KEY_EXPIRY_WARNING_DAYS} days"),
            ("expired", "expired"),
            ("never", "never expires"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "soon":
            return queryset.expiring_within(settings.KEEPER_KEY_EXPIRY_WARNING_DAYS)
        if self.value() == "expired":
            return queryset.filter(expires_at__lte=timezone.now())
        if self.value() == "never":
            return queryset.filter(expires_at__isnull=True)
        return queryset


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys are created, edited, rotated and revoked through the services, never by a raw model save."""

    form = ApiKeyForm
    list_display = [
        "name",
        "masked_key",
        "owner",
        "organization",
        "scope_value",
        "effective_status",
        "last_used_at",
        "expires_at",
        "expiring_soon",
    ]
    list_filter = [EffectiveStatusFilter, "scope", "source", "organization", ExpiryFilter]
    search_fields = ["name", "description", "prefix", "key_id", "owner__username"]
    list_select_related = ["owner", "organization"]
    autocomplete_fields = ["owner", "organization"]
    list_per_page = 50
    actions = ["rotate_keys", "revoke_keys", "suspend_keys", "reactivate_keys"]
    change_readonly_fields = [
        "key_id",
        "masked_key",
        "owner",
        "effective_status",
        "source",
        "hash_kind",
        "created_at",
        "updated_at",
        "last_used_at",
        "rotation_grace_until",
        "expiry_warning",
        "decided_by",
        "listed",
        "parent",
    ]

    # -- columns and read-only fields

    @admin.display(description="key")
    def masked_key(self, obj: ApiKey) -> str:
        return obj.masked

    @admin.display(description="scope", ordering="scope")
    def scope_value(self, obj: ApiKey) -> str:
        return obj.scope

    @admin.display(description="status", ordering="status")
    def effective_status(self, obj: ApiKey) -> str:
        return obj.effective_status()

    @admin.display(description="expiring soon", boolean=True)
    def expiring_soon(self, obj: ApiKey) -> bool:
        return obj.status == KeyStatus.ACTIVE and obj.expiring_soon()

    @admin.display(description="rotation grace until")
    def rotation_grace_until(self, obj: ApiKey) -> Any:
        """Until when the pre-rotation key still works; empty when it does not."""
        if obj.previous_valid_until and obj.previous_valid_until > timezone.now():
            return obj.previous_valid_until
        return None

    @admin.display(description="expiry warning")
    def expiry_warning(self, obj: ApiKey) -> str:
        if obj.expires_at is None:
            return "never expires"
        if obj.is_expired():
            return f"expired at {obj.expires_at:%Y-%m-%d %H:%M} UTC"
        remaining = obj.expires_at - timezone.now()
        days = remaining.days
        text = f"expires in {days} day{'s' if days != 1 else ''}" if days else "expires within a day"
        if obj.expiry_warned_at:
            text += f"; owner warned at {obj.expiry_warned_at:%Y-%m-%d %H:%M} UTC"
        elif obj.expiring_soon():
            text += "; owner not warned yet"
        return text

    # -- permissions and lookups

    def has_delete_permission(self, request: HttpRequest, obj: ApiKey | None = None) -> bool:
        # Revoking keeps the key's history attached; deletion stays with the audited API (DELETE /keys/{id}).
        return False

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        if lookup.split(LOOKUP_SEP)[0] in SECRET_FIELDS:
            return False
        return super().lookup_allowed(lookup, value, request)

    def get_fieldsets(self, request: HttpRequest, obj: ApiKey | None = None) -> list:
        if obj is None:
            main = ["name", "owner", "organization", "scope", "description"]
            return [(None, {"fields": main}), ACCESS_FIELDSET, LIMITS_FIELDSET]
        main = ["name", "masked_key", "key_id", "owner", "organization", "scope", "description"]
        state = [field for field in self.change_readonly_fields if field not in main]
        return [(None, {"fields": main}), ACCESS_FIELDSET, LIMITS_FIELDSET, ("State", {"fields": state})]

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> list[str]:
        return [] if obj is None else list(self.change_readonly_fields)

    # -- add and change: ApiKeyForm.clean() asks the services' rules, save_model writes through the services

    def get_form(self, request: HttpRequest, obj: ApiKey | None = None, change: bool = False, **kwargs: Any):
        form = super().get_form(request, obj, change=change, **kwargs)
        # A class of its own for each call (modelform_factory): the actor is this request's.
        form.actor = _actor(request)
        return form

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: dict | None = None) -> HttpResponse:
        # Saving a new key always ends on the page that shows its value.
        context = {"show_save_and_add_another": False, "show_save_and_continue": False, **(extra_context or {})}
        return super().add_view(request, form_url, context)

    def save_model(self, request: HttpRequest, obj: ApiKey, form: ApiKeyForm, change: bool) -> None:
        if change:
            # Re-read under a row lock: a revoke committed since the page was loaded must not be undone.
            key = ApiKey.objects.select_for_update().get(pk=obj.pk)
            services.key_update(key, actor=form.actor, **form.changes())
            return
        issued = services.key_create(actor=form.actor, **form.create_arguments())
        # The admin logs and answers about `obj`: it becomes the key the service made, and carries its
        # value to response_add, within this request only.
        vars(obj).update(vars(issued.api_key))
        obj.issued = issued

    def response_add(self, request: HttpRequest, obj: ApiKey, post_url_continue: str | None = None) -> HttpResponse:
        # Still inside changeform_view's transaction: a key whose value could not be shown is not left behind.
        return self.issued_keys_response(request, [obj.issued], title="API key created")

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: ApiKey | None = None,
    ) -> HttpResponse:
        if obj is not None:
            context["usage"] = usage_chart(obj)
            context["audit_events"] = recent_audit_events(obj)
            context["audit_events_url"] = (
                reverse("admin:keys_auditevent_changelist", current_app=self.admin_site.name)
                + f"?key__id__exact={obj.pk}"
            )
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)

    def issued_keys_response(
        self, request: HttpRequest, issued: list[services.IssuedKey], *, title: str
    ) -> HttpResponse:
        """The one page that shows key values: rendered now, never cached, never stored."""
        request.current_app = self.admin_site.name
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": title,
            "issued": issued,
            "has_add_permission": self.has_add_permission(request),
        }
        response = render(request, "admin/keys/apikey/issued_keys.html", context)
        add_never_cache_headers(response)
        return response

    # -- actions: through the services, one key at a time, reporting each refusal

    def _confirm(
        self,
        request: HttpRequest,
        queryset: QuerySet,
        *,
        action: str,
        form: Form,
        question: str,
        submit: str,
    ) -> TemplateResponse:
        request.current_app = self.admin_site.name
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Are you sure?",
            "keys": list(queryset.select_related("owner")),
            "action": action,
            "form": form,
            "question": question,
            "submit": submit,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/keys/apikey/action_confirmation.html", context)

    def _apply(
        self,
        request: HttpRequest,
        queryset: QuerySet,
        service: Callable[..., Any],
        *,
        done: str,
        skip: Callable[[ApiKey], str | None] = lambda key: None,
        **arguments: Any,
    ) -> list[Any]:
        """Call `service` for each key; report successes in one message and each failure in its own."""
        actor = _actor(request)
        results = []
        for key in queryset.select_related("owner"):
            reason = skip(key)
            if reason:
                self.message_user(request, f"{key}: {reason}", messages.WARNING)
                continue
            try:
                results.append(service(key, actor=actor, **arguments))
            except ValidationError as error:
                self.message_user(request, f"{key} was not {done}: {' '.join(error.messages)}", messages.ERROR)
            except policy.NotAllowed as refusal:
                self.message_user(request, f"{key} was not {done}: {refusal}", messages.ERROR)
            else:
                self.log_change(request, key, capfirst(done))
        if results:
            count = len(results)
            self.message_user(request, f"{capfirst(done)} {count} key{'s' if count != 1 else ''}.", messages.SUCCESS)
        return results

    def _rotate(self, request: HttpRequest, queryset: QuerySet, *, action: str = "") -> HttpResponse | None:
        """Confirm, with the old values' grace period; then rotate and show each new value once.
        None when no key could be rotated (the messages say why)."""
        form = RotateForm(request.POST if "post" in request.POST else None)
        if not form.is_valid():
            return self._confirm(
                request,
                queryset,
                action=action,
                form=form,
                question="Rotate these keys? Each gets a new value, shown once on the next page.",
                submit="Rotate",
            )
        with transaction.atomic(using=router.db_for_write(self.model)):
            # Rolled back if the page cannot be rendered: a new value nobody saw would lock the client out.
            issued = self._apply(
                request, queryset, services.key_rotate, done="rotated", grace_seconds=form.cleaned_data["grace_seconds"]
            )
            if not issued:
                return None
            return self.issued_keys_response(request, issued, title=f"API key{'s' if len(issued) > 1 else ''} rotated")

    @admin.action(description="Rotate selected keys (new values are shown once)", permissions=["change"])
    def rotate_keys(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        return self._rotate(request, queryset, action="rotate_keys")

    def get_urls(self) -> list:
        rotate = path(
            "<path:object_id>/rotate/",
            self.admin_site.admin_view(self.rotate_view),
            name=f"{self.opts.app_label}_{self.opts.model_name}_rotate",
        )
        return [rotate, *super().get_urls()]

    def rotate_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """One key's rotation, from its change page (the action rotates several from the list)."""
        key = self.get_object(request, unquote(object_id))
        if key is None:
            raise Http404(f"No API key with id {object_id!r}.")
        if not self.has_change_permission(request, key):
            raise PermissionDenied
        response = self._rotate(request, ApiKey.objects.filter(pk=key.pk))
        if response is None:
            return HttpResponseRedirect(
                reverse("admin:keys_apikey_change", args=[key.pk], current_app=self.admin_site.name)
            )
        return response

    @admin.action(description="Revoke selected keys", permissions=["change"])
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        form = ReasonForm(request.POST if "post" in request.POST else None)
        if not form.is_valid():
            return self._confirm(
                request,
                queryset,
                action="revoke_keys",
                form=form,
                question="Revoke these keys? Revocation is final: clients using them are refused from now on.",
                submit="Revoke",
            )
        self._apply(
            request,
            queryset,
            services.key_revoke,
            done="revoked",
            skip=lambda key: "already revoked" if key.status == KeyStatus.REVOKED else None,
            reason=form.cleaned_data["reason"],
        )
        return None

    @admin.action(description="Suspend selected keys", permissions=["change"])
    def suspend_keys(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._apply(request, queryset, services.key_suspend, done="suspended")

    @admin.action(description="Reactivate selected suspended keys", permissions=["change"])
    def reactivate_keys(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._apply(request, queryset, services.key_reactivate, done="reactivated")


# --- Audit log and usage: read-only (written only by the services and the usage counters) ---


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["at", "action", "key_ref", "owner_username", "actor", "ip"]
    list_filter = ["action"]
    search_fields = ["key_ref", "owner_username", "actor", "ip", "detail"]
    date_hierarchy = "at"


@admin.register(KeyUsageDay)
class KeyUsageDayAdmin(ReadOnlyAdmin):
    list_display = ["day", "key", "requests", "errors", "rate_limited", "credits"]
    list_select_related = ["key"]
    search_fields = ["key__name", "key__key_id", "key__owner__username"]
    date_hierarchy = "day"


@admin.register(TrafficDay)
class TrafficDayAdmin(ReadOnlyAdmin):
    """Every API request per day and credential, with refusals by reason (the staff overview's figures)."""

    list_display = [
        "day",
        "credential",
        "requests",
        "errors",
        "credits",
        "unauthorized",
        "forbidden",
        "pool",
        "quota",
        "global_bucket",
    ]
    list_filter = ["credential"]
    date_hierarchy = "day"


# --- Capability tokens: the signing keys' public halves, and the deny list --------------


@admin.register(SigningKey)
class SigningKeyAdmin(ReadOnlyAdmin):
    """Public halves and dates only: the private key is never part of a page, a search or a filter."""

    list_display = ["kid", "algorithm", "activates_at", "created_at", "state"]
    fields = ["kid", "algorithm", "state", "activates_at", "created_at", "public_jwk"]
    readonly_fields = fields
    search_fields = ["kid"]

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        if lookup.split(LOOKUP_SEP)[0] == "private_key_encrypted":
            return False
        return super().lookup_allowed(lookup, value, request)

    @admin.display(description="state")
    def state(self, obj: SigningKey) -> str:
        return signing_key_state(obj)


@admin.register(TokenDenial)
class TokenDenialAdmin(ReadOnlyAdmin):
    """Keys whose earlier capability tokens Keeper refuses (revoked, suspended, changed...), until they expire."""

    list_display = ["key_id", "reason", "refused_before", "expires_at"]
    list_filter = ["reason"]
    search_fields = ["key_id"]

    @admin.display(description="tokens issued before", ordering="not_before_ms")
    def refused_before(self, obj: TokenDenial) -> datetime:
        return datetime.fromtimestamp(obj.not_before_ms / 1000, UTC)
