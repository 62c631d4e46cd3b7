"""GET /table/server/select (the server table with chosen columns) and GET /table/server/meta."""

import pytest

from apps.catalog.models import Server
from apps.catalog.sql import table_columns
from tests.catalog.upstream import UpstreamCatalog


@pytest.fixture
def servers(sync_upstream):
    catalog = UpstreamCatalog()
    catalog.vendor("w")
    catalog.vendor("v")
    catalog.server("w", "b", vcpus=8, memory_amount=32768)
    catalog.server("v", "z", vcpus=4)
    catalog.server("v", "a", vcpus=2, status="INACTIVE")
    return sync_upstream(catalog)


def get_json(api, path, params=None):
    response = api.get(path, params or {})
    assert response.status_code == 200, response.content
    return response.json()


def test_select_returns_every_server_with_the_columns_asked_for_in_that_order(servers, api):
    rows = get_json(api, "/table/server/select", {"columns": ["vcpus", "server_id"]})

    # In upstream's order (its file's): b, z, a were loaded in that order.
    assert rows == [{"vcpus": 8, "server_id": "b"}, {"vcpus": 4, "server_id": "z"}, {"vcpus": 2, "server_id": "a"}]
    assert all(list(row) == ["vcpus", "server_id"] for row in rows)


def test_select_lists_a_repeated_column_once(servers, api):
    rows = get_json(api, "/table/server/select", {"columns": ["memory_amount", "memory_amount"]})

    assert rows == [{"memory_amount": 32768}, {"memory_amount": 4096}, {"memory_amount": 4096}]


def test_select_without_columns_has_every_column_of_every_server(servers, api):
    rows = get_json(api, "/table/server/select")

    assert [list(row) for row in rows] == [table_columns(Server)] * 3
    by_id = {row["server_id"]: row for row in get_json(api, "/table/server")}
    assert [row["memory_amount"] for row in rows] == [by_id[row["server_id"]]["memory_amount"] for row in rows]


def test_select_spells_timestamps_as_upstream(servers, api):
    [row, *_] = get_json(api, "/table/server/select", {"columns": ["observed_at", "hw_virt"]})

    assert row["observed_at"].endswith("Z")
    assert row["hw_virt"] is None


def test_select_reads_json_columns_as_json(servers, api):
    rows = get_json(api, "/table/server/select", {"columns": ["cpu_flags", "status"]})

    assert rows == [
        {"cpu_flags": [], "status": "active"},
        {"cpu_flags": [], "status": "active"},
        {"cpu_flags": [], "status": "inactive"},
    ]


def test_an_unknown_column_is_a_400_naming_it(servers, http):
    response = http.get("/table/server/select", {"columns": ["vcpus", "gpu_count"]})

    assert response.status_code == 400
    body = response.json()
    assert list(body["errors"]) == ["columns"]
    assert "gpu_count" in " ".join(body["errors"]["columns"])


def test_an_unknown_parameter_is_a_400(servers, http):
    response = http.get("/table/server/select", {"column": "vcpus"})

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["column"]


def test_meta_describes_the_table_and_every_column_in_order(db, api):
    meta = get_json(api, "/table/server/meta")

    assert meta["table"] == {"name": "server", "description": Server.__doc__.strip().splitlines()[0]}
    assert [field["id"] for field in meta["fields"]] == table_columns(Server)
    assert all(set(field) == {"id", "name", "description", "category", "unit"} for field in meta["fields"])


def test_meta_takes_descriptions_and_units_from_the_models_help_texts(db, api):
    fields = {field["id"]: field for field in get_json(api, "/table/server/meta")["fields"]}

    assert fields["memory_amount"]["description"] == Server._meta.get_field("memory_amount").help_text
    assert {column: fields[column]["unit"] for column in ("cpu_speed", "memory_amount", "cpu_l2_cache")} == {
        "cpu_speed": "GHz",
        "memory_amount": "MiB",
        "cpu_l2_cache": "KiB",
    }
    assert fields["inbound_traffic"]["unit"] == "GB/month"
    assert fields["vcpus"]["unit"] is None


def test_meta_groups_the_columns_as_upstream_does(db, api):
    fields = {field["id"]: field for field in get_json(api, "/table/server/meta")["fields"]}

    categories = {column: fields[column]["category"] for column in fields}

    assert {categories[c] for c in ("vendor_id", "server_id", "status", "observed_at", "hw_virt")} == {"meta"}
    assert {categories[c] for c in ("vcpus", "hypervisor", "cpu_l1d_cache", "cpu_flags")} == {"cpu"}
    assert {categories[c] for c in ("memory_amount", "memory_ecc")} == {"memory"}
    assert {categories[c] for c in ("accelerator_count", "accelerators")} == {"gpu"}
    assert {categories[c] for c in ("storage_size", "storages")} == {"storage"}
    assert {categories[c] for c in ("network_speed_max", "inbound_traffic", "ipv4")} == {"network"}


def test_meta_has_the_newest_apis_categories_and_accelerator_memory_units(db, api):
    fields = {field["id"]: field for field in get_json(api, "/table/server/meta")["fields"]}

    # The newest API's six categories (NEWEST-API.md, /table/server/meta), with its additions.
    assert {field["category"] for field in fields.values()} == {"meta", "cpu", "memory", "gpu", "storage", "network"}
    assert {fields[c]["category"] for c in ("series", "api_reference_object")} == {"meta"}
    assert fields["compatible_storage_ids"]["category"] == "storage"
    accelerator_columns = [column for column in fields if column.startswith("accelerator")]
    assert {fields[c]["category"] for c in accelerator_columns} == {"gpu"}
    memory_columns = [column for column in accelerator_columns if column.startswith("accelerator_memory_")]
    assert memory_columns == ["accelerator_memory_min", "accelerator_memory_total"]
    assert {fields[c]["unit"] for c in memory_columns} == {"MiB"}


def test_meta_names_the_columns_for_people(db, api):
    names = {field["id"]: field["name"] for field in get_json(api, "/table/server/meta")["fields"]}

    assert names["vcpus"] == "vCPUs"
    assert names["api_reference"] == "API Reference"
    assert names["cpu_l1d_cache_total"] == "CPU L1D Cache Total"
    assert names["memory_ecc"] == "Memory ECC"
    assert names["server_id"] == "Server ID"


def test_meta_takes_no_parameters(db, http):
    response = http.get("/table/server/meta", {"columns": "vcpus"})

    assert response.status_code == 400


@pytest.mark.parametrize(("params", "queries"), [({}, 1), ({"columns": ["vcpus", "server_id"]}, 1)])
def test_select_is_one_query_whatever_the_number_of_servers(
    sync_upstream, api, django_assert_num_queries, params, queries
):
    catalog = UpstreamCatalog()
    catalog.vendor("v")
    for number in range(50):
        catalog.server("v", f"s{number}")
    sync_upstream(catalog)
    api.get("/table/server/meta")  # the catalog version is read once per process and sync

    with django_assert_num_queries(queries):
        rows = get_json(api, "/table/server/select", params)

    assert len(rows) == 50


def test_meta_needs_no_query(db, api, django_assert_num_queries):
    api.get("/table/server/meta")

    with django_assert_num_queries(0):
        assert get_json(api, "/table/server/meta")["fields"]


def test_the_openapi_document_lists_the_columns(db, api):
    schema = api.get("/openapi.json", HTTP_ACCEPT="application/json").json()

    [parameter] = schema["paths"]["/table/server/select"]["get"]["parameters"]

    assert parameter["name"] == "columns"
    assert parameter["schema"]["items"]["enum"] == table_columns(Server)
    assert parameter["description"]
