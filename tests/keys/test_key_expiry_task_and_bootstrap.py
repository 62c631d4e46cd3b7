"""The daily expiry task, bootstrap keys from KEEPER_API_KEYS, and what an admin key may do to /config."""

import base64
import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured

from apps.keys import secrets as key_secrets
from apps.keys.bootstrap import BOOTSTRAP_OWNER, merge_bootstrap_keys
from apps.keys.choices import AuditAction, HashKind, KeySource, KeyStatus, Scope
from apps.keys.models import ApiKey, AuditEvent
from apps.keys.services import Actor, key_revoke, key_update
from apps.keys.tasks import warn_expiring_keys
from apps.throttling.models import GlobalRateLimit
from tests.fakes import run_django
from tests.keys.helpers import bearer, x_api_key
from tests.live import LiveKeeper

pytestmark = pytest.mark.django_db

NOW = datetime(2031, 3, 4, 6, 0, tzinfo=UTC)
TASK_RUN = NOW + timedelta(days=1)


@pytest.fixture
def expiring_keys(make_key):
    """alice's keys, made at NOW; the task runs a day later."""
    with time_machine.travel(NOW, tick=False):
        keys = {
            "soon": make_key(name="soon", expires_at=TASK_RUN + timedelta(days=3)),
            "later": make_key(name="later", expires_at=TASK_RUN + timedelta(days=10)),
            "never": make_key(name="never"),
            "past": make_key(name="past", expires_at=NOW + timedelta(hours=1)),
            "revoked": make_key(name="revoked", expires_at=TASK_RUN + timedelta(days=2)),
        }
        key_revoke(keys["revoked"].api_key, actor=Actor("test"))
    return keys


def fresh(issued) -> ApiKey:
    return ApiKey.objects.get(pk=issued.api_key.pk)


# --- warn_expiring_keys ---------------------------------------------------------


def test_the_task_warns_about_keys_expiring_within_seven_days_and_records_when(expiring_keys, caplog):
    caplog.set_level(logging.WARNING, logger="apps.keys")

    with time_machine.travel(TASK_RUN, tick=False):
        result = warn_expiring_keys()

    soon = fresh(expiring_keys["soon"])
    assert result["warned"] == [soon.key_id]
    assert soon.expiry_warned_at == TASK_RUN
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "apps.keys.services"]
    assert [r.getMessage() for r in warnings] == [
        f"API key {soon.masked} of alice expires at {soon.expires_at}",
    ]
    assert [fresh(expiring_keys[name]).expiry_warned_at for name in ("later", "never", "revoked")] == [None] * 3
    event = AuditEvent.objects.get(action=AuditAction.EXPIRY_WARNING)
    assert (event.key_id, event.actor) == (soon.pk, "system")


def test_the_warning_is_given_once(expiring_keys, caplog):
    with time_machine.travel(TASK_RUN, tick=False) as clock:
        warn_expiring_keys()
        caplog.clear()
        clock.move_to(TASK_RUN + timedelta(days=1))
        again = warn_expiring_keys()

    assert again["warned"] == []
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert fresh(expiring_keys["soon"]).expiry_warned_at == TASK_RUN
    assert AuditEvent.objects.filter(action=AuditAction.EXPIRY_WARNING).count() == 1


def test_a_new_expiry_date_is_warned_about_again(expiring_keys):
    soon = fresh(expiring_keys["soon"])
    with time_machine.travel(TASK_RUN, tick=False) as clock:
        warn_expiring_keys()
        key_update(soon, actor=Actor("test"), expires_at=TASK_RUN + timedelta(days=5))
        cleared = fresh(expiring_keys["soon"]).expiry_warned_at
        clock.move_to(TASK_RUN + timedelta(hours=1))
        again = warn_expiring_keys()

    assert cleared is None
    assert again["warned"] == [soon.key_id]


def test_the_warning_window_follows_the_setting(expiring_keys, settings):
    settings.KEEPER_KEY_EXPIRY_WARNING_DAYS = 14

    with time_machine.travel(TASK_RUN, tick=False):
        result = warn_expiring_keys()

    assert sorted(result["warned"]) == sorted([fresh(expiring_keys[n]).key_id for n in ("soon", "later")])


