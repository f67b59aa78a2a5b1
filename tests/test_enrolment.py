"""What IT staff give a kiosk to enrol it: a code, or the enrolment QR code's content for its central."""

from __future__ import annotations

import pytest

from kiosk_client.core.enrolment import enrolment_code, enrolment_url
from kiosk_client.core.errors import EnrolmentInputError

CENTRAL = "https://central.example.org"


@pytest.mark.parametrize(
    ("given", "central"),
    [
        ("K7QW-3MZP-9XHT-AB2C", CENTRAL),
        ("  K7QW-3MZP-9XHT-AB2C\r\n", CENTRAL),  # what a reader types, with its Enter
        ("https://central.example.org/enrol?code=K7QW-3MZP-9XHT-AB2C", CENTRAL),
        ("HTTPS://Central.Example.org:443/enrol/?code=K7QW-3MZP-9XHT-AB2C", CENTRAL),
        ("https://c.example.org/borne/enrol?code=K7QW-3MZP-9XHT-AB2C", "https://c.example.org/borne"),
        ("http://127.0.0.1:8800/enrol?code=K7QW-3MZP-9XHT-AB2C", "http://127.0.0.1:8800"),
    ],
)
def test_a_code_or_a_qr_code_of_this_central_gives_the_code(given: str, central: str) -> None:
    assert enrolment_code(given, central) == "K7QW-3MZP-9XHT-AB2C"


def test_the_qr_code_holds_the_central_and_the_code() -> None:
    url = enrolment_url(CENTRAL + "/", "K7QW-3MZP-9XHT-AB2C")
    assert url == "https://central.example.org/enrol?code=K7QW-3MZP-9XHT-AB2C"
    assert enrolment_code(url, CENTRAL) == "K7QW-3MZP-9XHT-AB2C"


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("", "no enrolment code was given"),
        ("  \n", "no enrolment code was given"),
        ("K7", "an enrolment code is 4 to 64"),
        ("K7QW 3MZP", "an enrolment code is 4 to 64"),
        ("K7QW-3MZP-9XHT-AB2C-", "an enrolment code is 4 to 64"),
        (
            "https://evil.example.org/enrol?code=K7QW-3MZP-9XHT-AB2C",
            "this kiosk's central is https://central",
        ),
        ("http://central.example.org/enrol?code=K7QW-3MZP-9XHT-AB2C", "this kiosk's central is"),
        ("https://central.example.org:8443/enrol?code=K7QW-3MZP-9XHT-AB2C", "this kiosk's central is"),
        ("https://central.example.org/other?code=K7QW-3MZP-9XHT-AB2C", "this kiosk's central is"),
        ("https://central.example.org/enrol", "has no code"),
        ("https://central.example.org/enrol?code=A&code=B", "has no code"),
        ("https://central.example.org/enrol?code=%3Cscript%3E", "an enrolment code is 4 to 64"),
        ("https://central.example.org:99999/enrol?code=K7QW", "invalid port"),
        ("ftp://central.example.org/enrol?code=K7QW", "not an enrolment address"),
    ],
)
def test_anything_else_is_refused_clearly(given: str, message: str) -> None:
    with pytest.raises(EnrolmentInputError, match=message):
        enrolment_code(given, CENTRAL)
