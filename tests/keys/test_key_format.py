"""The key format keeper_<id>_<secret><checksum>: a typo is refused before any database lookup."""

import math
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.keys import secrets as key_secrets
from apps.keys.services import KeyRejected, key_authenticate
from tests.keys.helpers import bearer, x_api_key

pytestmark = pytest.mark.django_db

FORMAT = re.compile(r"^keeper_([0-9A-Za-z]{12})_([0-9A-Za-z]{32})([0-9A-Za-z]{6})$")


def typo(value: str, position: int) -> str:
    """`value` with the character at `position` replaced by another character that keeps the shape."""
    replacement = "B" if value[position] == "A" else "A"
    return value[:position] + replacement + value[position + 1 :]


def test_a_new_key_is_the_prefix_the_id_the_secret_and_a_checksum_of_everything_before_it():
    key_id = key_secrets.new_key_id()

    value = key_secrets.new_key(key_id)

    match = FORMAT.match(value)
    assert match is not None, value
    assert match.group(1) == key_id
    assert match.group(3) == key_secrets.checksum(value[: -key_secrets.CHECKSUM_LENGTH])


def test_parsing_a_well_formed_key_gives_its_lookup_id():
    key_id = key_secrets.new_key_id()
    value = key_secrets.new_key(key_id)

    parsed = key_secrets.parse(value)

    assert parsed is not None
    assert parsed.key_id == key_id
    assert parsed.value == value


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param("keeper_", id="prefix-only"),
        pytest.param("not-a-keeper-key-at-all", id="foreign"),
        pytest.param("keeper_abc_def", id="too-short"),
        pytest.param("KEEPER_" + "A" * 12 + "_" + "B" * 38, id="prefix-upper-case"),
        pytest.param("keeper_" + "A" * 12 + "_" + "B" * 37, id="one-char-short"),
        pytest.param("keeper_" + "A" * 12 + "_" + "B" * 39, id="one-char-long"),
        pytest.param("keeper_" + "A" * 12 + "_" + "B" * 37 + "!", id="not-base62"),
    ],
)
def test_parsing_refuses_anything_but_the_format(value):
    assert key_secrets.parse(value) is None


def test_every_one_character_typo_after_the_prefix_fails_the_checksum():
    value = key_secrets.new_key(key_secrets.new_key_id())

    refused = [position for position in range(len("keeper_"), len(value)) if key_secrets.parse(typo(value, position))]

    assert refused == []


def test_a_typo_is_refused_without_a_single_database_query(django_assert_num_queries, make_key):
    issued = make_key()

    for position in range(len("keeper_"), len(issued.value)):
        with django_assert_num_queries(0), pytest.raises(KeyRejected, match="checksum") as refused:
            key_authenticate(typo(issued.value, position), ip="127.0.0.1", path="/regions")
        assert refused.value.status == 401


def test_a_well_formed_key_that_does_not_exist_is_refused_as_invalid(make_key):
    unknown = key_secrets.new_key(key_secrets.new_key_id())

    with pytest.raises(KeyRejected, match="^Invalid API key.$"):
        key_authenticate(unknown, ip="127.0.0.1", path="/regions")


@pytest.mark.parametrize("send", [bearer, x_api_key], ids=["bearer", "x-api-key"])
def test_a_typo_over_http_is_a_401_naming_the_checksum_and_never_reads_the_keys_table(api, make_key, send):
    issued = make_key()

    with CaptureQueriesContext(connection) as queries:
        response = api.get("/me", **send(typo(issued.value, 30)))

    assert response.status_code == 401
    assert response.json() == {
        "detail": "Malformed API key: the checksum does not match (a typo?).",
        "code": "invalid_api_key",
    }
    assert [q["sql"] for q in queries if "keys_apikey" in q["sql"]] == []


def test_the_masked_value_shows_the_prefix_with_the_id_and_the_last_four_characters_only(make_key):
    issued = make_key()
    value = issued.value
    secret = FORMAT.match(value).group(2)

    masked = issued.api_key.masked

    assert masked == f"keeper_{issued.api_key.key_id}…{value[-4:]}"
    assert secret not in masked
    assert value not in masked
    assert str(issued.api_key) == f"{issued.api_key.name} ({masked})"


def test_the_secret_carries_at_least_128_bits_of_entropy():
    value = key_secrets.new_key(key_secrets.new_key_id())
    secret = FORMAT.match(value).group(2)

    bits = len(secret) * math.log2(len(key_secrets.ALPHABET))

    assert len(key_secrets.ALPHABET) == 62
    assert len(secret) == 32
    assert bits >= 128


def test_secrets_are_drawn_from_the_whole_alphabet_and_never_repeat():
    secrets_ = [FORMAT.match(key_secrets.new_key("A" * 12)).group(2) for _ in range(500)]

    assert len(set(secrets_)) == len(secrets_)
    # 16,000 draws from 62 symbols: a symbol never drawn would mean a biased generator.
    assert set("".join(secrets_)) == set(key_secrets.ALPHABET)


def test_key_ids_are_unique_random_base62():
    ids = {key_secrets.new_key_id() for _ in range(500)}

    assert len(ids) == 500
    assert all(re.fullmatch(r"[0-9A-Za-z]{12}", key_id) for key_id in ids)
