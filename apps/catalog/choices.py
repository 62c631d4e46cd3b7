"""Enumerations of the sparecores-crawler schema.

Upstream's SQLite files store the upper-case member *names* (``ACTIVE``, ``X86_64``), while its
API answers with the *values* (``active``, ``x86_64``). Keeper stores the values, so every answer
spells them as the Spare Cores API does with no per-row mapping; the importer translates names
to values as it copies (UPSTREAM_NAMES), and filters accept either spelling.
"""

from django.db import models


class Status(models.TextChoices):
    ACTIVE = "active", "active"
    INACTIVE = "inactive", "inactive"


class DatabaseStatus(models.TextChoices):
    """A managed database's or a server's status: upstream's status enumeration since sparecores-crawler 0.9.2,
    which adds the retirement states (prices and the other tables keep `Status`)."""

    ACTIVE = "active", "active"
    INACTIVE = "inactive", "inactive"
    PLANNED_FOR_RETIREMENT = "planned_for_retirement", "planned for retirement"
    RETIRED = "retired", "retired"


# Orderable: what /databases lists by default (`only_orderable`), as the newest Spare Cores API does.
ORDERABLE_DATABASE_STATUSES = (DatabaseStatus.ACTIVE, DatabaseStatus.PLANNED_FOR_RETIREMENT)
# The same for servers: what /servers lists by default (`only_orderable`).
ORDERABLE_SERVER_STATUSES = ORDERABLE_DATABASE_STATUSES


class DatabaseEngine(models.TextChoices):
    POSTGRESQL = "postgresql", "PostgreSQL"


class DatabaseWireProtocol(models.TextChoices):
    POSTGRESQL = "postgresql", "PostgreSQL"


class DatabaseHaLevel(models.TextChoices):
    """High-availability levels; a database's `ha` lists them as these values, its prices name one each."""

    NONE = "none", "none"
    SINGLE_ZONE = "single-zone", "single-zone"
    MULTI_ZONE = "multi-zone", "multi-zone"
    MULTI_REGION = "multi-region", "multi-region"


class DatabaseHaStrategy(models.TextChoices):
    NONE = "none", "none"
    PASSIVE_STANDBY = "passive-standby", "passive-standby"
    READABLE_CLUSTER = "readable-cluster", "readable-cluster"
    MULTI_MASTER = "multi-master", "multi-master"


class DatabaseStorageScope(models.TextChoices):
    DATA = "data", "data"
    BACKUP = "backup", "backup"


class CpuAllocation(models.TextChoices):
    SHARED = "Shared", "Shared"
    BURSTABLE = "Burstable", "Burstable"
    DEDICATED = "Dedicated", "Dedicated"


class CpuArchitecture(models.TextChoices):
    ARM64 = "arm64", "arm64"
    ARM64_MAC = "arm64_mac", "arm64_mac"
    I386 = "i386", "i386"
    X86_64 = "x86_64", "x86_64"
    X86_64_MAC = "x86_64_mac", "x86_64_mac"


class StorageType(models.TextChoices):
    HDD = "hdd", "hdd"
    SSD = "ssd", "ssd"
    NVME_SSD = "nvme ssd", "nvme ssd"
    NETWORK = "network", "network"


class DdrGeneration(models.TextChoices):
    DDR3 = "DDR3", "DDR3"
    DDR4 = "DDR4", "DDR4"
    DDR5 = "DDR5", "DDR5"


class AcceleratorType(models.TextChoices):
    GPU = "GPU", "GPU"
    TPU = "TPU", "TPU"
    NPU = "NPU", "NPU"


class Allocation(models.TextChoices):
    ONDEMAND = "ondemand", "ondemand"
    RESERVED = "reserved", "reserved"
    SPOT = "spot", "spot"


class PriceUnit(models.TextChoices):
    YEAR = "year", "year"
    MONTH = "month", "month"
    HOUR = "hour", "hour"
    GIB = "GiB", "GiB"
    GB = "GB", "GB"
    GB_MONTH = "GB/month", "GB/month"


class TrafficDirection(models.TextChoices):
    IN = "inbound", "inbound"
    OUT = "outbound", "outbound"


class ResourceType(models.TextChoices):
    SERVER = "server", "server"
    DATABASE = "database", "database"


class BestPriceAllocation(models.TextChoices):
    """Which of a server's cheapest prices `/servers` reports as `price`."""

    ANY = "ANY", "cheapest hourly price of any allocation"
    SPOT_ONLY = "SPOT_ONLY", "cheapest spot price (hourly)"
    ONDEMAND_ONLY = "ONDEMAND_ONLY", "cheapest on-demand price (hourly)"
    MONTHLY = "MONTHLY", "cheapest on-demand price for a month (730 hours, tier caps applied)"


