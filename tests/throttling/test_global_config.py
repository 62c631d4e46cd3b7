"""GET/PATCH /config: staff read and change the global bucket; a change applies to the next request and persists."""

import pytest
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework.exceptions import ValidationError as DRFValidationError

from apps.throttling import services
from apps.throttling.models import GlobalRateLimit
from apps.throttling.serializers import global_limit_changes
from tests.fakes import bearer


@pytest.fixture
def staff_token(introspection) -> str:
    return introspection.issue("tok-staff", sub="ops", groups=["keeper-staff"])


@pytest.fixture
def user_token(introspection) -> str:
    return introspection.issue("tok-user", sub="alice", groups=["users"])


@pytest.fixture
def staff_session(api, django_user_model):
    api.force_login(django_user_model.objects.create_user("staffer", password="pw", is_staff=True))
    return api


def stored() -> tuple[float, int]:
    limit = GlobalRateLimit.objects.get(pk=GlobalRateLimit.SINGLETON_ID)
    return limit.rate_limit, limit.rate_burst


@pytest.mark.parametrize("method", ["get", "patch"])
def test_anonymous_callers_get_401(api, rate_limits, introspection, method):
    response = getattr(api, method)("/config", {"rate_burst": 5}, format="json")

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["code"] == "not_authenticated"


@pytest.mark.parametrize("method", ["get", "patch"])
def test_a_token_without_the_staff_group_gets_403(api, rate_limits, user_token, method):
    response = getattr(api, method)("/config", {"rate_burst": 5}, format="json", **bearer(user_token))

    assert response.status_code == 403
    assert response.json() == {"detail": "Only staff may do this.", "code": "permission_denied"}
    assert stored() == (1000.0, 1_000_000)


def test_a_signed_in_user_who_is_not_staff_gets_403(api, rate_limits, django_user_model):
    api.force_login(django_user_model.objects.create_user("visitor", password="pw"))

    assert api.get("/config").status_code == 403


def test_a_staff_token_reads_the_configuration(api, db, settings, staff_token):
    response = api.get("/config", **bearer(staff_token))

    assert response.status_code == 200
    body = response.json()
    assert (body["rate_limit"], body["rate_burst"]) == (100.0, 20)
    assert set(body) == {"rate_limit", "rate_burst", "updated_at"}


def test_a_staff_session_user_reads_the_configuration(staff_session, rate_limits):
    response = staff_session.get("/config")

    assert response.status_code == 200
    assert (response.json()["rate_limit"], response.json()["rate_burst"]) == (1000.0, 1_000_000)


def test_a_staff_token_changes_the_configuration(api, rate_limits, staff_token):
    response = api.patch("/config", {"rate_limit": 2.5, "rate_burst": 7}, format="json", **bearer(staff_token))

    assert response.status_code == 200, response.content
    assert (response.json()["rate_limit"], response.json()["rate_burst"]) == (2.5, 7)
    assert stored() == (2.5, 7)


def test_a_staff_session_user_changes_one_field_only(staff_session, rate_limits):
    response = staff_session.patch("/config", {"rate_burst": 9}, format="json")

    assert response.status_code == 200, response.content
    assert stored() == (1000.0, 9)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"rate_limit": 0}, "rate_limit"),
        ({"rate_limit": -1}, "rate_limit"),
        ({"rate_limit": "fast"}, "rate_limit"),
        ({"rate_limit": None}, "rate_limit"),
        ({"rate_burst": 0}, "rate_burst"),
        ({"rate_burst": 1.5}, "rate_burst"),
        ({"rate_burst": "many"}, "rate_burst"),
        ({"rate_burst": 10**9}, "rate_burst"),
        ({"rate_bust": 5}, "rate_bust"),
        ({"updated_at": "2030-01-01T00:00:00Z"}, "updated_at"),
        ({"rate_limit": True}, "rate_limit"),
        ({"rate_limit": False}, "rate_limit"),
        ({"rate_limit": "2.5"}, "rate_limit"),
        ({"rate_limit": 2_000_000}, "rate_limit"),
        ({"rate_burst": True}, "rate_burst"),
        ({"rate_burst": "5"}, "rate_burst"),
        ({"rate_burst": 5.0}, "rate_burst"),
        ({"rate_burst": -3}, "rate_burst"),
        ({"api": {"rate_limit": 50}, "rate_burst": 5}, "rate_burst"),
        ({"api": {"rate_limit": 50}, "extra": 1}, "extra"),
        ({"api": {"rate_limit": True}}, "api"),
        ({"api": {"rate_bust": 5}}, "api"),
        ({"api": {"updated_at": "2030-01-01T00:00:00Z"}}, "api"),
        ({"api": 5}, "api"),
        ({"api": None}, "api"),
    ],
    ids=[
        "rate-zero",
        "rate-negative",
        "rate-text",
        "rate-null",
        "burst-zero",
        "burst-fraction",
        "burst-text",
        "burst-huge",
        "unknown-field",
        "read-only-field",
        "rate-true",
        "rate-false",
        "rate-numeric-text",
        "rate-huge",
        "burst-true",
        "burst-numeric-text",
        "burst-float",
        "burst-negative",
        "flat-and-nested-mixed",
        "unknown-beside-nested",
        "nested-rate-true",
        "nested-unknown-field",
        "nested-read-only-field",
        "nested-not-an-object",
        "nested-null",
    ],
)
def test_an_invalid_change_is_a_400_naming_the_field_and_changes_nothing(api, rate_limits, staff_token, body, field):
    response = api.patch("/config", body, format="json", **bearer(staff_token))

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert list(response.json()["errors"]) == [field]
    assert stored() == (1000.0, 1_000_000)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"])
