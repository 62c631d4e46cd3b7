def test_sample_catalog_is_served(loaded_catalog, api):
    response = api.get("/servers", {"limit": -1})
    assert response.status_code == 200
    ids = {(row["vendor_id"], row["server_id"]) for row in response.json()}
    assert ids == {
        ("aws", "t3.micro"),
        ("aws", "m5.large"),
        ("aws", "p3.8xlarge"),
        ("hcloud", "cax11"),
        ("gcp", "1234"),
    }
