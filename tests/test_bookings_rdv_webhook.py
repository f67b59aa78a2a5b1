"""RDV Service Public's webhooks on the reference central, over loopback HTTP: recorded payloads,
signed as RDV Service Public signs them. A body that is not signed by the shared secret, malformed or
unmapped changes nothing; news is applied once, in order, and a cancelled or deleted rdv never comes
back."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from kiosk_client.central.admin import CentralAdmin, Clerk
from kiosk_client.central.server import CentralThread

from .fake_rdv_service_public import recorded, sign, webhook
from .kiosk_rig import enrolled_token

V1 = "/api/v1"
HOOK = f"{V1}/bookings/rdv-service-public/webhook"
SECRET = "whsec-3f8a1c5e9b2d4f60a7c1e3d5b7f9a2c4"


@dataclass
class Booked:
    central: CentralThread
    admin: httpx.Client
    kiosk_id: str
    guichet_kiosk_id: str
    clerk: Clerk

    def post(self, body: bytes, signature: str | None = None, secret: str = SECRET) -> httpx.Response:
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if signature is None:
            signature = sign(secret, body)
        if signature:
            headers["X-Lapin-Signature"] = signature
        return httpx.post(self.central.url + HOOK, content=body, headers=headers)

    def appointments(self) -> list[dict[str, Any]]:
        """The clerk's list, as the console gets it."""
        response = httpx.get(
            self.central.url + f"{V1}/clerk/appointments",
            headers={"Authorization": f"Bearer {self.clerk.token}"},
        )
        response.raise_for_status()
        return list(response.json()["appointments"])

    def status(self) -> dict[str, Any]:
        response = self.admin.get(f"{V1}/admin/bookings")
        response.raise_for_status()
        return dict(response.json())

    def snapshot(self) -> tuple[Any, ...]:
        """Everything a refused webhook must leave as it was."""
        store = self.central.server.store
        return (
            [tuple(r) for r in store.bookings()],
            [tuple(r) for r in store._all("SELECT * FROM appointments ORDER BY id")],
        )


@pytest.fixture
def booked(central: CentralThread, admin: CentralAdmin) -> Iterator[Booked]:
    kiosk_id = admin.create_kiosk("Borne 1", "France Services de Mauriac")
    guichet_kiosk_id = admin.create_kiosk("Borne 2", "France Services de Riom-ès-Montagnes")
    clerk = admin.create_clerk("Mme Martin", "CAF")
    with httpx.Client(
        base_url=central.url, headers={"Authorization": f"Bearer {central.admin_token}"}
    ) as client:
        response = client.put(
            f"{V1}/admin/bookings/config",
            json={
                "rdv_service_public": {
                    "webhook_secret": SECRET,
                    # The recorded rdvs are at lieu 871 with the agents "Guichet 1" (3001) and Claire Martin (275).
                    "kiosks": [
                        {"lieu": 871, "kiosk_id": kiosk_id},
                        {"agent": "Guichet 2", "kiosk_id": guichet_kiosk_id},
                    ],
                    "clerks": [{"agent": "claire.martin@caf-cantal.example.fr", "clerk_id": clerk.clerk_id}],
                }
            },
        )
        assert response.status_code == 200, response.text
        yield Booked(central, client, kiosk_id, guichet_kiosk_id, clerk)


def soon(hours: float = 1) -> datetime:
    return (datetime.now(UTC) + timedelta(hours=hours)).replace(microsecond=0)


T0 = datetime(2026, 12, 1, 13, 3, 28, tzinfo=UTC)  # meta.timestamps: only their order matters


def test_a_signed_created_rdv_becomes_an_appointment_of_the_mapped_kiosk_and_clerk(booked: Booked) -> None:
    start = soon()
    response = booked.post(webhook("webhook_rdv_created.json", starts_at=start, at=T0))
    assert response.status_code == 200, response.text
    assert response.json()["outcome"] == "created"
    [appointment] = booked.appointments()
    assert appointment["id"] == response.json()["appointment_id"]
    assert datetime.fromisoformat(appointment["start"]) == start
    assert datetime.fromisoformat(appointment["end"]) == start + timedelta(minutes=30)
    assert appointment["service"] == "CAF"  # the clerk's, no rule overrides it
    assert appointment["kiosk_name"] == "Borne 1"  # lieu 871
    assert appointment["citizen_name"] == "Jeanne DUPONT"  # for the clerk's eyes only
    assert booked.status()["counts"] == {"rdv-service-public": {"active": 1}}


