"""installer/install-kiosk.sh, run for real against a scratch root made like a blank Debian 12 (its base
users and groups, systemd's units), with --no-packages: the files, the user, the permissions and the
enabled units it leaves; a second run that changes nothing; refusals that write nothing; every unit it
installs through `systemd-analyze verify`; every package it names in Debian 12's archive."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from kiosk_client.adapters.secrets_credentials import DEVICE_TOKEN, OUTBOX_KEY
from kiosk_client.core.settings import load_settings
from kiosk_client.system.updater import CONFIG_FILE

ROOT = Path(__file__).resolve().parents[1]
INSTALLER = ROOT / "installer" / "install-kiosk.sh"
DEBIAN_12 = (
    'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n'
)
needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="the installer creates users and root-owned files: run as root (CI does)"
)


def blank_debian(root: Path, os_release: str = DEBIAN_12) -> Path:
    """What the installer finds on a fresh Debian 12: base-passwd's users and groups (its pristine
    files), systemd's units, a merged /usr; no desktop, so multi-user.target is the default."""
    (root / "etc" / "systemd" / "system").mkdir(parents=True)
    (root / "usr" / "lib" / "systemd").mkdir(parents=True)
    for link in ("bin", "sbin", "lib"):
        (root / "usr" / link).mkdir(exist_ok=True)
        (root / link).symlink_to(f"usr/{link}")
    (root / "etc" / "os-release").write_text(os_release)
    shutil.copy("/usr/share/base-passwd/passwd.master", root / "etc" / "passwd")
    shutil.copy("/usr/share/base-passwd/group.master", root / "etc" / "group")
    for name in ("shadow", "gshadow"):
        (root / "etc" / name).touch(mode=0o640)
    shutil.copy("/etc/login.defs", root / "etc" / "login.defs")
    shutil.copytree("/etc/skel", root / "etc" / "skel", symlinks=True)
    shutil.copytree("/usr/lib/systemd/system", root / "usr" / "lib" / "systemd" / "system", symlinks=True)
    (root / "etc" / "systemd" / "system" / "default.target").symlink_to(
        "/usr/lib/systemd/system/multi-user.target"
    )
    return root


def install(*args: str, user: int | None = None) -> subprocess.CompletedProcess[str]:
    command = ["bash", str(INSTALLER), *args]
    if user is not None:  # the script is read by root, run by the user (who may not reach the checkout)
        command = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", "bash", "-c",
                   INSTALLER.read_text(), str(INSTALLER), *args]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd="/")


def snapshot(root: Path) -> dict[str, tuple[object, ...]]:
    """Every path under the root with its type, mode, owner, times and content."""
    seen: dict[str, tuple[object, ...]] = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            content: object = os.readlink(path)
        elif stat.S_ISREG(st.st_mode):
            content = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            content = None
        seen[str(path.relative_to(root))] = (
            st.st_mode,
            st.st_uid,
            st.st_gid,
            st.st_mtime_ns,
            st.st_ino,
            content,
        )
    return seen


def passwd_entry(root: Path, name: str) -> list[str] | None:
    for line in (root / "etc" / "passwd").read_text().splitlines():
        if line.split(":")[0] == name:
            return line.split(":")
    return None


def group_members(root: Path, group: str) -> list[str]:
    for line in (root / "etc" / "group").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == group:
            return [m for m in fields[3].split(",") if m]
    raise AssertionError(f"no group {group}")


def printed_packages() -> list[str]:
    done = install("--print-packages")
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


