"""No plaintext key or secret is ever written down: not in the database, the cache, Redis, SQL or the logs.

One scenario exercises every way a key comes to exist (generated, imported, bootstrap, rotated) and
every way it is presented (bearer, X-API-Key, the body of /keys/validate, typos, revoked and retired
keys), on the memory backend and on Redis; then everything the process wrote is searched for each
key and for each secret part of it.
"""

import itertools
import logging
import pickle
import types
from io import StringIO

import pytest
from django.core.cache import caches
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.keys import secrets as key_secrets
from apps.keys import services, views
from apps.keys.bootstrap import merge_bootstrap_keys
from apps.keys.models import ApiKey
from apps.keys.tasks import warn_expiring_keys
from apps.keys.usage import usage_buffer
from apps.throttling.services import limiters, reset_limiters
from tests.keys.helpers import bearer, x_api_key

pytestmark = pytest.mark.django_db

BOOTSTRAP_ADMIN = key_secrets.new_key(key_secrets.new_key_id())
BOOTSTRAP_CUSTOM = "bootstrap-custom-secret-Zq81-0123456789"
IMPORTED = "imported-custom-secret-Xw55"
TOKEN = "idp-token-of-tom-Jp44"


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def backend(request, settings, no_redis) -> str:
    """Rate limits switched on, so every pool and counter is written; on Redis the Django cache is there too."""
    if request.param == "redis":
        request.getfixturevalue("redis_cache")
    settings.RATE_LIMIT_ENABLED = True
    settings.RATE_LIMIT_CREDITS_PER_MINUTE = 100_000  # the failed attempts' 401 penalties must not lead to 429s
    settings.RATE_LIMIT_BACKEND = request.param
    reset_limiters()
    return request.param


def secret_parts(value: str) -> list[str]:
    """The whole key and, for generated keys, the secret with and without its checksum."""
    if key_secrets.parse(value) is None:
        return [value]
    return [value, value[20:], value[20:52]]


