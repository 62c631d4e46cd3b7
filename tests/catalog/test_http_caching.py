"""HTTP behaviour clients and CDNs rely on: Cache-Control by kind of answer, ETag and 304, gzip, CORS, Vary."""

import gzip

import pytest
from django.core.cache import caches
from rest_framework.test import APIClient

from apps.catalog.services import catalog_sync
from tests.catalog.upstream import UpstreamCatalog, sample_catalog


def test_catalog_answers_are_public_for_a_while_with_an_etag(loaded_catalog, api, settings):
    response = api.get("/servers", {"vcpus_min": 2})

    assert response.status_code == 200
    max_age = settings.KEEPER_CATALOG_MAX_AGE_SECONDS
    assert response["Cache-Control"] == f"public, max-age={max_age}, stale-while-revalidate={max_age * 6}"
    assert response["ETag"].startswith('W/"')


def test_a_matching_if_none_match_is_a_304_without_a_body(loaded_catalog, api):
    etag = api.get("/regions")["ETag"]

    response = api.get("/regions", HTTP_IF_NONE_MATCH=etag)

    assert response.status_code == 304
    assert response.content == b""
    assert response["ETag"] == etag
    assert response["Cache-Control"].startswith("public")


def test_the_etag_follows_the_request_and_the_catalog(loaded_catalog, api, tmp_path):
    first = api.get("/servers", {"vcpus_min": 2})["ETag"]
    other_query = api.get("/servers", {"vcpus_min": 4})["ETag"]
    catalog = sample_catalog()
    catalog.server("aws", "brand-new", vcpus=4)
    catalog.price("aws", "brand-new", price=0.001)
    catalog_sync(source=str(catalog.save(tmp_path / "newer.db")))

    after_sync = api.get("/servers", {"vcpus_min": 2}, HTTP_IF_NONE_MATCH=first)

    assert len({first, other_query}) == 2
    assert after_sync.status_code == 200
    assert after_sync["ETag"] != first


@pytest.mark.parametrize(
    ("path", "status"),
    [("/servers?vcpus_min=0", 400), ("/server/aws/nope", 404), ("/nowhere", 404), ("/me", 401), ("/keys", 401)],
)
def test_errors_are_never_stored(loaded_catalog, api, path, status):
    response = api.get(path)

    assert response.status_code == status
    assert response["Cache-Control"] == "private, no-store"
    assert not response.has_header("ETag")


def test_answers_per_caller_and_the_healthcheck_are_not_stored(loaded_catalog, api):
    assert api.get("/healthcheck")["Cache-Control"] == "private, no-store"
    assert api.get("/openapi.json")["Cache-Control"] == "private, no-store"


