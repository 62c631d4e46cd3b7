"""Two catalogs for the history tests: the sample catalog, and a copy changed in known ways.

`changed_catalog()` is `sample_catalog()` re-crawled (every observed_at moves on) with:
- prices up and down: aws m5.large on-demand 0.096 -> 0.1, gcp 1234 spot 0.0971 -> 0.09;
- a server retired: aws t3.micro INACTIVE, and its spot price in r2 too;
- a server removed: hcloud cax11, with its price and its score;
- a region added: aws r3 (with zone r3z1), and an m5.large on-demand price there (0.11);
- columns changed: aws p3.8xlarge hw_virt NULL -> true and network_speed_max 10 -> 25,
  gcp 1234 cpu_flags [] -> ["avx2"];
- a benchmark score improved: gcp 1234's best stress_ng:bestn 16000 -> 17000 (a second
  configuration), while a lower score of another configuration changes nothing.
"""

from tests.catalog.upstream import UpstreamCatalog, sample_catalog

RECRAWLED = "2026-02-01 06:00:00.000000"


def _update(db, table: str, assignments: str, vendor: str, server: str, allocation: str | None = None) -> None:
    condition = "vendor_id = ? AND server_id = ?" + (" AND allocation = ?" if allocation else "")
    params = [vendor, server, *([allocation] if allocation else [])]
    db.execute(f"UPDATE {table} SET {assignments} WHERE {condition}", params)


def changed_catalog() -> UpstreamCatalog:
    catalog = sample_catalog()
    db = catalog.db
    _update(db, "server_price", "price = 0.1", "aws", "m5.large", "ONDEMAND")
    _update(db, "server_price", "price = 0.09", "gcp", "1234", "SPOT")
    _update(db, "server", "status = 'INACTIVE'", "aws", "t3.micro")
    _update(db, "server_price", "status = 'INACTIVE'", "aws", "t3.micro", "SPOT")
    for table in ("server", "server_price"):
        db.execute(f"DELETE FROM {table} WHERE vendor_id = 'hcloud' AND server_id = 'cax11'")
    db.execute("DELETE FROM benchmark_score WHERE vendor_id = 'hcloud' AND resource_id = 'cax11'")
    catalog.region("aws", "r3")
    catalog.price("aws", "m5.large", price=0.11, region_id="r3")
    _update(db, "server", "hw_virt = 1, network_speed_max = 25", "aws", "p3.8xlarge")
    _update(db, "server", """cpu_flags = '["avx2"]'""", "gcp", "1234")
    catalog.score("gcp", "1234", "stress_ng:bestn", 17000, config={"cores": 8})
    catalog.score("gcp", "1234", "stress_ng:bestn", 9000, config={"cores": 4})
    for table in catalog.tables():
        db.execute(f'UPDATE "{table}" SET observed_at = ?', [RECRAWLED])
    return catalog


def _ipv4_price(catalog: UpstreamCatalog, vendor: str, region: str, price: float) -> None:
    catalog.insert(
        "ipv4_price",
        vendor_id=vendor,
        region_id=region,
        unit="HOUR",
        price=price,
        price_upfront=0,
        price_tiered="[]",
        currency="USD",
        status="ACTIVE",
        observed_at=catalog.db.execute("SELECT observed_at FROM vendor LIMIT 1").fetchone()[0],
    )


def every_table_catalog() -> UpstreamCatalog:
    """`sample_catalog()` with rows in every tracked table that `every_table_changed()` can remove or change:
    a vendor, a region and a benchmark with nothing else, storages with prices, traffic and IPv4 prices."""
    catalog = sample_catalog()
    catalog.vendor("gone", regions=0)
    catalog.region("aws", "r9", zones=0)
    catalog.benchmark("gone:bench")
    for storage in ("gp2", "gp3"):
        catalog.storage("aws", storage)
        catalog.storage_price("aws", storage, price=0.1)
    catalog.traffic_price("aws", price=0.09, direction="OUT")
    catalog.traffic_price("aws", price=0.0, direction="IN")
    _ipv4_price(catalog, "aws", "r1", 0.005)
    _ipv4_price(catalog, "gcp", "r1", 0.004)
    for storage in ("s-gone", "s-keep"):
        catalog.database_storage("aws", storage)
    catalog.database_storage_price("aws", "s-keep", price=0.115)
    catalog.database_storage_price("aws", "s-keep", price=0.13, region_id="r2")
    for database in ("db.a", "db.b"):
        catalog.database("aws", database)
    catalog.database_price("aws", "db.b", price=0.178)
    catalog.database_price("aws", "db.b", price=0.356, ha="MULTI_ZONE", ha_strategy="PASSIVE_STANDBY")
    return catalog


