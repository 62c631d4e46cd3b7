"""The watches API: creation validated by running the query as the caller, ownership, limits, the feed."""

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from apps.catalog.models import Watch
from apps.catalog.watches.services import evaluate_watches
from tests.catalog.history_catalogs import changed_catalog
from tests.catalog.upstream import sample_catalog

pytest_plugins = ["tests.catalog.watch_helpers"]

QUERY = "/servers?vendor=aws&vcpus_min=2"


@pytest.fixture
def alice_api(sync_upstream, alice, make_key, client_of) -> APIClient:
    sync_upstream(sample_catalog())
    key = make_key(alice)
    api = client_of(key)
    api.key = key
    return api


@pytest.fixture
def bob_api(bob, make_key, client_of) -> APIClient:
    return client_of(make_key(bob))


def create(api: APIClient, query: str = QUERY, name: str = "aws"):
    return api.post("/watches", {"name": name, "query": query}, format="json")


def test_a_watch_is_created_with_its_first_answer_as_baseline(alice_api):
    response = create(alice_api)

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["query"] == QUERY and body["owner"] == "alice" and body["status"] == "active"
    assert body["feed_token"].startswith("wft_")
    assert body["feed_url"] == f"/watches/{body['id']}/events.atom?token={body['feed_token']}"
    watch = Watch.objects.get(pk=body["id"])
    baseline = {tuple(sorted(row_id.items())) for row_id in map(_server_id, watch.rows.values())}
    assert baseline == {(("server_id", row["server_id"]), ("vendor_id", "aws")) for row in alice_api.get(QUERY).json()}
    # Who the re-runs act as: the key's lookup id, never its secret.
    assert watch.caller == {"kind": "api_key", "key_id": alice_api.key.api_key.key_id, "auth_method": "api_key"}
    assert alice_api.key.value not in str(watch.caller)
    # The token is shown once: stored hashed, absent from every later answer.
    assert body["feed_token"] not in str(Watch.objects.filter(pk=body["id"]).values().get())
    shown = alice_api.get(f"/watches/{body['id']}").json()
    assert "feed_token" not in shown and shown["feed_url"] == f"/watches/{body['id']}/events.atom?token="
    assert [w["id"] for w in alice_api.get("/watches").json()] == [body["id"]]


def _server_id(row: dict) -> dict:
    return {"vendor_id": row["vendor_id"], "server_id": row["server_id"]}


@pytest.mark.parametrize(
    ("query", "why"),
    [
        ("servers?vendor=aws", "starting with /"),
        ("https://example.com/servers", "starting with /"),
        ("//example.com/servers", "no scheme, host or #fragment"),
        ("/servers#top", "no scheme, host or #fragment"),
        ("/keys", "/keys is not a catalog route"),
        ("/watches", "/watches is not a catalog route"),
        ("/no/such/route", "/no/such/route is not a catalog route"),
        ("/ai/assist_server_filters", "AI assist route"),
    ],
)
def test_a_query_that_is_not_a_watchable_catalog_route_is_a_400_naming_why(alice_api, query, why):
    response = create(alice_api, query)

    assert response.status_code == 400, response.content
    assert why in response.json()["detail"]
    assert not Watch.objects.exists()


def test_a_query_the_route_refuses_is_a_400_with_the_routes_error(alice_api):
    response = create(alice_api, "/servers?vcpus_min=many")

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "watch_refused"
    assert body["detail"].startswith("/servers?vcpus_min=many answers 400 to you")
    route_error = alice_api.get("/servers?vcpus_min=many")
    assert body["query_error"] == {"status": 400, "body": route_error.json()}
    assert "vcpus_min" in body["query_error"]["body"]["errors"]


def test_a_route_the_key_may_not_call_is_a_400_naming_the_restriction(sync_upstream, alice, make_key, client_of):
    sync_upstream(sample_catalog())
    api = client_of(make_key(alice, allowed_endpoints=["/watches", "/watches/*", "/server/*"]))

    refused = create(api, QUERY)
    allowed = create(api, "/server/aws/m5.large")

    assert refused.status_code == 400
    assert "may not call /servers" in refused.json()["detail"]
    assert allowed.status_code == 201, allowed.content


def test_a_query_over_the_callers_quota_is_a_400_with_the_429_inside(sync_upstream, alice, make_key, client_of):
    sync_upstream(sample_catalog())
    # The POST itself spends the quota's only credit: the query it runs is then refused.
    api = client_of(make_key(alice, daily_quota=1))

    response = create(api)

    assert response.status_code == 400
    body = response.json()
    assert body["query_error"]["status"] == 429
    assert "Daily quota of 1 credits used up" in body["detail"]


def test_anonymous_callers_have_no_watches(alice_api):
    assert APIClient().post("/watches", {"name": "x", "query": QUERY}, format="json").status_code == 401
    assert APIClient().get("/watches").status_code == 401


def test_a_body_with_unknown_or_missing_fields_is_a_400_naming_them(alice_api):
    unknown = alice_api.post("/watches", {"name": "x", "query": QUERY, "every": "5m"}, format="json")
    missing = alice_api.post("/watches", {"name": "x"}, format="json")

    assert unknown.status_code == 400 and "every" in unknown.json()["errors"]
    assert missing.status_code == 400 and "query" in missing.json()["errors"]


