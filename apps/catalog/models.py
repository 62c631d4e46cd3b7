"""The Spare Cores catalog (sparecores-crawler 0.10 schema) in Keeper's database.

Columns carry the upstream names, so a row reads the same here, upstream and in
the API. Tables with a single-column natural key use it as the primary key;
the others have a surrogate ``id`` and a unique constraint on their natural key.
Composite references (a price's server, region and zone) are ``ForeignObject``
joins over the natural-key columns, with no database constraint: the catalog is
a replica, and real dumps contain gaps (regions whose country is missing) that
must import as they are.
"""

import hashlib
import secrets

from django.db import models

from apps.catalog import choices
from apps.catalog.querysets import ServerQuerySet, SyncRunQuerySet

ID = {"max_length": 255}
TEXT = {"blank": True, "null": True}


def _vendor(related_name: str) -> models.ForeignKey:
    return models.ForeignKey(
        "catalog.Vendor",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name=related_name,
        help_text="Vendor (cloud provider) id.",
    )


class CatalogRow(models.Model):
    """Columns every upstream table has."""

    status = models.CharField(
        max_length=22,
        choices=choices.Status.choices,
        default=choices.Status.ACTIVE,
        help_text="Last known status; upstream never deletes rows, it marks them INACTIVE.",
    )
    observed_at = models.DateTimeField(help_text="When the crawler last saw this row (UTC).")

    class Meta:
        abstract = True


class PriceRow(CatalogRow):
    """Columns every upstream price table has."""

    unit = models.CharField(max_length=8, choices=choices.PriceUnit.choices, help_text="Billing unit of `price`.")
    price = models.FloatField(help_text="Price per `unit`, in `currency`.")
    price_upfront = models.FloatField(default=0, help_text="Up-front payment, in `currency`.")
    price_tiered = models.JSONField(
        default=list,
        help_text='Tiers as [{lower, upper, price}]; bounds in `unit`, `upper` may be "Infinity".',
    )
    currency = models.CharField(max_length=3, default="USD", help_text="ISO 4217 currency code of the prices.")

    class Meta:
        abstract = True


class Country(CatalogRow):
    """A country where vendors or their regions are located."""

    country_id = models.CharField(primary_key=True, max_length=2, help_text="ISO 3166-1 alpha-2 code.")
    continent = models.CharField(max_length=64, help_text="Continent name.")

    class Meta:
        ordering = ["country_id"]
        verbose_name_plural = "countries"

    def __str__(self) -> str:
        return self.country_id


class ComplianceFramework(CatalogRow):
    """A compliance framework (e.g. HIPAA, SOC 2 Type 2) that vendors may implement."""

    compliance_framework_id = models.CharField(primary_key=True, **ID, help_text="Framework id, e.g. hipaa.")
    name = models.CharField(**ID, help_text="Human-friendly name.")
    abbreviation = models.CharField(**ID, **TEXT, help_text="Short abbreviation.")
    description = models.TextField(**TEXT, help_text="Description.")
    logo = models.CharField(max_length=1024, **TEXT, help_text="URL of the logo.")
    homepage = models.CharField(max_length=1024, **TEXT, help_text="URL of the homepage.")

    class Meta:
        ordering = ["compliance_framework_id"]

    def __str__(self) -> str:
        return self.compliance_framework_id


class Vendor(CatalogRow):
    """A cloud provider."""

    vendor_id = models.CharField(primary_key=True, **ID, help_text="Vendor id, e.g. aws.")
    name = models.CharField(**ID, help_text="Human-friendly name.")
    logo = models.CharField(max_length=1024, **TEXT, help_text="URL of the logo.")
    homepage = models.CharField(max_length=1024, **TEXT, help_text="URL of the homepage.")
    country = models.ForeignKey(
        Country,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="vendors",
        help_text="Country of the vendor's headquarters (ISO 3166-1 alpha-2).",
    )
    state = models.CharField(**ID, **TEXT, help_text="State or province of the headquarters.")
    city = models.CharField(**ID, **TEXT, help_text="City of the headquarters.")
    address_line = models.CharField(max_length=1024, **TEXT, help_text="Address of the headquarters.")
    zip_code = models.CharField(**ID, **TEXT, help_text="Postal code of the headquarters.")
    founding_year = models.IntegerField(help_text="Year the vendor was founded.")
    status_page = models.CharField(max_length=1024, **TEXT, help_text="URL of the public status page.")
    stopped_server_charged = models.BooleanField(null=True, help_text="Whether stopped servers are still billed.")
    billing_increment_seconds = models.IntegerField(null=True, help_text="Billing granularity, in seconds.")
    minimum_billing_seconds = models.IntegerField(null=True, help_text="Minimum billed time, in seconds.")
    billing_comment = models.TextField(**TEXT, help_text="Notes on billing.")

    class Meta:
        ordering = ["vendor_id"]

    def __str__(self) -> str:
        return self.vendor_id


class VendorComplianceLink(CatalogRow):
    """A compliance framework implemented by a vendor."""

    vendor = _vendor("compliance_links")
    compliance_framework = models.ForeignKey(
        ComplianceFramework,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="vendor_links",
        help_text="Compliance framework id.",
    )
    comment = models.TextField(**TEXT, help_text="Optional comment on the scope.")

    class Meta:
        ordering = ["vendor_id", "compliance_framework_id"]
        constraints = [
            models.UniqueConstraint(fields=["vendor", "compliance_framework"], name="uniq_vendor_compliance_link")
        ]

    def __str__(self) -> str:
        return f"{self.vendor_id}/{self.compliance_framework_id}"


class Region(CatalogRow):
    """A region (data center location) of a vendor."""

    vendor = _vendor("regions")
    region_id = models.CharField(**ID, help_text="Region id, unique within the vendor.")
    name = models.CharField(**ID, help_text="Name used by the vendor.")
    api_reference = models.CharField(**ID, help_text="How the vendor's API refers to the region.")
    display_name = models.CharField(**ID, help_text="Human-friendly name.")
    aliases = models.JSONField(default=list, help_text="Other names of the region.")
    country = models.ForeignKey(
        Country,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="regions",
        help_text="Country (ISO 3166-1 alpha-2); may name a country missing from the catalog.",
    )
    state = models.CharField(**ID, **TEXT, help_text="State or province.")
    city = models.CharField(**ID, **TEXT, help_text="City.")
    address_line = models.CharField(max_length=1024, **TEXT, help_text="Address.")
    zip_code = models.CharField(**ID, **TEXT, help_text="Postal code.")
    lon = models.FloatField(null=True, help_text="Longitude, in degrees.")
    lat = models.FloatField(null=True, help_text="Latitude, in degrees.")
    founding_year = models.IntegerField(null=True, help_text="Year the region opened.")
    green_energy = models.BooleanField(null=True, help_text="Whether 100% powered by renewable energy.")

    class Meta:
        ordering = ["vendor_id", "region_id"]
        constraints = [models.UniqueConstraint(fields=["vendor", "region_id"], name="uniq_region")]

    def __str__(self) -> str:
        return f"{self.vendor_id}/{self.region_id}"