@needs_root
def test_it_installs_a_blank_debian_12_and_a_second_run_changes_nothing(tmp_path: Path) -> None:
    root = blank_debian(tmp_path / "target")
    host_before = {p: Path(p).read_bytes() for p in ("/etc/passwd", "/etc/group")}
    host_had_opt = Path("/opt/kiosk-client").exists()

    first = install("--root", str(root), "--no-packages")
    assert first.returncode == 0, first.stderr
    assert "installed (" in first.stdout
    listed = re.search(r"not installing Debian packages \(--no-packages\): (.*)", first.stdout)
    assert listed and listed.group(1).split() == printed_packages()

    # The user: unprivileged, password locked, in the device groups; its home and data are its own.
    user = passwd_entry(root, "kiosk")
    assert user is not None
    uid, gid, home = int(user[2]), int(user[3]), user[5]
    assert uid >= 1000 and gid >= 1000 and home == "/home/kiosk"
    shadow = next(
        line for line in (root / "etc/shadow").read_text().splitlines() if line.startswith("kiosk:")
    )
    assert shadow.split(":")[1] in ("!", "*", "!*")  # nobody logs in as the kiosk with a password
    for group in ("video", "audio", "scanner"):
        assert "kiosk" in group_members(root, group)

    def owned(path: str, mode: int, owner: tuple[int, int]) -> None:
        st = (root / path.lstrip("/")).lstat()
        assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (mode, *owner), path

    # The project: this checkout's files, root's, writable by root only, with no checkout leftovers.
    opt = root / "opt" / "kiosk-client"
    assert (opt / "kiosk_client" / "cli.py").read_bytes() == (ROOT / "kiosk_client" / "cli.py").read_bytes()
    assert (opt / "pyproject.toml").is_file() and os.access(opt / "installer" / "install-kiosk.sh", os.X_OK)
    assert not {".git", ".venv", "__pycache__", "releases"} & {p.name for p in opt.rglob("*")}
    for path in [opt, *opt.rglob("*")]:
        st = path.lstat()
        assert (st.st_uid, st.st_gid) == (0, 0), path
        assert path.is_symlink() or not st.st_mode & 0o022, path
    owned("/opt/kiosk-client", 0o755, (0, 0))
    # What the session runs: the installer's environment, until the updater moves it to a release.
    assert os.readlink(opt / "current") == ".venv"

    # Configuration (from the example), the sealed-credential store, the kiosk's data.
    config = root / "etc/kiosk-client/kiosk.toml"
    assert config.read_bytes() == (ROOT / "config" / "kiosk.example.toml").read_bytes()
    assert load_settings(config).secret_store == "systemd-credentials"
    owned("/etc/kiosk-client/kiosk.toml", 0o644, (0, 0))
    owned("/etc/credstore.encrypted", 0o700, (0, 0))
    owned("/var/lib/kiosk-client", 0o700, (uid, gid))
    owned("/var/lib/kiosk-client/updates", 0o700, (uid, gid))  # the kiosk's spool: wheels, its request
    owned("/var/lib/kiosk-updater", 0o755, (0, 0))  # the updater's status, which the kiosk reads

    # Echo cancellation, as the kiosk user's own configuration.
    pipewire = f"{home}/.config/pipewire/pipewire.conf.d/60-kiosk-echo-cancel.conf"
    owned(pipewire, 0o644, (uid, gid))
    owned(f"{home}/.config/pulse/default.pa", 0o644, (uid, gid))
    assert (root / pipewire.lstrip("/")).read_bytes() == (
        ROOT / "installer/pipewire-echo-cancel.conf"
    ).read_bytes()

    # The kiosk session: installed, enabled for the graphical target, which is now the default.
    unit = root / "etc/systemd/system/kiosk-session.service"
    assert unit.read_bytes() == (ROOT / "installer" / "kiosk-session.service").read_bytes()
    owned("/etc/systemd/system/kiosk-session.service", 0o644, (0, 0))
    wants = root / "etc/systemd/system/graphical.target.wants/kiosk-session.service"
    assert os.readlink(wants) == "/etc/systemd/system/kiosk-session.service"
    # The updater: root's units, its path unit enabled (it starts the service on a request).
    for name in ("kiosk-updater.service", "kiosk-updater.path"):
        owned(f"/etc/systemd/system/{name}", 0o644, (0, 0))
        assert (root / "etc/systemd/system" / name).read_bytes() == (ROOT / "installer" / name).read_bytes()
    updater_wants = root / "etc/systemd/system/multi-user.target.wants/kiosk-updater.path"
    assert os.readlink(updater_wants) == "/etc/systemd/system/kiosk-updater.path"
    assert os.readlink(root / "etc/systemd/system/default.target").endswith("/graphical.target")

    # Nothing landed outside the target.
    assert {p: Path(p).read_bytes() for p in ("/etc/passwd", "/etc/group")} == host_before
    assert Path("/opt/kiosk-client").exists() == host_had_opt

    # Idempotent: the second run touches nothing, not even a time stamp.
    before = snapshot(root)
    second = install("--root", str(root), "--no-packages")
    assert second.returncode == 0, second.stderr
    assert "nothing changed" in second.stdout
    assert snapshot(root) == before
    # The same from the installed copy, which has no git: the files are the same.
    again = subprocess.run(
        ["bash", str(opt / "installer" / "install-kiosk.sh"), "--root", str(root), "--no-packages"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0 and "nothing changed" in again.stdout, again.stdout + again.stderr
    assert snapshot(root) == before

    # An update the updater installed stays through a run of the installer (the link and its release).
    release = opt / "releases" / "9.9"
    (release / "bin").mkdir(parents=True)
    (opt / "current").unlink()
    (opt / "current").symlink_to("releases/9.9")
    after_update = snapshot(root)
    kept = install("--root", str(root), "--no-packages")
    assert kept.returncode == 0 and "nothing changed" in kept.stdout, kept.stdout + kept.stderr
    assert snapshot(root) == after_update

    # What differs is put back, and only that; the configuration an administrator edited is kept.
    config.write_text(config.read_text().replace("https://central.example.org", "https://c.example.fr"))
    unit.write_text("[Service]\nExecStart=/bin/true\n")
    (root / "var/lib/kiosk-client").chmod(0o755)
    (root / "opt/kiosk-client/kiosk_client/cli.py").write_text("broken")
    third = install("--root", str(root), "--no-packages")
    assert third.returncode == 0, third.stderr
    assert re.findall(r"^  (?!not installing)(\w+ \S+)", third.stdout, re.M) == [
        "project files",
        "folder /var/lib/kiosk-client",
        "file /etc/systemd/system/kiosk-session.service",
    ]
    assert "https://c.example.fr" in config.read_text()
    assert unit.read_bytes() == (ROOT / "installer" / "kiosk-session.service").read_bytes()
    assert os.readlink(opt / "current") == "releases/9.9" and release.is_dir()  # kept through the swap


@needs_root
def test_every_unit_it_installs_passes_systemds_own_check(tmp_path: Path) -> None:
    root = blank_debian(tmp_path / "target")
    assert install("--root", str(root), "--no-packages").returncode == 0
    units = sorted(
        (p for p in (root / "etc/systemd/system").rglob("*") if p.is_file() and not p.is_symlink()),
        key=lambda p: p.name,
    )
    assert [u.name for u in units] == ["kiosk-session.service", "kiosk-updater.path", "kiosk-updater.service"]
    # The installed paths, checked against ours: the session runs the `current` link's kiosk-client,
    # the updater the installer's own Python (never a downloaded release).
    executables = {
        "/opt/kiosk-client/current/bin/kiosk-client": str(Path(sys.executable).with_name("kiosk-client")),
        "/opt/kiosk-client/.venv/bin/python": sys.executable,
    }
    texts = {u.name: u.read_text() for u in units}
    assert "ExecStart=/opt/kiosk-client/current/bin/kiosk-client session" in texts["kiosk-session.service"]
    assert (
        "ExecStart=/opt/kiosk-client/.venv/bin/python -I -m kiosk_client.system.updater"
        in texts["kiosk-updater.service"]
    )
    # The path unit watches the request file the kiosk writes, in the spool its settings default to.
    watched = re.findall(r"^PathExists=(\S+)$", texts["kiosk-updater.path"], re.M)
    assert watched == [str(load_settings_defaults_spool() / "request.json")]
    for unit in units:
        text = texts[unit.name]
        for installed, here in executables.items():
            text = text.replace(installed, here)
        local = tmp_path / unit.name
        local.write_text(text)
    for unit in units:
        done = subprocess.run(
            ["systemd-analyze", "verify", str(tmp_path / unit.name)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, f"{unit.name}: {done.stderr}"
    # The session gets the credentials enrolment seals, by the names the kiosk reads.
    loaded = re.findall(r"^LoadCredentialEncrypted=(\S+)$", texts["kiosk-session.service"], re.M)
    assert loaded == [DEVICE_TOKEN, OUTBOX_KEY]
    # The updater asks the central itself what to install: with the same device token (not the outbox
    # key: it reads no document), at the central of the kiosk's configuration file.
    loaded = re.findall(r"^LoadCredentialEncrypted=(\S+)$", texts["kiosk-updater.service"], re.M)
    assert loaded == [DEVICE_TOKEN]
    assert f"kiosk_client.system.updater --config {CONFIG_FILE}\n" in texts["kiosk-updater.service"]


def load_settings_defaults_spool() -> Path:
    """The spool a kiosk uses with the installer's configuration (the example, data_dir by default)."""
    return load_settings(ROOT / "config" / "kiosk.example.toml").update_spool


@needs_root
@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--frobnicate"], 2, "unknown option: --frobnicate"),
        (["--root"], 2, "--root needs a folder"),
        (["--root="], 2, "--root needs a folder"),
        (["--root", "{tmp}/absent", "--no-packages"], 1, "does not exist or is not a folder"),
        (["--root", "{root}"], 1, "with --root {root}, add --no-packages"),
        (
            ["--root", "{bullseye}", "--no-packages"],
            1,
            "is not Debian 12 (os-release says ID=debian VERSION_ID=11)",
        ),
        (["--root", "{ubuntu}", "--no-packages"], 1, "is not Debian 12 (os-release says ID=ubuntu"),
        (["--root", "{bare}", "--no-packages"], 1, "is not a Debian 12 system: no etc/os-release"),
    ],
)
def test_bad_input_is_refused_clearly_and_writes_nothing(
    tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    makers = {
        "tmp": lambda: tmp_path,
        "root": lambda: blank_debian(tmp_path / "target"),
        "bullseye": lambda: blank_debian(tmp_path / "bullseye", DEBIAN_12.replace('"12"', '"11"')),
        "ubuntu": lambda: blank_debian(tmp_path / "ubuntu", 'ID=ubuntu\nVERSION_ID="24.04"\n'),
        "bare": lambda: Path(tempfile.mkdtemp(dir=tmp_path)),  # an empty folder
    }
    places = {name: make() for name, make in makers.items() if "{" + name + "}" in " ".join(args)}
    before = snapshot(tmp_path)
    done = install(*[a.format(**places) for a in args])
    assert done.returncode == code, done.stdout + done.stderr
    assert message.format(**places) in done.stderr
    if code == 2:
        assert "usage: install-kiosk.sh" in done.stderr
    assert snapshot(tmp_path) == before


def test_it_refuses_to_run_without_root(tmp_path: Path) -> None:
    root = tmp_path / "target"
    root.mkdir()
    done = install("--root", str(root), "--no-packages", user=65534 if os.geteuid() == 0 else None)
    assert done.returncode == 1
    assert "install-kiosk: run as root" in done.stderr
    assert list(root.iterdir()) == []


def test_every_package_it_names_exists_in_debian_12() -> None:
    release = Path("/etc/os-release").read_text()
    assert re.search(r'^VERSION_ID="?12"?$', release, re.M) and re.search(r"^ID=debian$", release, re.M), (
        "this check asks this machine's apt, which must be Debian 12's"
    )
    packages = printed_packages()
    assert len(packages) == len(set(packages))
    # What the kiosk needs beyond Qt: its session, echo cancellation, driverless scanners and printers,
    # the sealed token's TPM2 support.
    assert {"sway", "pipewire", "sane-airscan", "ipp-usb", "cups", "libtss2-esys-3.0.2-0"} <= set(packages)
    policy = subprocess.run(["apt-cache", "policy", *packages], capture_output=True, text=True, timeout=60)
    # One block per package apt knows: "name:", its candidate, and where its versions come from.
    blocks = dict(re.findall(r"^(\S+):\n((?:[ \t].*\n?)*)", policy.stdout, re.M))
    in_archive = {
        name
        for name, block in blocks.items()
        if "Candidate: (none)" not in block and re.search(r" bookworm(-updates|-security)?/main ", block)
    }
    assert not set(packages) - in_archive, f"not in Debian 12's archive: {sorted(set(packages) - in_archive)}"


@needs_root
def test_it_does_not_follow_a_link_the_kiosk_user_planted_in_its_home(tmp_path: Path) -> None:
    """The kiosk user owns its home: a link there must not make root write elsewhere on a later run."""
    root = blank_debian(tmp_path / "target")
    assert install("--root", str(root), "--no-packages").returncode == 0
    pulse = root / "home/kiosk/.config/pulse"
    shutil.rmtree(pulse)
    pulse.symlink_to("../../../etc")  # the target's own /etc
    done = install("--root", str(root), "--no-packages")
    assert done.returncode == 1 and "/home/kiosk/.config/pulse is a symbolic link: refusing" in done.stderr
    assert not (root / "etc/default.pa").exists()


def test_cups_keeps_nothing_of_what_was_printed(tmp_path: Path) -> None:
    """Where CUPS is installed, its cupsd.conf says to keep neither the printed files nor the jobs'
    names (by default both stay a day); the rest of the file, its mode and owner are kept, and a second
    run changes nothing."""
    root = blank_debian(tmp_path / "target")
    conf = root / "etc/cups/cupsd.conf"
    conf.parent.mkdir(parents=True)
    original = "LogLevel warn\nPreserveJobHistory Yes\n<Location />\n  Order allow,deny\n</Location>\n"
    conf.write_text(original)
    conf.chmod(0o640)
    first = install("--root", str(root), "--no-packages")
    assert first.returncode == 0, first.stderr
    lines = conf.read_text().splitlines()
    assert lines.count("PreserveJobHistory No") == 1 and lines.count("PreserveJobFiles No") == 1
    assert "PreserveJobHistory Yes" not in lines
    assert [line for line in lines if not line.startswith("Preserve")] == [
        line for line in original.splitlines() if not line.startswith("Preserve")
    ]
    assert stat.S_IMODE(conf.stat().st_mode) == 0o640
    before = snapshot(root)
    second = install("--root", str(root), "--no-packages")
    assert second.returncode == 0 and "nothing changed" in second.stdout, second.stdout + second.stderr
    assert snapshot(root) == before
