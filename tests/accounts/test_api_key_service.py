"""Opaque API keys checked by a remote verification service (a real HTTP server on 127.0.0.1)."""

import time

import pytest

from apps.accounts.bearer import get_bearer_verifiers
from tests.fakes import KEY_SERVICE_BEARER, FakeKeyService, bearer

pytestmark = pytest.mark.django_db

KEY = "sk_live_0123456789abcdef"


def assert_key_service_unavailable(response) -> None:
    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "detail": "The API key verification service is unavailable; try again later.",
        "code": "api_key_service_unavailable",
    }


def assert_refused(response, reason: str = "API key is not valid.") -> None:
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": reason, "code": "invalid_token"}


def test_a_valid_key_is_its_subject_with_the_claims_as_extra_fields(api, key_service_auth: FakeKeyService):
    key_service_auth.grant(KEY, subject="carol", plan="team", api_credits_per_minute=77)

    response = api.get("/me", **bearer(KEY))

    assert response.status_code == 200
    me = response.json()
    assert (me["user_id"], me["auth_method"], me["credits_per_minute"]) == ("carol", "token", 77)
    assert me["extra"] == {"plan": "team", "api_credits_per_minute": 77}
    # Keeper POSTs {"secret": key} with its own bearer.
    assert [(call.body, call.authorization) for call in key_service_auth.calls] == [
        ({"secret": KEY}, f"Bearer {KEY_SERVICE_BEARER}")
    ]


def test_the_field_names_are_configurable(api, key_service_auth: FakeKeyService, settings):
    settings.AUTH_API_KEY_VERIFY_REQUEST_FIELD = "api_key"
    settings.AUTH_API_KEY_VERIFY_SUBJECT_FIELD = "user"
    settings.AUTH_API_KEY_VERIFY_CLAIMS_FIELD = "attributes"
    key_service_auth.field = "api_key"
    key_service_auth.answer(KEY, {"user": "dave", "attributes": {"tier": "gold"}})

    response = api.get("/me", **bearer(KEY))

    assert response.status_code == 200
    assert (response.json()["user_id"], response.json()["extra"]) == ("dave", {"tier": "gold"})
    assert key_service_auth.calls[0].body == {"api_key": KEY}


def test_no_bearer_is_sent_when_none_is_configured(api, key_service_auth: FakeKeyService, settings):
    settings.AUTH_API_KEY_VERIFY_BEARER = None
    key_service_auth.grant(KEY)

    assert api.get("/me", **bearer(KEY)).status_code == 200
    assert key_service_auth.calls[0].authorization is None


@pytest.mark.parametrize(
    "status, body",
    [
        (404, {"error": "unknown key"}),
        (400, {"error": "malformed"}),
        (410, {"error": "revoked"}),
        (422, {"error": "malformed"}),
        (200, {"subject": None}),
        (200, {}),
        (200, {"subject": "  "}),
    ],
    ids=["404", "400", "410", "422", "null-subject", "no-subject", "blank-subject"],
)
def test_a_key_the_service_does_not_vouch_for_is_refused(api, key_service_auth: FakeKeyService, status, body):
    key_service_auth.answer(KEY, body, status=status)

    assert_refused(api.get("/me", **bearer(KEY)))


def test_a_key_whose_claims_say_it_expired_is_refused(api, key_service_auth: FakeKeyService):
    key_service_auth.grant(KEY, exp=int(time.time()) - 1)

    assert_refused(api.get("/me", **bearer(KEY)), "API key has expired.")


def test_a_service_that_is_down_answers_503(api, key_service_auth: FakeKeyService):
    key_service_auth.stop()

    assert_key_service_unavailable(api.get("/me", **bearer(KEY)))


def test_a_service_timing_out_answers_503(api, key_service_auth: FakeKeyService, settings):
    settings.AUTH_API_KEY_VERIFY_TIMEOUT_SECONDS = 0.2
    key_service_auth.hang()

    assert_key_service_unavailable(api.get("/me", **bearer(KEY)))
    key_service_auth.release()


@pytest.mark.parametrize("status", [401, 403, 429, 500, 502, 503, 302])
def test_a_service_failing_or_refusing_keeper_answers_503(api, key_service_auth: FakeKeyService, status):
    key_service_auth.status = status

    assert_key_service_unavailable(api.get("/me", **bearer(KEY)))


@pytest.mark.parametrize(
    "body",
    [
        b"<html>oops</html>",
        b'["carol"]',
        b'{"subject": NaN}',
        b'{"subject": "carol", "claims": "' + b"x" * (2 * 1024 * 1024) + b'"}',
        b'{"subject": "carol", "claims": ' + b'{"a": ' * 40 + b"1" + b"}" * 40 + b"}",
        b'{"subject": 42}',
        b'{"subject": ["carol"]}',
        b'{"subject": "carol", "claims": ["admin"]}',
        b'{"subject": "carol", "claims": "admin"}',
    ],
    ids=[
        "not-json",
        "not-an-object",
        "nan",
        "huge",
        "too-deep",
        "number-subject",
        "list-subject",
        "list-claims",
        "string-claims",
    ],
)
def test_an_odd_answer_is_a_503_never_a_500(api, key_service_auth: FakeKeyService, body):
    key_service_auth.answer(KEY, body)

    assert_key_service_unavailable(api.get("/me", **bearer(KEY)))


def test_a_verdict_is_cached_under_an_hmac_not_the_key(api, key_service_auth: FakeKeyService):
    key_service_auth.grant(KEY)

    assert api.get("/me", **bearer(KEY)).status_code == 200
    assert api.get("/me", **bearer(KEY)).status_code == 200

    assert key_service_auth.checked == [KEY]
    cache = get_bearer_verifiers().key_service
    keys = list(cache.l1._entries)
    assert keys == [cache.cache_key(KEY)]
    assert KEY not in keys[0]


def test_a_rejection_is_cached_briefly_too(api, key_service_auth: FakeKeyService):
    assert_refused(api.get("/me", **bearer(KEY)))
    assert_refused(api.get("/me", **bearer(KEY)))

    assert key_service_auth.checked == [KEY]


def test_the_service_being_down_is_not_cached(api, key_service_auth: FakeKeyService):
    key_service_auth.grant(KEY)
    key_service_auth.status = 503
    assert_key_service_unavailable(api.get("/me", **bearer(KEY)))

    key_service_auth.status = 200

    assert api.get("/me", **bearer(KEY)).status_code == 200


def test_a_cached_key_keeps_working_while_the_service_is_down(api, key_service_auth: FakeKeyService):
    key_service_auth.grant(KEY)
    assert api.get("/me", **bearer(KEY)).status_code == 200
    key_service_auth.stop()

    assert api.get("/me", **bearer(KEY)).status_code == 200


def test_verdicts_are_shared_through_redis(api, key_service_auth: FakeKeyService, redis_cache):
    key_service_auth.grant(KEY)
    assert api.get("/me", **bearer(KEY)).status_code == 200
    get_bearer_verifiers().key_service.l1.clear()

    assert api.get("/me", **bearer(KEY)).status_code == 200
    assert key_service_auth.checked == [KEY]
    stored = [name.decode() for name in redis_cache.keys("*auth:token:*")]
    assert len(stored) == 1
    assert KEY not in stored[0]
