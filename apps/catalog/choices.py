"""Enumerations of the sparecores-crawler schema.

Upstream stores the upper-case member *names* (``ACTIVE``, ``X86_64``,
``ONDEMAND``), so those are the stored values; labels are the upstream values.
"""

from django.db import models


class Status(models.TextChoices):
    ACTIVE = "ACTIVE", "active"
    INACTIVE = "INACTIVE", "inactive"


class CpuAllocation(models.TextChoices):
    SHARED = "SHARED", "Shared"
    BURSTABLE = "BURSTABLE", "Burstable"
    DEDICATED = "DEDICATED", "Dedicated"


class CpuArchitecture(models.TextChoices):
    ARM64 = "ARM64", "arm64"
    ARM64_MAC = "ARM64_MAC", "arm64_mac"
    I386 = "I386", "i386"
    X86_64 = "X86_64", "x86_64"
    X86_64_MAC = "X86_64_MAC", "x86_64_mac"


class StorageType(models.TextChoices):
    HDD = "HDD", "hdd"
    SSD = "SSD", "ssd"
    NVME_SSD = "NVME_SSD", "nvme ssd"
    NETWORK = "NETWORK", "network"


class DdrGeneration(models.TextChoices):
    DDR3 = "DDR3", "DDR3"
    DDR4 = "DDR4", "DDR4"
    DDR5 = "DDR5", "DDR5"


class AcceleratorType(models.TextChoices):
    GPU = "GPU", "GPU"
    TPU = "TPU", "TPU"
    NPU = "NPU", "NPU"


class Allocation(models.TextChoices):
    ONDEMAND = "ONDEMAND", "ondemand"
    RESERVED = "RESERVED", "reserved"
    SPOT = "SPOT", "spot"


class PriceUnit(models.TextChoices):
    YEAR = "YEAR", "year"
    MONTH = "MONTH", "month"
    HOUR = "HOUR", "hour"
    GIB = "GIB", "GiB"
    GB = "GB", "GB"
    GB_MONTH = "GB_MONTH", "GB/month"


class TrafficDirection(models.TextChoices):
    IN = "IN", "inbound"
    OUT = "OUT", "outbound"


class ResourceType(models.TextChoices):
    SERVER = "SERVER", "server"
    DATABASE = "DATABASE", "database"


class BestPriceAllocation(models.TextChoices):
    """Which of a server's cheapest prices `/servers` reports as `price`."""

    ANY = "ANY", "cheapest hourly price of any allocation"
    SPOT_ONLY = "SPOT_ONLY", "cheapest spot price (hourly)"
    ONDEMAND_ONLY = "ONDEMAND_ONLY", "cheapest on-demand price (hourly)"
    MONTHLY = "MONTHLY", "cheapest on-demand price for a month (730 hours, tier caps applied)"


class SyncStatus(models.TextChoices):
    RUNNING = "RUNNING", "running"
    SUCCEEDED = "SUCCEEDED", "succeeded"
    SKIPPED = "SKIPPED", "skipped (unchanged)"
    FAILED = "FAILED", "failed"