# (table, kind) -> the natural key of the one record `every_table_changed()` makes of that kind.
EVERY_TABLE_CHANGES: dict[tuple[str, str], dict[str, str]] = {
    ("vendor", "removed"): {"vendor_id": "gone"},
    ("vendor", "changed"): {"vendor_id": "hcloud"},
    ("vendor", "added"): {"vendor_id": "ovh"},
    ("region", "removed"): {"vendor_id": "aws", "region_id": "r9"},
    ("region", "changed"): {"vendor_id": "gcp", "region_id": "r1"},
    ("region", "added"): {"vendor_id": "aws", "region_id": "r3"},
    ("zone", "removed"): {"vendor_id": "aws", "region_id": "r2", "zone_id": "r2z1"},
    ("zone", "changed"): {"vendor_id": "gcp", "region_id": "r1", "zone_id": "r1z1"},
    ("zone", "added"): {"vendor_id": "aws", "region_id": "r1", "zone_id": "r1z2"},
    ("storage", "removed"): {"vendor_id": "aws", "storage_id": "gp3"},
    ("storage", "changed"): {"vendor_id": "aws", "storage_id": "gp2"},
    ("storage", "added"): {"vendor_id": "aws", "storage_id": "io2"},
    ("benchmark", "removed"): {"benchmark_id": "gone:bench"},
    ("benchmark", "changed"): {"benchmark_id": "stress_ng:best1"},
    ("benchmark", "added"): {"benchmark_id": "new:bench"},
    ("server", "removed"): {"vendor_id": "gcp", "server_id": "retired-1"},
    ("server", "changed"): {"vendor_id": "aws", "server_id": "m5.large"},
    ("server", "added"): {"vendor_id": "aws", "server_id": "c5.large"},
    ("server_price", "removed"): {
        "vendor_id": "gcp",
        "region_id": "r1",
        "zone_id": "r1z1",
        "server_id": "retired-1",
        "allocation": "ondemand",
    },
    ("server_price", "changed"): {
        "vendor_id": "aws",
        "region_id": "r1",
        "zone_id": "r1z1",
        "server_id": "t3.micro",
        "allocation": "ondemand",
    },
    ("server_price", "added"): {
        "vendor_id": "aws",
        "region_id": "r1",
        "zone_id": "r1z1",
        "server_id": "c5.large",
        "allocation": "ondemand",
    },
    ("storage_price", "removed"): {"vendor_id": "aws", "region_id": "r1", "storage_id": "gp3"},
    ("storage_price", "changed"): {"vendor_id": "aws", "region_id": "r1", "storage_id": "gp2"},
    ("storage_price", "added"): {"vendor_id": "aws", "region_id": "r1", "storage_id": "io2"},
    ("traffic_price", "removed"): {"vendor_id": "aws", "region_id": "r1", "direction": "inbound"},
    ("traffic_price", "changed"): {"vendor_id": "aws", "region_id": "r1", "direction": "outbound"},
    ("traffic_price", "added"): {"vendor_id": "gcp", "region_id": "r1", "direction": "outbound"},
    ("ipv4_price", "removed"): {"vendor_id": "gcp", "region_id": "r1"},
    ("ipv4_price", "changed"): {"vendor_id": "aws", "region_id": "r1"},
    ("ipv4_price", "added"): {"vendor_id": "hcloud", "region_id": "r1"},
    ("benchmark_score", "removed"): {"vendor_id": "hcloud", "server_id": "cax11", "benchmark_id": "stress_ng:bestn"},
    ("benchmark_score", "changed"): {
        "vendor_id": "aws",
        "server_id": "p3.8xlarge",
        "benchmark_id": "stress_ng:bestn",
    },
    ("benchmark_score", "added"): {"vendor_id": "aws", "server_id": "c5.large", "benchmark_id": "stress_ng:bestn"},
    ("database_storage", "removed"): {"vendor_id": "aws", "database_storage_id": "s-gone"},
    ("database_storage", "changed"): {"vendor_id": "aws", "database_storage_id": "s-keep"},
    ("database_storage", "added"): {"vendor_id": "aws", "database_storage_id": "s-new"},
    ("database", "removed"): {"vendor_id": "aws", "database_id": "db.a"},
    ("database", "changed"): {"vendor_id": "aws", "database_id": "db.b"},
    ("database", "added"): {"vendor_id": "aws", "database_id": "db.c"},
    ("database_price", "removed"): {
        "vendor_id": "aws",
        "region_id": "r1",
        "database_id": "db.b",
        "allocation": "ondemand",
        "ha": "multi-zone",
        "ha_strategy": "passive-standby",
    },
    ("database_price", "changed"): {
        "vendor_id": "aws",
        "region_id": "r1",
        "database_id": "db.b",
        "allocation": "ondemand",
        "ha": "none",
        "ha_strategy": "none",
    },
    ("database_price", "added"): {
        "vendor_id": "aws",
        "region_id": "r1",
        "database_id": "db.c",
        "allocation": "ondemand",
        "ha": "none",
        "ha_strategy": "none",
    },
    ("database_storage_price", "removed"): {"vendor_id": "aws", "region_id": "r2", "database_storage_id": "s-keep"},
    ("database_storage_price", "changed"): {"vendor_id": "aws", "region_id": "r1", "database_storage_id": "s-keep"},
    ("database_storage_price", "added"): {"vendor_id": "aws", "region_id": "r1", "database_storage_id": "s-new"},
}


