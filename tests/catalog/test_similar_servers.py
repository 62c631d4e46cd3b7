"""GET /server/{vendor}/{server}/similar_servers/{by}/{num}: the servers most like a server."""

from typing import Any

import pytest

from apps.catalog.pricing import exchange_rate
from apps.catalog.serializers_details import SimilarServerSerializer
from apps.keys.choices import Scope
from apps.keys.services import Actor, key_create
from tests.catalog.upstream import UpstreamCatalog

SCORE = "stress_ng:bestn"


def new_catalog(*vendors: str) -> UpstreamCatalog:
    catalog = UpstreamCatalog()
    catalog.benchmark(SCORE)
    catalog.benchmark("geekbench:score")
    for vendor in vendors or ("v",):
        catalog.vendor(vendor)
    return catalog


def add(
    catalog: UpstreamCatalog,
    server_id: str,
    *,
    vendor: str = "v",
    family: str | None = "m",
    vcpus: int = 2,
    gpus: float = 0,
    memory: int = 8192,
    score: float | None = None,
    price: float | None = 0.1,
    **fields: Any,
) -> None:
    catalog.server(
        vendor, server_id, family=family, vcpus=vcpus, accelerator_count=gpus, memory_amount=memory, **fields
    )
    if price is not None:
        catalog.price(vendor, server_id, price=price)
    if score is not None:
        catalog.score(vendor, server_id, SCORE, score)


def similar(api, server: str, by: str, num: int = 10, *, vendor: str = "v", **params: Any) -> list[dict[str, Any]]:
    response = api.get(f"/server/{vendor}/{server}/similar_servers/{by}/{num}", params)
    assert response.status_code == 200, response.content
    return response.json()


def ids(rows: list[dict[str, Any]]) -> list[str]:
    return [row["server_id"] for row in rows]


@pytest.fixture
def reader(api, django_user_model):
    """The client, signed in (any authenticated caller may rank by benchmarks)."""
    api.force_login(django_user_model.objects.create_user("reader"))
    return api


# --- family -----------------------------------------------------------------------------------


def test_family_lists_the_vendors_active_servers_of_the_family_by_size(sync_upstream, api):
    catalog = new_catalog("v", "w")
    add(catalog, "m.large")
    add(catalog, "m.2xlarge", vcpus=8, memory=32768)
    add(catalog, "m.xlarge", vcpus=4, memory=16384)
    add(catalog, "m.medium", vcpus=1, memory=4096)
    add(catalog, "m.gpu", vcpus=4, gpus=1, memory=16384)
    add(catalog, "c.large", family="c")
    add(catalog, "m.other-vendor", vendor="w")
    add(catalog, "m.retired", status="INACTIVE")
    sync_upstream(catalog)

    assert ids(similar(api, "m.large", "family")) == ["m.medium", "m.xlarge", "m.gpu", "m.2xlarge"]


def test_family_ties_come_in_server_id_order(sync_upstream, api):
    catalog = new_catalog()
    add(catalog, "m.large")
    add(catalog, "m.large-b")
    add(catalog, "m.large-a")
    sync_upstream(catalog)

    assert ids(similar(api, "m.large", "family")) == ["m.large-a", "m.large-b"]


def test_a_server_without_a_family_has_no_family_members(sync_upstream, api):
    catalog = new_catalog()
    add(catalog, "loner", family=None)
    add(catalog, "other", family=None)
    sync_upstream(catalog)

    assert similar(api, "loner", "family") == []


# --- specs ------------------------------------------------------------------------------------


def test_specs_weigh_gpus_then_vcpus_then_memory(sync_upstream, api):
    catalog = new_catalog("v", "w")
    add(catalog, "target")
    add(catalog, "one-more-gpu", gpus=1)
    add(catalog, "two-more-vcpus", vcpus=4)
    add(catalog, "one-more-vcpu", vcpus=3, vendor="w")
    add(catalog, "double-memory", memory=16384, family="x")
    sync_upstream(catalog)

    assert ids(similar(api, "target", "specs")) == ["double-memory", "one-more-vcpu", "two-more-vcpus", "one-more-gpu"]


def test_specs_ties_keep_the_catalogs_order(sync_upstream, api):
    catalog = new_catalog()
    add(catalog, "target")
    add(catalog, "z-twin")
    add(catalog, "a-twin")
    sync_upstream(catalog)

    assert ids(similar(api, "target", "specs")) == ["z-twin", "a-twin"]