def test_nan_and_infinite_numbers_in_the_body_are_a_400_and_change_nothing(api, rate_limits, staff_token, literal):
    # Refused by the JSON parser or, past it (Python's json reads 1e400 as inf), by the field.
    body = f'{{"rate_limit": {literal}}}'

    response = api.patch("/config", body, content_type="application/json", **bearer(staff_token))

    assert response.status_code == 400
    assert response.json()["code"] in ("parse_error", "invalid")
    assert stored() == (1000.0, 1_000_000)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")], ids=["nan", "inf", "-inf"])
def test_a_non_finite_rate_is_refused_by_the_serializer_and_by_the_model(rate_limits, value):
    with pytest.raises(DRFValidationError) as refused:
        global_limit_changes({"rate_limit": value})
    with pytest.raises(DjangoValidationError):
        services.global_limit_update(rate_limit=value)

    assert list(refused.value.detail) == ["rate_limit"]
    assert stored() == (1000.0, 1_000_000)


def test_a_change_nested_under_api_is_accepted_and_answered_flat(api, rate_limits, staff_token):
    response = api.patch("/config", {"api": {"rate_limit": 50, "rate_burst": 5}}, format="json", **bearer(staff_token))

    assert response.status_code == 200, response.content
    assert set(response.json()) == {"rate_limit", "rate_burst", "updated_at"}
    assert (response.json()["rate_limit"], response.json()["rate_burst"]) == (50.0, 5)
    assert stored() == (50.0, 5)


def test_a_nested_change_may_give_one_field_only(api, rate_limits, staff_token):
    response = api.patch("/config", {"api": {"rate_burst": 9}}, format="json", **bearer(staff_token))

    assert response.status_code == 200, response.content
    assert stored() == (1000.0, 9)


def test_a_mixed_body_says_to_choose_one_shape(api, rate_limits, staff_token):
    body = {"api": {"rate_limit": 50}, "rate_burst": 5}

    response = api.patch("/config", body, format="json", **bearer(staff_token))

    assert response.json()["errors"] == {"rate_burst": ["Give the values either flat or under api, not both."]}


def test_an_unknown_field_under_api_is_named_in_the_error(api, rate_limits, staff_token):
    response = api.patch("/config", {"api": {"rate_bust": 5}}, format="json", **bearer(staff_token))

    assert response.json()["errors"] == {"api": ["rate_bust: Unknown field."]}


def test_the_openapi_schema_describes_the_flat_and_the_nested_body_with_their_bounds(api, db):
    schema = api.get("/openapi.json").json()
    components = schema["components"]["schemas"]

    def resolve(ref: dict) -> dict:
        return components[ref["$ref"].rsplit("/", 1)[1]]

    body = resolve(schema["paths"]["/config"]["patch"]["requestBody"]["content"]["application/json"]["schema"])
    flat_ref, nested_ref = body["oneOf"]
    flat, nested = resolve(flat_ref), resolve(nested_ref)
    rate, burst = flat["properties"]["rate_limit"], flat["properties"]["rate_burst"]

    assert (set(flat["properties"]), flat["additionalProperties"]) == ({"rate_limit", "rate_burst"}, False)
    assert (rate["type"], rate["minimum"], rate["maximum"]) == ("number", 0.001, 1_000_000)
    assert (burst["type"], burst["minimum"], burst["maximum"]) == ("integer", 1, 1_000_000)
    assert "0.001 to 1,000,000" in rate["description"] and "1 to 1,000,000" in burst["description"]
    assert (nested["required"], nested["additionalProperties"]) == (["api"], False)
    assert nested["properties"]["api"]["allOf"] == [flat_ref]


def test_a_body_that_is_not_json_is_a_400(api, rate_limits, staff_token):
    response = api.patch("/config", "rate_burst=5", content_type="application/json", **bearer(staff_token))

    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


def test_a_change_applies_to_the_next_request(api, backend, staff_token):
    assert [api.get("/regions").status_code for _ in range(3)] == [200, 200, 200]

    api.patch("/config", {"rate_limit": 0.001, "rate_burst": 2}, format="json", **bearer(staff_token))

    assert [api.get("/regions").status_code for _ in range(3)] == [200, 200, 429]


def test_a_change_survives_a_restart(api, rate_limits, staff_token):
    api.patch("/config", {"rate_limit": 0.001, "rate_burst": 1}, format="json", **bearer(staff_token))

    services.reset_limiters()  # a new process: nothing in memory

    assert stored() == (0.001, 1)
    assert [api.get("/regions").status_code for _ in range(2)] == [200, 429]


def test_staff_change_the_bucket_in_the_admin(api, client, rate_limits, admin_user):
    client.force_login(admin_user)

    response = client.post(
        f"/admin/throttling/globalratelimit/{GlobalRateLimit.SINGLETON_ID}/change/",
        {"rate_limit": "0.001", "rate_burst": "1", "_save": "Save"},
    )

    assert response.status_code == 302, response.content
    assert stored() == (0.001, 1)
    assert [api.get("/regions").status_code for _ in range(2)] == [200, 429]


def test_the_admin_refuses_a_second_bucket_and_deleting_the_bucket(client, rate_limits, admin_user):
    client.force_login(admin_user)

    assert client.get("/admin/throttling/globalratelimit/add/").status_code == 403
    assert client.get(f"/admin/throttling/globalratelimit/{GlobalRateLimit.SINGLETON_ID}/delete/").status_code == 403
