from django.urls import path

from apps.throttling import views

urlpatterns = [
    path("config", views.GlobalConfigView.as_view(), name="config"),
]
