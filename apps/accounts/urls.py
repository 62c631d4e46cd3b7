from django.urls import path

from apps.accounts import views

urlpatterns = [
    path("me", views.MeView.as_view(), name="me"),
]
