from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.catalog.watches.feeds import WatchEventsFeed
from apps.catalog.watches.views import WatchEventListView, WatchViewSet

router = SimpleRouter(trailing_slash=False)
router.register("watches", WatchViewSet, basename="watch")

urlpatterns = [
    path("watches/<int:pk>/events", WatchEventListView.as_view(), name="watch-events"),
    path("watches/<int:pk>/events.atom", WatchEventsFeed(), name="watch-events-atom"),
    *router.urls,
]
