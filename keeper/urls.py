from django.contrib import admin
from django.urls import include, path

from keeper.observability.views import MetricsView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("apps.catalog.urls")),
    path("", include("apps.catalog.watches.urls")),
    path("", include("apps.accounts.urls")),
    path("", include("apps.throttling.urls")),
    path("", include("apps.keys.urls")),
    path("", include("keeper.events.urls")),
    path("", include("keeper.api.urls")),
    path("metrics", MetricsView.as_view(), name="metrics"),
]

handler400 = "keeper.api.views.bad_request"
handler403 = "keeper.api.views.permission_denied"
handler404 = "keeper.api.views.page_not_found"
handler500 = "keeper.api.views.server_error"
