"""Where a price is: the validated `regions`, `vendor_regions` and `countries` of a search, and the rule on
how many of them an anonymous caller may name. The filters that validate them are in apps/catalog/filters/places.py."""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import Q

from keeper.api.callers import caller_of

MAX_ANONYMOUS_COUNTRIES = 1
MAX_ANONYMOUS_REGIONS = 3
VENDOR_REGION_SEPARATOR = "~"


@dataclass(frozen=True)
class Places:
    """Validated place filters; each given one narrows the search (they combine with AND)."""

    regions: tuple[str, ...] = ()
    vendor_regions: tuple[tuple[str, str], ...] = ()
    countries: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.regions or self.vendor_regions or self.countries)

    def q(self, prefix: str = "", country_lookup: str = "region__country_id") -> Q:
        """The condition on price rows (`prefix` leads from the queried model to them, e.g. "prices__";
        `country_lookup` from them to the country: a stored column where there is one)."""
        condition = Q()
        if self.regions:
            condition &= Q(**{f"{prefix}region_id__in": self.regions})
        if self.vendor_regions:
            pairs = Q()
            for vendor_id, region_id in self.vendor_regions:
                pairs |= Q(**{f"{prefix}vendor_id": vendor_id, f"{prefix}region_id": region_id})
            condition &= pairs
        if self.countries:
            condition &= Q(**{f"{prefix}{country_lookup}__in": self.countries})
        return condition

    @staticmethod
    def pairs(values: Iterable[str] | None) -> tuple[tuple[str, str], ...]:
        """Validated `vendor~region` values as (vendor_id, region_id) pairs."""
        return tuple(tuple(item.split(VENDOR_REGION_SEPARATOR, 1)) for item in values or ())  # type: ignore[misc]

    def region_count(self) -> int:
        """Distinct region ids named by `regions` and `vendor_regions` together (what the anonymous limit counts)."""
        return len(set(self.regions) | {region_id for _, region_id in self.vendor_regions})


def place_limit_errors(places: Places, user: Any) -> dict[str, list[str]]:
    """The upstream rule for anonymous callers: at most 1 country and 3 regions (regions and
    vendor_regions counted together, by region id) per search. Authenticated callers are exempt."""
    if caller_of(user) is not None:
        return {}
    errors: dict[str, list[str]] = {}
    if places.region_count() > MAX_ANONYMOUS_REGIONS:
        message = f"Max {MAX_ANONYMOUS_REGIONS} regions can be queried at a time without authentication."
        for name in ("regions", "vendor_regions"):
            if getattr(places, name):
                errors[name] = [message]
    if len(places.countries) > MAX_ANONYMOUS_COUNTRIES:
        errors["countries"] = [
            f"Max {MAX_ANONYMOUS_COUNTRIES} country can be queried at a time without authentication."
        ]
    return errors