# The given server's neighbours: (id, vCPUs, GPUs, memory); some in its own vCPUs and GPUs, whose nearest
# bound the ranking, and some outside it that are nearer still than some of those.
NEIGHBOURS = [
    ("twin-z", 2, 0, 8192),
    ("bigger", 2, 0, 9216),
    ("retired-twin", 2, 0, 8192),
    ("twin-a", 2, 0, 8192),
    ("smaller", 2, 0, 7168),
    ("one-more-vcpu", 3, 0, 8192),
    ("huge-memory", 2, 0, 25_000_000),
    ("half-a-gpu", 2, 0.5, 8192),
    ("much-bigger", 2, 0, 65536),
    ("half-memory", 2, 0, 4096),
    ("one-less-vcpu", 1, 0, 2048),
]


@pytest.mark.parametrize("num", [1, 2, 3, 4, 6, 7, 8, 9, 20])
def test_specs_rank_every_server_by_its_distance_however_many_share_the_servers_vcpus(sync_upstream, api, num):
    catalog = new_catalog()
    add(catalog, "target")
    for server_id, vcpus, gpus, memory in NEIGHBOURS:
        status = "INACTIVE" if server_id.startswith("retired") else "ACTIVE"
        add(catalog, server_id, vcpus=vcpus, gpus=gpus, memory=memory, status=status)
    sync_upstream(catalog)

    def distance(vcpus: int, gpus: float, memory: int) -> float:
        return abs(gpus) * 10_000_000 + abs(vcpus - 2) * 10_000 + abs(memory - 8192) / 1000

    active = [neighbour for neighbour in NEIGHBOURS if not neighbour[0].startswith("retired")]
    nearest = sorted(active, key=lambda neighbour: distance(*neighbour[1:]))  # stable: the catalog's order
    assert ids(similar(api, "target", "specs", num)) == [server_id for server_id, *_ in nearest[:num]]


# --- score and score per price ----------------------------------------------------------------


def test_score_ranks_by_the_closest_stress_ng_score(sync_upstream, api):
    catalog = new_catalog()
    add(catalog, "target", score=1000)
    add(catalog, "higher", score=1200)
    add(catalog, "lower", score=950)
    add(catalog, "far", score=300)
    add(catalog, "unscored")
    add(catalog, "unpriced", score=1001, price=None)
    sync_upstream(catalog)

    assert ids(similar(api, "target", "score")) == ["lower", "higher", "far"]


# The given server's (score 1000) neighbours by score: (id, score, price); ties above and below it,
# and servers nearer than some that the ranking must leave out (no price, retired).
SCORE_NEIGHBOURS = [
    ("above-z", 1100, 0.1),
    ("below-far", 700, 0.1),
    ("unpriced", 1001, None),
    ("below-z", 900, 0.1),
    ("level", 1000, 0.1),
    ("retired", 999, 0.1),
    ("above-a", 1100, 0.1),
    ("below-a", 900, 0.1),
    ("above-far", 1500, 0.1),
]


@pytest.mark.parametrize("num", [1, 2, 3, 4, 5, 6, 7, 8])
def test_score_ranks_every_eligible_server_by_its_distance_ties_in_the_catalogs_order(sync_upstream, api, num):
    catalog = new_catalog()
    add(catalog, "target", score=1000)
    for server_id, score, price in SCORE_NEIGHBOURS:
        status = "INACTIVE" if server_id == "retired" else "ACTIVE"
        add(catalog, server_id, score=score, price=price, status=status)
    sync_upstream(catalog)

    eligible = [(server_id, score) for server_id, score, price in SCORE_NEIGHBOURS if price and server_id != "retired"]
    nearest = sorted(eligible, key=lambda neighbour: abs(neighbour[1] - 1000))  # stable: the catalog's order
    assert ids(similar(api, "target", "score", num)) == [server_id for server_id, _ in nearest[:num]]


@pytest.mark.parametrize(("score", "price"), [(None, 0.1), (1000, None)])
def test_a_server_without_a_score_or_a_price_has_no_similar_scores(sync_upstream, api, score, price):
    catalog = new_catalog()
    add(catalog, "target", score=score, price=price)
    add(catalog, "other", score=1000)
    sync_upstream(catalog)

    assert similar(api, "target", "score") == []


def test_score_per_price_ranks_by_the_closest_score_per_usd_hour(sync_upstream, api):
    catalog = new_catalog()
    add(catalog, "target", score=1000, price=0.1)  # 10000 per USD/hour
    add(catalog, "same-ratio", score=2000, price=0.2)
    add(catalog, "close", score=1050, price=0.1)
    add(catalog, "same-score-dearer", score=1000, price=0.5)
    add(catalog, "free", score=1000, price=0.0)
    sync_upstream(catalog)

    rows = similar(api, "target", "score_per_price")

    assert ids(rows) == ["same-ratio", "close", "same-score-dearer"]
    assert [row["score_per_price"] for row in rows] == [10000.0, 10500.0, 2000.0]


