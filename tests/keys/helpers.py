"""Small helpers shared by the API key tests."""

from apps.keys.policy import Actor, Rank
from apps.keys.services import IssuedKey


def owner_actor(user, organization=None) -> Actor:
    """The key's owner acting on it (as through the API, admin of `organization`), with no limits of its own."""
    admin_of = frozenset([organization.pk]) if organization is not None else frozenset()
    return Actor(f"test-setup:{user.get_username()}", standing=Rank.OWNER, user_id=user.pk, admin_of=admin_of)


def bearer(key: IssuedKey | str) -> dict[str, str]:
    """Test-client keyword arguments sending the key as `Authorization: Bearer <key>`."""
    return {"HTTP_AUTHORIZATION": f"Bearer {_value(key)}"}


def x_api_key(key: IssuedKey | str) -> dict[str, str]:
    """Test-client keyword arguments sending the key in `X-API-Key`."""
    return {"HTTP_X_API_KEY": _value(key)}


def _value(key: IssuedKey | str) -> str:
    return key.value if isinstance(key, IssuedKey) else key
