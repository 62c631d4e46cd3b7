"""Malformed, absurdly deep or oversized JSON bodies are a 4xx with the usual JSON error, on every write."""

import pytest

from apps.keys.choices import Scope
from tests.keys.helpers import bearer

pytestmark = pytest.mark.django_db

DEEP = b"[" * 100_000


@pytest.fixture
def admin_key(make_key):
    return make_key(name="boss", scope=Scope.ADMIN)


@pytest.fixture
def target(make_key):
    return make_key(name="target")


def _send(api, method: str, path: str, body: bytes, key) -> object:
    return getattr(api, method)(path, data=body, content_type="application/json", **bearer(key))


WRITES = [
    ("post", "/keys/validate"),
    ("patch", "/keys/{id}"),
    ("post", "/keys/{id}/rotate"),
    ("patch", "/config"),
    ("post", "/keys"),
]


@pytest.mark.parametrize(("method", "path"), WRITES)
@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        (DEEP, 400, "not valid JSON"),
        (b'{"a": ' * 40 + b"1" + b"}" * 40, 400, "nests deeper than 32 levels"),
        (b'{"name": ', 400, "not valid JSON"),
        (b'{"name": "' + b"x" * 1_100_000 + b'"}', 413, "larger than 1048576 bytes"),
    ],
    ids=["100k brackets", "41 levels", "truncated", "over 1 MiB"],
)
def test_a_bad_body_is_a_clear_4xx(api, admin_key, target, method, path, body, status, says):
    response = _send(api, method, path.format(id=target.api_key.key_id), body, admin_key)

    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert says in response.json()["detail"]


def test_a_body_of_ordinary_depth_is_still_parsed(api, admin_key):
    response = _send(api, "post", "/keys/validate", b'{"key": "nope-nope-nope-nope"}', admin_key)

    assert response.status_code == 200
    assert response.json()["valid"] is False
