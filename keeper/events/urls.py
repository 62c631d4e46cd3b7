from django.urls import path
from rest_framework.routers import SimpleRouter

from keeper.events import views

router = SimpleRouter(trailing_slash=False)
router.register("webhooks", views.WebhookViewSet, basename="webhooks")

urlpatterns = [
    path("events", views.EventListView.as_view(), name="events"),
    *router.urls,
]