class Zone(CatalogRow):
    """An availability zone within a region."""

    vendor = _vendor("zones")
    region_id = models.CharField(**ID, help_text="Region id, unique within the vendor.")
    zone_id = models.CharField(**ID, help_text="Zone id, unique within the region.")
    name = models.CharField(**ID, help_text="Name used by the vendor.")
    api_reference = models.CharField(**ID, help_text="How the vendor's API refers to the zone.")
    display_name = models.CharField(**ID, help_text="Human-friendly name.")
    region = models.ForeignObject(
        Region,
        on_delete=models.DO_NOTHING,
        from_fields=["vendor", "region_id"],
        to_fields=["vendor", "region_id"],
        related_name="zones",
    )

    class Meta:
        ordering = ["vendor_id", "region_id", "zone_id"]
        constraints = [models.UniqueConstraint(fields=["vendor", "region_id", "zone_id"], name="uniq_zone")]

    def __str__(self) -> str:
        return f"{self.vendor_id}/{self.region_id}/{self.zone_id}"


class Storage(CatalogRow):
    """A block storage product of a vendor."""

    vendor = _vendor("storages")
    storage_id = models.CharField(**ID, help_text="Storage id, unique within the vendor.")
    name = models.CharField(**ID, help_text="Name used by the vendor.")
    description = models.TextField(**TEXT, help_text="Description.")
    storage_type = models.CharField(max_length=8, choices=choices.StorageType.choices, help_text="Storage type.")
    max_iops = models.IntegerField(null=True, help_text="Maximum I/O operations per second.")
    max_throughput = models.IntegerField(null=True, help_text="Maximum throughput, in MiB/s.")
    min_size = models.IntegerField(null=True, help_text="Minimum size, in GiB.")
    max_size = models.IntegerField(null=True, help_text="Maximum size, in GiB.")

    class Meta:
        ordering = ["vendor_id", "storage_id"]
        constraints = [models.UniqueConstraint(fields=["vendor", "storage_id"], name="uniq_storage")]

    def __str__(self) -> str:
        return f"{self.vendor_id}/{self.storage_id}"


SERVER_PAGE_COLUMNS = [
    "vendor",
    "server_id",
    "status",
    "vcpus",
    "memory_amount",
    "min_price",
    "min_price_spot",
    "min_price_ondemand",
    "min_price_ondemand_monthly",
    "score",
    "score_per_price",
]


