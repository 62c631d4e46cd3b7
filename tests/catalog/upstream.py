"""Build small upstream (sparecores-crawler) catalogs for tests, in the real schema.

catalog = UpstreamCatalog()
catalog.vendor("aws")
catalog.server("aws", "m5.large", vcpus=2, memory_amount=8192)
catalog.price("aws", "m5.large", price=0.096)
path = catalog.save(tmp_path / "catalog.db")          # or .to_sql_xz(...)
"""

import json
import lzma
import sqlite3
from pathlib import Path
from typing import Any

SCHEMA = (Path(__file__).parent / "upstream_schema.sql").read_text()
OBSERVED = "2026-01-15 21:49:48.232080"
SCHEMA_VERSION = "37c49fd74cce"


def _json(value: Any) -> str:
    return json.dumps(value)


class UpstreamCatalog:
    def __init__(self, schema_version: str = SCHEMA_VERSION):
        self.db = sqlite3.connect(":memory:")
        self.db.executescript(SCHEMA)
        self.db.execute("INSERT INTO zzz_alembic_version VALUES (?)", [schema_version])
        self.countries: set[str] = set()

    def insert(self, table: str, **values: Any) -> None:
        columns = ", ".join(values)
        marks = ", ".join("?" * len(values))
        self.db.execute(f'INSERT INTO "{table}" ({columns}) VALUES ({marks})', list(values.values()))

    def country(self, country_id: str = "US", continent: str = "North America") -> None:
        if country_id not in self.countries:
            self.countries.add(country_id)
            self.insert("country", country_id=country_id, continent=continent, status="ACTIVE", observed_at=OBSERVED)

    def compliance_framework(self, framework_id: str, vendors: tuple[str, ...] = ()) -> None:
        self.insert(
            "compliance_framework",
            compliance_framework_id=framework_id,
            name=framework_id.upper(),
            status="ACTIVE",
            observed_at=OBSERVED,
        )
        for vendor_id in vendors:
            self.insert(
                "vendor_compliance_link",
                vendor_id=vendor_id,
                compliance_framework_id=framework_id,
                status="ACTIVE",
                observed_at=OBSERVED,
            )

    def vendor(self, vendor_id: str, *, country_id: str = "US", regions: int = 1, **fields: Any) -> None:
        self.country(country_id)
        values = {
            "vendor_id": vendor_id,
            "name": vendor_id.upper(),
            "country_id": country_id,
            "founding_year": 2006,
            "status": "ACTIVE",
            "observed_at": OBSERVED,
        }
        values.update(fields)
        self.insert("vendor", **values)
        for number in range(1, regions + 1):
            self.region(vendor_id, f"r{number}", country_id=country_id)

    def region(self, vendor_id: str, region_id: str, *, country_id: str = "US", zones: int = 1, **fields: Any) -> None:
        values = {
            "vendor_id": vendor_id,
            "region_id": region_id,
            "name": region_id,
            "api_reference": region_id,
            "display_name": region_id.upper(),
            "aliases": _json([]),
            "country_id": country_id,
            "status": "ACTIVE",
            "observed_at": OBSERVED,
        }
        values.update(fields)
        self.insert("region", **values)
        for number in range(1, zones + 1):
            zone_id = f"{region_id}z{number}"
            self.insert(
                "zone",
                vendor_id=vendor_id,
                region_id=region_id,
                zone_id=zone_id,
                name=zone_id,
                api_reference=zone_id,
                display_name=zone_id,
                status="ACTIVE",
                observed_at=OBSERVED,
            )

    def server(self, vendor_id: str, server_id: str, **fields: Any) -> None:
        values = {
            "vendor_id": vendor_id,
            "server_id": server_id,
            "name": server_id,
            "api_reference": server_id,
            "display_name": server_id,
            "description": f"{server_id} server",
            "vcpus": 2,
            "cpu_allocation": "DEDICATED",
            "cpu_architecture": "X86_64",
            "cpu_flags": _json([]),
            "cpus": _json([]),
            "memory_amount": 4096,
            "accelerator_count": 0,
            "accelerators": _json([]),
            "storage_size": 0,
            "storages": _json([]),
            "inbound_traffic": 0,
            "outbound_traffic": 0,
            "ipv4": 0,
            "status": "ACTIVE",
            "observed_at": OBSERVED,
        }
        values.update(fields)
        self.insert("server", **values)

    def price(
        self,
        vendor_id: str,
        server_id: str,
        *,
        price: float,
        allocation: str = "ONDEMAND",
        region_id: str = "r1",
        zone_id: str | None = None,
        currency: str = "USD",
        tiers: list[dict] | None = None,
        status: str = "ACTIVE",
    ) -> None:
        self.insert(
            "server_price",
            vendor_id=vendor_id,
            region_id=region_id,
            zone_id=zone_id or f"{region_id}z1",
            server_id=server_id,
            operating_system="Linux",
            allocation=allocation,
            unit="HOUR",
            price=price,
            price_upfront=0,
            price_tiered=_json(tiers or []),
            currency=currency,
            status=status,
            observed_at=OBSERVED,
        )

    def benchmark(self, benchmark_id: str) -> None:
        self.insert(
            "benchmark",
            benchmark_id=benchmark_id,
            name=benchmark_id,
            framework=benchmark_id.split(":")[0],
            config_fields=_json({}),
            environment_fields=_json({}),
            higher_is_better=1,
            status="ACTIVE",
            observed_at=OBSERVED,
        )

    def score(
        self,
        vendor_id: str,
        server_id: str,
        benchmark_id: str,
        score: float,
        config: dict | None = None,
        *,
        resource_type: str = "SERVER",
    ):
        """A benchmark score of a server (or, with resource_type="DATABASE", of the managed database `server_id`)."""
        self.insert(
            "benchmark_score",
            vendor_id=vendor_id,
            benchmark_id=benchmark_id,
            resource_type=resource_type,
            resource_id=server_id,
            config=_json(config or {}),
            score=score,
            status="ACTIVE",
            observed_at=OBSERVED,
        )

    def storage(self, vendor_id: str, storage_id: str, **fields: Any) -> None:
        values = {
            "vendor_id": vendor_id,
            "storage_id": storage_id,
            "name": storage_id,
            "storage_type": "SSD",
            "status": "ACTIVE",
            "observed_at": OBSERVED,
        }
        values.update(fields)
        self.insert("storage", **values)

    def storage_price(
        self,
        vendor_id: str,
        storage_id: str,
        *,
        price: float,
        region_id: str = "r1",
        currency: str = "USD",
        tiers: list[dict] | None = None,
        status: str = "ACTIVE",
    ) -> None:
        self.insert(
            "storage_price",
            vendor_id=vendor_id,
            region_id=region_id,
            storage_id=storage_id,
            unit="GB_MONTH",
            price=price,
            price_upfront=0,
            price_tiered=_json(tiers or []),
            currency=currency,
            status=status,
            observed_at=OBSERVED,
        )

    def traffic_price(
        self,
        vendor_id: str,
        *,
        price: float,
        direction: str = "OUT",
        region_id: str = "r1",
        currency: str = "USD",
        tiers: list[dict] | None = None,
        status: str = "ACTIVE",
    ) -> None:
        self.insert(
            "traffic_price",
            vendor_id=vendor_id,
            region_id=region_id,
            direction=direction,
            unit="GB_MONTH",
            price=price,
            price_upfront=0,
            price_tiered=_json(tiers or []),
            currency=currency,
            status=status,
            observed_at=OBSERVED,
        )

    def database_storage(self, vendor_id: str, database_storage_id: str, **fields: Any) -> None:
        values = {
            "vendor_id": vendor_id,
            "database_storage_id": database_storage_id,
            "name": database_storage_id,
            "scope": "DATA",
            "min_size": 20,
            "max_size": 65536,
            "status": "ACTIVE",
            "observed_at": OBSERVED,
        }
        values.update(fields)
        self.insert("database_storage", **values)

    def database(self, vendor_id: str, database_id: str, **fields: Any) -> None:
        """A managed PostgreSQL offering; `ha`, `ha_strategy`, `security_features` and `engine_versions`
        may be given as lists."""
        values = {
            "vendor_id": vendor_id,
            "database_id": database_id,
            "name": database_id,
            "api_reference": database_id,
            "api_reference_object": {"instance_class": database_id},
            "display_name": database_id,
            "description": f"{database_id} database",
            "vcpus": 2,
            "memory_amount": 8192,
            "engine": "POSTGRESQL",
            "wire_protocol": "POSTGRESQL",
            "engine_versions": ["16", "17"],
            "auto_upgrade_versions": 1,
            "ha": ["multi-zone", "none"],
            "ha_strategy": ["passive-standby", "none"],
            "max_read_replicas": 5,
            "storage_size": 0,
            "storage_extra_min": 20,
            "storage_extra_max": 65536,
            "storage_extra_autosize": 1,
            "disk_encryption": 1,
            "scheduled_backups": 1,
            "continuous_backups": 7,
            "sla": 99.95,
            "security_features": ["ip-filtering", "enforced-tls"],
            "status": "ACTIVE",
            "observed_at": OBSERVED,
        }
        values.update(fields)
        for column in (
            "api_reference_object",
            "engine_versions",
            "ha",
            "ha_strategy",
            "security_features",
            "compatible_storage_ids",
        ):
            if column in values and not isinstance(values[column], str) and values[column] is not None:
                values[column] = _json(values[column])
        self.insert("database", **values)

    def database_price(
        self,
        vendor_id: str,
        database_id: str,
        *,
        price: float,
        ha: str = "NONE",
        ha_strategy: str = "NONE",
        allocation: str = "ONDEMAND",
        region_id: str = "r1",
        currency: str = "USD",
        unit: str = "HOUR",
        tiers: list[dict] | None = None,
        status: str = "ACTIVE",
    ) -> None:
        self.insert(
            "database_price",
            vendor_id=vendor_id,
            region_id=region_id,
            database_id=database_id,
            allocation=allocation,
            ha=ha,
            ha_strategy=ha_strategy,
            unit=unit,
            price=price,
            price_upfront=0,
            price_tiered=_json(tiers or []),
            currency=currency,
            status=status,
            observed_at=OBSERVED,
        )

    def database_storage_price(
        self,
        vendor_id: str,
        database_storage_id: str,
        *,
        price: float,
        region_id: str = "r1",
        currency: str = "USD",
        status: str = "ACTIVE",
    ) -> None:
        self.insert(
            "database_storage_price",
            vendor_id=vendor_id,
            region_id=region_id,
            database_storage_id=database_storage_id,
            unit="GB_MONTH",
            price=price,
            price_upfront=0,
            price_tiered=_json([]),
            currency=currency,
            status=status,
            observed_at=OBSERVED,
        )

    def drop_database_tables(self) -> None:
        """As a catalog of a crawler before managed databases (sparecores-crawler < 0.8.3)."""
        for table in ("database_storage_price", "database_price", "database", "database_storage"):
            self.db.execute(f'DROP TABLE "{table}"')

    def columns(self, table: str) -> list[str]:
        """The upstream table's column names, in order."""
        return [row[1] for row in self.db.execute(f'PRAGMA table_info("{table}")')]

    def count(self, table: str) -> int:
        return self.db.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]

    def tables(self) -> list[str]:
        """The catalog tables (not the alembic bookkeeping one)."""
        rows = self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name != 'zzz_alembic_version'")
        return [name for (name,) in rows]

    def save(self, path: Path) -> Path:
        """Write the catalog as a SQLite database file."""
        self.db.commit()
        target = sqlite3.connect(path)
        self.db.backup(target)
        target.close()
        return path

    def dump(self) -> str:
        return "\n".join(self.db.iterdump())

    def to_sql(self, path: Path) -> Path:
        path.write_text(self.dump())
        return path

    def to_sql_xz(self, path: Path) -> Path:
        with lzma.open(path, "wt") as handle:
            handle.write(self.dump())
        return path


