"""A token subject is never cut to fit the user name column: long subjects get users of their own.

Tokens are checked at the fake identity provider on 127.0.0.1; keys, pools and the audit log are real.
"""

import pytest
from django.contrib.auth import get_user_model

from apps.keys.models import AuditEvent
from tests.fakes import bearer

pytestmark = pytest.mark.django_db
User = get_user_model()

# Two subjects alike in their first 146 characters (what "idp:" leaves of Django's 150), then different.
PREFIX = "https://idp.example/tenants/" + "t" * 118
assert len(PREFIX) == 146
FIRST, SECOND = PREFIX + "/user/first", PREFIX + "/user/second"


def key_names(api, token: str) -> list[str]:
    response = api.get("/keys", **bearer(token))
    assert response.status_code == 200, response.content
    return [key["name"] for key in response.json()]


def test_two_long_subjects_with_the_same_first_146_characters_own_their_keys_apart(api, introspection):
    first = introspection.issue("tok-first", sub=FIRST)
    second = introspection.issue("tok-second", sub=SECOND)

    created = api.post("/keys", {"name": "firsts"}, format="json", **bearer(first))

    assert created.status_code == 201, created.content
    assert key_names(api, first) == ["firsts"]
    assert key_names(api, second) == []
    owner = User.objects.get(username=created.json()["owner"])
    assert owner.username.startswith("idph:") and len(owner.username) <= 150
    # The second subject is its own user: creating its key of the same name is no conflict.
    assert api.post("/keys", {"name": "firsts"}, format="json", **bearer(second)).status_code == 201
    assert User.objects.filter(username__startswith="idph:").count() == 2


def test_two_long_subjects_with_the_same_first_146_characters_draw_from_pools_apart(api, introspection, settings):
    settings.RATE_LIMIT_ENABLED = True
    settings.RATE_LIMIT_BACKEND = "memory"
    first = introspection.issue("tok-first", sub=FIRST, api_credits_per_minute=2)
    second = introspection.issue("tok-second", sub=SECOND, api_credits_per_minute=2)

    spent = [api.get("/regions", **bearer(first)).status_code for _ in range(3)]

    assert spent == [200, 200, 429]
    assert api.get("/regions", **bearer(second)).status_code == 200


def test_a_hashed_name_cannot_be_reached_by_a_subject_spelling_it_out(api, introspection):
    long = introspection.issue("tok-long", sub=FIRST)
    api.post("/keys", {"name": "longs"}, format="json", **bearer(long))
    hashed = User.objects.get(username__startswith="idph:").username
    # A short subject equal to the hashed name, or to its part after the prefix, is a user of its own.
    spelled = introspection.issue("tok-spelled", sub=hashed)
    bare = introspection.issue("tok-bare", sub=hashed.removeprefix("idph:"))

    assert key_names(api, spelled) == []
    assert key_names(api, bare) == []


@pytest.mark.parametrize("length", [1, 146])
def test_subjects_that_fit_keep_their_user_name(api, introspection, make_user, make_key, length):
    subject = "s" * length
    # A user made before this change, for instance: its keys stay its subject's.
    make_key(make_user(f"idp:{subject}"), name="kept")
    token = introspection.issue("tok-fits", sub=subject)

    assert key_names(api, token) == ["kept"]


def test_a_subject_of_thousands_of_characters_creates_and_audits_keys(api, introspection):
    token = introspection.issue("tok-huge", sub="u" * 5000)

    created = api.post("/keys", {"name": "huge"}, format="json", **bearer(token))

    assert created.status_code == 201, created.content
    actor = AuditEvent.objects.get(key__key_id=created.json()["id"]).actor
    # The audit names the subject by the same hash as its user, never by a cut subject.
    assert actor == f"token:{created.json()['owner']}"