def test_bodies_over_a_few_hundred_bytes_are_gzipped_for_clients_that_accept_it(loaded_catalog, api):
    plain = api.get("/servers", {"limit": 5})
    zipped = api.get("/servers", {"limit": 5}, HTTP_ACCEPT_ENCODING="gzip, br")

    assert not plain.has_header("Content-Encoding")
    assert zipped["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped.content) == plain.content
    assert "Accept-Encoding" in zipped["Vary"]


def test_small_and_per_caller_answers_are_not_gzipped(loaded_catalog, api):
    small = api.get("/servers", {"vcpus_min": 256}, HTTP_ACCEPT_ENCODING="gzip")  # []
    error = api.get("/servers", {"colour": "red" * 100}, HTTP_ACCEPT_ENCODING="gzip")

    assert small.content == b"[]" and not small.has_header("Content-Encoding")
    assert error.status_code == 400 and not error.has_header("Content-Encoding")


@pytest.mark.parametrize(("path", "status"), [("/servers?limit=2", 200), ("/servers?vcpus_min=0", 400)])
def test_any_origin_may_read_the_api_and_see_its_headers(loaded_catalog, api, path, status):
    response = api.get(path, HTTP_ORIGIN="https://app.example")

    assert response.status_code == status
    assert response["Access-Control-Allow-Origin"] == "*"
    exposed = {name.strip().lower() for name in response["Access-Control-Expose-Headers"].split(",")}
    assert {"x-total-count", "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-cost"} <= exposed


def test_a_preflight_allows_the_key_headers_for_reads(loaded_catalog, api):
    response = api.options(
        "/servers",
        HTTP_ORIGIN="https://app.example",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, x-api-key",
    )

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "*"
    allowed = {name.strip().lower() for name in response["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "x-api-key"} <= allowed
    assert "GET" in response["Access-Control-Allow-Methods"]


def test_a_preflight_allows_the_headers_the_spare_cores_front_end_sends(loaded_catalog, api):
    response = api.options(
        "/servers",
        HTTP_ORIGIN="https://sparecores.com",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="sentry-trace, baggage, x-application-id",
    )

    assert response.status_code == 200
    allowed = {name.strip().lower() for name in response["Access-Control-Allow-Headers"].split(",")}
    assert {"sentry-trace", "baggage", "x-application-id"} <= allowed


def test_a_rate_limited_answer_carries_cors_too(loaded_catalog, api, settings):
    settings.RATE_LIMIT_ENABLED = True
    settings.RATE_LIMIT_CREDITS_PER_MINUTE = 1
    from apps.throttling.services import reset_limiters

    reset_limiters()
    try:
        answers = [api.get("/regions", HTTP_ORIGIN="https://app.example") for _ in range(3)]
    finally:
        reset_limiters()

    refused = answers[-1]
    assert refused.status_code == 429
    assert refused["Access-Control-Allow-Origin"] == "*"
    assert refused["Cache-Control"] == "private, no-store"


def test_api_answers_do_not_vary_on_a_cookie_they_never_read(loaded_catalog, api):
    response = api.get("/servers", {"limit": 2})

    assert "cookie" not in response.get("Vary", "").lower()


# --- answers that only authenticated callers may get (issue 15, item 11) ---------------------------


@pytest.fixture
def places(sync_upstream):
    """aws m5.large priced in four US regions and one German one: enough places to pass the anonymous limits."""
    catalog = UpstreamCatalog()
    catalog.vendor("aws", regions=4)
    catalog.country("DE", continent="Europe")
    catalog.region("aws", "fra1", country_id="DE")
    catalog.server("aws", "m5.large")
    for region in ("r1", "r2", "r3", "r4", "fra1"):
        catalog.price("aws", "m5.large", price=0.1, region_id=region)
    return sync_upstream(catalog)


@pytest.fixture
def signed_in(api, django_user_model) -> APIClient:
    api.force_login(django_user_model.objects.create_user("cache-reader"))
    return api


TWO_COUNTRIES = {"countries": ["US", "DE"]}
FOUR_REGIONS = {"regions": ["r1", "r2", "r3", "r4"]}
FOUR_VENDOR_REGIONS = {"vendor_regions": ["aws~r1", "aws~r2", "aws~r3", "aws~r4"]}


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/servers", TWO_COUNTRIES),
        ("/servers", FOUR_REGIONS),
        ("/server/aws/m5.large/prices", TWO_COUNTRIES),
        ("/server/aws/m5.large/prices", FOUR_VENDOR_REGIONS),
    ],
    ids=["servers, two countries", "servers, four regions", "prices, two countries", "prices, four regions"],
)
def test_answers_an_anonymous_caller_would_be_refused_are_private(places, api, signed_in, path, query):
    assert APIClient().get(path, query).status_code == 400

    response = signed_in.get(path, query)
    not_modified = signed_in.get(path, query, HTTP_IF_NONE_MATCH=response["ETag"])

    assert response.status_code == 200 and response.json()
    assert response["Cache-Control"].startswith("private, max-age=")
    assert "Authorization" in response["Vary"] and "X-API-Key" in response["Vary"]
    assert not_modified.status_code == 304
    assert not_modified["Cache-Control"] == response["Cache-Control"]


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/servers", {"countries": ["DE"], "regions": ["r1", "r2", "r3"]}),
        ("/server/aws/m5.large/prices", {"countries": ["DE"]}),
    ],
    ids=["servers", "prices"],
)
def test_answers_anyone_may_get_stay_public_for_signed_in_callers_too(places, signed_in, path, query):
    anonymous = APIClient().get(path, query)
    response = signed_in.get(path, query)

    assert anonymous.status_code == response.status_code == 200
    assert anonymous["Cache-Control"].startswith("public, max-age=")
    assert response["Cache-Control"] == anonymous["Cache-Control"]


