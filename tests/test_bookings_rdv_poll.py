"""The reconciliation poll of RDV Service Public's API, against a FAKE RDV Service Public on loopback
serving recorded pages: every page read with the agent token's headers and the date window, the store
brought in line (missed creations, a missed cancellation, an rdv deleted while its webhook was lost),
and a refused, failing or malformed answer changes nothing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from kiosk_client.central.bookings import ClerkRule, KioskRule, RdvApi, RdvServicePublicConfig, apply
from kiosk_client.central.bookings_rdv_service_public import SOURCE, reconcile, webhook_news
from kiosk_client.central.server import CentralThread
from kiosk_client.central.store import Store

from .fake_rdv_service_public import (
    AGENT_TOKEN,
    ORGANISATION_ID,
    FakeRdvServicePublic,
    moved_to,
    recorded,
    webhook,
)

PAGES = ("api_rdvs_page1.json", "api_rdvs_page2.json")


@pytest.fixture
async def fake() -> AsyncIterator[FakeRdvServicePublic]:
    server = FakeRdvServicePublic()
    await server.start()
    yield server
    await server.stop()


def tomorrow() -> datetime:
    return datetime.now(UTC) + timedelta(days=1)


def pages_for(day: datetime, edit: Any = None) -> list[bytes]:
    pages = [moved_to(recorded(name), day) for name in PAGES]
    if edit is not None:
        documents = [json.loads(p) for p in pages]
        edit(documents)
        pages = [json.dumps(d, ensure_ascii=False, separators=(",", ":")).encode() for d in documents]
    return pages


def site(tmp_path: Path, api_url: str) -> tuple[Store, RdvServicePublicConfig]:
    store = Store(tmp_path / "central.db")
    kiosk_id = store.create_kiosk("Borne 1", "France Services de Mauriac")
    clerk_id, _ = store.create_clerk("Mme Martin", "CAF")
    config = RdvServicePublicConfig(
        webhook_secret="s",
        api=RdvApi(api_url, ORGANISATION_ID, dict(AGENT_TOKEN)),
        kiosks=(KioskRule(kiosk_id, lieu=871),),
        clerks=(ClerkRule(clerk_id, 275),),
    )
    return store, config


def live(store: Store) -> dict[str, Any]:
    """The live appointments by rdv id."""
    return {
        r["external_id"]: store.appointment(r["appointment_id"])
        for r in store.bookings(SOURCE)
        if r["state"] == "active"
    }


async def test_a_poll_reads_every_page_with_the_agent_token_and_creates_what_it_missed(
    fake: FakeRdvServicePublic, tmp_path: Path
) -> None:
    store, config = site(tmp_path, fake.url)
    fake.pages = pages_for(tomorrow())
    async with httpx.AsyncClient() as client:
        report = await reconcile(store, config, client)
    assert report.ok and report.error is None, report
    assert report.outcomes == {"created": 2, "ignored": 1}  # 90433 is at a lieu no rule names
    assert sorted(live(store)) == ["90412", "90450"]
    assert [r["query"]["page"] for r in fake.requests] == ["1", "2"]
    first = fake.requests[0]
    assert first["path"] == f"/api/v1/organisations/{ORGANISATION_ID}/rdvs"
    assert all(first["headers"].get(k) == v for k, v in AGENT_TOKEN.items())
    since, until = (datetime.fromisoformat(first["query"][k]) for k in ("starts_after", "starts_before"))
    assert since < datetime.now(UTC) < until and until - since == timedelta(days=15)
    assert live(store)["90450"]["citizen_name"] == "Jeanne DUPONT"

    async with httpx.AsyncClient() as client:  # again, nothing new: nothing changes
        again = await reconcile(store, config, client)
    assert again.outcomes == {"unchanged": 2, "ignored": 1}


async def test_a_poll_reconciles_a_missed_cancellation_and_a_missed_deletion(
    fake: FakeRdvServicePublic, tmp_path: Path
) -> None:
    store, config = site(tmp_path, fake.url)
    day = tomorrow()
    # Both rdvs were created by webhooks (well before the poll)...
    for rdv_id, starts in (("90412", day), ("90450", day + timedelta(hours=5))):
        body = json.loads(
            webhook("webhook_rdv_created.json", starts_at=starts, at=datetime.now(UTC) - timedelta(hours=1))
        )
        body["data"]["id"] = int(rdv_id)
        news = webhook_news(store, config, body)
        assert news is not None and apply(store, SOURCE, news)[0] == "created"
    assert sorted(live(store)) == ["90412", "90450"]

    # ...then the citizen excused themself from 90412 and 90450 was deleted; both webhooks were lost.
    def edit(documents: list[dict[str, Any]]) -> None:
        documents[0]["rdvs"][0]["status"] = "excused"
        documents[1]["rdvs"] = []
        documents[0]["meta"]["next_page"] = None

    fake.pages = pages_for(day, edit)
    async with httpx.AsyncClient() as client:
        report = await reconcile(store, config, client)
    assert report.ok, report
    assert report.outcomes == {"cancelled": 2, "ignored": 1}
    assert live(store) == {}
    states = {r["external_id"]: r["state"] for r in store.bookings(SOURCE)}
    assert states == {"90412": "cancelled", "90450": "missing", "90433": "ignored"}
    # A late webhook (made before the poll) does not bring 90412 back.
    late = webhook("webhook_rdv_updated.json", starts_at=day, at=datetime.now(UTC) - timedelta(minutes=30))
    news = webhook_news(store, config, json.loads(late))
    assert news is not None and apply(store, SOURCE, news)[0] == "stale"


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("credentials", "refused the agent's credentials (401)"),
        ("server error", "answered 500"),
        ("not json", "is not JSON"),
        ("no rdvs", "has no rdvs list"),
        ("page loop", "bad meta.next_page"),
        ("unreachable", "could not be reached"),
    ],
)
async def test_a_refused_failing_or_malformed_answer_changes_nothing(
    fake: FakeRdvServicePublic, tmp_path: Path, case: str, expected: str
) -> None:
    store, config = site(tmp_path, fake.url)
    day = tomorrow()
    body = webhook("webhook_rdv_created.json", starts_at=day, at=datetime.now(UTC) - timedelta(hours=1))
    news = webhook_news(store, config, json.loads(body))
    assert news is not None and apply(store, SOURCE, news)[0] == "created"
    before = [tuple(r) for r in store.bookings()]
    fake.pages = pages_for(day)
    if case == "credentials":
        assert config.api is not None
        config = RdvServicePublicConfig(
            config.webhook_secret,
            RdvApi(fake.url, ORGANISATION_ID, {**AGENT_TOKEN, "access-token": "expired"}),
            config.kiosks,
            config.clerks,
        )
    elif case == "server error":
        fake.fail_with = 500
    elif case == "not json":
        fake.pages[1] = (
            b"<html>WAF</html>"  # a firewall's page in place of page 2: page 1 is not applied either
        )
    elif case == "no rdvs":
        fake.pages[0] = b'{"meta": {}}'
    elif case == "page loop":
        fake.pages[1] = fake.pages[1].replace(b'"next_page":null', b'"next_page":1')
    elif case == "unreachable":
        await fake.stop()
    async with httpx.AsyncClient() as client:
        report = await reconcile(store, config, client)
    assert not report.ok and report.error is not None and expected in report.error, report
    assert [tuple(r) for r in store.bookings()] == before  # 90412 stays live, nothing created


async def test_the_central_polls_when_asked_and_reports_it(
    fake: FakeRdvServicePublic, tmp_path: Path
) -> None:
    """Wired into the central: the admin's sync runs the poll configured through the admin API."""
    fake.pages = pages_for(tomorrow())
    with CentralThread(tmp_path / "central.db") as central:
        store = central.server.store
        kiosk_id = store.create_kiosk("Borne 1", "France Services de Mauriac")
        clerk_id, _ = store.create_clerk("Mme Martin", "CAF")
        headers = {"Authorization": f"Bearer {central.admin_token}"}
        async with httpx.AsyncClient(base_url=central.url + "/api/v1", headers=headers) as admin:
            response = await admin.put(
                "/admin/bookings/config",
                json={
                    "rdv_service_public": {
                        "api": {
                            "base_url": fake.url + "/",
                            "organisation_id": int(ORGANISATION_ID),
                            "auth": {"access_token": AGENT_TOKEN["access-token"], "client": AGENT_TOKEN["client"], "uid": AGENT_TOKEN["uid"]},
                            "poll_interval_seconds": 3600,
                        },
                        "kiosks": [{"lieu": "France Services de Mauriac", "kiosk_id": kiosk_id}],
                        "clerks": [{"agent": "Claire Martin", "clerk_id": clerk_id}],
                    }
                },
            )  # fmt: skip
            assert response.status_code == 200, response.text
            shown = response.json()["rdv_service_public"]["api"]
            assert shown["auth"] == "agent_token" and AGENT_TOKEN["access-token"] not in response.text
            synced = (await admin.post("/admin/bookings/sync")).json()["sources"]
            assert [(s["source"], s["ok"]) for s in synced] == [(SOURCE, True)], synced
            status = (await admin.get("/admin/bookings")).json()
        assert status["counts"] == {SOURCE: {"active": 2, "ignored": 1}}
        assert status["sources"][0]["source"] == SOURCE
        assert {r["external_id"] for r in store.bookings(SOURCE) if r["state"] == "active"} == {
            "90412",
            "90450",
        }
