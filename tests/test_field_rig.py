"""The field rig: the reference central in the world namespace, reached from the kiosk's through adsl."""

from __future__ import annotations

import time

import pytest

from kiosk_client.tools.link_emulator import PROFILES

from .field_rig import FieldRig, TcpSink, upload

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("field", ["adsl"], indirect=True)
def test_the_kiosk_side_reaches_the_central_and_uploads_at_the_adsl_uplink_rate(field: FieldRig) -> None:
    assert field.central_url.startswith(f"http://{field.link.world_ip}:")
    started = time.monotonic()
    health = field.http().get(f"{field.central_url}/api/v1/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    # A connection and a request: at least two round trips of 40 ms.
    assert time.monotonic() - started >= 2 * 0.040
    admin = field.admin()  # the admin API crosses the link too
    assert admin.create_kiosk("Borne 1", "France Services de la vallée")
    admin.close()

    sink = TcpSink(field.link)
    try:
        size = 1_000_000
        started = time.monotonic()
        assert upload(field.link, sink.address, size) == size
        seconds = time.monotonic() - started
    finally:
        sink.close()
    uplink = PROFILES["adsl"].up.rate_bps
    assert uplink == 800e3
    # 1 MB at 800 kbit/s is 10 s of payload (plus ≈5 % of TCP/IP/Ethernet headers).
    print(f"1 MB upload over adsl: {seconds:.2f} s")
    assert seconds == pytest.approx(size * 8 / uplink, rel=0.20)