@pytest.fixture
def response_cache(settings):
    settings.KEEPER_CATALOG_RESPONSE_CACHE_SECONDS = 60
    caches["catalog"].clear()
    yield
    caches["catalog"].clear()


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/servers", TWO_COUNTRIES),
        ("/servers", FOUR_REGIONS),
        ("/server/aws/m5.large/prices", TWO_COUNTRIES),
        ("/server/aws/m5.large/prices", FOUR_VENDOR_REGIONS),
        ("/server/aws/m5.large/similar_servers/specs/5", TWO_COUNTRIES),
    ],
    ids=["servers, countries", "servers, regions", "prices, countries", "prices, regions", "similar, countries"],
)
def test_an_anonymous_caller_is_never_served_what_was_stored_for_an_authenticated_one(
    places, response_cache, signed_in, path, query
):
    stored = signed_in.get(path, query)
    anonymous = APIClient()

    refused = anonymous.get(path, query)
    revalidated = anonymous.get(path, query, HTTP_IF_NONE_MATCH=stored["ETag"])

    assert stored.status_code == 200
    assert caches["catalog"]._cache  # the authenticated caller's answer is stored
    assert refused.status_code == revalidated.status_code == 400
    assert set(refused.json()["errors"]) & {"countries", "regions", "vendor_regions"}
    assert not refused.has_header("ETag") and not revalidated.has_header("ETag")


@pytest.mark.parametrize("cached", [True, False], ids=["from the cache", "uncached"])
def test_a_stored_private_answer_and_its_304_stay_private(places, settings, signed_in, cached):
    settings.KEEPER_CATALOG_RESPONSE_CACHE_SECONDS = 60 if cached else 0
    caches["catalog"].clear()
    first = signed_in.get("/servers", TWO_COUNTRIES)

    again = signed_in.get("/servers", TWO_COUNTRIES)
    not_modified = signed_in.get("/servers", TWO_COUNTRIES, HTTP_IF_NONE_MATCH=first["ETag"])
    caches["catalog"].clear()

    assert first.status_code == again.status_code == 200 and again.content == first.content
    assert not_modified.status_code == 304 and not_modified.content == b""
    for response in (again, not_modified):
        assert response["ETag"] == first["ETag"]
        assert response["Cache-Control"] == first["Cache-Control"]
        assert response["Cache-Control"].startswith("private, max-age=")
        assert {"Authorization", "X-API-Key"} <= {name.strip() for name in response["Vary"].split(",")}


def test_a_benchmark_ranking_is_private_from_the_cache_and_in_a_304(loaded_catalog, response_cache, signed_in):
    path = "/server/aws/m5.large/similar_servers/benchmark_score/3"
    benchmark = {"benchmark_id": "stress_ng:best1"}
    first = signed_in.get(path, benchmark)

    again = signed_in.get(path, benchmark)
    not_modified = signed_in.get(path, benchmark, HTTP_IF_NONE_MATCH=first["ETag"])

    assert first.status_code == again.status_code == 200
    assert APIClient().get(path, benchmark).status_code == 401
    for response in (first, again, not_modified):
        assert response["Cache-Control"].startswith("private, max-age=")
        assert "Authorization" in response["Vary"]
    assert not_modified.status_code == 304


def test_each_audience_has_its_own_etag_for_the_same_public_answer(places, response_cache, signed_in):
    anonymous = APIClient().get("/servers", {"countries": ["DE"]})
    authenticated = signed_in.get("/servers", {"countries": ["DE"]})

    crossed = APIClient().get("/servers", {"countries": ["DE"]}, HTTP_IF_NONE_MATCH=authenticated["ETag"])

    assert anonymous.content == authenticated.content
    assert anonymous["Cache-Control"] == authenticated["Cache-Control"]
    assert anonymous["Cache-Control"].startswith("public")
    assert anonymous["ETag"] != authenticated["ETag"]
    assert crossed.status_code == 200 and crossed["ETag"] == anonymous["ETag"]