class Server(CatalogRow):
    """A server type (instance type) of a vendor, with prices and scores derived at sync time."""

    vendor = _vendor("servers")
    server_id = models.CharField(**ID, help_text="Server id, unique within the vendor.")
    name = models.CharField(**ID, help_text="Name used by the vendor.")
    api_reference = models.CharField(**ID, help_text="How the vendor's API refers to the server.")
    api_reference_object = models.JSONField(null=True, help_text="Structured API reference, when the vendor needs one.")
    display_name = models.CharField(**ID, help_text="Human-friendly name.")
    description = models.TextField(help_text="Short description.")
    family = models.CharField(**ID, **TEXT, help_text="Server family, e.g. m5.")
    series = models.CharField(**ID, **TEXT, help_text="Server series.")
    # Upstream's status since sparecores-crawler 0.9.2, with the retirement states (as a database's).
    status = models.CharField(
        max_length=22,
        choices=choices.DatabaseStatus.choices,
        default=choices.DatabaseStatus.ACTIVE,
        help_text="Last known status; planned_for_retirement servers can still be ordered.",
    )
    vcpus = models.IntegerField(help_text="Number of virtual CPUs.")
    hypervisor = models.CharField(**ID, **TEXT, help_text="Hypervisor, e.g. KVM.")
    cpu_allocation = models.CharField(max_length=9, choices=choices.CpuAllocation.choices, help_text="CPU allocation.")
    cpu_cores = models.IntegerField(null=True, help_text="Number of physical CPU cores.")
    cpu_speed = models.FloatField(null=True, help_text="CPU clock speed, in GHz.")
    cpu_architecture = models.CharField(
        max_length=10, choices=choices.CpuArchitecture.choices, help_text="CPU architecture."
    )
    cpu_manufacturer = models.CharField(**ID, **TEXT, help_text="CPU manufacturer, e.g. Intel.")
    cpu_family = models.CharField(**ID, **TEXT, help_text="CPU family, e.g. Xeon.")
    cpu_model = models.CharField(**ID, **TEXT, help_text="CPU model.")
    cpu_l1d_cache = models.IntegerField(null=True, help_text="L1 data cache per core, in KiB.")
    cpu_l1d_cache_total = models.IntegerField(null=True, help_text="L1 data cache of all cores, in KiB.")
    cpu_l1i_cache = models.IntegerField(null=True, help_text="L1 instruction cache per core, in KiB.")
    cpu_l1i_cache_total = models.IntegerField(null=True, help_text="L1 instruction cache of all cores, in KiB.")
    cpu_l2_cache = models.IntegerField(null=True, help_text="L2 cache per core, in KiB.")
    cpu_l2_cache_total = models.IntegerField(null=True, help_text="L2 cache of all cores, in KiB.")
    cpu_l3_cache = models.IntegerField(null=True, help_text="L3 cache, in KiB.")
    cpu_l3_cache_total = models.IntegerField(null=True, help_text="L3 cache of all CPUs, in KiB.")
    cpu_flags = models.JSONField(default=list, help_text="CPU flags.")
    cpus = models.JSONField(default=list, help_text="CPU details.")
    ecpus = models.FloatField(null=True, help_text="Effective CPUs (burstable servers).")
    scalability = models.FloatField(null=True, help_text="Multi-core scaling efficiency (0 to 1).")
    hw_virt = models.BooleanField(null=True, help_text="Whether hardware (nested) virtualization is supported.")
    memory_amount = models.IntegerField(help_text="Memory, in MiB.")
    memory_amount_actual = models.IntegerField(null=True, help_text="Memory seen by the OS, in MiB.")
    memory_generation = models.CharField(
        max_length=4, choices=choices.DdrGeneration.choices, **TEXT, help_text="DDR generation."
    )
    memory_speed = models.IntegerField(null=True, help_text="Memory speed, in MHz.")
    memory_ecc = models.BooleanField(null=True, help_text="Whether memory has ECC.")
    accelerator_count = models.FloatField(default=0, help_text="Number of accelerators (GPUs); may be fractional.")
    accelerator_memory_min = models.IntegerField(null=True, help_text="Memory of the smallest accelerator, in MiB.")
    accelerator_memory_total = models.IntegerField(null=True, help_text="Memory of all accelerators, in MiB.")
    accelerator_type = models.CharField(
        max_length=3, choices=choices.AcceleratorType.choices, **TEXT, help_text="Accelerator type."
    )
    accelerator_manufacturer = models.CharField(**ID, **TEXT, help_text="Accelerator manufacturer, e.g. NVIDIA.")
    accelerator_family = models.CharField(**ID, **TEXT, help_text="Accelerator family.")
    accelerator_model = models.CharField(**ID, **TEXT, help_text="Accelerator model.")
    accelerators = models.JSONField(default=list, help_text="Accelerator details.")
    storage_size = models.IntegerField(default=0, help_text="Built-in storage, in GB.")
    storage_type = models.CharField(
        max_length=8, choices=choices.StorageType.choices, **TEXT, help_text="Built-in storage type."
    )
    storages = models.JSONField(default=list, help_text="Built-in disks.")
    compatible_storage_ids = models.JSONField(null=True, help_text="Ids of attachable block storages.")
    network_speed_baseline = models.FloatField(null=True, help_text="Baseline network speed, in Gbps.")
    network_speed_max = models.FloatField(null=True, help_text="Maximum network speed, in Gbps.")
    network_storage_speed_baseline = models.FloatField(null=True, help_text="Baseline storage network speed, in Gbps.")
    network_storage_speed_max = models.FloatField(null=True, help_text="Maximum storage network speed, in Gbps.")
    inbound_traffic = models.FloatField(default=0, help_text="Free inbound traffic, in GB per month.")
    outbound_traffic = models.FloatField(default=0, help_text="Free outbound traffic, in GB per month.")
    ipv4 = models.IntegerField(default=0, help_text="Number of included IPv4 addresses.")
    average_time_to_start = models.FloatField(null=True, help_text="Average time to start, in seconds.")

    # Derived at sync time (not upstream columns), all in USD.
    min_price = models.FloatField(null=True, help_text="Cheapest active hourly price, in USD.")
    min_price_spot = models.FloatField(null=True, help_text="Cheapest active spot hourly price, in USD.")
    min_price_ondemand = models.FloatField(null=True, help_text="Cheapest active on-demand hourly price, in USD.")
    min_price_ondemand_monthly = models.FloatField(
        null=True, help_text="Cheapest active on-demand price for 730 hours (tier caps applied), in USD."
    )
    score = models.FloatField(null=True, help_text="stress-ng CPU score, all cores (stress_ng:bestn).")
    score1 = models.FloatField(null=True, help_text="stress-ng CPU score, one core (stress_ng:best1).")
    score_per_price = models.FloatField(null=True, help_text="`score` per `min_price` (USD/hour).")

    objects = ServerQuerySet.as_manager()

    class Meta:
        ordering = ["vendor_id", "server_id"]
        constraints = [models.UniqueConstraint(fields=["vendor", "server_id"], name="uniq_server")]
        indexes = [
            # /servers lists active servers by price or score: these serve the first page without a sort.
            models.Index(fields=["status", "min_price"], name="server_status_min_price"),
            models.Index(fields=["status", "score_per_price"], name="server_status_score_price"),
            # /servers lists the orderable servers by default (active or planned for retirement): an IN over
            # two statuses reads (status, min_price) per status and sorts every match; these read the page
            # in order (SQLite names them: apps/catalog/selectors/servers.py, ORDERABLE).
            models.Index(
                fields=["min_price", "id"],
                condition=models.Q(status__in=choices.ORDERABLE_SERVER_STATUSES),
                name="server_orderable_min_price",
            ),
            models.Index(
                fields=["score_per_price", "id"],
                condition=models.Q(status__in=choices.ORDERABLE_SERVER_STATUSES),
                name="server_orderable_score_price",
            ),
            models.Index(fields=["vendor", "api_reference"], name="server_api_reference"),
            # A search by place joins each priced server by (vendor, server id) and checks the common
            # filters and prices: read here, not from the wide rows (whose last columns sit in overflow
            # pages), e.g. /servers?regions=us-east-1&vcpus_min=2 6.3 -> 3.4 ms of SQL on the sample.
            # With the id (SQLite's indexes hold it anyway) PostgreSQL reads a page's ids from this index
            # alone, not from rows whose status sits past every other column (large catalog: 13.5 -> 2.4 ms).
            models.Index(fields=SERVER_PAGE_COLUMNS, name="server_page", include=["id"]),
            # /server/{vendor}/{server}/similar_servers ranks every active server by these columns: read
            # from this index alone, not from the wide rows (family first, so /servers' vendor filters
            # keep their own plans).
            models.Index(
                fields=[
                    "status",
                    "family",
                    "vendor",
                    "vcpus",
                    "accelerator_count",
                    "memory_amount",
                    "score",
                    "min_price",
                    "min_price_spot",
                    "min_price_ondemand",
                    "min_price_ondemand_monthly",
                    "server_id",
                ],
                name="server_similarity",
            ),
            # The specs ranking of similar servers reads the servers near the given one's vCPUs,
            # accelerators and memory from here (apps/catalog/selectors/server_details.py). Partial on a
            # condition only those statements spell (every server has observed_at), so that SQLite, which
            # has no statistics to weigh it, never takes it for a /servers plan.
            models.Index(
                fields=[
                    "vcpus",
                    "accelerator_count",
                    "memory_amount",
                    "min_price",
                    "min_price_spot",
                    "min_price_ondemand",
                    "min_price_ondemand_monthly",
                    "vendor",
                    "server_id",
                    "status",
                ],
                condition=models.Q(status=choices.Status.ACTIVE, observed_at__isnull=False),
                name="server_specs",
            ),
            # The score ranking of similar servers reads the scores near the given one's from here (partial
            # as server_specs is, for the same reason).
            models.Index(
                fields=[
                    "score",
                    "min_price",
                    "min_price_spot",
                    "min_price_ondemand",
                    "min_price_ondemand_monthly",
                    "vendor",
                    "server_id",
                    "status",
                ],
                condition=models.Q(status=choices.Status.ACTIVE, observed_at__isnull=False),
                name="server_scores",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.vendor_id}/{self.server_id}"


class ServerDescription(CatalogRow):
    """Generated marketing texts for a server's page."""

    vendor = _vendor("server_descriptions")
    server_id = models.CharField(**ID, help_text="Server id, unique within the vendor.")
    page = models.JSONField(default=dict, help_text="Structured page content.")
    description = models.TextField(help_text="Long description.")
    og_description = models.TextField(help_text="Open Graph description.")
    meta_description = models.TextField(help_text="HTML meta description.")
    tagline = models.TextField(help_text="Tagline.")
    bullet_points = models.JSONField(default=list, help_text="Highlights.")
    categories = models.JSONField(default=list, help_text="Workload categories.")
    server = models.ForeignObject(
        Server,
        on_delete=models.DO_NOTHING,
        from_fields=["vendor", "server_id"],
        to_fields=["vendor", "server_id"],
        related_name="descriptions",
    )

    class Meta:
        ordering = ["vendor_id", "server_id"]
        constraints = [models.UniqueConstraint(fields=["vendor", "server_id"], name="uniq_server_description")]

    def __str__(self) -> str:
        return f"{self.vendor_id}/{self.server_id}"


class ServerPrice(PriceRow):
    """The price of a server type in a zone, for an allocation (on-demand, spot, reserved)."""

    vendor = _vendor("server_prices")
    region_id = models.CharField(**ID, help_text="Region id.")
    zone_id = models.CharField(**ID, help_text="Zone id.")
    server_id = models.CharField(**ID, help_text="Server id.")
    operating_system = models.CharField(**ID, help_text="Operating system the price includes.")
    allocation = models.CharField(max_length=8, choices=choices.Allocation.choices, help_text="Allocation.")
    price_monthly = models.FloatField(
        null=True,
        help_text="Derived: active on-demand price for 730 hours with tier caps applied, in `currency`.",
    )
    country_id = models.CharField(
        max_length=2,
        null=True,
        help_text="Derived: the region's country, so that a search by country needs no join.",
    )
    server = models.ForeignObject(
        Server,
        on_delete=models.DO_NOTHING,
        from_fields=["vendor", "server_id"],
        to_fields=["vendor", "server_id"],
        related_name="prices",
    )
    region = models.ForeignObject(
        Region,
        on_delete=models.DO_NOTHING,
        from_fields=["vendor", "region_id"],
        to_fields=["vendor", "region_id"],
        related_name="server_prices",
    )
    zone = models.ForeignObject(
        Zone,
        on_delete=models.DO_NOTHING,
        from_fields=["vendor", "region_id", "zone_id"],
        to_fields=["vendor", "region_id", "zone_id"],
        related_name="server_prices",
    )

    class Meta:
        ordering = ["vendor_id", "server_id", "region_id", "zone_id", "allocation"]
        constraints = [
            models.UniqueConstraint(
                fields=["vendor", "region_id", "zone_id", "server_id", "allocation"], name="uniq_server_price"
            )
        ]
        indexes = [
            # One server's prices in region, zone and allocation order (/server/{vendor}/{server}/prices):
            # with the order in the index, SQLite's planner picks it over the unique constraint's.
            models.Index(
                fields=["vendor", "server_id", "region_id", "zone_id", "allocation"], name="server_price_server"
            ),
            # /server_prices sorts by price (then id, so that pages are stable): its first pages are read
            # from this index without sorting the whole table.
            models.Index(fields=["price", "id"], name="server_price_price"),
            # The same for one country (`/server_prices?countries=DE`): read in price order, not sorted.
            models.Index(fields=["country_id", "status", "price", "id"], name="server_price_country_price"),
            # The same for one vendor, and one vendor's allocation (`?vendor=aws&allocation=spot`); with the
            # server id, the walk checks each price's server without reading the price row.
            models.Index(fields=["vendor", "status", "price", "id", "server_id"], name="server_price_vendor_price"),
            models.Index(
                fields=["vendor", "allocation", "status", "price", "id", "server_id"],
                name="server_price_allocation_price",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.vendor_id}/{self.region_id}/{self.zone_id}/{self.server_id}/{self.allocation}"


class StoragePrice(PriceRow):
    """The price of a block storage product in a region."""

    vendor = _vendor("storage_prices")
    region_id = models.CharField(**ID, help_text="Region id.")
    storage_id = models.CharField(**ID, help_text="Storage id.")
    region = models.ForeignObject(
        Region,
        on_delete=models.DO_NOTHING,
        from_fields=["vendor", "region_id"],
        to_fields=["vendor", "region_id"],
        related_name="storage_prices",
    )
    storage = models.ForeignObject(
        Storage,
        on_delete=models.DO_NOTHING,
        from_fields=["vendor", "storage_id"],
        to_fields=["vendor", "storage_id"],
        related_name="prices",
    )

    class Meta:
        ordering = ["vendor_id", "region_id", "storage_id"]
        constraints = [models.UniqueConstraint(fields=["vendor", "region_id", "storage_id"], name="uniq_storage_price")]

    def __str__(self) -> str:
        return f"{self.vendor_id}/{self.region_id}/{self.storage_id}"


class TrafficPrice(PriceRow):
    """The price of network traffic in a region, per direction."""

    vendor = _vendor("traffic_prices")
    region_id = models.CharField(**ID, help_text="Region id.")
    direction = models.CharField(max_length=8, choices=choices.TrafficDirection.choices, help_text="Direction.")
    region = models.ForeignObject(
        Region,
        on_delete=models.DO_NOTHING,
        from_fields=["vendor", "region_id"],
        to_fields=["vendor", "region_id"],
        related_name="traffic_prices",
    )

    class Meta:
        ordering = ["vendor_id", "region_id", "direction"]
        constraints = [models.UniqueConstraint(fields=["vendor", "region_id", "direction"], name="uniq_traffic_price")]

    def __str__(self) -> str:
        return f"{self.vendor_id}/{self.region_id}/{self.direction}"


class Ipv4Price(PriceRow):
    """The price of an extra IPv4 address in a region."""

    vendor = _vendor("ipv4_prices")
    region_id = models.CharField(**ID, help_text="Region id.")
    region = models.ForeignObject(
        Region,
        on_delete=models.DO_NOTHING,
        from_fields=["vendor", "region_id"],
        to_fields=["vendor", "region_id"],
        related_name="ipv4_prices",
    )

    class Meta:
        ordering = ["vendor_id", "region_id"]
        constraints = [models.UniqueConstraint(fields=["vendor", "region_id"], name="uniq_ipv4_price")]

    def __str__(self) -> str:
        return f"{self.vendor_id}/{self.region_id}"


class DatabaseStorage(CatalogRow):
    """A storage product of a vendor's managed databases (data or backup storage)."""

    vendor = _vendor("database_storages")
    database_storage_id = models.CharField(**ID, help_text="Database storage id, unique within the vendor.")
    name = models.CharField(**ID, help_text="Name used by the vendor.")
    description = models.TextField(**TEXT, help_text="Description.")
    scope = models.CharField(
        max_length=6, choices=choices.DatabaseStorageScope.choices, help_text="What the storage holds: data or backups."
    )
    redundancy = models.CharField(**ID, **TEXT, help_text="Redundancy of the storage, e.g. LRS.")
    min_size = models.IntegerField(null=True, help_text="Minimum size, in GB.")
    max_size = models.IntegerField(null=True, help_text="Maximum size, in GB.")
    max_iops = models.IntegerField(null=True, help_text="Maximum I/O operations per second.")
    max_throughput = models.IntegerField(null=True, help_text="Maximum throughput, in MiB/s.")

    class Meta:
        ordering = ["vendor_id", "database_storage_id"]
        constraints = [models.UniqueConstraint(fields=["vendor", "database_storage_id"], name="uniq_database_storage")]

    def __str__(self) -> str:
        return f"{self.vendor_id}/{self.database_storage_id}"


# The prices a database carries, derived at sync time from its active on-demand hourly prices (USD).
DATABASE_PRICES = ["min_price", "min_price_ondemand", "min_price_ondemand_monthly"]


class Database(CatalogRow):
    """A managed database offering (SKU) of a vendor, with its cheapest prices derived at sync time."""

    vendor = _vendor("databases")
    database_id = models.CharField(**ID, help_text="Database id, unique within the vendor.")
    name = models.CharField(**ID, help_text="Name used by the vendor.")
    api_reference = models.CharField(**ID, help_text="How the vendor's API refers to the database.")
    api_reference_object = models.JSONField(
        null=True, help_text="How the vendor's API refers to the database, with the parameter names."
    )
    display_name = models.CharField(**ID, help_text="Human-friendly name.")
    description = models.TextField(**TEXT, help_text="Short description.")
    family = models.CharField(**ID, **TEXT, help_text="Hardware family or class.")
    series = models.CharField(**ID, **TEXT, help_text="Series.")
    server_id = models.CharField(**ID, **TEXT, help_text="Id of the underlying server of the vendor, if known.")
    vcpus = models.IntegerField(null=True, help_text="Number of virtual CPUs.")
    memory_amount = models.IntegerField(null=True, help_text="Memory, in MiB.")
    engine = models.CharField(
        max_length=10, choices=choices.DatabaseEngine.choices, **TEXT, help_text="Database engine."
    )
    wire_protocol = models.CharField(
        max_length=10, choices=choices.DatabaseWireProtocol.choices, **TEXT, help_text="Client wire protocol."
    )
    engine_versions = models.JSONField(default=list, help_text="Supported major engine versions.")
    auto_upgrade_versions = models.BooleanField(
        null=True, help_text="Whether minor engine versions are upgraded automatically."
    )
    ha = models.JSONField(default=list, help_text="Supported high-availability levels, strongest first.")
    ha_strategy = models.JSONField(default=list, help_text="Supported high-availability strategies, strongest first.")
    max_read_replicas = models.IntegerField(null=True, help_text="Maximum number of read replicas.")
    custom_config = models.BooleanField(null=True, help_text="Whether engine parameters can be customized.")
    custom_extensions = models.BooleanField(null=True, help_text="Whether custom extensions are supported.")
    storage_size = models.IntegerField(null=True, help_text="Bundled storage, in GB.")
    storage_extra_min = models.IntegerField(null=True, help_text="Minimum extra storage, in GB.")
    storage_extra_max = models.IntegerField(null=True, help_text="Maximum storage, in GB.")
    storage_extra_autosize = models.BooleanField(null=True, help_text="Whether storage grows automatically.")
    compatible_storage_ids = models.JSONField(null=True, help_text="Ids of the database storages it can use.")
    disk_encryption = models.BooleanField(null=True, help_text="Whether storage is encrypted at rest.")
    scheduled_backups = models.BooleanField(null=True, help_text="Whether scheduled backups are supported.")
    continuous_backups = models.IntegerField(null=True, help_text="Point-in-time recovery window, in days.")
    connection_pool = models.BooleanField(null=True, help_text="Whether a managed connection pool is offered.")
    system_monitoring = models.BooleanField(null=True, help_text="Whether system metrics are monitored.")
    database_monitoring = models.BooleanField(null=True, help_text="Whether database metrics are monitored.")
    autotuning_advice = models.BooleanField(null=True, help_text="Whether tuning advice is given.")
    autotuning_apply = models.BooleanField(null=True, help_text="Whether tuning is applied automatically.")
    sla = models.FloatField(null=True, help_text="Service level agreement, in percent (e.g. 99.95).")
    security_features = models.JSONField(default=list, help_text="Security features, e.g. enforced-tls.")
    # Upstream's status since sparecores-crawler 0.9.2, with the retirement states.
    status = models.CharField(
        max_length=22,
        choices=choices.DatabaseStatus.choices,
        default=choices.DatabaseStatus.ACTIVE,
        help_text="Last known status; planned_for_retirement databases can still be ordered.",
    )

    # Derived at sync time (not upstream columns), in USD, from the active on-demand hourly prices of every
    # HA level and strategy (as the newest Spare Cores API's DatabaseExtra): the cheapest price of the lot.
    min_price = models.FloatField(null=True, help_text="Cheapest active on-demand hourly price, in USD.")
    min_price_ondemand = models.FloatField(null=True, help_text="Cheapest active on-demand hourly price, in USD.")
    min_price_ondemand_monthly = models.FloatField(
        null=True, help_text="Cheapest active on-demand price for 730 hours (tier caps applied), in USD."
    )
    server = models.ForeignObject(
        "catalog.Server",
        on_delete=models.DO_NOTHING,
        from_fields=["vendor", "server_id"],
        to_fields=["vendor", "server_id"],
        related_name="databases",
    )

    class Meta:
        ordering = ["vendor_id", "database_id"]
        constraints = [models.UniqueConstraint(fields=["vendor", "database_id"], name="uniq_database")]
        indexes = [
            # /databases lists the orderable databases by price (its default order): with the price in the
            # index, its first page is read in order for each status, not sorted.
            models.Index(fields=["status", "min_price"], name="database_status_min_price"),
            models.Index(fields=["status", "min_price_ondemand_monthly"], name="database_status_monthly"),
            # By default /databases lists the orderable databases (active or planned for retirement) by price:
            # an IN over two statuses reads the index above per status and sorts every match; this reads the
            # page in order (SQLite names it: apps/catalog/selectors/databases.py, ORDERABLE_INDEX).
            models.Index(
                fields=["min_price", "id"],
                condition=models.Q(status__in=choices.ORDERABLE_DATABASE_STATUSES),
                name="database_orderable_min_price",
            ),
            # /database/{vendor}/{database} also takes the vendor's API reference.
            models.Index(fields=["vendor", "api_reference"], name="database_api_reference"),
        ]

    def __str__(self) -> str:
        return f"{self.vendor_id}/{self.database_id}"


class DatabasePrice(PriceRow):
    """The price of a managed database in a region, for an allocation, HA level and HA strategy."""

    vendor = _vendor("database_prices")
    region_id = models.CharField(**ID, help_text="Region id.")
    database_id = models.CharField(**ID, help_text="Database id.")
    allocation = models.CharField(max_length=8, choices=choices.Allocation.choices, help_text="Allocation.")
    ha = models.CharField(
        max_length=12,
        choices=choices.DatabaseHaLevel.choices,
        default=choices.DatabaseHaLevel.NONE,
        help_text="High-availability level the price is for.",
    )
    ha_strategy = models.CharField(
        max_length=16,
        choices=choices.DatabaseHaStrategy.choices,
        default=choices.DatabaseHaStrategy.NONE,
        help_text="High-availability strategy the price is for.",
    )
    price_monthly = models.FloatField(
        null=True,
        help_text="Derived: active on-demand price for 730 hours with tier caps applied, in `currency`.",
    )
    country_id = models.CharField(
        max_length=2,
        null=True,
        help_text="Derived: the region's country, so that a search by country needs no join.",
    )
    database = models.ForeignObject(
        Database,
        on_delete=models.DO_NOTHING,
        from_fields=["vendor", "database_id"],
        to_fields=["vendor", "database_id"],
        related_name="prices",
    )
    region = models.ForeignObject(
        Region,
        on_delete=models.DO_NOTHING,
        from_fields=["vendor", "region_id"],
        to_fields=["vendor", "region_id"],
        related_name="database_prices",
    )

    class Meta:
        ordering = ["vendor_id", "database_id", "region_id", "allocation", "ha", "ha_strategy"]
        constraints = [
            models.UniqueConstraint(
                fields=["vendor", "region_id", "database_id", "allocation", "ha", "ha_strategy"],
                name="uniq_database_price",
            )
        ]
        indexes = [
            # One database's prices (/database/{vendor}/{database}/prices), in their order.
            models.Index(
                fields=["vendor", "database_id", "region_id", "allocation", "ha", "ha_strategy"],
                name="database_price_database",
            ),
            # Searches by country read the prices there without joining the regions.
            models.Index(fields=["country_id", "status", "vendor", "database_id"], name="database_price_country"),
        ]

    def __str__(self) -> str:
        return f"{self.vendor_id}/{self.region_id}/{self.database_id}/{self.allocation}/{self.ha}/{self.ha_strategy}"


class DatabaseStoragePrice(PriceRow):
    """The price of a database storage product in a region."""

    vendor = _vendor("database_storage_prices")
    region_id = models.CharField(**ID, help_text="Region id.")
    database_storage_id = models.CharField(**ID, help_text="Database storage id.")
    region = models.ForeignObject(
        Region,
        on_delete=models.DO_NOTHING,
        from_fields=["vendor", "region_id"],
        to_fields=["vendor", "region_id"],
        related_name="database_storage_prices",
    )
    database_storage = models.ForeignObject(
        DatabaseStorage,
        on_delete=models.DO_NOTHING,
        from_fields=["vendor", "database_storage_id"],
        to_fields=["vendor", "database_storage_id"],
        related_name="prices",
    )

    class Meta:
        ordering = ["vendor_id", "region_id", "database_storage_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["vendor", "region_id", "database_storage_id"], name="uniq_database_storage_price"
            )
        ]

    def __str__(self) -> str:
        return f"{self.vendor_id}/{self.region_id}/{self.database_storage_id}"


class Benchmark(CatalogRow):
    """A benchmark workload and how its scores read."""

    benchmark_id = models.CharField(primary_key=True, **ID, help_text="Benchmark id, e.g. stress_ng:bestn.")
    category = models.CharField(**ID, **TEXT, help_text="Category.")
    subcategory = models.CharField(**ID, **TEXT, help_text="Subcategory.")
    source = models.JSONField(null=True, help_text="Where the benchmark comes from.")
    name = models.CharField(**ID, help_text="Human-friendly name.")
    description = models.TextField(**TEXT, help_text="Description.")
    note = models.TextField(**TEXT, help_text="Notes.")
    framework = models.CharField(**ID, help_text="Benchmark framework, e.g. stress_ng.")
    config_fields = models.JSONField(default=dict, help_text="Configuration fields and their meaning.")
    environment_fields = models.JSONField(default=dict, help_text="Environment fields and their meaning.")
    measurement = models.CharField(**ID, **TEXT, help_text="What is measured.")
    unit = models.CharField(**ID, **TEXT, help_text="Unit of the score.")
    higher_is_better = models.BooleanField(default=True, help_text="Whether a higher score is better.")

    class Meta:
        ordering = ["benchmark_id"]

    def __str__(self) -> str:
        return self.benchmark_id


class BenchmarkScore(CatalogRow):
    """A benchmark result of a server type, for one configuration."""

    vendor = _vendor("benchmark_scores")
    benchmark = models.ForeignKey(
        Benchmark,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="scores",
        help_text="Benchmark id.",
    )
    resource_type = models.CharField(
        max_length=8, choices=choices.ResourceType.choices, help_text="Kind of resource scored."
    )
    resource_id = models.CharField(**ID, help_text="Id of the resource (for SERVER: the server id).")
    config = models.JSONField(default=dict, help_text='Benchmark configuration, e.g. {"cores": 1}.')
    framework_version = models.CharField(**ID, **TEXT, help_text="Version of the framework.")
    environment = models.JSONField(null=True, help_text="Environment the benchmark ran in.")
    score = models.FloatField(help_text="The score, in the benchmark's unit.")
    score_breakdown = models.JSONField(null=True, help_text="Components of a composite score.")
    note = models.TextField(**TEXT, help_text="Notes.")

    class Meta:
        ordering = ["vendor_id", "resource_id", "benchmark_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["vendor", "benchmark", "resource_type", "resource_id", "config"], name="uniq_benchmark_score"
            )
        ]
        indexes = [
            # One server's scores (/server/{vendor}/{server}/benchmarks): every filtered column, so that
            # SQLite's planner (without statistics) prefers it to the wider indexes below.
            models.Index(fields=["vendor", "resource_id", "resource_type", "status"], name="benchmark_score_resource"),
            # /benchmark_score_stats and /benchmark_configs (apps/catalog/selectors/benchmarks.py): each
            # histogram bin is a range count on the first; the servers per benchmark (and a server's
            # best score of a benchmark) are read from the second alone; the third lets the distinct
            # configurations be found with one seek each.
            models.Index(fields=["status", "benchmark", "score"], name="benchmark_score_histogram"),
            models.Index(
                fields=["status", "resource_type", "benchmark", "vendor", "resource_id", "score"],
                name="benchmark_score_servers",
            ),
            models.Index(fields=["status", "benchmark", "config", "id"], name="benchmark_score_configs"),
        ]

    def __str__(self) -> str:
        return f"{self.vendor_id}/{self.resource_id}/{self.benchmark_id}"


