"""/openapi.json, /docs and /redoc."""

import json

import pytest

# Exactly the parameters of the Spare Cores API's GET /servers (sc-keeper 0.3.6).
SERVERS_PARAMETERS = {
    "add_total_count_header", "architecture", "benchmark_config", "benchmark_id", "benchmark_score_min",
    "benchmark_score_per_price_min", "benchmark_score_per_price_stressng_cpu_min", "benchmark_score_stressng_cpu_min",
    "best_price_allocation", "compliance_framework", "countries", "cpu_allocation", "cpu_family", "cpu_l1d_cache_min",
    "cpu_l1d_cache_total_min", "cpu_l1i_cache_min", "cpu_l1i_cache_total_min", "cpu_l2_cache_min",
    "cpu_l2_cache_total_min", "cpu_l3_cache_min", "cpu_l3_cache_total_min", "cpu_manufacturer", "cpu_speed_min",
    "currency", "extra_storage_size", "extra_storage_type", "gpu_family", "gpu_manufacturer", "gpu_memory_min",
    "gpu_memory_total", "gpu_min", "gpu_model", "hw_virt", "limit", "memory_min", "monthly_inbound_traffic",
    "monthly_outbound_traffic", "network_speed_baseline_min", "network_speed_max_min",
    "network_storage_speed_baseline_min", "network_storage_speed_max_min", "only_active", "order_by", "order_dir",
    "page", "partial_name_or_id", "regions", "storage_size", "storage_type", "vcpus_max", "vcpus_min", "vendor",
    "vendor_regions",
    # The newest Spare Cores API's (issue 17).
    "benchmark_score_max", "benchmark_score_per_vcpu_min", "cpu_flags", "cpu_hyperthreading", "gpu_max",
    "memory_max", "memory_per_vcpu_max", "memory_per_vcpu_min", "only_orderable", "price_max", "storage_count_min",
}  # fmt: skip
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


@pytest.mark.parametrize(("path", "script"), [("/docs", "/docs?script="), ("/redoc", None)])
def test_the_documentation_pages_are_html(db, api, path, script):
    response = api.get(path)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    if script:
        # Swagger UI's start-up script is a file of its own (no inline script: keeper/api/docs.py).
        assert f'<script src="{script}">'.encode() in response.content
        response = api.get(script)
        assert response.status_code == 200
        assert response["Content-Type"].startswith("application/javascript")
    assert b"openapi.json" in response.content


def operations(schema: dict) -> dict[str, dict]:
    return {
        f"{method.upper()} {path}": operation
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
    }


def test_every_operation_documents_its_errors_with_the_error_body(schema):
    undocumented = {}
    for name, operation in operations(schema).items():
        expected = {"400", "401", "403", "429"} | ({"404"} if "{" in name else set())
        missing = sorted(
            code
            for code in expected
            if operation["responses"].get(code, {}).get("content", {}).get("application/json", {}).get("schema")
            != {"$ref": "#/components/schemas/Error"}
        )
        if missing:
            undocumented[name] = missing

    assert undocumented == {}
    assert set(schema["components"]["schemas"]["Error"]["required"]) == {"detail", "code"}


def test_an_operation_s_own_error_body_is_documented_beside_the_shared_one(schema):
    # /healthcheck answers 503 with its health report, but the server's connection limit answers with an Error.
    body = operations(schema)["GET /healthcheck"]["responses"]["503"]["content"]["application/json"]["schema"]

    assert body == {"anyOf": [{"$ref": "#/components/schemas/Health"}, {"$ref": "#/components/schemas/Error"}]}


def test_a_429_documents_retry_after(schema):
    assert operations(schema)["GET /servers"]["responses"]["429"]["headers"]["Retry-After"]["required"] is True


def test_vendor_and_compliance_framework_list_the_catalog_values(loaded_catalog, schema):
    servers = servers_parameters(schema)
    regions = {parameter["name"]: parameter for parameter in schema["paths"]["/regions"]["get"]["parameters"]}

    assert servers["vendor"]["schema"]["items"]["enum"] == ["aws", "gcp", "hcloud"]
    assert regions["vendor"]["schema"]["items"]["enum"] == ["aws", "gcp", "hcloud"]
    assert servers["compliance_framework"]["schema"]["items"]["enum"] == ["hipaa", "iso27001"]


def test_vendor_takes_no_value_while_the_catalog_is_empty(schema):
    # An empty enum is not valid OpenAPI; "no item at all" says the same.
    assert servers_parameters(schema)["vendor"]["schema"]["maxItems"] == 0


def test_currency_is_an_enumeration_everywhere(schema):
    detail = {p["name"]: p for p in schema["paths"]["/server/{vendor}/{server}"]["get"]["parameters"]}

    assert {"USD", "EUR"} <= set(servers_parameters(schema)["currency"]["schema"]["enum"])
    assert {"USD", "EUR"} <= set(detail["currency"]["schema"]["enum"])


def test_numbers_document_the_bounds_the_api_applies(schema):
    parameters = servers_parameters(schema)

    def bounds(name: str) -> tuple[float, float]:
        return parameters[name]["schema"]["minimum"], parameters[name]["schema"]["maximum"]

    assert bounds("vcpus_max") == (1, 256)
    assert bounds("gpu_min") == (-(10**15), 10**15)
    assert bounds("limit") == (-1, 10_000)
    assert parameters["limit"]["schema"]["not"] == {"enum": [0]}


def test_free_text_documents_its_length_and_refuses_nul(schema):
    parameters = servers_parameters(schema)

    assert parameters["partial_name_or_id"]["schema"]["maxLength"] == 200
    assert parameters["cpu_family"]["schema"]["items"]["maxLength"] == 200
    assert parameters["cpu_family"]["schema"]["items"]["pattern"] == r"^[^\x00]*$"


def test_no_format_parameter_is_documented(schema):
    documented = {
        parameter["name"] for operation in operations(schema).values() for parameter in operation.get("parameters", [])
    }

    assert "format" not in documented