def test_the_task_marks_keys_past_their_expiry_expired(expiring_keys):
    with time_machine.travel(TASK_RUN, tick=False):
        result = warn_expiring_keys()

    past = fresh(expiring_keys["past"])
    assert result["expired"] == 1
    assert past.status == KeyStatus.EXPIRED
    event = AuditEvent.objects.get(action=AuditAction.EXPIRE)
    assert (event.key_id, event.actor, event.changes) == (past.pk, "system", {"status": ["active", "expired"]})
    assert fresh(expiring_keys["revoked"]).status == KeyStatus.REVOKED


def test_the_list_shows_expiring_soon_and_when_the_owner_was_warned(expiring_keys, api, make_key):
    with time_machine.travel(TASK_RUN, tick=False):
        warn_expiring_keys()
        lister = make_key(name="lister")
        rows = {row["name"]: row for row in api.get("/keys?limit=-1", **bearer(lister)).json()}

    assert (rows["soon"]["expiring_soon"], rows["soon"]["expiry_warned_at"]) == (True, "2031-03-05T06:00:00Z")
    assert (rows["later"]["expiring_soon"], rows["later"]["expiry_warned_at"]) == (False, None)
    assert (rows["never"]["expiring_soon"], rows["never"]["expires_at"]) == (False, None)
    assert rows["past"]["status"] == "expired"


def test_the_task_runs_daily_from_celery_beat():
    entry = django_settings.CELERY_BEAT_SCHEDULE["warn-expiring-keys"]

    assert entry == {"task": "apps.keys.tasks.warn_expiring_keys", "schedule": 24 * 60 * 60.0}
    assert warn_expiring_keys.name == "apps.keys.tasks.warn_expiring_keys"


# --- Bootstrap keys (KEEPER_API_KEYS) --------------------------------------------

GENERATED = key_secrets.new_key(key_secrets.new_key_id())
CUSTOM = "bootstrap-legacy-key-0123456789-abcdef"


@pytest.fixture
def bootstrap_keys(settings) -> list[dict]:
    settings.KEEPER_API_KEYS = [
        {"key": GENERATED, "name": "ops", "scope": "admin"},
        {"key": CUSTOM, "name": "legacy"},
    ]
    return settings.KEEPER_API_KEYS


def test_bootstrap_keys_are_merged_hashed_and_owned_by_the_bootstrap_user(bootstrap_keys):
    written = merge_bootstrap_keys()

    ops, legacy = ApiKey.objects.get(name="ops"), ApiKey.objects.get(name="legacy")
    assert written == 2
    assert (ops.owner.username, ops.source, ops.scope, ops.hash_kind) == (
        BOOTSTRAP_OWNER,
        KeySource.BOOTSTRAP,
        Scope.ADMIN,
        HashKind.HMAC,
    )
    assert ops.key_id == key_secrets.parse(GENERATED).key_id
    assert ops.secret_hash == key_secrets.hmac_hash(GENERATED)
    assert (legacy.scope, legacy.hash_kind, legacy.masked) == (Scope.READ, HashKind.SCRYPT, "imported…cdef")
    assert legacy.secret_hash.startswith("scrypt$") and CUSTOM not in legacy.secret_hash


def test_bootstrap_keys_can_be_used_with_either_header(api, bootstrap_keys):
    merge_bootstrap_keys()

    ops = api.get("/me", **bearer(GENERATED)).json()
    legacy = api.get("/me", **x_api_key(CUSTOM)).json()

    assert (ops["user_id"], ops["scope"]) == (BOOTSTRAP_OWNER, "admin")
    assert (legacy["user_id"], legacy["scope"]) == (BOOTSTRAP_OWNER, "read")


def test_bootstrap_keys_are_merged_before_the_first_key_is_checked(api, bootstrap_keys):
    response = api.get("/me", **bearer(GENERATED))

    assert response.status_code == 200, response.content
    assert ApiKey.objects.filter(source=KeySource.BOOTSTRAP).count() == 2


def test_merging_again_changes_nothing(api, bootstrap_keys):
    merge_bootstrap_keys()
    before = list(ApiKey.objects.order_by("name").values("pk", "key_id", "name", "scope", "status", "secret_hash"))

    merge_bootstrap_keys()

    after = list(ApiKey.objects.order_by("name").values("pk", "key_id", "name", "scope", "status", "secret_hash"))
    assert after == before
    assert api.get("/me", **bearer(GENERATED)).status_code == 200
    assert api.get("/me", **x_api_key(CUSTOM)).status_code == 200


