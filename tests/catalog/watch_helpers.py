"""Fixtures shared by the watch tests: people, their keys, and per-process limits reset between tests."""

from collections.abc import Callable, Iterator

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from apps.keys import services as key_services
from apps.keys.capability import forget_verified_tokens
from apps.throttling.services import reset_limiters
from tests.keys.helpers import owner_actor


@pytest.fixture(autouse=True)
def _fresh_limits() -> Iterator[None]:
    """Credit pools, quotas and verified tokens live in process memory: none leaks between tests."""
    reset_limiters()
    forget_verified_tokens()
    yield
    reset_limiters()
    forget_verified_tokens()


@pytest.fixture
def make_user(db) -> Callable[..., object]:
    def make(username: str, **fields) -> object:
        return get_user_model().objects.create_user(username=username, password=None, **fields)

    return make


@pytest.fixture
def alice(make_user):
    return make_user("alice")


@pytest.fixture
def bob(make_user):
    return make_user("bob")


@pytest.fixture
def make_key(db) -> Callable[..., key_services.IssuedKey]:
    names = iter(range(1, 10_000))

    def make(owner, **fields) -> key_services.IssuedKey:
        return key_services.key_create(owner=owner, name=f"key-{next(names)}", actor=owner_actor(owner), **fields)

    return make


@pytest.fixture
def client_of() -> Callable[[key_services.IssuedKey], APIClient]:
    """A test client sending `key` in X-API-Key."""

    def client(key: key_services.IssuedKey) -> APIClient:
        api = APIClient()
        api.credentials(HTTP_X_API_KEY=key.value)
        return api

    return client