def test_the_recorded_body_verifies_byte_for_byte(booked: Booked) -> None:
    """The body as recorded, with RDV Service Public's own serialisation (non-ASCII as UTF-8), signed:
    accepted. The same JSON re-serialised differently would be another body, hence another signature."""
    body = recorded("webhook_rdv_created.json")
    assert b"\xc3\xa0 France Services" in body  # "à", raw UTF-8 as Ruby's JSON.generate writes it
    response = booked.post(body)
    assert response.status_code == 200 and response.json()["outcome"] == "created"


@pytest.mark.parametrize(
    ("case", "signature"),
    [
        ("missing", ""),
        ("another secret", sign("not-the-secret", b"x")),
        ("not hex", "z" * 64),
        ("truncated", None),
        ("over a 64 KB header", "a" * 64_000),
    ],
)
def test_a_missing_or_wrong_signature_is_refused_with_401_and_changes_nothing(
    booked: Booked, case: str, signature: str | None
) -> None:
    body = webhook("webhook_rdv_created.json", starts_at=soon(), at=T0)
    if case == "another secret":
        signature = sign("not-the-secret", body)
    if case == "truncated":
        signature = sign(SECRET, body)[:-2]
    before = booked.snapshot()
    response = booked.post(body, signature=signature)
    assert response.status_code in (400, 401), response.text  # aiohttp refuses the 64 KB header itself (400)
    if response.status_code == 401:
        assert response.json()["error"]["code"] == "invalid_signature"
    assert booked.snapshot() == before
    assert booked.appointments() == []


def test_a_body_altered_after_signing_is_refused(booked: Booked) -> None:
    body = webhook("webhook_rdv_created.json", starts_at=soon(), at=T0)
    signature = sign(SECRET, body)
    altered = body.replace(b'"Claire"', b'"Claira"')
    assert altered != body
    response = booked.post(altered, signature=signature)
    assert response.status_code == 401
    # Whitespace counts too: the signature is of the raw bytes, not of the JSON's meaning.
    assert booked.post(body + b" ", signature=signature).status_code == 401
    assert booked.appointments() == []


def test_malformed_bodies_with_a_good_signature_get_400_and_change_nothing(booked: Booked) -> None:
    created = webhook("webhook_rdv_created.json", starts_at=soon(), at=T0)
    bodies = [
        b"{not json",
        b"[1, 2]",
        b'{"data": {"id": 1}}',  # no meta
        created.replace(b'"event":"created"', b'"event":"exploded"'),
        created.replace(b'"starts_at":"', b'"starts_at":"tomorrow'),
        created.replace(b'"id":90412', b'"id":-4'),
        created.replace(b'"status":"unknown","url_for_agents"', b'"status":"lost","url_for_agents"'),
        b'{"data":' + b"[" * 5000 + b"]" * 5000 + b',"meta":{}}',  # nesting beyond the bounds
    ]
    assert all(body != created for body in bodies)
    before = booked.snapshot()
    for body in bodies:
        response = booked.post(body)
        assert response.status_code == 400, (body[:60], response.text)
    assert booked.snapshot() == before
    too_big = b'{"data":{"x":"' + b"a" * 600_000 + b'"}}'
    assert booked.post(too_big).status_code == 413
    assert booked.snapshot() == before


def test_without_a_configured_secret_the_webhook_is_refused(central: CentralThread) -> None:
    response = httpx.post(central.url + HOOK, content=b"{}", headers={"X-Lapin-Signature": sign("", b"{}")})
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "bookings_not_configured"