def test_a_changed_bootstrap_entry_updates_its_key(api, bootstrap_keys, settings):
    merge_bootstrap_keys()
    replacement = "bootstrap-legacy-key-replaced-42"
    settings.KEEPER_API_KEYS = [
        {"key": GENERATED, "name": "ops", "scope": "write"},
        {"key": replacement, "name": "legacy"},
    ]

    merge_bootstrap_keys()

    assert ApiKey.objects.filter(source=KeySource.BOOTSTRAP).count() == 2
    assert ApiKey.objects.get(name="ops").scope == Scope.WRITE
    assert api.get("/me", **x_api_key(CUSTOM)).status_code == 401
    assert api.get("/me", **x_api_key(replacement)).status_code == 200


@pytest.mark.parametrize("name", ["ops", "legacy"], ids=["generated-format", "custom"])
def test_a_bootstrap_key_revoked_through_the_api_stays_revoked_when_merged_again(bootstrap_keys, name):
    merge_bootstrap_keys()
    key_revoke(ApiKey.objects.get(name=name), actor=Actor("session:root"), reason="leaked")

    merge_bootstrap_keys()  # the next start-up

    assert ApiKey.objects.get(name=name).status == KeyStatus.REVOKED


def test_bootstrap_keys_are_merged_after_migrate(bootstrap_keys):
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

    assert set(ApiKey.objects.values_list("name", flat=True)) == {"ops", "legacy"}


@pytest.mark.parametrize(
    "value",
    [
        pytest.param({"key": CUSTOM, "name": "x"}, id="not-a-list"),
        pytest.param(["bootstrap-legacy-key-0123456789"], id="entry-not-an-object"),
        pytest.param([{"name": "x"}], id="key-missing"),
        pytest.param([{"key": 1234567890123456789, "name": "x"}], id="key-not-a-string"),
        pytest.param([{"key": CUSTOM}], id="name-missing"),
        pytest.param([{"key": "short-secret", "name": "x"}], id="key-too-short"),
        pytest.param([{"key": CUSTOM, "name": "x", "scope": "root"}], id="unknown-scope"),
    ],
)
def test_a_malformed_keeper_api_keys_is_improperly_configured_without_quoting_the_key(settings, value):
    settings.KEEPER_API_KEYS = value

    with pytest.raises(ImproperlyConfigured) as error:
        merge_bootstrap_keys()

    assert "KEEPER_API_KEYS" in str(error.value)
    assert CUSTOM not in str(error.value) and "short-secret" not in str(error.value)
    assert not ApiKey.objects.exists()


