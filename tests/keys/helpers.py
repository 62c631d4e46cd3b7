"""Small helpers shared by the API key tests."""

from apps.keys.services import IssuedKey


def bearer(key: IssuedKey | str) -> dict[str, str]:
    """Test-client keyword arguments sending the key as `Authorization: Bearer <key>`."""
    return {"HTTP_AUTHORIZATION": f"Bearer {_value(key)}"}


def x_api_key(key: IssuedKey | str) -> dict[str, str]:
    """Test-client keyword arguments sending the key in `X-API-Key`."""
    return {"HTTP_X_API_KEY": _value(key)}


def _value(key: IssuedKey | str) -> str:
    return key.value if isinstance(key, IssuedKey) else key
