from django.urls import path

from apps.catalog.views import catalog as views

urlpatterns = [
    path("servers", views.ServerSearchView.as_view(), name="servers"),
    path("server/<str:vendor>/<path:server>", views.ServerDetailView.as_view(), name="server"),
    path("v2/server/<str:vendor>/<path:server>", views.ServerDetailView.as_view(), name="server-v2"),
    path("regions", views.RegionListView.as_view(), name="regions"),
    path("stats", views.StatsView.as_view(), name="stats"),
    path("healthcheck", views.HealthcheckView.as_view(), name="healthcheck"),
    *views.table_urls(),
]