REGION_PRICES = ["min_price", "min_price_spot", "min_price_ondemand", "min_price_ondemand_monthly"]


class ServerRegionPrice(models.Model):
    """A server's cheapest active hourly prices in one region, in USD: derived at sync time from ServerPrice.

    Searches restricted to regions or countries rank servers by these; reading a few thousand of
    them beats converting and grouping the tens of thousands of prices behind them per request.
    Not rounded: the search rounds the minimum it takes over the regions asked for.
    """

    vendor_id = models.CharField(**ID)
    server_id = models.CharField(**ID)
    region_id = models.CharField(**ID)
    country_id = models.CharField(max_length=2, **TEXT)
    min_price = models.FloatField(null=True)
    min_price_spot = models.FloatField(null=True)
    min_price_ondemand = models.FloatField(null=True)
    min_price_ondemand_monthly = models.FloatField(null=True)

    class Meta:
        ordering = ["vendor_id", "server_id", "region_id"]
        # Covering: a search by country or region reads its prices from the index alone.
        indexes = [
            models.Index(
                fields=["country_id", "vendor_id", "server_id", *REGION_PRICES], name="server_region_price_country"
            ),
            models.Index(
                fields=["region_id", "vendor_id", "server_id", *REGION_PRICES], name="server_region_price_region"
            ),
            models.Index(fields=["vendor_id", "region_id"], name="server_region_price_vendor"),
        ]

    def __str__(self) -> str:
        return f"{self.vendor_id}/{self.server_id} in {self.region_id}"