def exercise(api, settings, introspection, alice, monkeypatch) -> dict[str, str]:
    """Every way a key is made and used; returns the plaintexts by a printable label."""
    known: dict[str, str] = {"bootstrap admin": BOOTSTRAP_ADMIN, "bootstrap custom": BOOTSTRAP_CUSTOM}
    settings.KEEPER_KEY_USAGE_FLUSH_SECONDS = 0
    settings.KEEPER_KEY_WATCH_SECONDS = 1
    monkeypatch.setattr(views, "time", types.SimpleNamespace(monotonic=itertools.count().__next__, sleep=id))
    settings.KEEPER_API_KEYS = [
        {"key": BOOTSTRAP_ADMIN, "name": "ops", "scope": "admin"},
        {"key": BOOTSTRAP_CUSTOM, "name": "legacy", "scope": "read"},
    ]
    # Merged on the first request that presents a key, then once more as at the next start-up.
    assert api.get("/me", **bearer(BOOTSTRAP_ADMIN)).status_code == 200
    merge_bootstrap_keys()

    admin = bearer(BOOTSTRAP_ADMIN)
    generated = api.post(
        "/keys",
        {"name": "gen", "owner": "alice", "scope": "write", "daily_quota": 1000, "credits_per_minute": 500},
        format="json",
        **admin,
    )
    assert generated.status_code == 201, generated.content
    known["generated"] = generated.json()["key"]
    imported = api.post("/keys", {"name": "imp", "owner": "alice", "key": IMPORTED}, format="json", **admin)
    assert imported.status_code == 201, imported.content
    known["imported"] = IMPORTED

    introspection.issue(TOKEN, sub="tom")
    by_token = api.post("/keys", {"name": "toms"}, format="json", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert by_token.status_code == 201, by_token.content
    known["token user's key"] = by_token.json()["key"]

    for label in ("generated", "token user's key", "bootstrap admin"):
        for send in (bearer, x_api_key):
            for path in ("/regions", "/me", "/keys"):
                assert api.get(path, **send(known[label])).status_code == 200
    for label in ("imported", "bootstrap custom"):
        assert api.get("/me", **x_api_key(known[label])).status_code == 200
        assert api.get("/me", **x_api_key(known[label])).status_code == 200  # the second from the verified cache

    key_id = generated.json()["id"]
    gen = bearer(known["generated"])
    rotated = api.post(f"/keys/{key_id}/rotate", {"grace_period_seconds": 600}, format="json", **gen)
    assert rotated.status_code == 200, rotated.content
    known["rotated"] = rotated.json()["key"]
    assert api.get("/me", **gen).status_code == 200  # still within the grace period
    rotated_again = api.post(f"/keys/{key_id}/rotate", {}, format="json", **bearer(known["rotated"]))
    known["rotated again"] = rotated_again.json()["key"]
    assert api.get("/me", **bearer(known["rotated"])).status_code == 401  # retired
    assert api.get("/me", **gen).status_code == 401  # grace ended by the second rotation

    typo = (
        known["rotated again"][:30] + ("A" if known["rotated again"][30] != "A" else "B") + known["rotated again"][31:]
    )
    known["typo"] = typo
    assert api.get("/me", **bearer(typo)).status_code == 401
    assert api.get("/me", **x_api_key(typo)).status_code == 401
    unknown = key_secrets.new_key(key_secrets.new_key_id())
    known["unknown"] = unknown
    assert api.get("/me", **bearer(unknown)).status_code == 401
    assert api.get("/me", **x_api_key("not-a-key-but-a-guess-Yt42")).status_code == 401
    known["guess"] = "not-a-key-but-a-guess-Yt42"

    for label in ("rotated again", "imported", "typo", "unknown", "bootstrap custom", "rotated"):
        answer = api.post("/keys/validate", {"key": known[label], "endpoint": "/regions"}, format="json", **admin)
        assert answer.status_code == 200, answer.content

    imp_id = imported.json()["id"]
    assert api.post(f"/keys/{imp_id}/revoke", {"reason": "leaked"}, format="json", **admin).status_code == 200
    assert api.get("/me", **x_api_key(IMPORTED)).status_code == 401  # audited as a denied use
    assert api.patch(f"/keys/{key_id}", {"description": "rotated twice"}, format="json", **admin).status_code == 200
    assert api.delete(f"/keys/{by_token.json()['id']}", **admin).status_code == 204
    assert api.get("/keys/watch?timeout=1&last_event_id=0", **admin).status_code == 200
    assert api.get(f"/keys/{key_id}/usage", **admin).status_code == 200
    usage_buffer.flush()
    warn_expiring_keys()
    assert ApiKey.objects.count() == 4
    return known


# --- Where to look --------------------------------------------------------------


def _text(value) -> str:
    if isinstance(value, memoryview):
        value = value.tobytes()
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return str(value)


def database_dump() -> str:
    """Every row of every table, raw, plus Django's own dump of every model."""
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            chunks.extend(_text(value) for row in cursor.fetchall() for value in row)
    out = StringIO()
    call_command("dumpdata", stdout=out)
    chunks.append(out.getvalue())
    return "\n".join(chunks)


def django_cache_dump() -> str:
    cache = caches["default"]
    if not hasattr(cache, "_cache"):  # Redis: searched as part of the Redis dump
        return ""
    chunks = []
    for key, value in list(cache._cache.items()):
        chunks += [_text(key), _text(value), repr(pickle.loads(value))]
    return "\n".join(chunks)


def process_memory_dump() -> str:
    """The keys of this process's limiters, quota counters and verified-import cache."""
    current = limiters()
    names = [
        *current.memory_credits._logs,
        *services._verified_imports._entries,
    ]
    return "\n".join(names)


def redis_dump(client) -> str:
    chunks = []
    for key in client.scan_iter():
        chunks.append(_text(key))
        kind = client.type(key).decode()
        if kind == "string":
            chunks.append(_text(client.get(key)))
        elif kind == "zset":
            chunks += [_text(member) for member, _ in client.zrange(key, 0, -1, withscores=True)]
        elif kind == "hash":
            chunks += [_text(part) for item in client.hgetall(key).items() for part in item]
        elif kind == "list":
            chunks += [_text(item) for item in client.lrange(key, 0, -1)]
        elif kind == "set":
            chunks += [_text(item) for item in client.smembers(key)]
        else:
            chunks.append(f"<unsearched {kind}>")
    return "\n".join(chunks)


def log_dump(caplog) -> str:
    chunks = [caplog.text]
    for record in caplog.records:
        chunks += [record.getMessage(), repr(record.args), record.exc_text or "", record.stack_info or ""]
    return "\n".join(chunks)


def leaks(places: dict[str, str], known: dict[str, str]) -> dict[str, list[str]]:
    """{place: [labels of the keys found there]}; the keys themselves are not printed."""
    found = {}
    for place, text in places.items():
        labels = [label for label, value in known.items() if any(part in text for part in secret_parts(value))]
        if labels:
            found[place] = labels
    return found


def test_no_plaintext_key_is_stored_cached_queried_or_logged(
    api, settings, introspection, alice, monkeypatch, caplog, backend, request
):
    caplog.set_level(logging.DEBUG)
    for name in ("django.request", "django.db.backends", "django.server", "apps", "celery"):
        caplog.set_level(logging.DEBUG, logger=name)

    with CaptureQueriesContext(connection) as queries:
        known = exercise(api, settings, introspection, alice, monkeypatch)

    places = {
        "database": database_dump(),
        "SQL sent": "\n".join(q["sql"] for q in queries),
        "Django cache": django_cache_dump(),
        "process memory": process_memory_dump(),
        "logs": log_dump(caplog),
    }
    if backend == "redis":
        places["Redis"] = redis_dump(request.getfixturevalue("redis_client"))
        # Not vacuous: the pools, the quota counter and the token cache are all there.
        for written in ("keeper:credits:key:", "keeper:count:quota:", "keeper:global-bucket", ":auth:token:"):
            assert written in places["Redis"]
    # The search is not vacuous: the keys are in the database (by their hash), and the logs are captured.
    assert ApiKey.objects.get(name="gen").secret_hash == key_secrets.hmac_hash(known["rotated again"])
    assert ApiKey.objects.get(name="gen").masked in places["database"]
    assert "Unauthorized: /me" in places["logs"]
    assert "keys_apikey" in places["SQL sent"]
    assert leaks(places, known) == {}