def test_news_is_applied_once_and_in_order_and_a_cancelled_rdv_never_comes_back(booked: Booked) -> None:
    start, moved = soon(1), soon(2)
    created = webhook("webhook_rdv_created.json", starts_at=start, at=T0)
    updated = webhook("webhook_rdv_updated.json", starts_at=moved, minutes=45, at=T0 + timedelta(hours=20))
    excused = webhook(
        "webhook_rdv_updated_excused.json", starts_at=moved, minutes=45, at=T0 + timedelta(days=2)
    )
    destroyed = webhook("webhook_rdv_destroyed.json", starts_at=moved, at=T0 + timedelta(days=3))

    first = booked.post(created).json()
    assert first["outcome"] == "created"
    assert booked.post(created).json() == {
        **first,
        "outcome": "unchanged",
    }  # delivered twice: one appointment
    assert booked.post(updated).json()["outcome"] == "updated"
    [appointment] = booked.appointments()
    assert appointment["id"] == first["appointment_id"]  # moved, not replaced
    assert datetime.fromisoformat(appointment["start"]) == moved
    assert datetime.fromisoformat(appointment["end"]) == moved + timedelta(minutes=45)

    assert booked.post(created).json()["outcome"] == "stale"  # a late retry of older news
    assert datetime.fromisoformat(booked.appointments()[0]["start"]) == moved

    assert booked.post(excused).json()["outcome"] == "cancelled"  # the citizen excused themself
    assert booked.appointments() == []
    for replay in (updated, created):
        assert booked.post(replay).json()["outcome"] == "stale"
    assert booked.appointments() == []

    assert booked.post(destroyed).json()["outcome"] == "unchanged"  # already cancelled; now deleted: final
    newer_than_everything = webhook("webhook_rdv_updated.json", starts_at=moved, at=T0 + timedelta(days=9))
    assert booked.post(newer_than_everything).json()["outcome"] == "stale"
    assert booked.appointments() == []
    assert booked.status()["counts"] == {"rdv-service-public": {"removed": 1}}


def test_news_arriving_out_of_order_keeps_the_newest(booked: Booked) -> None:
    start, moved = soon(1), soon(3)
    created = webhook("webhook_rdv_created.json", starts_at=start, at=T0)
    updated = webhook("webhook_rdv_updated.json", starts_at=moved, at=T0 + timedelta(minutes=5))
    assert booked.post(updated).json()["outcome"] == "created"  # the update came first: it creates
    assert booked.post(created).json()["outcome"] == "stale"
    [appointment] = booked.appointments()
    assert datetime.fromisoformat(appointment["start"]) == moved


def test_on_the_same_second_a_cancellation_wins(booked: Booked) -> None:
    """RDV Service Public's timestamps are to the second: two events in one second cannot be ordered,
    and then the rdv stays cancelled whatever order they arrive in."""
    at = T0 + timedelta(days=1)
    excused = webhook("webhook_rdv_updated_excused.json", starts_at=soon(), at=at)
    updated = webhook("webhook_rdv_updated.json", starts_at=soon(), at=at)
    assert booked.post(excused).json()["outcome"] == "unchanged"  # cancelled before we knew it
    assert booked.post(updated).json()["outcome"] == "stale"
    assert booked.appointments() == []


def test_a_deleted_rdv_leaves_the_kiosks_schedule(booked: Booked, admin: CentralAdmin) -> None:
    token = enrolled_token(booked.central.url, admin.enrollment_code(booked.kiosk_id))
    with httpx.Client(base_url=booked.central.url, headers={"Authorization": f"Bearer {token}"}) as kiosk:

        def schedule() -> list[str]:
            response = kiosk.get(f"{V1}/kiosk/schedule")
            response.raise_for_status()
            return [a["id"] for a in response.json()["appointments"]]

        created = booked.post(webhook("webhook_rdv_created.json", starts_at=soon(), at=T0)).json()
        assert created["outcome"] == "created"
        assert schedule() == [created["appointment_id"]]
        destroyed = webhook("webhook_rdv_destroyed.json", at=T0 + timedelta(minutes=1))
        assert booked.post(destroyed).json()["outcome"] == "cancelled"
        assert schedule() == []
    assert booked.appointments() == []