class ServerCountryPrice(models.Model):
    """A server's cheapest active hourly prices in one country, in USD, rounded as answered: derived at sync.

    The most common place filter is one country: with these, such a search reads the servers priced
    there straight from an index, in price order.
    """

    vendor_id = models.CharField(**ID)
    server_id = models.CharField(**ID)
    country_id = models.CharField(max_length=2)
    min_price = models.FloatField(null=True)
    min_price_spot = models.FloatField(null=True)
    min_price_ondemand = models.FloatField(null=True)
    min_price_ondemand_monthly = models.FloatField(null=True)

    class Meta:
        ordering = ["country_id", "vendor_id", "server_id"]
        indexes = [
            models.Index(fields=["country_id", "vendor_id", "server_id"], name="server_country_price_server"),
            models.Index(fields=["country_id", "min_price"], name="country_any_price"),
            models.Index(fields=["country_id", "min_price_spot"], name="country_spot_price"),
            models.Index(fields=["country_id", "min_price_ondemand"], name="country_ondemand_price"),
            models.Index(fields=["country_id", "min_price_ondemand_monthly"], name="country_monthly_price"),
        ]

    def __str__(self) -> str:
        return f"{self.vendor_id}/{self.server_id} in {self.country_id}"


class DatabaseRegionPrice(models.Model):
    """A database's cheapest active on-demand hourly (and monthly) price in one region, in USD, rounded as
    answered: derived at sync time from DatabasePrice (every HA level and strategy, as Database's own).

    /databases restricted to regions or countries ranks databases by the live prices there: these rows
    (one per database and region) are read by index instead of grouping the prices behind them per request.
    """

    vendor_id = models.CharField(**ID)
    database_id = models.CharField(**ID)
    region_id = models.CharField(**ID)
    country_id = models.CharField(max_length=2, **TEXT)
    min_price = models.FloatField(null=True)
    min_price_ondemand = models.FloatField(null=True)
    min_price_ondemand_monthly = models.FloatField(null=True)

    class Meta:
        ordering = ["vendor_id", "database_id", "region_id"]
        # Covering: a search by country or region reads its prices from the index alone.
        indexes = [
            models.Index(
                fields=["country_id", "vendor_id", "database_id", *DATABASE_PRICES],
                name="database_region_price_country",
            ),
            models.Index(
                fields=["region_id", "vendor_id", "database_id", *DATABASE_PRICES],
                name="database_region_price_region",
            ),
            models.Index(fields=["vendor_id", "region_id"], name="database_region_price_vendor"),
        ]

    def __str__(self) -> str:
        return f"{self.vendor_id}/{self.database_id} in {self.region_id}"


