"""The shared place filters (apps/catalog/filters/places.py): `regions`, `vendor_regions`, `countries`,
their validation, the condition on price rows, and the anonymous-caller limit."""

from types import SimpleNamespace

import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.http import QueryDict

from apps.catalog.filters.places import PlaceFilterSet
from apps.catalog.filters.prices import ServerPriceFilterSet
from apps.catalog.models import ServerPrice, StoragePrice
from apps.catalog.places import MAX_ANONYMOUS_COUNTRIES, MAX_ANONYMOUS_REGIONS, Places, place_limit_errors
from tests.catalog.upstream import UpstreamCatalog


def places_catalog() -> UpstreamCatalog:
    """Two vendors sharing the region id r1; aws also in Germany (r2) and in a region whose country is missing."""
    catalog = UpstreamCatalog()
    catalog.country("DE", "Europe")
    catalog.vendor("aws", regions=1)
    catalog.region("aws", "r2", country_id="DE")
    catalog.region("aws", "gap", country_id="TH")  # no TH row: the catalog has such gaps
    catalog.vendor("gcp", regions=1)
    for vendor_id, region_id in [("aws", "r1"), ("aws", "r2"), ("aws", "gap"), ("gcp", "r1")]:
        catalog.server(vendor_id, f"{vendor_id}-{region_id}")
        catalog.price(vendor_id, f"{vendor_id}-{region_id}", price=0.1, region_id=region_id)
    return catalog


class PriceSearch(PlaceFilterSet):
    class Meta:
        model = ServerPrice
        fields: list[str] = []


class LimitedSearch(PriceSearch):
    limit_anonymous_places = True


def search(query: str, filterset: type[PlaceFilterSet] = PriceSearch, user=None) -> PlaceFilterSet:
    request = SimpleNamespace(user=user or AnonymousUser())
    return filterset(QueryDict(query), queryset=ServerPrice.objects.all(), request=request)


def found(query: str) -> set[str]:
    filterset = search(query)
    assert filterset.is_valid(), filterset.errors
    return {price.server_id for price in filterset.qs}


@pytest.fixture
def catalog(sync_upstream):
    sync_upstream(places_catalog())


def test_regions_match_the_region_id_of_every_vendor(catalog):
    assert found("regions=r1") == {"aws-r1", "gcp-r1"}
    assert found("regions=r1&regions=r2") == {"aws-r1", "gcp-r1", "aws-r2"}


def test_vendor_regions_match_one_vendors_region(catalog):
    assert found("vendor_regions=aws~r1") == {"aws-r1"}
    assert found("vendor_regions=aws~r2&vendor_regions=gcp~r1") == {"aws-r2", "gcp-r1"}


def test_countries_match_the_country_of_the_region(catalog):
    assert found("countries=DE") == {"aws-r2"}
    assert found("countries=US") == {"aws-r1", "gcp-r1"}


def test_place_filters_combine_with_and(catalog):
    assert found("regions=r1&countries=DE") == set()
    assert found("regions=r1&vendor_regions=gcp~r1") == {"gcp-r1"}


def test_without_place_filters_nothing_is_filtered(catalog):
    assert found("") == {"aws-r1", "aws-r2", "aws-gap", "gcp-r1"}
    filterset = search("")
    assert filterset.is_valid()
    assert not filterset.places


@pytest.mark.parametrize(
    ("query", "parameter", "message"),
    [
        ("regions=nowhere", "regions", "Not in the catalog: nowhere."),
        ("vendor_regions=aws-r1", "vendor_regions", "expected vendor_id~region_id"),
        ("vendor_regions=gcp~r2", "vendor_regions", "Not in the catalog: gcp~r2."),
        ("countries=ZZ", "countries", "Not in the catalog: ZZ."),
        ("countries=de", "countries", "Not in the catalog: de."),
    ],
)
def test_unknown_or_malformed_places_are_refused(catalog, query, parameter, message):
    filterset = search(query)

    assert not filterset.is_valid()
    assert message in " ".join(filterset.errors[parameter])


def test_a_country_missing_from_the_catalog_is_refused_like_upstream(catalog):
    # The region "gap" names TH, which has no country row: upstream lists only the country table.
    assert not search("countries=TH").is_valid()