def test_keeper_api_keys_is_read_from_base64_json_in_the_environment():
    entries = [{"key": CUSTOM, "name": "legacy", "scope": "read"}]
    encoded = base64.b64encode(json.dumps(entries).encode()).decode()

    result = run_django(
        "from django.conf import settings\nprint(settings.KEEPER_API_KEYS[0]['name'])", {"KEEPER_API_KEYS": encoded}
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "legacy"


def test_keeper_api_keys_that_is_not_base64_json_stops_start_up_without_echoing_it():
    result = run_django("", {"KEEPER_API_KEYS": f"[{{'key': '{CUSTOM}'}}]"})

    assert result.returncode != 0
    assert "ImproperlyConfigured: KEEPER_API_KEYS must be base64-encoded JSON" in result.stderr
    assert CUSTOM not in result.stderr


def test_a_malformed_bootstrap_entry_stops_start_up_rather_than_failing_requests_later():
    entries = [{"key": "short-secret", "name": "x"}]
    encoded = base64.b64encode(json.dumps(entries).encode()).decode()

    # What gunicorn loads. Today the entry is only checked on the first request with a key,
    # and every request with any key then fails with a 500.
    result = run_django("import keeper.wsgi", {"KEEPER_API_KEYS": encoded})

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "KEEPER_API_KEYS[0]" in result.stderr
    assert "short-secret" not in result.stderr


# --- /config with a key ---------------------------------------------------------


def test_an_admin_key_reads_and_changes_the_global_rate_limit(api, make_key):
    admin = make_key(scope=Scope.ADMIN)

    read = api.get("/config", **bearer(admin))
    changed = api.patch("/config", {"rate_limit": 5.5, "rate_burst": 7}, format="json", **bearer(admin))

    assert read.status_code == 200, read.content
    assert set(read.json()) == {"rate_limit", "rate_burst", "updated_at"}
    assert changed.status_code == 200, changed.content
    assert (changed.json()["rate_limit"], changed.json()["rate_burst"]) == (5.5, 7)
    assert (GlobalRateLimit.current().rate_limit, GlobalRateLimit.current().rate_burst) == (5.5, 7)


@pytest.mark.parametrize("scope", [Scope.READ, Scope.WRITE])
def test_a_read_or_write_key_gets_403_on_config(api, make_key, scope):
    issued = make_key(scope=scope)

    read = api.get("/config", **bearer(issued))
    changed = api.patch("/config", {"rate_limit": 1}, format="json", **bearer(issued))

    assert (read.status_code, changed.status_code) == (403, 403)
    assert read.json() == {"detail": "Only staff may do this.", "code": "permission_denied"}
    assert GlobalRateLimit.current().rate_limit == 100.0


def test_a_bootstrap_admin_key_may_change_the_config(api, bootstrap_keys):
    merge_bootstrap_keys()

    assert api.patch("/config", {"rate_burst": 3}, format="json", **bearer(GENERATED)).status_code == 200
    assert api.patch("/config", {"rate_burst": 3}, format="json", **x_api_key(CUSTOM)).status_code == 403


# --- Bootstrap keys follow the list, and only the list ------------------------------


def _works(api, value: str) -> bool:
    return api.get("/me", **x_api_key(value)).status_code == 200


def test_an_unset_keeper_api_keys_changes_nothing(api, bootstrap_keys, settings):
    merge_bootstrap_keys()
    # A `migrate` run by hand, or a worker whose environment lacks the variable.
    settings.KEEPER_API_KEYS = None

    assert merge_bootstrap_keys() == 0

    assert ApiKey.objects.filter(source=KeySource.BOOTSTRAP, listed=True).count() == 2
    assert _works(api, GENERATED) and _works(api, CUSTOM)


def test_a_key_that_leaves_the_list_stops_working_and_works_again_when_it_returns(api, bootstrap_keys, settings):
    merge_bootstrap_keys()
    settings.KEEPER_API_KEYS = [bootstrap_keys[0]]
    merge_bootstrap_keys()

    refused = api.get("/me", **x_api_key(CUSTOM))
    assert refused.status_code == 401
    assert "not listed in KEEPER_API_KEYS" in refused.json()["detail"]
    assert _works(api, GENERATED)

    settings.KEEPER_API_KEYS = bootstrap_keys
    merge_bootstrap_keys()

    assert _works(api, CUSTOM)
    assert ApiKey.objects.get(name="legacy").status == KeyStatus.ACTIVE


def test_an_empty_list_unlists_every_bootstrap_key_without_revoking_it(api, bootstrap_keys, settings):
    merge_bootstrap_keys()
    settings.KEEPER_API_KEYS = []

    merge_bootstrap_keys()

    assert not _works(api, GENERATED)
    assert set(ApiKey.objects.filter(source=KeySource.BOOTSTRAP).values_list("status", "listed")) == {
        (KeyStatus.ACTIVE, False)
    }


def test_a_key_revoked_by_a_person_stays_revoked_when_it_leaves_and_rejoins_the_list(api, bootstrap_keys, settings):
    merge_bootstrap_keys()
    key_revoke(ApiKey.objects.get(name="legacy"), actor=Actor("session:root"), reason="leaked")
    settings.KEEPER_API_KEYS = [bootstrap_keys[0]]
    merge_bootstrap_keys()
    settings.KEEPER_API_KEYS = bootstrap_keys

    merge_bootstrap_keys()

    assert ApiKey.objects.get(name="legacy").status == KeyStatus.REVOKED
    assert not _works(api, CUSTOM)


def test_a_renamed_entry_renames_its_key(api, bootstrap_keys, settings):
    merge_bootstrap_keys()
    legacy = ApiKey.objects.get(name="legacy")
    settings.KEEPER_API_KEYS = [bootstrap_keys[0], {**bootstrap_keys[1], "name": "old-system"}]

    merge_bootstrap_keys()

    assert ApiKey.objects.get(pk=legacy.pk).name == "old-system"
    assert ApiKey.objects.filter(source=KeySource.BOOTSTRAP).count() == 2
    assert _works(api, CUSTOM)


ANOTHER = "another-bootstrap-key-0123456789-abcdef"


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        pytest.param(
            [{"key": CUSTOM, "name": "a"}, {"key": CUSTOM, "name": "b"}],
            "KEEPER_API_KEYS[1] (b): the same key as KEEPER_API_KEYS[0]",
            id="same-key-twice",
        ),
        pytest.param(
            [{"key": CUSTOM, "name": "a"}, {"key": ANOTHER, "name": "a"}],
            "KEEPER_API_KEYS[1] (a): the name is also used by KEEPER_API_KEYS[0]",
            id="same-name-twice",
        ),
        pytest.param(
            [{"key": "x" * 31, "name": "a"}], "KEEPER_API_KEYS[0] (a): the key is shorter than 32", id="short"
        ),
        pytest.param(
            [{"key": " " * 40, "name": "a"}], "KEEPER_API_KEYS[0] (a): the key must be printable ASCII", id="blank"
        ),
        pytest.param(
            [{"key": "ключ" * 10, "name": "a"}], "KEEPER_API_KEYS[0] (a): the key must be printable ASCII", id="unicode"
        ),
        pytest.param([{"key": CUSTOM, "name": "  "}], "KEEPER_API_KEYS[0]: the name must be", id="blank-name"),
        pytest.param(
            [{"key": CUSTOM, "name": "a", "scopes": "admin"}],
            "KEEPER_API_KEYS[0] (a): unknown field(s) scopes",
            id="unknown-field",
        ),
        pytest.param(
            [{"key": GENERATED[:-1] + ("A" if GENERATED[-1] != "A" else "B"), "name": "a"}],
            "KEEPER_API_KEYS[0] (a): a Keeper-format key with a wrong checksum",
            id="bad-checksum",
        ),
    ],
)
def test_a_bad_bootstrap_list_is_refused_naming_the_entry_never_the_key(settings, entries, message):
    settings.KEEPER_API_KEYS = entries

    with pytest.raises(ImproperlyConfigured) as error:
        merge_bootstrap_keys()

    assert message in str(error.value)
    assert all(entry["key"] not in str(error.value) for entry in entries)
    assert not ApiKey.objects.exists()