def every_table_changed() -> UpstreamCatalog:
    """`every_table_catalog()` re-crawled with, in every tracked table, one row removed, one column of one
    row changed and one row added: exactly the records EVERY_TABLE_CHANGES lists."""
    catalog = every_table_catalog()
    db = catalog.db
    db.execute("DELETE FROM vendor WHERE vendor_id = 'gone'")
    db.execute("UPDATE vendor SET founding_year = 2021 WHERE vendor_id = 'hcloud'")
    catalog.vendor("ovh", regions=0)
    db.execute("DELETE FROM region WHERE vendor_id = 'aws' AND region_id = 'r9'")
    db.execute("UPDATE region SET display_name = 'IOWA' WHERE vendor_id = 'gcp' AND region_id = 'r1'")
    catalog.region("aws", "r3", zones=0)
    db.execute("DELETE FROM zone WHERE vendor_id = 'aws' AND zone_id = 'r2z1'")
    db.execute("UPDATE zone SET display_name = 'Iowa 1' WHERE vendor_id = 'gcp' AND zone_id = 'r1z1'")
    db.execute(
        "INSERT INTO zone (vendor_id, region_id, zone_id, name, api_reference, display_name, status, observed_at) "
        "SELECT vendor_id, region_id, 'r1z2', 'r1z2', 'r1z2', 'r1z2', status, observed_at FROM zone "
        "WHERE vendor_id = 'aws' AND zone_id = 'r1z1'"
    )
    db.execute("DELETE FROM storage WHERE storage_id = 'gp3'")
    db.execute("DELETE FROM storage_price WHERE storage_id = 'gp3'")
    db.execute("UPDATE storage SET max_iops = 16000 WHERE storage_id = 'gp2'")
    db.execute("UPDATE storage_price SET price = 0.08 WHERE storage_id = 'gp2'")
    catalog.storage("aws", "io2")
    catalog.storage_price("aws", "io2", price=0.125)
    db.execute("DELETE FROM benchmark WHERE benchmark_id = 'gone:bench'")
    db.execute("UPDATE benchmark SET name = 'single core' WHERE benchmark_id = 'stress_ng:best1'")
    catalog.benchmark("new:bench")
    for table in ("server", "server_price"):
        db.execute(f"DELETE FROM {table} WHERE vendor_id = 'gcp' AND server_id = 'retired-1'")
    _update(db, "server", "vcpus = 4", "aws", "m5.large")
    _update(db, "server_price", "price = 0.011", "aws", "t3.micro", "ONDEMAND")
    catalog.server("aws", "c5.large", vcpus=2, memory_amount=4096)
    catalog.price("aws", "c5.large", price=0.085)
    catalog.score("aws", "c5.large", "stress_ng:bestn", 4500)
    db.execute("DELETE FROM benchmark_score WHERE vendor_id = 'hcloud' AND resource_id = 'cax11'")
    db.execute("UPDATE benchmark_score SET score = 41000 WHERE vendor_id = 'aws' AND resource_id = 'p3.8xlarge'")
    db.execute("DELETE FROM traffic_price WHERE vendor_id = 'aws' AND direction = 'IN'")
    db.execute("UPDATE traffic_price SET price = 0.08 WHERE vendor_id = 'aws' AND direction = 'OUT'")
    catalog.traffic_price("gcp", price=0.12, direction="OUT")
    db.execute("DELETE FROM ipv4_price WHERE vendor_id = 'gcp'")
    db.execute("UPDATE ipv4_price SET price = 0.006 WHERE vendor_id = 'aws'")
    _ipv4_price(catalog, "hcloud", "r1", 0.001)
    db.execute("DELETE FROM database_storage WHERE database_storage_id = 's-gone'")
    db.execute("UPDATE database_storage SET max_iops = 16000 WHERE database_storage_id = 's-keep'")
    catalog.database_storage("aws", "s-new")
    db.execute("DELETE FROM database_storage_price WHERE region_id = 'r2'")
    db.execute("UPDATE database_storage_price SET price = 0.12 WHERE database_storage_id = 's-keep'")
    catalog.database_storage_price("aws", "s-new", price=0.2)
    db.execute("DELETE FROM database WHERE database_id = 'db.a'")
    db.execute("UPDATE database SET vcpus = 4 WHERE database_id = 'db.b'")
    catalog.database("aws", "db.c")
    db.execute("DELETE FROM database_price WHERE ha = 'MULTI_ZONE'")
    db.execute("UPDATE database_price SET price = 0.19 WHERE database_id = 'db.b'")
    catalog.database_price("aws", "db.c", price=0.25)
    for table in catalog.tables():
        db.execute(f'UPDATE "{table}" SET observed_at = ?', [RECRAWLED])
    return catalog