def test_a_callers_watches_are_its_own_and_staff_see_all(alice_api, bob_api):
    mine = create(alice_api).json()["id"]
    theirs = create(bob_api, "/regions").json()["id"]

    assert [w["id"] for w in alice_api.get("/watches").json()] == [mine]
    for response in (
        alice_api.get(f"/watches/{theirs}"),
        alice_api.patch(f"/watches/{theirs}", {"name": "mine now"}, format="json"),
        alice_api.delete(f"/watches/{theirs}"),
        alice_api.get(f"/watches/{theirs}/events"),
    ):
        assert response.status_code == 404
        assert response.json()["detail"] == f"No watch {theirs} among yours."
    assert Watch.objects.get(pk=theirs).name == "aws"
    staff = APIClient()
    staff.force_authenticate(get_user_model().objects.create_user("root", is_staff=True))
    assert {w["id"] for w in staff.get("/watches").json()} == {mine, theirs}
    assert [w["owner"] for w in staff.get("/watches", {"owner": "bob"}).json()] == ["bob"]
    assert alice_api.delete(f"/watches/{mine}").status_code == 204
    assert not Watch.objects.filter(pk=mine).exists()


def test_a_caller_has_at_most_keeper_watches_per_caller(alice_api, bob_api, settings):
    settings.KEEPER_WATCHES_PER_CALLER = 2
    assert create(alice_api).status_code == 201
    assert create(alice_api, "/regions").status_code == 201

    third = create(alice_api, "/stats")

    assert third.status_code == 409
    assert third.json()["detail"] == (
        "You have 2 watches, the most one caller may have (KEEPER_WATCHES_PER_CALLER); delete one first."
    )
    assert create(bob_api).status_code == 201  # per caller


def test_patch_renames_and_re_aims_a_watch(alice_api):
    watch = create(alice_api).json()["id"]

    renamed = alice_api.patch(f"/watches/{watch}", {"name": "gcp now", "query": "/servers?vendor=gcp"}, format="json")
    refused = alice_api.patch(f"/watches/{watch}", {"query": "/servers?vendor_min=1"}, format="json")

    assert renamed.status_code == 200, renamed.content
    assert renamed.json()["name"] == "gcp now" and renamed.json()["query"] == "/servers?vendor=gcp"
    assert all('"gcp"' in str(row.get("vendor_id")).join('""') for row in Watch.objects.get(pk=watch).rows.values())
    assert refused.status_code == 400 and refused.json()["query_error"]["status"] == 400


def test_a_watchs_events_are_listed_newest_first_and_paged(alice_api, sync_upstream):
    watch = create(alice_api).json()["id"]
    sync_upstream(changed_catalog())
    evaluate_watches()
    sync_upstream(sample_catalog())
    evaluate_watches()

    events = alice_api.get(f"/watches/{watch}/events").json()
    first_page = alice_api.get(f"/watches/{watch}/events", {"limit": 1}).json()
    second_page = alice_api.get(f"/watches/{watch}/events", {"limit": 1, "page": 2}).json()

    assert [e["type"] for e in events] == ["watch.changed", "watch.changed"]
    assert events[0]["data"]["sync"]["id"] > events[1]["data"]["sync"]["id"]
    # The second sync went back: what the first removed is added again.
    assert events[0]["data"]["added"] == events[1]["data"]["removed"]
    assert [first_page[0]["id"], second_page[0]["id"]] == [e["id"] for e in events]
    assert alice_api.get(f"/watches/{watch}/events", {"limit": "x"}).status_code == 400


def test_the_feed_opens_with_the_watchs_token_only_and_rotates(alice_api, sync_upstream):
    body = create(alice_api).json()
    watch, token = body["id"], body["feed_token"]
    sync_upstream(changed_catalog())
    evaluate_watches()
    anonymous = APIClient()

    feed = anonymous.get(f"/watches/{watch}/events.atom", {"token": token})
    wrong = anonymous.get(f"/watches/{watch}/events.atom", {"token": token + "x"})
    missing = anonymous.get(f"/watches/{watch}/events.atom")

    assert feed.status_code == 200
    assert feed["Content-Type"].startswith("application/atom+xml")
    text = feed.content.decode()
    assert text.count("<entry>") == 1 and f"watch.changed: {QUERY}".replace("&", "&amp;") in text
    for refused in (wrong, missing):
        assert refused.status_code == 404 and refused.json()["code"] == "not_found"
    rotated = alice_api.patch(f"/watches/{watch}", {"rotate_feed_token": True}, format="json").json()
    assert rotated["feed_token"] != token
    assert anonymous.get(f"/watches/{watch}/events.atom", {"token": token}).status_code == 404
    assert anonymous.get(f"/watches/{watch}/events.atom", {"token": rotated["feed_token"]}).status_code == 200


def test_a_watch_made_with_a_capability_token_runs_as_its_key(sync_upstream, alice, make_key):
    sync_upstream(sample_catalog())
    key = make_key(alice)
    api = APIClient()
    validation = api.post("/keys/validate", {"key": key.value}, format="json", HTTP_AUTHORIZATION=f"Bearer {key.value}")
    assert validation.status_code == 200, validation.content
    token = validation.json()["capability_token"]

    response = api.post(
        "/watches", {"name": "aws", "query": QUERY}, format="json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )

    assert response.status_code == 201, response.content
    watch = Watch.objects.get(pk=response.json()["id"])
    assert watch.owner == "alice"
    assert watch.caller == {"kind": "api_key", "key_id": key.api_key.key_id, "auth_method": "capability_token"}
    assert token not in str(watch.caller)
