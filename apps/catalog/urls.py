from django.urls import path

from apps.catalog.views import ai as ai_views
from apps.catalog.views import benchmarks as benchmark_views
from apps.catalog.views import catalog as views
from apps.catalog.views import history as history_views
from apps.catalog.views import prices as price_views
from apps.catalog.views import server_details as server_detail_views
from apps.catalog.views import tables as table_views

urlpatterns = [
    path("servers", views.ServerSearchView.as_view(), name="servers"),
    # Before server/<vendor>/<path:server>, whose server may contain slashes.
    *server_detail_views.server_detail_urls(),
    *history_views.history_urls(),
    path("server/<str:vendor>/<path:server>", views.ServerDetailView.as_view(), name="server"),
    path("v2/server/<str:vendor>/<path:server>", views.ServerDetailView.as_view(), name="server-v2"),
    path("regions", views.RegionListView.as_view(), name="regions"),
    path("stats", views.StatsView.as_view(), name="stats"),
    path("healthcheck", views.HealthcheckView.as_view(), name="healthcheck"),
    *price_views.price_urls(),
    *views.table_urls(),
    *table_views.table_server_urls(),
    *benchmark_views.benchmark_urls(),
    *ai_views.assist_urls(),
]