@pytest.mark.parametrize("kind", ["generated", "imported"])
def test_a_bootstrap_key_equal_to_an_existing_key_is_refused_and_nothing_breaks(api, settings, make_key, kind):
    existing = make_key(name="mine") if kind == "generated" else make_key(name="mine", custom_value=ANOTHER)
    settings.KEEPER_API_KEYS = [{"key": existing.value, "name": "copy"}]

    with pytest.raises(ImproperlyConfigured) as error:
        merge_bootstrap_keys()

    assert "KEEPER_API_KEYS[0] (copy): this key is already in use by another API key" in str(error.value)
    assert existing.value not in str(error.value)
    assert not ApiKey.objects.filter(source=KeySource.BOOTSTRAP).exists()
    # Until then (a worker that merges lazily), other keys keep working rather than every request failing.
    settings.KEEPER_API_KEYS = None
    assert _works(api, existing.value)


@pytest.mark.parametrize(
    "entries",
    [
        pytest.param([{"key": CUSTOM, "name": "a"}, {"key": CUSTOM, "name": "b"}], id="checked-by-settings"),
        pytest.param([{"key": GENERATED[:-1] + ("A" if GENERATED[-1] != "A" else "B"), "name": "b"}], id="by-merge"),
    ],
)
def test_gunicorn_refuses_to_start_on_a_bad_list_naming_the_entry(tmp_path, entries):
    encoded = base64.b64encode(json.dumps(entries).encode()).decode()
    server = LiveKeeper(
        tmp_path,
        catalog=None,
        prepare=False,
        KEEPER_API_KEYS=encoded,
        KEEPER_SECRET_KEY="test-secret-key-for-this-test-only",
    )
    assert server.manage("migrate", "-v0", KEEPER_API_KEYS="").returncode == 0

    try:
        with pytest.raises(AssertionError, match="gunicorn exited"):
            server.start()
    finally:
        status, output = server.stop(), server.log.read_text()

    assert status != 0
    assert "Not starting: KEEPER_API_KEYS[0] (b)" in output or "KEEPER_API_KEYS[1] (b)" in output
    assert all(entry["key"] not in output for entry in entries)
