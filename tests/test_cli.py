"""The commands a newcomer and an IT technician run: demo (with its report), bench join, config errors."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import Site

pytestmark = pytest.mark.e2e

REPORT_KEYS = {
    "appointment_id",
    "scheduled_start",
    "kiosk_joined_at",
    "clerk_answered_at",
    "kiosk_first_video_at",
    "kiosk_first_audio_at",
    "clerk_first_video_at",
    "clerk_first_audio_at",
    "kiosk_join_delay_ms",
    "clerk_join_delay_ms",
    "kiosk_frames_received",
    "clerk_frames_received",
    "kiosk_audio_frames_received",
    "clerk_audio_frames_received",
    "end_reason",
    "media_both_ways",
}


def kiosk_client(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kiosk_client", *args], capture_output=True, text=True, timeout=timeout
    )


def test_demo_with_the_clerk_bot_writes_a_report_with_media_both_ways(tmp_path: Path) -> None:
    report_file = tmp_path / "r.json"
    result = kiosk_client(
        "demo", "--clerk-bot", "--exit-after-session", "--report", str(report_file),
        "--lead-seconds", "4", "--hold-seconds", "3", "--camera", "none", "--timeout", "90",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Fatal Python error" not in result.stderr  # the children (central, bot) exit cleanly too
    assert "/clerk#token=" in result.stdout
    report = json.loads(report_file.read_text())
    assert set(report) == REPORT_KEYS  # the README documents exactly these
    assert report["media_both_ways"] is True
    assert report["kiosk_frames_received"] > 20 and report["clerk_frames_received"] > 20
    assert report["kiosk_audio_frames_received"] > 50 and report["clerk_audio_frames_received"] > 50
    assert report["end_reason"] == "clerk_hung_up"
    assert report["kiosk_joined_at"] < report["scheduled_start"] <= report["clerk_answered_at"]


def test_bench_join_prints_one_json_object() -> None:
    result = kiosk_client("bench", "join", "--appointments", "2", "--json", timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Fatal Python error" not in result.stderr  # the clerk bot's process exits cleanly
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 1
    figures = json.loads(lines[0])
    assert figures["appointments"] == 2 and figures["measured"] == 2
    assert 0 < figures["p50_ms"] <= figures["p95_ms"] < 10_000


def test_a_broken_config_file_names_file_and_key(tmp_path: Path) -> None:
    config = tmp_path / "kiosk.toml"
    config.write_text("[central]\nurl = 'https://central.example.org'\n[camera]\nfps = 'fast'\n")
    result = kiosk_client("run", "--config", str(config), timeout=30)
    assert result.returncode == 2
    assert f"{config}: camera.fps: expected an integer from 1 to 60, got 'fast'" in result.stderr
    assert "Traceback" not in result.stderr


def test_run_refuses_an_unsafe_keyring(tmp_path: Path) -> None:
    config = tmp_path / "kiosk.toml"
    config.write_text(
        "[central]\nurl = 'https://central.example.org'\n[secrets]\nkeyring_backend = 'keyrings.alt.file.PlaintextKeyring'\n"
    )
    result = kiosk_client("run", "--config", str(config), timeout=30)
    assert result.returncode == 1
    assert "not safe for device secrets" in result.stderr and "Traceback" not in result.stderr


def test_enroll_stores_the_device_token_in_the_configured_keyring(site: Site, tmp_path: Path) -> None:
    from kiosk_client.cli import main

    from .test_secrets import InMemoryTestKeyring

    InMemoryTestKeyring.store.clear()
    config = tmp_path / "kiosk.toml"
    config.write_text(
        f"[central]\nurl = '{site.url}'\n[secrets]\nkeyring_backend = 'tests.test_secrets.InMemoryTestKeyring'\n"
    )
    assert main(["enroll", "--config", str(config), "--code", site.enrollment_code]) == 0
    token = InMemoryTestKeyring.store[("kiosk-client", "device-token")]
    assert len(token) > 30
    assert main(["enroll", "--config", str(config), "--code", site.enrollment_code]) == 1  # one-time code


def test_selftest_reports_its_checks(tmp_path: Path) -> None:
    result = kiosk_client("selftest", "--config", str(tmp_path / "absent.toml"), timeout=90)
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["python"]["ok"] and checks["qt_void_calls"]["ok"]
    assert result.returncode == 0


def test_ctrl_c_stops_the_demo_cleanly() -> None:
    import signal

    process = subprocess.Popen(
        [sys.executable, "-m", "kiosk_client", "demo", "--camera", "none"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("Appointment"):
                break
        time.sleep(2)  # the window is up
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "Traceback" not in stderr
    assert process.returncode == 1  # no session took place: said plainly, not a crash
    assert "no session took place" in stderr


def test_a_killed_demo_leaves_no_central_behind(tmp_path: Path) -> None:
    import psutil

    process = subprocess.Popen(
        [sys.executable, "-m", "kiosk_client", "demo", "--camera", "none"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("Appointment"):
                break
        children = psutil.Process(process.pid).children(recursive=True)
        assert children, "the demo starts the reference central as a child process"
    finally:
        process.kill()  # no chance to clean up
        process.wait()
    _, alive = psutil.wait_procs(children, timeout=10)
    assert alive == []


@pytest.mark.solo  # beside three workers, 1 of 100 inputs went unaccounted for once: a bench runs alone
def test_bench_control_prints_the_documented_figures() -> None:
    result = kiosk_client("bench", "control", "--inputs", "100", "--json", timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    figures = json.loads(lines[-1])
    inputs = figures["input"]
    sent = inputs["count"] + inputs["moves_merged"]  # moves merge under load
    assert (sent, inputs["refused"], inputs["refused_codes"], inputs["text_missing"]) == (100, 0, [], 0), (
        inputs
    )
    assert 0 < figures["input"]["p50_ms"] <= figures["input"]["p95_ms"]
    stream = figures["stream"]
    assert (stream["width"], stream["height"]) == (1280, 800)
    assert stream["fps"] > 0 and stream["changes_seen"] > 0 and stream["p95_ms"] > 0
    assert stream["cpu_percent"] > 0


@pytest.mark.long
def test_bench_documents_prints_the_documented_figures() -> None:
    result = kiosk_client("bench", "documents", "--dpi", "150", "--runs", "1", "--json", timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads([line for line in result.stdout.splitlines() if line.strip()][-1])
    assert figures["pages"] == 10 and figures["clerk_errors"] == []
    assert figures["seconds_per_page"] > 0 and figures["bytes_per_page"] > 1000
    assert figures["throughput_ratio"] > 0 and figures["raw_throughput_mbps"] > 0
    assert len(figures["raw_rounds_mbps"]) == 5 and min(figures["raw_rounds_mbps"]) > 0
    assert figures["video_fps_during_transfer"] > 0 and figures["video_longest_gap_ms_during_transfer"] > 0
    assert 0 < figures["typical_text_page_bytes"] <= 150 * 1024
    assert figures["runs"] == 1 and len(figures["samples"]["throughput_ratio"]) == 1


def test_child_processes_take_a_clerk_token_that_starts_with_a_dash() -> None:
    # token_urlsafe() starts with "-" once in 64: passed as "--token=…", it is never read as an option.
    import inspect

    from kiosk_client.tools import bench_documents, central_process
    from kiosk_client.ui import control_bench

    for module in (bench_documents, central_process, control_bench):
        source = inspect.getsource(module)
        assert '"--token",' not in source and "--token=" in source, module.__name__
    result = kiosk_client("clerk-bot", "--central", "http://127.0.0.1:9", "--token=-abc", "--count", "0")
    assert "expected one argument" not in result.stderr