def sample_catalog() -> UpstreamCatalog:
    """A catalog with a little of everything the API filters on."""
    catalog = UpstreamCatalog()
    catalog.vendor("aws", regions=2)
    catalog.vendor("hcloud", country_id="DE")
    catalog.vendor("gcp")
    catalog.compliance_framework("hipaa", vendors=("aws", "gcp"))
    catalog.compliance_framework("iso27001", vendors=("hcloud",))
    catalog.benchmark("stress_ng:bestn")
    catalog.benchmark("stress_ng:best1")

    catalog.server(
        "aws",
        "t3.micro",
        vcpus=2,
        memory_amount=1024,
        cpu_allocation="BURSTABLE",
        cpu_manufacturer="Intel",
        cpu_family="Xeon",
        cpu_speed=2.5,
        hw_virt=0,
        cpu_l1d_cache=32,
        cpu_l2_cache=1024,
        cpu_l3_cache=33792,
        cpu_l3_cache_total=33792,
    )
    catalog.price("aws", "t3.micro", price=0.0104)
    catalog.price("aws", "t3.micro", price=0.0031, allocation="SPOT", region_id="r2")

    catalog.server(
        "aws",
        "m5.large",
        api_reference="m5.large",
        vcpus=2,
        memory_amount=8192,
        cpu_manufacturer="Intel",
        cpu_family="Xeon",
        cpu_speed=3.1,
        hw_virt=1,
        storage_size=0,
        network_speed_baseline=0.75,
        network_speed_max=10,
    )
    catalog.price("aws", "m5.large", price=0.096)
    catalog.price("aws", "m5.large", price=0.035, allocation="SPOT")
    catalog.score("aws", "m5.large", "stress_ng:bestn", 4000)
    catalog.score("aws", "m5.large", "stress_ng:best1", 2100)

    catalog.server(
        "aws",
        "p3.8xlarge",
        vcpus=32,
        memory_amount=249856,
        accelerator_count=4,
        accelerator_memory_min=16384,
        accelerator_memory_total=65536,
        accelerator_manufacturer="NVIDIA",
        accelerator_family="Volta",
        accelerator_model="V100",
        cpu_manufacturer="Intel",
        cpu_family="Xeon",
        network_speed_baseline=10,
        network_speed_max=10,
    )
    catalog.price("aws", "p3.8xlarge", price=12.24)
    catalog.score("aws", "p3.8xlarge", "stress_ng:bestn", 40000)

    catalog.server(
        "hcloud",
        "cax11",
        vcpus=2,
        memory_amount=4096,
        cpu_architecture="ARM64",
        cpu_manufacturer="Ampere",
        cpu_family="Altra",
        cpu_allocation="SHARED",
        cpu_flags=_json(["fp", "asimd", "aes"]),
        storage_size=40,
        storage_type="SSD",
    )
    catalog.price(
        "hcloud",
        "cax11",
        price=0.0063,
        currency="EUR",
        tiers=[{"lower": 0, "upper": 672, "price": 0.0063}, {"lower": 672, "upper": "Infinity", "price": 0}],
    )
    catalog.score("hcloud", "cax11", "stress_ng:bestn", 5000)

    # GCP ids are numbers; the API reference is the name people know.
    catalog.server(
        "gcp",
        "1234",
        api_reference="n2-standard-8",
        name="n2-standard-8",
        vcpus=8,
        memory_amount=32768,
        cpu_manufacturer="AMD",
        cpu_family="EPYC",
        storage_type="NVME_SSD",
        storage_size=375,
    )
    catalog.price("gcp", "1234", price=0.3885)
    catalog.price("gcp", "1234", price=0.0971, allocation="SPOT")
    catalog.score("gcp", "1234", "stress_ng:bestn", 16000)

    catalog.server("gcp", "retired-1", vcpus=4, memory_amount=16384, status="INACTIVE")
    catalog.price("gcp", "retired-1", price=0.2, status="INACTIVE")
    return catalog