def test_best_price_allocation_chooses_the_price_divided_by(sync_upstream, api):
    catalog = new_catalog()
    add(catalog, "target", score=1000, price=0.5)  # on demand: 2000 per USD/hour
    catalog.price("v", "target", price=0.1, allocation="SPOT")  # any allocation: 10000
    add(catalog, "alike-any", score=1000, price=0.1)  # 10000 either way
    add(catalog, "spot-only", score=1000, price=None)
    catalog.price("v", "spot-only", price=0.1, allocation="SPOT")  # 10000, no on-demand price
    add(catalog, "alike-ondemand", score=1000, price=0.5)  # on demand 2000, any 50000
    catalog.price("v", "alike-ondemand", price=0.02, allocation="SPOT")
    sync_upstream(catalog)

    assert ids(similar(api, "target", "score_per_price")) == ["alike-any", "spot-only", "alike-ondemand"]
    rows = similar(api, "target", "score_per_price", best_price_allocation="ONDEMAND_ONLY")
    assert ids(rows) == ["alike-ondemand", "alike-any"]
    assert rows[0]["score_per_price"] == 2000.0


def test_server_region_takes_the_given_servers_price_there(sync_upstream, api):
    catalog = new_catalog()
    catalog.region("v", "r2")
    add(catalog, "target", score=1000, price=0.1)
    catalog.price("v", "target", price=0.2, region_id="r2")  # 5000 per USD/hour in r2
    add(catalog, "like-r1", score=1000, price=0.1)
    add(catalog, "like-r2", score=1000, price=0.2)
    sync_upstream(catalog)

    assert ids(similar(api, "target", "score_per_price", 1)) == ["like-r1"]
    assert ids(similar(api, "target", "score_per_price", 1, server_region="r2")) == ["like-r2"]


# --- places and currency ----------------------------------------------------------------------


def test_countries_rank_only_servers_priced_there_at_their_prices_there(sync_upstream, api):
    catalog = new_catalog()
    catalog.country("DE", continent="Europe")
    catalog.region("v", "de1", country_id="DE")
    add(catalog, "target", price=0.1)
    add(catalog, "in-both", price=0.1)
    catalog.price("v", "in-both", price=0.07, region_id="de1")
    add(catalog, "us-only", price=0.05)
    sync_upstream(catalog)

    [row] = similar(api, "target", "family", countries="DE")

    assert row["server_id"] == "in-both"
    assert (row["min_price"], row["price"]) == (0.07, 0.07)
    rows = similar(api, "target", "family", vendor_regions="v~r1")
    assert [(row["server_id"], row["min_price"]) for row in rows] == [("in-both", 0.1), ("us-only", 0.05)]


def test_currency_converts_the_prices_and_price_is_the_cheapest(sync_upstream, api):
    catalog = new_catalog()
    add(catalog, "target", score=1000)
    add(catalog, "other", score=1000, price=0.2)
    catalog.price("v", "other", price=0.1, allocation="SPOT")
    sync_upstream(catalog)

    [row] = similar(api, "target", "score", currency="EUR", best_price_allocation="ONDEMAND_ONLY")

    rate = exchange_rate("USD", "EUR")
    assert row["min_price"] == round(0.1 * rate, 4)
    assert row["min_price_ondemand"] == round(0.2 * rate, 4)
    assert row["price"] == row["min_price"]
    assert row["score_per_price"] == 5000.0  # per on-demand USD/hour, whatever the currency


def test_rows_have_the_server_search_row_shape(sync_upstream, api):
    catalog = new_catalog()
    add(catalog, "target")
    add(catalog, "other")
    sync_upstream(catalog)

    [row] = similar(api, "target", "family")

    assert set(row) == set(SimilarServerSerializer().fields)
    assert row["vendor"]["vendor_id"] == "v"
    assert set(row["price_breakdown"].values()) == {None}
    assert row["selected_benchmark_score"] is None


# --- path and parameters ----------------------------------------------------------------------


@pytest.fixture
def five(sync_upstream):
    catalog = new_catalog()
    for number in range(5):
        add(catalog, f"s{number}", vcpus=number + 1)
    return sync_upstream(catalog)


def test_num_is_how_many(five, api):
    assert ids(similar(api, "s0", "family", 2)) == ["s1", "s2"]
    assert similar(api, "s0", "family", 0) == []


