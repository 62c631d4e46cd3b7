"""keeper/settings.py refuses an introspection URL without the client credentials to call it with."""

import pytest

from tests.fakes import run_django

URL = "http://127.0.0.1:9/oauth2/introspect"
REFUSAL = "ImproperlyConfigured: AUTH_CLIENT_ID and AUTH_CLIENT_SECRET are required when AUTH_TOKEN_INTROSPECTION_URL"


@pytest.mark.parametrize(
    "credentials",
    [
        {},
        {"AUTH_CLIENT_ID": "keeper"},
        {"AUTH_CLIENT_SECRET": "s3cret"},
        {"AUTH_CLIENT_ID": " ", "AUTH_CLIENT_SECRET": "x"},
    ],
    ids=["neither", "no-secret", "no-client-id", "blank-client-id"],
)
def test_keeper_does_not_start_with_an_introspection_url_but_no_client_credentials(credentials):
    result = run_django("print('started')", {"AUTH_TOKEN_INTROSPECTION_URL": URL, **credentials})

    assert result.returncode != 0
    assert "started" not in result.stdout
    assert REFUSAL in result.stderr


def test_keeper_starts_with_an_introspection_url_and_client_credentials():
    result = run_django(
        "from apps.accounts.verification import get_verifier\nprint(type(get_verifier()).__name__)",
        {"AUTH_TOKEN_INTROSPECTION_URL": URL, "AUTH_CLIENT_ID": "keeper", "AUTH_CLIENT_SECRET": "s3cret"},
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "TokenVerifier"


def test_introspection_is_off_without_a_url():
    result = run_django("from apps.accounts.verification import get_verifier\nprint(get_verifier())", {})

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "None"