def servers_catalog(servers: dict[str, dict[str, Any]], *, vendor_id: str = "v", price: float = 0.1) -> UpstreamCatalog:
    """One vendor with the given servers ({server_id: column values}), each with an on-demand price."""
    catalog = UpstreamCatalog()
    catalog.vendor(vendor_id)
    for server_id, fields in servers.items():
        catalog.server(vendor_id, server_id, **fields)
        catalog.price(vendor_id, server_id, price=price)
    return catalog


def databases_catalog() -> UpstreamCatalog:
    """`sample_catalog()` with managed databases: aws db.m5.large (on m5.large) priced in two regions, one
    currency other than USD and a monthly cap (hcloud-like tiers on gcp), HA levels and strategies; an
    inactive price, a non-hourly price and a retired database that must not count; database storages."""
    catalog = sample_catalog()
    catalog.database_storage("aws", "gp3")
    catalog.database_storage("aws", "backup", scope="BACKUP", redundancy="LRS")
    catalog.database_storage_price("aws", "gp3", price=0.115)
    catalog.database_storage_price("aws", "gp3", price=0.138, region_id="r2")
    catalog.database_storage_price("aws", "backup", price=0.095)

    catalog.database("aws", "db.m5.large", server_id="m5.large", compatible_storage_ids=["gp3"])
    catalog.database_price("aws", "db.m5.large", price=0.178)
    catalog.database_price("aws", "db.m5.large", price=0.356, ha="MULTI_ZONE", ha_strategy="PASSIVE_STANDBY")
    catalog.database_price("aws", "db.m5.large", price=0.171, region_id="r2")
    catalog.database_price(
        "aws",
        "db.m5.large",
        price=0.05,
        region_id="r2",
        status="INACTIVE",
        ha="MULTI_ZONE",
        ha_strategy="PASSIVE_STANDBY",
    )
    catalog.database_price("aws", "db.m5.large", price=0.01, region_id="r2", unit="MONTH", ha="SINGLE_ZONE")

    catalog.database(
        "gcp",
        "db-custom-2-8192",
        ha=["single-zone", "none"],
        ha_strategy=["readable-cluster", "none"],
        security_features=["private-network"],
    )
    catalog.database_price(
        "gcp",
        "db-custom-2-8192",
        price=0.2,
        currency="EUR",
        tiers=[{"lower": 0, "upper": 500, "price": 0.2}, {"lower": 500, "upper": "Infinity", "price": 0}],
    )
    catalog.database_price(
        "gcp", "db-custom-2-8192", price=0.4, currency="EUR", ha="SINGLE_ZONE", ha_strategy="READABLE_CLUSTER"
    )

    catalog.database("gcp", "db-retired", status="RETIRED", vcpus=None, memory_amount=None)
    catalog.database_price("gcp", "db-retired", price=0.3, status="INACTIVE")
    catalog.database("gcp", "db-leaving", status="PLANNED_FOR_RETIREMENT")
    return catalog