@pytest.mark.parametrize(
    ("path", "bad"), [("family/101", "num"), ("family/-1", "num"), ("family/two", "num"), ("famous/3", "by")]
)
def test_a_bad_kind_or_number_is_a_400_naming_it(five, http, path, bad):
    response = http.get(f"/server/v/s0/similar_servers/{path}")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == [bad]


@pytest.mark.parametrize(
    ("params", "bad"),
    [
        ({"currency": "XXX"}, "currency"),
        ({"best_price_allocation": "CHEAPEST"}, "best_price_allocation"),
        ({"server_region": "nowhere"}, "server_region"),
        ({"countries": "ZZ"}, "countries"),
        ({"vcpus_min": "2"}, "vcpus_min"),
    ],
)
def test_a_bad_parameter_is_a_400_naming_it(five, http, params, bad):
    response = http.get("/server/v/s0/similar_servers/specs/3", params)

    assert response.status_code == 400
    assert list(response.json()["errors"]) == [bad]


def test_anonymous_callers_give_at_most_one_country(five, http):
    response = http.get("/server/v/s0/similar_servers/specs/3", {"countries": ["US", "DE"]})

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["countries"]


def test_an_unknown_server_is_a_json_404(five, http):
    response = http.get("/server/v/nothing/similar_servers/specs/3")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_the_server_is_found_by_its_api_reference(sync_upstream, api):
    catalog = new_catalog()
    add(catalog, "1234", api_reference="n2-standard-8")
    add(catalog, "5678")
    sync_upstream(catalog)

    assert ids(similar(api, "n2-standard-8", "family")) == ["5678"]


# --- benchmarks -------------------------------------------------------------------------------


@pytest.fixture
def benchmarked(sync_upstream):
    catalog = new_catalog()
    add(catalog, "target", price=0.1)
    add(catalog, "near", price=0.2)
    add(catalog, "far", price=0.1)
    add(catalog, "unscored")
    for server, single, multi in [("target", 1000, 4000), ("near", 1100, 8000), ("far", 400, 4100)]:
        catalog.score("v", server, "geekbench:score", single, {"cores": "single"})
        catalog.score("v", server, "geekbench:score", multi, {"cores": "multi"})
    return sync_upstream(catalog)


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("benchmark_score/3", {"benchmark_id": "geekbench:score"}),
        ("benchmark_score_per_price/3", {"benchmark_id": "geekbench:score"}),
        ("benchmark_score/3", {}),
        ("family/3", {"benchmark_id": "geekbench:score"}),
    ],
)
def test_benchmarks_need_an_authenticated_caller(benchmarked, http, path, params):
    response = http.get(f"/server/v/target/similar_servers/{path}", params)

    assert response.status_code == 401
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["code"] == "not_authenticated"


def test_benchmark_kinds_need_a_benchmark_id(benchmarked, reader):
    response = reader.get("/server/v/target/similar_servers/benchmark_score/3")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["benchmark_id"]


def test_an_unknown_benchmark_is_a_400(benchmarked, reader):
    response = reader.get("/server/v/target/similar_servers/benchmark_score/3", {"benchmark_id": "nope:score"})

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["benchmark_id"]


@pytest.mark.parametrize("config", ["{cores: 1}", "[1]", '{"cores": "dual"}'])
def test_a_config_that_no_score_has_matches_nothing(benchmarked, reader, config):
    params = {"benchmark_id": "geekbench:score", "benchmark_config": config}

    assert similar(reader, "target", "benchmark_score", **params) == []
    assert {row["selected_benchmark_score"] for row in similar(reader, "target", "specs", **params)} == {None}


def test_benchmark_config_is_compared_as_json(benchmarked, reader):
    params = {"benchmark_id": "geekbench:score", "benchmark_config": '{ "cores" :"single" }'}

    assert ids(similar(reader, "target", "benchmark_score", **params)) == ["near", "far"]


def test_benchmark_score_ranks_by_the_closest_best_score(benchmarked, reader):
    rows = similar(reader, "target", "benchmark_score", benchmark_id="geekbench:score")

    # Best scores (any config): target 4000, far 4100, near 8000.
    assert ids(rows) == ["far", "near"]
    assert [row["selected_benchmark_score"] for row in rows] == [4100.0, 8000.0]


def test_benchmark_config_ranks_by_that_configuration(benchmarked, reader):
    rows = similar(
        reader, "target", "benchmark_score", benchmark_id="geekbench:score", benchmark_config='{"cores": "single"}'
    )

    assert ids(rows) == ["near", "far"]
    assert [row["selected_benchmark_score"] for row in rows] == [1100.0, 400.0]


