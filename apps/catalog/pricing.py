"""Money: tiered prices, offline currency conversion, and the digits prices are given to.

The one place for price digits and currency conversion of the read side (SQL rounding too).
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import Any

from currency_converter import CurrencyConverter

HOURS_PER_MONTH = 730.0
# Upstream's rounding: 4 digits for server prices (2 for monthly ones), 6 for storage and traffic prices.
SERVER_PRICE_DIGITS = 4
MONTHLY_PRICE_DIGITS = 2
UNIT_PRICE_DIGITS = 6

# A server row's `price_breakdown`: its parts and their digits (per hour, or per month for the monthly ones).
PRICE_BREAKDOWN = tuple(
    (name, MONTHLY_PRICE_DIGITS if name.endswith("monthly") else SERVER_PRICE_DIGITS)
    for name in (
        "compute_min_price",
        "compute_min_price_spot",
        "compute_min_price_ondemand",
        "compute_min_price_ondemand_monthly",
        "traffic_inbound_hourly",
        "traffic_inbound_monthly",
        "traffic_outbound_hourly",
        "traffic_outbound_monthly",
        "traffic_hourly",
        "traffic_monthly",
        "extra_storage_hourly",
        "extra_storage_monthly",
    )
)


def server_price_digits(column: str) -> int:
    """The digits of a server's derived price column (the monthly ones have 2)."""
    return MONTHLY_PRICE_DIGITS if column.endswith("monthly") else SERVER_PRICE_DIGITS


@dataclass(frozen=True)
class Breakdown:
    """A search row's `price_breakdown`: its parts (name, digits), in the order the SQL selects them."""

    parts: tuple[tuple[str, int], ...]
    names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(name for name, _ in self.parts))

    def finish(
        self, row: dict[str, Any], values: Sequence[Any], converted: Sequence[tuple[str, int]], rate: float
    ) -> None:
        """Complete a search row (a server's or a database's, its figures in USD): the `converted` figures
        and the breakdown `values` converted at `rate` to their digits, `price` (= min_price) and
        `price_breakdown`. A row without any price (its first part null) has every part null, as upstream.

        Converted last: the per-price scores stay per USD, as upstream computes them.
        """
        priced = dict.fromkeys(self.names) if values[0] is None else dict(zip(self.names, values))
        if rate != 1.0:
            for name, digits in converted:
                if row[name]:
                    row[name] = round(row[name] * rate, digits)
            for name, digits in self.parts:
                if priced[name]:
                    priced[name] = round(priced[name] * rate, digits)
        row["price"] = row["min_price"]
        row["price_breakdown"] = priced


SERVER_BREAKDOWN = Breakdown(PRICE_BREAKDOWN)


def tiered_price(tiers: list[dict[str, Any]], usage: float, unit_price: float) -> float:
    """The cost of `usage` units under `tiers` ([{lower, upper, price}]), or at `unit_price` without tiers.

    A tier whose price is 0 past some usage caps the cost (e.g. Hetzner bills at
    most 672 hours a month).
    """
    if not tiers:
        return unit_price * usage
    total = 0.0
    for tier in sorted(tiers, key=lambda t: float(t["lower"])):
        lower, upper = float(tier["lower"]), float(tier["upper"])
        if usage <= lower:
            break
        total += (min(usage, upper) - lower) * float(tier["price"])
    return total


def round_half_up(value: float, digits: int) -> float:
    """Half away from zero on the number as printed (0.00675 -> 0.0068), as SQL's ROUND and the Spare Cores
    API round; Python's round() works on the binary value and gives 0.0067."""
    return float(Decimal(repr(value)).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))


def monthly_price(tiers: list[dict[str, Any]], hourly_price: float) -> float:
    return round_half_up(tiered_price(tiers, HOURS_PER_MONTH, hourly_price), 2)


@lru_cache(maxsize=1)
def _converter() -> CurrencyConverter:
    # Bundled ECB reference rates: no network needed. Loaded once per process (read-only).
    return CurrencyConverter(fallback_on_missing_rate=True, fallback_on_wrong_date=True)


def known_currencies() -> frozenset[str]:
    return frozenset(_converter().currencies)


@lru_cache(maxsize=64)
def exchange_rate(from_currency: str, to_currency: str) -> float:
    """Units of `to_currency` per unit of `from_currency`; ValueError for an unknown currency."""
    if from_currency == to_currency:
        return 1.0
    try:
        rate = _converter().convert(1.0, from_currency, to_currency)
    except (ValueError, KeyError) as exc:
        raise ValueError(f"No exchange rate from {from_currency} to {to_currency}") from exc
    if not math.isfinite(rate) or rate <= 0:
        raise ValueError(f"No exchange rate from {from_currency} to {to_currency}")
    return rate


@lru_cache(maxsize=1)
def _usd_rate_case() -> str:
    branches = " ".join(
        f"WHEN '{code}' THEN {exchange_rate(code, 'USD')!r}" for code in sorted(known_currencies()) if code.isalpha()
    )
    return f"CASE {{currency}} {branches} ELSE NULL END"


def usd_sql(price: str, currency: str) -> str:
    """SQL for `price` (in the currency named by the expression `currency`) in USD, at the bundled rates.

    The rates are constants of the process, so the database converts without a table of them.
    """
    return f"({price}) * ({_usd_rate_case().format(currency=currency)})"


def round_sql(expression: str, digits: int, *, postgres: bool) -> str:
    """SQL rounding half away from zero, as a float (PostgreSQL rounds numerics only)."""
    if postgres:
        return f"CAST(ROUND(CAST({expression} AS NUMERIC), {digits}) AS DOUBLE PRECISION)"
    return f"ROUND({expression}, {digits})"


def convert_amount(value: float | None, rate: float, digits: int) -> float | None:
    """`value` times `rate`, rounded as upstream rounds (Python's round); zero and missing values as they are."""
    return round(value * rate, digits) if value else value


def converted(value: float | None, from_currency: str | None, to_currency: str, digits: int) -> float | None:
    """`value` in `to_currency` (rounded as the price searches round conversions); None if unknown."""
    if value is None or from_currency is None:
        return None
    if from_currency == to_currency:
        return value
    try:
        return round(value * exchange_rate(from_currency, to_currency), digits)
    except ValueError:
        return None


def convert_price_row(row: dict[str, Any], currency: str, digits: int) -> None:
    """Converts a price row's price, up-front price, tiers (and monthly price) to `currency` in place."""
    if row["currency"] == currency:
        return
    rate = exchange_rate(row["currency"], currency)
    row["price"] = round(row["price"] * rate, digits)
    row["price_upfront"] = convert_amount(row["price_upfront"], rate, digits)
    row["price_tiered"] = [
        {**tier, "price": round(float(tier["price"]) * rate, digits)} for tier in row["price_tiered"]
    ]
    if "price_monthly" in row:
        row["price_monthly"] = convert_amount(row["price_monthly"], rate, MONTHLY_PRICE_DIGITS)
    row["currency"] = currency
