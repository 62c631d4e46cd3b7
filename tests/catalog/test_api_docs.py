"""/openapi.json, /docs and /redoc."""

import json

import pytest

SERVERS_PARAMETERS = {
    "partial_name_or_id",
    "vcpus_min",
    "vcpus_max",
    "architecture",
    "cpu_manufacturer",
    "cpu_family",
    "cpu_allocation",
    "cpu_speed_min",
    "cpu_l1d_cache_min",
    "cpu_l1d_cache_total_min",
    "cpu_l1i_cache_min",
    "cpu_l1i_cache_total_min",
    "cpu_l2_cache_min",
    "cpu_l2_cache_total_min",
    "cpu_l3_cache_min",
    "cpu_l3_cache_total_min",
    "hw_virt",
    "memory_min",
    "network_speed_baseline_min",
    "network_speed_max_min",
    "only_active",
    "vendor",
    "compliance_framework",
    "storage_size",
    "storage_type",
    "gpu_min",
    "gpu_memory_min",
    "gpu_memory_total",
    "gpu_manufacturer",
    "gpu_family",
    "gpu_model",
    "benchmark_score_stressng_cpu_min",
    "benchmark_score_per_price_stressng_cpu_min",
    "currency",
    "best_price_allocation",
    "order_by",
    "order_dir",
    "limit",
    "page",
    "add_total_count_header",
}
TABLES = ["country", "compliance_framework", "vendor", "region", "zone", "server", "storage", "benchmark"]
CATALOG_PATHS = {
    "/servers",
    "/server/{vendor}/{server}",
    "/v2/server/{vendor}/{server}",
    "/regions",
    "/stats",
    "/healthcheck",
    *(f"/table/{name}" for name in TABLES),
}


@pytest.fixture
def schema(db, api) -> dict:
    response = api.get("/openapi.json", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    return json.loads(response.content)


def servers_parameters(schema: dict) -> dict[str, dict]:
    return {parameter["name"]: parameter for parameter in schema["paths"]["/servers"]["get"]["parameters"]}


def test_openapi_json_is_served_as_json(db, api):
    response = api.get("/openapi.json")

    assert response.status_code == 200
    assert "json" in response["Content-Type"]
    assert json.loads(response.content)["openapi"].startswith("3.")


def test_openapi_lists_every_catalog_endpoint(schema):
    assert CATALOG_PATHS <= set(schema["paths"])


def test_openapi_documents_every_servers_parameter(schema):
    parameters = servers_parameters(schema)

    assert set(parameters) == SERVERS_PARAMETERS
    undescribed = sorted(name for name, parameter in parameters.items() if not parameter.get("description", "").strip())
    assert undescribed == []


def test_openapi_documents_repeatable_parameters_as_arrays(schema):
    parameters = servers_parameters(schema)

    repeatable = ["vendor", "architecture", "cpu_allocation", "cpu_manufacturer", "storage_type", "gpu_model"]
    for name in repeatable:
        assert parameters[name]["schema"]["type"] == "array", name
        assert parameters[name].get("explode", True), name


FRACTIONAL = {
    "memory_min": 0.5,
    "gpu_memory_min": 0.5,
    "gpu_memory_total": 1.5,
    "cpu_l3_cache_min": 1.5,
    "cpu_l3_cache_total_min": 1.5,
    "storage_size": 0.5,
    "gpu_min": 0.5,
    "cpu_speed_min": 2.5,
}


def test_openapi_documents_parameters_that_take_fractions_as_numbers(schema, api):
    for parameter, value in FRACTIONAL.items():
        assert api.get("/servers", {parameter: value}).status_code == 200, f"the API takes {parameter}={value}"
    parameters = servers_parameters(schema)

    types = {parameter: parameters[parameter]["schema"]["type"] for parameter in FRACTIONAL}

    assert types == dict.fromkeys(FRACTIONAL, "number")


def test_openapi_documents_booleans_as_booleans(schema):
    parameters = servers_parameters(schema)

    for name in ("only_active", "hw_virt", "add_total_count_header"):
        assert parameters[name]["schema"]["type"] == "boolean", name


def test_openapi_documents_the_enumerations(schema):
    parameters = servers_parameters(schema)

    assert set(parameters["best_price_allocation"]["schema"]["enum"]) == {
        "ANY",
        "SPOT_ONLY",
        "ONDEMAND_ONLY",
        "MONTHLY",
    }
    assert set(parameters["order_dir"]["schema"]["enum"]) == {"asc", "desc"}
    assert {"min_price", "score_per_price", "vcpus"} <= set(parameters["order_by"]["schema"]["enum"])


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_the_documentation_pages_are_html(db, api, path):
    response = api.get(path)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert b"openapi.json" in response.content
