"""The catalog history in the admin and the rate limits: sync runs with their change counts, the change
list, a server's price chart, and the seeded route costs."""

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from apps.catalog.admin import price_chart
from apps.catalog.models import CatalogChange, Server
from apps.catalog.selectors.history import cheapest_price_steps
from apps.throttling.models import RouteCost
from apps.throttling.services import api_routes
from tests.catalog.history_catalogs import changed_catalog
from tests.catalog.upstream import sample_catalog


@pytest.fixture
def runs(sync_upstream):
    today = timezone.now().astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    with time_machine.travel(today - timedelta(days=20), tick=False):
        first = sync_upstream(sample_catalog())
    with time_machine.travel(today - timedelta(days=10), tick=False):
        second = sync_upstream(changed_catalog())
    return first, second


def test_a_sync_run_shows_its_change_counts_and_links_to_its_changes(runs, admin_client):
    _, second = runs

    page = admin_client.get(reverse("admin:catalog_syncrun_change", args=[second.pk])).content.decode()

    assert "<th>table</th>" in page
    assert re.search(r"<td>server_price</td><td>1</td><td>1</td><td>1</td><td>2</td>", page), (
        "added, removed, status, changed"
    )
    assert f"?sync__id__exact={second.pk}" in page


def test_the_sync_run_list_counts_changes(runs, admin_client):
    page = admin_client.get(reverse("admin:catalog_syncrun_changelist")).content.decode()

    assert ">14</a>" in page


def test_the_change_list_filters_by_sync_table_and_kind(runs, admin_client):
    _, second = runs
    url = reverse("admin:catalog_catalogchange_changelist")

    everything = admin_client.get(url, {"sync__id__exact": second.pk})
    prices = admin_client.get(url, {"sync__id__exact": second.pk, "table": "server_price", "kind": "changed"})
    server = admin_client.get(url, {"vendor_id": "aws", "server_id": "m5.large"})

    assert everything.status_code == prices.status_code == server.status_code == 200
    assert everything.context["cl"].result_count == CatalogChange.objects.filter(sync=second).count() == 14
    assert prices.context["cl"].result_count == 2
    assert server.context["cl"].result_count == 2  # its on-demand price changed, one was added in r3


def test_a_servers_page_charts_its_cheapest_prices_without_anything_from_elsewhere(runs, admin_client):
    server = Server.objects.get(vendor_id="aws", server_id="m5.large")

    page = admin_client.get(reverse("admin:catalog_server_change", args=[server.pk])).content.decode()

    chart = page[page.index('<fieldset class="module" id="server-price-chart">') :]
    chart = chart[: chart.index("</fieldset>")]
    assert '<polyline class="price-line ondemand"' in chart
    assert '<polyline class="price-line spot"' in chart
    assert "<script" not in chart and "http" not in chart.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "vendor_id=aws&amp;server_id=m5.large" in chart


def test_the_chart_follows_the_cheapest_price_of_each_allocation(runs):
    first, second = runs

    steps = cheapest_price_steps(vendor_id="aws", server_id="m5.large")

    # On-demand: 0.096 in r1, then 0.1 in r1 (and 0.11 in r3: not the cheapest); spot: 0.035 throughout.
    assert steps == {
        "ondemand": [(first.finished_at, second.finished_at, 0.096), (second.finished_at, None, 0.1)],
        "spot": [(first.finished_at, None, 0.035)],
    }


def test_the_chart_is_drawn_to_scale():
    start, change, end = (
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2026, 1, 11, tzinfo=UTC),
        datetime(2026, 1, 21, tzinfo=UTC),
    )
    chart = price_chart({"ondemand": [(start, change, 0.2), (change, None, 0.1)], "spot": []}, now=end)

    g = chart["geometry"]
    (line,) = chart["lines"]
    points = [tuple(map(float, point.split(","))) for point in line["points"].split()]
    middle = g.left + g.plot_width / 2
    assert [round(x) for x, _ in points] == [g.left, round(middle), round(middle), g.left + g.plot_width]
    assert points[0][1] == pytest.approx(g.top) and points[2][1] == pytest.approx(g.top + g.plot_height / 2)
    assert [tick["label"] for tick in chart["ticks"]] == ["0", "0.05", "0.1", "0.15", "0.2"]


def test_a_server_without_history_says_so(db, admin_client, sync_upstream):
    sync_upstream(sample_catalog())
    server = Server.objects.get(vendor_id="gcp", server_id="retired-1")

    page = admin_client.get(reverse("admin:catalog_server_change", args=[server.pk])).content.decode()

    assert "No active hourly price in Keeper" in page
    assert "<polyline" not in page


@pytest.mark.django_db
def test_the_history_routes_are_seeded_with_their_costs():
    costs = dict(RouteCost.objects.values_list("route", "cost"))

    assert costs["/changes"] == 3
    assert costs["/server/<str:vendor>/<path:server>/price_history"] == 3
    assert {"/changes", "/server/<str:vendor>/<path:server>/price_history", "/syncs"} <= set(api_routes())