class BestDatabasePriceAllocation(models.TextChoices):
    """Which of a database's cheapest prices `/databases` reports as `price` (databases are priced on demand)."""

    ANY = "ANY", "cheapest hourly price"
    ONDEMAND_ONLY = "ONDEMAND_ONLY", "cheapest on-demand price (hourly)"
    MONTHLY = "MONTHLY", "cheapest on-demand price for a month (730 hours, tier caps applied)"


class DatabaseSecurityFeature(models.TextChoices):
    """What a database's `security_features` list may hold (the newest Spare Cores API's enumeration)."""

    IP_FILTERING = "ip-filtering", "ip-filtering"
    PRIVATE_NETWORK = "private-network", "private-network"
    NETWORK_PEERING = "network-peering", "network-peering"
    IDENTITY_BASED_AUTH = "identity-based-auth", "identity-based-auth"
    CLIENT_CERT_AUTH = "client-cert-auth", "client-cert-auth"
    ENFORCED_TLS = "enforced-tls", "enforced-tls"
    CUSTOMER_MANAGED_KEYS = "customer-managed-keys", "customer-managed-keys"
    AUDIT_LOGGING = "audit-logging", "audit-logging"


# The server column (and live-price column) holding each allocation's cheapest price.
BEST_PRICE_COLUMN = {
    BestPriceAllocation.ANY: "min_price",
    BestPriceAllocation.SPOT_ONLY: "min_price_spot",
    BestPriceAllocation.ONDEMAND_ONLY: "min_price_ondemand",
    BestPriceAllocation.MONTHLY: "min_price_ondemand_monthly",
}


class TrackedTable(models.TextChoices):
    """The catalog tables whose changes the syncs record (`CatalogChange.table`), in the order they are
    compared (apps/catalog/history.py); benchmark_score records each server's best score per benchmark."""

    VENDOR = "vendor", "vendor"
    REGION = "region", "region"
    ZONE = "zone", "zone"
    STORAGE = "storage", "storage"
    BENCHMARK = "benchmark", "benchmark"
    SERVER = "server", "server"
    SERVER_PRICE = "server_price", "server_price"
    STORAGE_PRICE = "storage_price", "storage_price"
    TRAFFIC_PRICE = "traffic_price", "traffic_price"
    IPV4_PRICE = "ipv4_price", "ipv4_price"
    BENCHMARK_SCORE = "benchmark_score", "benchmark_score"
    DATABASE_STORAGE = "database_storage", "database_storage"
    DATABASE = "database", "database"
    DATABASE_PRICE = "database_price", "database_price"
    DATABASE_STORAGE_PRICE = "database_storage_price", "database_storage_price"


class SyncStatus(models.TextChoices):
    RUNNING = "RUNNING", "running"
    SUCCEEDED = "SUCCEEDED", "succeeded"
    SKIPPED = "SKIPPED", "skipped (unchanged)"
    FAILED = "FAILED", "failed"


class ChangeKind(models.TextChoices):
    """What a sync changed about a catalog row (apps/catalog/history.py)."""

    ADDED = "added", "added"
    REMOVED = "removed", "removed"
    STATUS = "status", "status changed"
    CHANGED = "changed", "column changed"


# The catalog's enumerations, whose upstream member names the importer turns into values.
CATALOG_ENUMS: tuple[type[models.TextChoices], ...] = (
    Status,
    CpuAllocation,
    CpuArchitecture,
    StorageType,
    DdrGeneration,
    AcceleratorType,
    Allocation,
    PriceUnit,
    TrafficDirection,
    ResourceType,
    DatabaseStatus,
    DatabaseEngine,
    DatabaseWireProtocol,
    DatabaseHaLevel,
    DatabaseHaStrategy,
    DatabaseStorageScope,
)


def upstream_names(values: list[str] | set[str]) -> dict[str, str]:
    """{upstream member name: stored value} of the catalog enumeration with exactly these values."""
    for enum in CATALOG_ENUMS:
        if set(enum.values) == set(values):
            return {member.name: member.value for member in enum}
    raise LookupError(f"No catalog enumeration has the values {sorted(values)}")


def spellings(enum_values: list[str]) -> dict[str, str]:
    """Every accepted spelling (value, member name; any case) of an enumeration's values -> the value."""
    names = upstream_names(enum_values)
    accepted = {value.lower(): value for value in enum_values}
    accepted.update({name.lower(): value for name, value in names.items()})
    return accepted


class WatchStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"
