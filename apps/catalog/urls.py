"""Every route of the catalog API, in the order Django tries them."""

from django.urls import path

from apps.catalog.views import ai as ai_views
from apps.catalog.views import benchmarks as benchmark_views
from apps.catalog.views import catalog as views
from apps.catalog.views import database_details as database_detail_views
from apps.catalog.views import databases as database_views
from apps.catalog.views import feeds as feed_views
from apps.catalog.views import history as history_views
from apps.catalog.views import prices as price_views
from apps.catalog.views import server_details as server_detail_views
from apps.catalog.views import tables as table_views

# One server's resources precede `server/<vendor>/<path:server>`, whose server may contain slashes
# (otherwise `m5.large/prices` would be looked up as a server id).
SERVER = "server/<str:vendor>/<path:server>"
# The same for one managed database (a route cost is seeded for its price history's pattern).
DATABASE = "database/<str:vendor>/<path:database>"

urlpatterns = [
    path("servers", views.ServerSearchView.as_view(), name="servers"),
    path("databases", database_views.DatabaseSearchView.as_view(), name="databases"),
    path(f"{SERVER}/prices", server_detail_views.ServerPricesView.as_view(), name="server-detail-prices"),
    path(f"{SERVER}/benchmarks", server_detail_views.ServerBenchmarksView.as_view(), name="server-benchmarks"),
    path(f"{SERVER}/descriptions", server_detail_views.ServerDescriptionsView.as_view(), name="server-descriptions"),
    path(
        f"{SERVER}/similar_servers/<str:by>/<str:num>",
        server_detail_views.SimilarServersView.as_view(),
        name="server-similar-servers",
    ),
    path("changes", history_views.ChangeListView.as_view(), name="changes"),
    path("changes.atom", feed_views.ChangeFeedView.as_view(), name="changes-feed"),
    path("syncs", history_views.SyncListView.as_view(), name="syncs"),
    path(f"{SERVER}/price_history", history_views.PriceHistoryView.as_view(), name="server-price-history"),
    path(SERVER, views.ServerDetailView.as_view(), name="server"),
    path(f"{DATABASE}/prices", database_detail_views.DatabasePricesView.as_view(), name="database-prices"),
    path(f"{DATABASE}/benchmarks", database_detail_views.DatabaseBenchmarksView.as_view(), name="database-benchmarks"),
    path(
        f"{DATABASE}/price_history",
        database_detail_views.DatabasePriceHistoryView.as_view(),
        name="database-price-history",
    ),
    path(DATABASE, database_detail_views.DatabaseDetailView.as_view(), name="database"),
    path(f"v2/{SERVER}", views.ServerDetailView.as_view(), name="server-v2"),
    path("regions", views.RegionListView.as_view(), name="regions"),
    path("stats", views.StatsView.as_view(), name="stats"),
    path("healthcheck", views.HealthcheckView.as_view(), name="healthcheck"),
    path("server_prices", price_views.ServerPriceSearchView.as_view(), name="server-prices"),
    path("storage_prices", price_views.StoragePriceSearchView.as_view(), name="storage-prices"),
    path("traffic_prices", price_views.TrafficPriceSearchView.as_view(), name="traffic-prices"),
    path(
        "database_storage_prices",
        price_views.DatabaseStoragePriceSearchView.as_view(),
        name="database-storage-prices",
    ),
    path("table/server_prices", price_views.ServerPriceTableView.as_view(), name="table-server-prices"),
    path("table/database_price", price_views.DatabasePriceTableView.as_view(), name="table-database-price"),
    *(path(f"table/{name}", view.as_view(), name=f"table-{name}") for name, view in views.TABLE_VIEWS.items()),
    path("table/server/select", table_views.ServerTableSelectView.as_view(), name="table-server-select"),
    path("table/server/meta", table_views.ServerTableMetaView.as_view(), name="table-server-meta"),
    path("benchmark_configs", benchmark_views.BenchmarkConfigsView.as_view(), name="benchmark-configs"),
    path("benchmark_score_stats", benchmark_views.BenchmarkScoreStatsView.as_view(), name="benchmark-score-stats"),
    path("debug", benchmark_views.DebugView.as_view(), name="debug"),
    *(path(view.target.path, view.as_view(), name=f"ai-{slug}") for slug, view in ai_views.ASSIST_VIEWS.items()),
]