def test_benchmark_score_per_price_ranks_by_score_per_usd_hour(benchmarked, reader):
    rows = similar(reader, "target", "benchmark_score_per_price", benchmark_id="geekbench:score")

    # Per USD/hour: target 40000, near 40000, far 41000.
    assert ids(rows) == ["near", "far"]
    assert [row["selected_benchmark_score_per_price"] for row in rows] == [40000.0, 41000.0]


def test_other_kinds_report_the_selected_benchmark(benchmarked, reader):
    rows = similar(reader, "target", "specs", benchmark_id="geekbench:score")

    assert {row["server_id"]: row["selected_benchmark_score"] for row in rows} == {
        "near": 8000.0,
        "far": 4100.0,
        "unscored": None,
    }


def test_an_api_key_is_an_authenticated_caller(benchmarked, api, django_user_model):
    owner = django_user_model.objects.create_user("keyholder")
    key = key_create(owner=owner, name="ranking", actor=Actor("test-setup"), scope=Scope.READ).value

    response = api.get(
        "/server/v/target/similar_servers/benchmark_score/3", {"benchmark_id": "geekbench:score"}, HTTP_X_API_KEY=key
    )

    assert response.status_code == 200
    assert ids(response.json()) == ["far", "near"]


def test_answers_for_authenticated_callers_only_are_private_to_shared_caches(benchmarked, reader):
    public = reader.get("/server/v/target/similar_servers/specs/3")
    private = reader.get("/server/v/target/similar_servers/benchmark_score/3", {"benchmark_id": "geekbench:score"})

    assert public["Cache-Control"].startswith("public")
    assert private["Cache-Control"].startswith("private")


# --- queries ----------------------------------------------------------------------------------


def catalog_of_size(servers: int) -> UpstreamCatalog:
    catalog = new_catalog()
    catalog.country("DE", continent="Europe")
    catalog.region("v", "de1", country_id="DE")
    for number in range(servers):
        add(catalog, f"s{number:03}", vcpus=1 + number % 8, score=100.0 * (number + 1))
        catalog.price("v", f"s{number:03}", price=0.01 * (number + 1), region_id="de1")
        catalog.score("v", f"s{number:03}", "geekbench:score", 10.0 * number, {"cores": "single"})
    return catalog


ANONYMOUS_REQUESTS = [
    ("family/10", {}, 3),  # the server, the ranking, the rows
    # + the nearest of its vCPUs and accelerators, which bound the ranking
    ("specs/50", {"currency": "EUR", "best_price_allocation": "ONDEMAND_ONLY"}, 4),
    ("score/50", {}, 4),  # + the nearest scores, which bound the ranking
    ("score_per_price/50", {"server_region": "de1"}, 5),  # + validating the region, its price there
    ("specs/50", {"countries": "DE"}, 5),  # + validating the country, the ranked servers' prices there
    ("specs/50", {"vendor_regions": "v~de1"}, 5),  # + validating the vendor region, the prices there
]


@pytest.mark.parametrize("size", [5, 60])
@pytest.mark.parametrize(("path", "params", "queries"), ANONYMOUS_REQUESTS)
def test_queries_are_pinned_whatever_the_catalog_size(
    sync_upstream, api, django_assert_num_queries, size, path, params, queries
):
    sync_upstream(catalog_of_size(size))
    api.get("/server/v/s000/similar_servers/family/1")  # the catalog version is read once per process and sync

    with django_assert_num_queries(queries):
        response = api.get(f"/server/v/s000/similar_servers/{path}", params)

    assert response.status_code == 200
    assert response.json()


@pytest.mark.parametrize("size", [5, 60])
def test_benchmark_rankings_add_the_benchmark_and_the_servers_own_score(
    sync_upstream, reader, django_assert_num_queries, size
):
    sync_upstream(catalog_of_size(size))
    reader.get("/server/v/s000/similar_servers/family/1")

    # + the session and its user, validating benchmark_id, the server's own score.
    with django_assert_num_queries(7):
        response = reader.get(
            "/server/v/s001/similar_servers/benchmark_score_per_price/50", {"benchmark_id": "geekbench:score"}
        )

    assert response.status_code == 200
    assert response.json()


def test_the_openapi_document_describes_every_parameter(db, api):
    schema = api.get("/openapi.json", HTTP_ACCEPT="application/json").json()

    parameters = schema["paths"]["/server/{vendor}/{server}/similar_servers/{by}/{num}"]["get"]["parameters"]

    assert {parameter["name"] for parameter in parameters} == {
        "vendor",
        "server",
        "by",
        "num",
        "server_region",
        "countries",
        "vendor_regions",
        "best_price_allocation",
        "benchmark_id",
        "benchmark_config",
        "currency",
    }
    assert all(parameter.get("description") for parameter in parameters)
