from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.keys import views

router = SimpleRouter(trailing_slash=False)
router.register("keys", views.KeyViewSet, basename="keys")

urlpatterns = [
    path(".well-known/jwks.json", views.JwksView.as_view(), name="jwks"),
    path("keys/validate", views.KeyValidateView.as_view(), name="keys-validate"),
    path("keys/usage", views.KeyUsageView.as_view(), name="keys-usage-all"),
    path("keys/watch", views.KeyWatchView.as_view(), name="keys-watch"),
    path("keys/catalog/scopes", views.ScopeCatalogView.as_view(), name="keys-scopes"),
    path("keys/catalog/capabilities", views.CapabilityCatalogView.as_view(), name="keys-capabilities"),
    *router.urls,
]
