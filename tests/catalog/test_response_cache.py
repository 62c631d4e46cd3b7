"""Rendered catalog responses are reused while the catalog is unchanged, and never across syncs."""

import pytest
from django.core.cache import caches

from apps.catalog.services import catalog_sync
from tests.catalog.upstream import sample_catalog


@pytest.fixture
def response_cache(settings):
    settings.KEEPER_CATALOG_RESPONSE_CACHE_SECONDS = 60
    caches["catalog"].clear()
    yield
    caches["catalog"].clear()


def test_a_repeated_search_is_answered_from_the_cache_with_one_query(
    loaded_catalog, response_cache, api, django_assert_num_queries
):
    first = api.get("/servers", {"vcpus_min": 2, "add_total_count_header": "true"})

    with django_assert_num_queries(0):  # the catalog version is known, the answer stored
        second = api.get("/servers", {"vcpus_min": 2, "add_total_count_header": "true"})

    assert second.status_code == 200
    assert second.content == first.content
    assert second["X-Total-Count"] == first["X-Total-Count"]
    assert second["Content-Type"] == "application/json"


def test_a_new_sync_is_never_answered_with_the_old_catalog(loaded_catalog, response_cache, api, tmp_path):
    before = {row["server_id"] for row in api.get("/servers", {"limit": -1}).json()}
    catalog = sample_catalog()
    catalog.server("aws", "brand-new", vcpus=4)
    catalog.price("aws", "brand-new", price=0.001)
    catalog_sync(source=str(catalog.save(tmp_path / "newer.db")))

    after = {row["server_id"] for row in api.get("/servers", {"limit": -1}).json()}

    assert after == before | {"brand-new"}


def test_errors_are_not_cached(loaded_catalog, response_cache, api):
    assert api.get("/servers", {"vcpus_min": 0}).status_code == 400
    assert api.get("/server/aws/nope").status_code == 404

    assert api.get("/servers", {"vcpus_min": 0}).status_code == 400
    assert not caches["catalog"]._cache  # nothing stored for either


def test_different_query_strings_are_different_entries(loaded_catalog, response_cache, api):
    euros = api.get("/servers", {"currency": "EUR", "limit": 1}).json()
    dollars = api.get("/servers", {"currency": "USD", "limit": 1}).json()

    assert euros[0]["server_id"] == dollars[0]["server_id"]
    assert euros[0]["min_price"] != dollars[0]["min_price"]


def test_limits_still_apply_to_cached_responses(loaded_catalog, response_cache, api, settings):
    from apps.throttling.services import reset_limiters

    settings.RATE_LIMIT_ENABLED = True
    settings.RATE_LIMIT_CREDITS_PER_MINUTE = 6
    reset_limiters()
    try:
        statuses = [api.get("/servers").status_code for _ in range(3)]
    finally:
        reset_limiters()

    assert statuses == [200, 200, 429]  # /servers costs 3 credits


def test_responses_larger_than_the_limit_are_served_but_not_kept(loaded_catalog, response_cache, api, settings):
    settings.KEEPER_CATALOG_RESPONSE_CACHE_MAX_BYTES = 100

    response = api.get("/servers", {"limit": -1})

    assert response.status_code == 200 and len(response.content) > 100
    assert not caches["catalog"]._cache