def test_unmapped_rdvs_and_other_models_are_acknowledged_ignored_and_counted(booked: Booked) -> None:
    unmapped = booked.post(webhook("webhook_rdv_created_unmapped.json", starts_at=soon(), at=T0))
    assert unmapped.status_code == 200
    assert unmapped.json() == {
        "outcome": "ignored",
        "appointment_id": None,
        "reason": "no kiosk for its lieu or agents",
    }
    absence = booked.post(recorded("webhook_absence_created.json"))
    assert absence.status_code == 200 and absence.json()["outcome"] == "ignored"
    assert booked.appointments() == []
    status = booked.status()
    assert status["counts"] == {"rdv-service-public": {"ignored": 1}}
    assert [(i["external_id"], i["reason"]) for i in status["ignored"]] == [
        ("90433", "no kiosk for its lieu or agents")
    ]


def test_a_post_named_like_guichet_1_maps_to_its_kiosk_and_a_rule_sets_the_service(booked: Booked) -> None:
    """Visioplainte's way: physical posts are agents named "Guichet 1"…; the rule for the agent beats
    no rule for the lieu. A clerk rule may set the service the kiosk shows."""
    response = booked.admin.put(
        f"{V1}/admin/bookings/config",
        json={
            "rdv_service_public": {
                "kiosks": [{"agent": "guichet 1", "kiosk_id": booked.guichet_kiosk_id}],
                "clerks": [{"agent": 275, "clerk_id": booked.clerk.clerk_id, "service": "CAF du Cantal"}],
            }
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["rdv_service_public"]["webhook_secret_set"] is True  # left out: kept
    body = booked.post(webhook("webhook_rdv_created.json", starts_at=soon(), at=T0)).json()
    assert body["outcome"] == "created"
    [appointment] = booked.appointments()
    assert appointment["kiosk_name"] == "Borne 2"
    assert appointment["service"] == "CAF du Cantal"

    # The mapping changes so that no kiosk is named any more: the next news cancels the appointment.
    booked.admin.put(
        f"{V1}/admin/bookings/config", json={"rdv_service_public": {"clerks": []}}
    ).raise_for_status()
    later = booked.post(
        webhook("webhook_rdv_updated.json", starts_at=soon(2), at=T0 + timedelta(hours=1))
    ).json()
    assert later["outcome"] == "cancelled"
    assert booked.appointments() == []


def test_the_configuration_keeps_its_secrets_and_refuses_what_it_cannot_use(booked: Booked) -> None:
    shown = booked.admin.get(f"{V1}/admin/bookings/config").json()
    assert SECRET not in str(shown) and shown["rdv_service_public"]["webhook_secret_set"] is True
    before = shown
    bad = [
        {"rdv_service_public": {"kiosks": [{"lieu": 871, "kiosk_id": "kiosk_nosuch"}]}},
        {"rdv_service_public": {"kiosks": [{"lieu": 871, "agent": 3, "kiosk_id": booked.kiosk_id}]}},
        {"rdv_service_public": {"clerks": [{"agent": True, "clerk_id": booked.clerk.clerk_id}]}},
        {"rdv_service_public": {"api": {"base_url": "file:///etc/passwd", "organisation_id": 1, "auth": {"bearer": "x"}}}},
        {"rdv_service_public": {"api": {"base_url": "https://rdv.example.fr", "organisation_id": "4242"}}},  # no auth
        {"ics_feeds": [{"id": "a b", "url": "https://x.example/c.ics", "clerk_id": booked.clerk.clerk_id, "kiosk_id": booked.kiosk_id}]},
        {"ics_feeds": [{"id": "a", "url": "https://x.example/c.ics", "clerk_id": booked.clerk.clerk_id, "kiosk_id": booked.kiosk_id, "timezone": "Mars/Olympus"}]},
        {"surprise": 1},
    ]  # fmt: skip
    for config in bad:
        response = booked.admin.put(f"{V1}/admin/bookings/config", json=config)
        assert response.status_code == 400, (config, response.text)
    assert booked.admin.get(f"{V1}/admin/bookings/config").json() == before
    # The kiosks never see any of it: their config is another document.
    assert "bookings" not in str(booked.central.server.store.get_setting("kiosk_config"))
    assert httpx.get(booked.central.url + f"{V1}/admin/bookings/config").status_code == 401