class SyncRun(models.Model):
    """One run of the catalog sync: its source, outcome and row counts."""

    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=choices.SyncStatus.choices, default=choices.SyncStatus.RUNNING)
    source = models.CharField(max_length=2048, help_text="Where the data came from (file, URL or sparecores-data).")
    data_hash = models.CharField(max_length=128, blank=True, help_text="Hash of the source data.")
    schema_version = models.CharField(max_length=32, blank=True, help_text="Upstream alembic revision.")
    rows = models.JSONField(default=dict, blank=True, help_text="Rows imported per table.")
    seconds = models.JSONField(default=dict, blank=True, help_text="Seconds spent per table.")
    changes = models.JSONField(
        null=True,
        blank=True,
        help_text="Catalog changes recorded, per table and kind; null when nothing was compared (a first sync).",
    )
    error = models.TextField(blank=True)

    objects = SyncRunQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at", "-id"]
        get_latest_by = "started_at"
        # The catalog history's time filters (`since`, `until`) name syncs by when they finished.
        indexes = [models.Index(fields=["finished_at"], name="sync_run_finished")]

    def __str__(self) -> str:
        return f"sync #{self.pk} {self.status}"

    @property
    def duration(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


# The natural-key columns of the tracked tables (apps/catalog/history.py), in the order a key reads.
CHANGE_KEY_COLUMNS = (
    "vendor_id",
    "region_id",
    "zone_id",
    "server_id",
    "storage_id",
    "benchmark_id",
    "allocation",
    "direction",
    "database_id",
    "database_storage_id",
    "ha",
    "ha_strategy",
)


class CatalogChange(models.Model):
    """One difference between the catalog a sync replaced and the one it loaded (apps/catalog/history.py).

    The row's natural key is spread over typed columns (null where its table has no such column), so
    that changes are filtered and joined to the catalog by index. `old` and `new` are JSON: a
    column's values (kind `changed`), the statuses (`status`), or the whole row (`added`: `new`,
    `removed`: `old`).
    """

    # Indexed with the columns a sync's records are looked up by (Meta.indexes), not alone.
    sync = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="catalog_changes", db_index=False)
    table = models.CharField(max_length=32, help_text="Upstream table, e.g. server_price.")
    kind = models.CharField(max_length=8, choices=choices.ChangeKind.choices)
    field = models.CharField(
        max_length=64, null=True, blank=True, help_text="The changed column; `status` for status changes."
    )
    vendor_id = models.CharField(**ID, null=True)
    region_id = models.CharField(**ID, null=True)
    zone_id = models.CharField(**ID, null=True)
    server_id = models.CharField(**ID, null=True, help_text="Server id (a benchmark score's resource_id).")
    storage_id = models.CharField(**ID, null=True)
    benchmark_id = models.CharField(**ID, null=True)
    allocation = models.CharField(max_length=8, null=True)
    direction = models.CharField(max_length=8, null=True)
    database_id = models.CharField(**ID, null=True)
    database_storage_id = models.CharField(**ID, null=True)
    ha = models.CharField(max_length=12, null=True)
    ha_strategy = models.CharField(max_length=16, null=True)
    currency = models.CharField(
        max_length=3, null=True, help_text="Prices: the currency of the row (before the change, when changed)."
    )
    old = models.JSONField(null=True)
    new = models.JSONField(null=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            # A sync's records of one kind (its counts, pruning, the price changes since a time: SQLite's
            # planner takes the index with the most equal columns, so this one has them all).
            models.Index(fields=["sync", "table", "kind", "field"], name="catalog_change_sync"),
            # /changes filters (newest first), one server's price history, /server_prices?price_change_since.
            models.Index(fields=["table", "kind", "id"], name="catalog_change_table"),
            models.Index(fields=["vendor_id", "server_id", "table", "id"], name="catalog_change_server"),
            models.Index(fields=["region_id", "id"], name="catalog_change_region"),
            # One database's price history (as catalog_change_server is one server's).
            models.Index(fields=["vendor_id", "database_id", "table", "id"], name="catalog_change_database"),
        ]

    def __str__(self) -> str:
        return f"{self.table} {'/'.join(self.key.values())} {self.kind}"

    @property
    def key(self) -> dict[str, str]:
        """The row's natural key, e.g. {"vendor_id": "aws", "server_id": "m5.large"}."""
        return {column: getattr(self, column) for column in CHANGE_KEY_COLUMNS if getattr(self, column) is not None}


