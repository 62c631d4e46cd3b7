"""The one exception handler: a service's Django ValidationError is a JSON 400 naming the fields, its
conflicts (ConflictError) a JSON 409, whichever view lets them through."""

from django.core.exceptions import ValidationError

from keeper.api.exceptions import ConflictError, exception_handler


def test_a_services_validation_error_is_a_400_naming_its_fields():
    response = exception_handler(ValidationError({"allowed_ips": "'x' is not an IP address or CIDR range."}), {})

    assert response.status_code == 400
    assert response.data == {
        "detail": "Invalid input: allowed_ips.",
        "code": "invalid",
        "errors": {"allowed_ips": ["'x' is not an IP address or CIDR range."]},
    }


def test_a_validation_error_without_fields_is_a_400_of_non_field_errors():
    response = exception_handler(ValidationError(["First problem.", "Second problem."]), {})

    assert response.status_code == 400
    assert response.data["errors"] == {"non_field_errors": ["First problem.", "Second problem."]}


def test_a_conflict_is_a_409_saying_what_rules_it_out():
    response = exception_handler(ConflictError({"name": "Another key of this owner has that name."}), {})

    assert response.status_code == 409
    assert response.data == {"detail": "Another key of this owner has that name.", "code": "conflict"}