def test_places_are_validated_from_memory_once_the_catalog_was_read(catalog, django_assert_max_num_queries):
    query = "regions=r1&regions=r2&vendor_regions=aws~r1&vendor_regions=gcp~r1&countries=DE"
    with django_assert_max_num_queries(4):  # the catalog version, then each parameter's values once
        assert search(query).is_valid()
    with django_assert_max_num_queries(0):
        assert search(query).is_valid()
        assert not search("regions=r9").is_valid()


def test_places_condition_applies_to_any_price_table(sync_upstream):
    catalog = places_catalog()
    catalog.storage("aws", "ssd")
    catalog.storage_price("aws", "ssd", price=0.1, region_id="r1")
    catalog.storage_price("aws", "ssd", price=0.1, region_id="r2")
    sync_upstream(catalog)

    places = Places(countries=("DE",))
    assert list(StoragePrice.objects.filter(places.q()).values_list("region_id", flat=True)) == ["r2"]


def test_places_condition_takes_a_prefix_for_related_prices(catalog):
    from apps.catalog.models import Server

    places = Places(vendor_regions=(("aws", "r2"),))
    assert set(Server.objects.filter(places.q("prices__")).values_list("server_id", flat=True)) == {"aws-r2"}


def test_vendor_region_pairs_split_at_the_first_tilde():
    assert Places.pairs(["aws~us-east-1", "v~a~b"]) == (("aws", "us-east-1"), ("v", "a~b"))
    assert Places.pairs(None) == ()


def test_anonymous_callers_may_give_one_country(catalog):
    assert MAX_ANONYMOUS_COUNTRIES == 1
    filterset = search("countries=US&countries=DE", LimitedSearch)

    assert not filterset.is_valid()
    assert filterset.errors["countries"] == ["Max 1 country can be queried at a time without authentication."]
    assert search("countries=DE", LimitedSearch).is_valid()


def test_anonymous_callers_may_give_three_regions_counting_vendor_regions_by_region_id(catalog):
    assert MAX_ANONYMOUS_REGIONS == 3
    # r1 twice (as a region and as gcp~r1), r2 and gap: three region ids.
    assert search("regions=r1&vendor_regions=gcp~r1&vendor_regions=aws~r2&regions=gap", LimitedSearch).is_valid()

    places = Places(regions=("r1", "r2", "gap", "r4"))
    message = "Max 3 regions can be queried at a time without authentication."
    assert place_limit_errors(places, AnonymousUser()) == {"regions": [message]}
    mixed = Places(regions=("r1", "r2"), vendor_regions=(("aws", "gap"), ("v", "r4")))
    assert place_limit_errors(mixed, AnonymousUser()) == {"regions": [message], "vendor_regions": [message]}


def test_authenticated_callers_have_no_place_limit(catalog):
    user = User(username="someone")
    filterset = search("countries=US&countries=DE", LimitedSearch, user=user)

    assert filterset.is_valid(), filterset.errors
    assert place_limit_errors(Places(countries=("US", "DE"), regions=("a", "b", "c", "d")), user) == {}


def test_the_limit_is_off_unless_the_filterset_asks_for_it(catalog):
    assert search("countries=US&countries=DE").is_valid()


def test_the_openapi_document_lists_the_catalogs_places(catalog, api):
    schema = api.get("/openapi.json").json()
    parameters = {p["name"]: p for p in schema["paths"]["/server_prices"]["get"]["parameters"]}

    assert parameters["regions"]["schema"]["items"]["enum"] == ["gap", "r1", "r2"]
    assert parameters["vendor_regions"]["schema"]["items"]["enum"] == ["aws~gap", "aws~r1", "aws~r2", "gcp~r1"]
    assert parameters["countries"]["schema"]["items"]["enum"] == ["DE", "US"]
    assert all(parameters[name]["description"] for name in ("regions", "vendor_regions", "countries"))


def test_a_new_catalog_brings_its_places_and_vendors_at_once(sync_upstream):
    sync_upstream(places_catalog())
    assert not search("regions=r7").is_valid()
    assert not search("vendor=hcloud", ServerPriceFilterSet).is_valid()
    bigger = places_catalog()
    bigger.vendor("hcloud", regions=0)
    bigger.region("hcloud", "r7", country_id="DE")
    sync_upstream(bigger)
    assert search("regions=r7").is_valid()
    assert search("vendor=hcloud&vendor=aws", ServerPriceFilterSet).is_valid()