# --- Watches: a caller's saved catalog queries, re-run after each sync (apps/catalog/watches/) -------------


def new_feed_token() -> str:
    return f"wft_{secrets.token_urlsafe(24)}"


def feed_token_hash(token: str) -> str:
    """Stored instead of the token: it is only ever compared (a SHA-256 suffices for a random 192-bit token)."""
    return hashlib.sha256(token.encode()).hexdigest()


class Watch(models.Model):
    """A caller's saved catalog query (a GET path with its query string), re-run after each sync.

    `caller` rebuilds the owner's Caller for the re-runs (keeper.api.callers.caller_reference: a key's
    lookup id or a snapshot of the Caller's fields, never a secret). `rows` is the last answer seen, as
    rows keyed by their ids (apps/catalog/watches/rows.py); `evaluated_sync` the last sync it was
    compared after, so that one sync makes one event at most.
    """

    owner = models.CharField(max_length=200, help_text="Local user name of the caller (Caller.owner).")
    name = models.CharField(max_length=100)
    query = models.CharField(max_length=2000, help_text="A catalog GET path with its query string.")
    route = models.CharField(max_length=100, help_text="The catalog route's URL name.")
    caller = models.JSONField(default=dict, help_text="Who the re-runs act as (no secrets).")
    status = models.CharField(max_length=10, choices=choices.WatchStatus.choices, default=choices.WatchStatus.ACTIVE)
    paused_reason = models.TextField(blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    feed_token_hash = models.CharField(max_length=64, editable=False, help_text="SHA-256 of the feed token.")
    rows = models.JSONField(default=dict, blank=True, help_text="The last answer seen, keyed by row id.")
    evaluated_sync = models.BigIntegerField(null=True, blank=True, help_text="The last sync compared after.")
    evaluated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["owner", "-created_at"], name="watch_owner_recent"),
            models.Index(fields=["status", "evaluated_sync"], name="watch_pending"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.query})"

    @property
    def subject(self) -> str:
        return f"watch:{self.pk}"

    def feed_token_matches(self, token: str) -> bool:
        return bool(self.feed_token_hash) and secrets.compare_digest(feed_token_hash(token), self.feed_token_hash)


class WatchSweep(models.Model):
    """The watches' evaluation after one sync: durable, so that whichever process ran the sync, the worker
    (or the in-process schedule) evaluates every watch once; `finished_at` is set when none is left."""

    sync_id = models.BigIntegerField(unique=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    evaluated = models.PositiveIntegerField(default=0)
    changed = models.PositiveIntegerField(default=0)
    paused = models.PositiveIntegerField(default=0)
    seconds = models.FloatField(default=0)

    class Meta:
        ordering = ["-sync_id"]

    def __str__(self) -> str:
        return f"watches after sync #{self.sync_id}"
