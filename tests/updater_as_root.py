"""The updater as root, dropping to an unprivileged "kiosk user" as in production, for
tests/test_updater.py (which must run as root for it).

That user must be able to run the test interpreter. Where it lives in a home only root may enter (a
pyenv build under /root, as on some machines), `command` runs the updater in a mount namespace of its
own where that folder is replaced by an empty one (a tmpfs, mode 0755) holding only the interpreter's
prefix, bound from the real one: nothing outside the namespace changes.

Run as `python -m tests.updater_as_root ARGS_JSON`: prints what apply_request returned.
"""

from __future__ import annotations

import json
import os
import pwd
import shlex
import stat
import subprocess
import sys
from pathlib import Path

from kiosk_client.adapters.central_target import CentralSoftwareTarget
from kiosk_client.system.updater import UpdaterPaths, apply_request


def private_ancestor(path: Path) -> Path | None:
    """The outermost folder above `path` that other users cannot enter, if any."""
    for parent in reversed(path.parents):
        if not os.stat(parent).st_mode & stat.S_IXOTH:
            return parent
    return None


def command(args: dict[str, str], scratch: Path) -> list[str]:
    """The command that runs main() below as root, the interpreter reachable by other users."""
    python = [sys.executable, "-m", "tests.updater_as_root", json.dumps(args)]
    prefix = Path(sys.base_prefix).resolve()
    hidden = private_ancestor(prefix)
    if hidden is None:
        return python
    saved = scratch / "saved-prefix"
    saved.mkdir()
    q = shlex.quote
    script = " && ".join(
        [
            f"mount --bind {q(str(prefix))} {q(str(saved))}",
            f"mount -t tmpfs -o mode=0755 kiosk-test {q(str(hidden))}",
            f"mkdir -p {q(str(prefix))}",
            f"mount --bind {q(str(saved))} {q(str(prefix))}",
            "exec " + shlex.join(python),
        ]
    )
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script]


class SessionAsUser:
    """Restarts the "session": `current`'s Python, as the session's User=, writes the health mark."""

    def __init__(self, paths: UpdaterPaths, user: str) -> None:
        self.paths, self.account = paths, pwd.getpwnam(user)

    def restart(self) -> None:
        code = (
            "import pathlib, kiosk_client\n"
            "from kiosk_client.adapters.update_spool import FileUpdates\n"
            f"mark = pathlib.Path({str(self.paths.health_mark)!r})\n"
            "FileUpdates(mark.parent, mark.parent / 'none', mark).mark_healthy(kiosk_client.__version__)\n"
        )
        subprocess.run(
            [str(self.paths.current / "bin" / "python"), "-I", "-c", code],
            cwd="/",
            env={"PATH": "/usr/bin:/bin"},
            user=self.account.pw_uid,
            group=self.account.pw_gid,
            extra_groups=[],
            check=True,
            timeout=60,
        )


def main() -> None:
    args = json.loads(sys.argv[1])
    paths = UpdaterPaths(
        project=Path(args["project"]),
        spool=Path(args["spool"]),
        state_dir=Path(args["state_dir"]),
        health_mark=Path(args["health_mark"]),
        base_env=Path(args["base_env"]),
    )
    central = CentralSoftwareTarget(args["central_url"], args["token"], timeout_s=10)
    session = SessionAsUser(paths, args["user"])
    print(apply_request(paths, session, central, health_timeout_s=30, run_as=args["user"]))


if __name__ == "__main__":
    main()
