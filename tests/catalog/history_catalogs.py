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
