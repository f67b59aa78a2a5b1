"""Command line: run, enroll, demo, central, clerk-bot, bench, audit, field-link, selftest."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import stat
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from .core.errors import ConfigError, KioskError

if TYPE_CHECKING:
    from .central.turn import TurnOptions

log = logging.getLogger("kiosk_client")

DEFAULT_CONFIG = Path(os.environ.get("KIOSK_CONFIG", "/etc/kiosk-client/kiosk.toml"))


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("aioice", "aiortc", "httpx", "httpcore", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def cmd_run(args: argparse.Namespace) -> int:
    from .app import build_engine, open_secrets
    from .core.settings import load_settings
    from .ui.app import run_kiosk_app

    settings = load_settings(args.config)
    secrets = open_secrets(settings, os.environ)
    token = secrets.device_token()
    if not token:
        print(
            f"this kiosk is not enrolled: run `kiosk-client enroll --config {args.config} --code CODE`"
            + (
                " as root, then restart kiosk-session"
                if settings.secret_store == "systemd-credentials"
                else ""
            ),
            file=sys.stderr,
        )
        return 3
    return run_kiosk_app(
        lambda publish, sink, form, frames: build_engine(
            settings,
            token,
            publish,
            sink,
            form,
            frames,
            outbox_key=secrets.outbox_key() if settings.scanner.enabled else None,
        ),
        language=settings.language,
        fullscreen=settings.fullscreen and not args.windowed,
        form_settings=settings.form,
        accessibility=settings.accessibility,
    )


def read_scanned_line() -> str:
    """One line from standard input: what a USB barcode reader types (then Enter), or a person."""
    if sys.stdin.isatty():
        print("Scan the enrolment QR code (or type the code), then Enter:", file=sys.stderr, flush=True)
    return sys.stdin.readline()


def cmd_enroll(args: argparse.Namespace) -> int:
    from .adapters.central_http import enroll
    from .adapters.secrets_credentials import CredentialSealer
    from .app import open_secrets
    from .core.enrolment import enrolment_code
    from .core.errors import SecretStoreError
    from .core.settings import load_settings

    settings = load_settings(args.config)
    # Refuse an unsafe keyring, or a sealing that cannot work (not root, no systemd-creds, no TPM2 when
    # one is asked for), before anyone scans a code or spends it.
    secrets = open_secrets(settings, os.environ, lambda: CredentialSealer(args.credstore, args.with_key))
    code = enrolment_code(args.code if args.code is not None else read_scanned_line(), settings.central_url)
    enrollment = asyncio.run(enroll(settings.central_url, code))
    try:
        secrets.store_device_token(enrollment.device_token)
    except SecretStoreError as exc:
        raise SecretStoreError(
            f"{exc} (the enrolment code is now used: ask the central for a new one)"
        ) from None
    if settings.secret_store == "systemd-credentials":
        print(
            f"enrolled as {enrollment.kiosk_id}; the device token is sealed in {args.credstore} "
            "(systemd-creds). Start the kiosk with it: systemctl restart kiosk-session"
        )
    else:
        print(f"enrolled as {enrollment.kiosk_id}; the device token is in the keyring")
    return 0


TURN_SECRET_ENV = "KIOSK_CENTRAL_TURN_SECRET"


def turn_options(urls: list[str], secret_file: Path | None) -> TurnOptions | None:
    """The TURN server the central hands credentials for: its URLs on the command line, the secret it
    shares with coturn (static-auth-secret) from a file readable by its owner only, or the
    environment — never the command line, which every local user sees in `ps`."""
    from .central.turn import TurnOptions

    if not urls:
        return None
    secret = os.environ.get(TURN_SECRET_ENV, "")
    if secret_file is not None:
        if stat.S_IMODE(secret_file.stat().st_mode) & 0o077:
            raise ValueError(
                f"{secret_file} can be read by other users: `chmod 600` it (and change the secret)"
            )
        secret = secret_file.read_text().strip()
    if not secret:
        raise ValueError(f"--turn-url needs the shared secret: --turn-secret-file or ${TURN_SECRET_ENV}")
    return TurnOptions(tuple(urls), secret)


def central_worker_argv(args: argparse.Namespace, port: int) -> list[str]:
    """The command line of another process of a central started with --workers: the same database and
    options, on the port this one listens on, started and stopped by it."""
    argv = [sys.executable, "-m", "kiosk_client", "central", "--db", args.db, "--host", args.host]
    argv += ["--port", str(port), "--reuse-port", "--announce"]
    for origin in args.clerk_origin:
        argv += ["--clerk-origin", origin]
    for url in args.turn_url:
        argv += ["--turn-url", url]
    if args.turn_secret_file is not None:
        argv += ["--turn-secret-file", str(args.turn_secret_file)]
    return argv


async def start_central_workers(
    args: argparse.Namespace, port: int, admin_token: str
) -> list[asyncio.subprocess.Process]:
    """The other `--workers` processes, each ready (listening) when this returns."""
    from .central.server import ADMIN_TOKEN_ENV

    workers: list[asyncio.subprocess.Process] = []
    try:
        for _ in range(args.workers - 1):
            process = await asyncio.create_subprocess_exec(
                *central_worker_argv(args, port),
                stdin=asyncio.subprocess.PIPE,  # a worker stops when this pipe closes
                stdout=asyncio.subprocess.PIPE,
                env={**os.environ, ADMIN_TOKEN_ENV: admin_token},  # never on a command line
                start_new_session=True,  # a terminal's Ctrl-C reaches the first process, which stops them
            )
            workers.append(process)
            assert process.stdout is not None
            if not await asyncio.wait_for(process.stdout.readline(), timeout=30):
                raise RuntimeError(f"a central worker did not start (exit {await process.wait()})")
    except BaseException:
        await stop_central_workers(workers)
        raise
    return workers


async def stop_central_workers(workers: list[asyncio.subprocess.Process]) -> None:
    for process in workers:
        if process.stdin is not None:
            process.stdin.close()
    for process in workers:
        try:
            await asyncio.wait_for(process.wait(), timeout=10)
        except TimeoutError:
            process.kill()
            await process.wait()


def cmd_central(args: argparse.Namespace) -> int:
    from .central.database import is_postgres_url, redacted
    from .central.guard import CentralOptions
    from .central.server import ADMIN_TOKEN_ENV, CentralServer, admin_token_file, token_hint

    postgres = is_postgres_url(args.db)
    if args.workers < 1:
        print("--workers: expected 1 or more processes", file=sys.stderr)
        return 2
    if args.workers > 1 and not postgres:
        # SQLite is one process's: its long polls are woken within that process only.
        print("--workers needs a PostgreSQL database: --db postgresql://…", file=sys.stderr)
        return 2
    if args.reuse_port and args.port == 0:
        print("--reuse-port needs a --port other than 0", file=sys.stderr)
        return 2
    # The admin token is never printed whole (start-up lines end up in journals): it comes from the
    # environment (set by whoever starts the central: demo, benchmarks) or from a 0600 file.
    database = Path(args.db)
    token_file: Path = args.admin_token_file or (
        Path("central.admin-token") if postgres else database.with_name(database.name + ".admin-token")
    )
    if token := os.environ.get(ADMIN_TOKEN_ENV):
        where = f"from ${ADMIN_TOKEN_ENV}"
    else:
        try:
            token = admin_token_file(token_file)
        except (OSError, ValueError) as exc:
            print(f"cannot read or create the admin token file: {exc}", file=sys.stderr)
            return 2
        where = f"in {token_file} (mode 0600)"
    try:
        turn = turn_options(args.turn_url, args.turn_secret_file)
    except (OSError, ValueError) as exc:
        print(f"TURN: {exc}", file=sys.stderr)
        return 2
    options = CentralOptions(clerk_origins=tuple(args.clerk_origin), turn=turn)

    async def serve() -> int:
        stop = asyncio.Event()
        if args.announce:
            stop_when_parent_leaves(stop)
        server = CentralServer(
            args.db if postgres else database,
            args.host,
            args.port,
            token,
            options,
            reuse_port=args.reuse_port or args.workers > 1,
        )
        url = await server.start()
        workers = await start_central_workers(args, server.port, token) if args.workers > 1 else []
        failed: list[int] = []

        async def watch(process: asyncio.subprocess.Process) -> None:
            # A worker that dies (a crash, killed) takes the central down: its supervisor (systemd)
            # restarts all of it, rather than serving on with fewer processes than asked for.
            code = await process.wait()
            if not stop.is_set():
                print(f"central: a worker process (pid {process.pid}) exited with {code}", file=sys.stderr)
                failed.append(code)
                stop.set()

        watchers = [asyncio.ensure_future(watch(p)) for p in workers]
        if args.announce:
            print(json.dumps({"url": url}), flush=True)
        else:
            origins = ", ".join(options.clerk_origins) or "none"
            store = redacted(args.db) if postgres else str(database)
            print(
                f"reference central on {url} (clerk console: {url}/clerk); database {store}, "
                f"{args.workers} process(es); admin token {token_hint(token)} {where}; "
                f"clerk origins allowed by CORS: {origins}",
                flush=True,
            )
        try:
            await stop.wait()
        finally:
            stop.set()  # a worker stopped from here is no failure
            await stop_central_workers(workers)
            for task in watchers:
                task.cancel()
            await server.stop()
        return 1 if failed else 0

    from .central.database import DatabaseUnavailable, DatabaseUrlError

    try:
        with contextlib.suppress(KeyboardInterrupt):
            from .runtime import uvloop_factory

            return asyncio.run(serve(), loop_factory=uvloop_factory())
    except DatabaseUrlError as exc:
        print(f"--db: {exc}", file=sys.stderr)
        return 2
    except DatabaseUnavailable as exc:
        print(f"central: {exc}", file=sys.stderr)
        return 1
    return 0


def clerk_origin(value: str) -> str:
    from .central.guard import web_origin

    try:
        return web_origin(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_clerk_bot(args: argparse.Namespace) -> int:
    from .tools.clerk_bot import run_bot

    async def serve() -> list[Any]:
        stop = asyncio.Event()
        if args.child:
            stop_when_parent_leaves(stop)
        bot = asyncio.ensure_future(run_bot(args.central, args.token, args.count, args.hold))
        await asyncio.wait({bot, asyncio.ensure_future(stop.wait())}, return_when=asyncio.FIRST_COMPLETED)
        if not bot.done():
            bot.cancel()
            return []
        return bot.result()

    reports = asyncio.run(serve())
    document = {"calls": [r.to_json() for r in reports]}
    if args.report:
        Path(args.report).write_text(json.dumps(document, indent=2))
    else:
        print(json.dumps(document, indent=2))
    return 0


def stop_when_parent_leaves(stop: asyncio.Event) -> None:
    """For child processes (demo, benchmarks): stop when the parent's pipe on stdin closes, so a
    killed parent never leaves a central or a bot behind."""
    loop = asyncio.get_running_loop()

    # The raw descriptor, not sys.stdin: a daemon thread blocked inside the buffered reader holds its
    # lock, and an interpreter that finalizes stdin while it waits aborts ("Fatal Python error:
    # _enter_buffered_busy") instead of exiting cleanly.
    descriptor = sys.stdin.fileno()

    def watch() -> None:
        with contextlib.suppress(OSError):
            while os.read(descriptor, 1024):
                pass
        with contextlib.suppress(RuntimeError):  # the loop may be gone already: nothing to stop
            loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def cmd_demo(args: argparse.Namespace) -> int:
    from .tools.demo import run_demo

    return run_demo(args)


def cmd_bench(args: argparse.Namespace) -> int:
    from .tools.bench_join import bench_join

    if args.what == "field":
        return bench_field_command(args)
    if args.what == "join":
        result = bench_join(appointments=args.appointments, clerk_kind=args.clerk)
    elif args.what == "recovery":
        from .tools.bench_recovery import bench_recovery

        faults = [f.strip() for f in args.faults.split(",") if f.strip()] if args.faults else None
        try:
            result = bench_recovery(runs=args.runs, faults=faults)
        except ValueError as exc:
            print(f"bench recovery: {exc}", file=sys.stderr)
            return 2
    elif args.what == "central":
        from .tools.bench_central import bench_central

        try:
            result = bench_central(
                kiosks=args.kiosks,
                calls=args.calls,
                interval_s=args.interval,
                duration_s=args.duration,
                workers=args.workers,
                call_processes=args.call_processes,
            )
        except ValueError as exc:
            print(f"bench central: {exc}", file=sys.stderr)
            return 2
    elif args.what == "control":
        from .tools.bench_control import bench_control

        result = bench_control(inputs=args.inputs)
    else:
        from .tools.bench_documents import bench_documents

        result = bench_documents(runs=args.runs, dpi=args.dpi)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0


def bench_field_command(args: argparse.Namespace) -> int:
    from .tools.bench_field import bench_field
    from .tools.bench_field_figures import render

    if os.geteuid() != 0:
        print("bench field needs root (network namespaces, raw sockets)", file=sys.stderr)
        return 2
    result = bench_field(
        args.profile,
        args.duration,
        skip_chromium_pair=args.skip_chromium_pair,
        skip_kiosk_pair=args.skip_kiosk_pair,
        uplink_control=args.uplink_control,
        progress=lambda text: print(text, file=sys.stderr, flush=True),
    )
    print(json.dumps(result, ensure_ascii=False) if args.json else render(result))
    return 0


def cmd_field_link(args: argparse.Namespace) -> int:
    from .tools.link_emulator import PROFILES, run_command

    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not argv:
        print("field-link: give the command to run after --, e.g. -- bash", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("field-link needs root (network namespaces, raw sockets)", file=sys.stderr)
        return 2
    assert args.profile in PROFILES
    return run_command(args.profile, argv, seed=args.seed)


def cmd_selftest(args: argparse.Namespace) -> int:
    from .tools.selftest import run_selftest

    results = run_selftest(args.config if args.config.exists() else None)
    print(json.dumps(results, indent=2))
    return 0 if all(r["ok"] for r in results["checks"]) else 1


def cmd_audit(args: argparse.Namespace) -> int:
    from .ui.app import prepare_qt_environment

    prepare_qt_environment()
    from .ui.screen_audit import audit_screens

    try:
        sizes = [tuple(int(v) for v in size.lower().split("x")) for size in args.sizes.split(",")]
        if any(len(size) != 2 or min(size) < 200 for size in sizes):
            raise ValueError(args.sizes)
    except ValueError:
        print(f"--sizes: expected sizes such as 1366x768,1080x1920, got {args.sizes!r}", file=sys.stderr)
        return 2
    languages = tuple(args.languages.split(","))
    only = {name for name in args.states.split(",") if name} if args.states else None
    result = audit_screens(args.out, [(w, h) for w, h in sizes], languages, only)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2, ensure_ascii=False))
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kiosk-client", description="Kiosk client for public-service visitor centres."
    )
    p.add_argument("--version", action="version", version=__version__)
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the kiosk (full screen)")
    run.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    run.add_argument("--windowed", action="store_true", help="a window instead of full screen (for testing)")
    run.set_defaults(func=cmd_run)

    from .adapters.secrets_credentials import CREDSTORE, KEYS

    en = sub.add_parser(
        "enroll",
        help="trade a one-time enrolment code for a device token (sealed with systemd-creds, or in the keyring)",
        description='With [secrets] store = "systemd-credentials" (what install-kiosk.sh sets up), run it as '
        "root: the token is sealed with systemd-creds for kiosk-session.service.",
    )
    en.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    given = en.add_mutually_exclusive_group(required=True)
    given.add_argument(
        "--code", help="the enrolment code, or the enrolment QR code's content (https://CENTRAL/enrol?code=…)"
    )
    given.add_argument(
        "--scan",
        action="store_true",
        help="read the code or the QR code's content from standard input (a USB reader)",
    )
    en.add_argument(
        "--with-key",
        choices=KEYS,
        default="auto",
        help="systemd credentials: what the token is sealed with (auto: the TPM2 chip and the host key when "
        "there is a TPM2, else the host key)",
    )
    en.add_argument(
        "--credstore",
        type=Path,
        default=CREDSTORE,
        help=f"systemd credentials: where they are sealed ({CREDSTORE})",
    )
    en.set_defaults(func=cmd_enroll)

    c = sub.add_parser("central", help="run the reference central (API v1 + clerk console)")
    c.add_argument(
        "--db",
        default="central.db",
        metavar="PATH_OR_URL",
        help="the database: a SQLite file (default: central.db), or a PostgreSQL URL such as "
        "postgresql://central@db.example.org/central (several central processes may share it)",
    )
    c.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="serve with N processes sharing the port (SO_REUSEPORT; PostgreSQL only): the first starts "
        "and stops the others",
    )
    c.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)  # a --workers process
    c.add_argument("--host", default="127.0.0.1")
    c.add_argument("--port", type=int, default=8800)
    c.add_argument(
        "--admin-token-file",
        type=Path,
        help="where the admin token is kept, readable by you only; made on first start "
        "(default: the database's path + .admin-token; $KIOSK_CENTRAL_ADMIN_TOKEN, when set, wins)",
    )
    c.add_argument(
        "--clerk-origin",
        action="append",
        default=[],
        type=clerk_origin,
        metavar="ORIGIN",
        help="a web origin whose pages may call the clerk API from a browser (CORS), e.g. "
        "https://clerks.example.org; repeat for several",
    )
    c.add_argument(
        "--turn-url",
        action="append",
        default=[],
        metavar="URL",
        help="a URL of the TURN server (coturn with use-auth-secret) whose time-limited credentials "
        "kiosks and clerks get, e.g. turn:turn.example.org:3478?transport=udp; repeat for each transport "
        "(udp, tcp, turns: on 443)",
    )
    c.add_argument(
        "--turn-secret-file",
        type=Path,
        help=f"the secret shared with coturn (its static-auth-secret), in a file of mode 0600 "
        f"(or ${TURN_SECRET_ENV})",
    )
    c.add_argument(
        "--announce",
        action="store_true",
        help="print one JSON line {url} when ready, and stop when stdin closes (demo, benchmarks)",
    )
    c.set_defaults(func=cmd_central)

    b = sub.add_parser("clerk-bot", help="a headless clerk that answers calls (tests, benchmarks, demo)")
    b.add_argument("--central", required=True)
    b.add_argument("--token", required=True)
    b.add_argument("--count", type=int, default=1)
    b.add_argument("--hold", type=float, default=5.0, help="seconds to stay in the call once video flows")
    b.add_argument("--report", type=Path)
    b.add_argument("--child", action="store_true", help="stop when stdin closes (started by another process)")
    b.set_defaults(func=cmd_clerk_bot)

    d = sub.add_parser("demo", help="the reference central and the kiosk on loopback")
    d.add_argument("--clerk-bot", action="store_true", help="let the bot play the clerk")
    d.add_argument(
        "--scanner",
        choices=["test", "system", "none"],
        default="test",
        help="test: SANE's virtual scanner (default); system: the scanners attached to this machine",
    )
    d.add_argument("--exit-after-session", action="store_true")
    d.add_argument("--report", type=Path, help="write a JSON report of the session")
    d.add_argument(
        "--lead-seconds", type=float, default=20.0, help="the appointment starts this long after launch"
    )
    d.add_argument("--hold-seconds", type=float, default=8.0, help="how long the bot stays in the call")
    d.add_argument("--language", choices=["fr", "en"], default="fr")
    d.add_argument("--camera", default="auto", help='"auto", "none", an index or a device path')
    d.add_argument("--microphone", default=None, help="ALSA device (default: none in the demo)")
    d.add_argument("--speaker", default=None, help="ALSA device (default: none in the demo)")
    d.add_argument("--fullscreen", action="store_true")
    d.add_argument("--timeout", type=float, default=None, help="quit after this many seconds")
    d.set_defaults(func=cmd_demo)

    bench = sub.add_parser("bench", help="benchmarks that print JSON")
    bench.add_argument("what", choices=["join", "control", "documents", "field", "recovery", "central"])
    bench.add_argument("--appointments", type=int, default=10, help="join: how many appointments")
    bench.add_argument(
        "--clerk",
        choices=["bot", "chromium"],
        default="bot",
        help="join: who answers, the aiortc clerk bot or the clerk console in headless Chromium",
    )
    bench.add_argument("--kiosks", type=int, default=3000, help="central: kiosks polling")
    bench.add_argument(
        "--workers", type=int, default=2, help="central: processes of the PostgreSQL configuration"
    )
    bench.add_argument(
        "--call-processes", type=int, default=2, help="central: processes sending the call set-ups"
    )
    bench.add_argument("--calls", type=int, default=300, help="central: call set-ups at once")
    bench.add_argument(
        "--interval", type=float, default=30.0, help="central: seconds between a kiosk's polls"
    )
    bench.add_argument("--inputs", type=int, default=1000, help="control: how many clerk inputs")
    bench.add_argument("--dpi", type=int, default=300, help="documents: scan resolution")
    bench.add_argument(
        "--runs",
        type=int,
        default=3,
        help="documents: batches (the figures are medians); recovery: rounds of each fault",
    )
    bench.add_argument(
        "--profile",
        choices=["adsl", "valley-4g", "satellite", "cut"],
        default="adsl",
        help="field: the emulated link (FIELD-NETWORKS.md); cut is adsl with a 10 s and a 60 s cut",
    )
    bench.add_argument(
        "--faults", default="", help="recovery: some of kill9,hung_qt,hung_engine (default: all)"
    )
    bench.add_argument(
        "--duration",
        type=float,
        default=60.0,
        help="field: seconds of steady call measured; central: seconds of load",
    )
    bench.add_argument("--skip-chromium-pair", action="store_true", help="field: the kiosk pair only")
    bench.add_argument("--skip-kiosk-pair", action="store_true", help="field: the Chromium pair only")
    bench.add_argument(
        "--uplink-control",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="field: the kiosk with its shared uplink control on, or off (default: as the kiosk runs)",
    )
    bench.add_argument("--json", action="store_true", help="one JSON object on one line")
    bench.set_defaults(func=cmd_bench)

    audit = sub.add_parser("audit", help="audits that print JSON")
    audit.add_argument("what", choices=["screens"])
    audit.add_argument("--out", type=Path, default=Path("screen-audit"), help="screens: where the PNGs go")
    audit.add_argument(
        "--sizes",
        default=",".join(
            f"{w}x{h}" for w, h in ((1280, 720), (1366, 768), (1280, 1024), (1920, 1080), (1080, 1920))
        ),
        help="screens: the screen sizes, e.g. 1366x768,1080x1920",
    )
    audit.add_argument("--languages", default="fr,en", help="screens: the kiosk's languages")
    audit.add_argument("--states", default="", help="screens: only these states (comma-separated names)")
    audit.add_argument("--json", action="store_true", help="print only the JSON object")
    audit.set_defaults(func=cmd_audit)

    from .tools.link_emulator import PROFILES

    fl = sub.add_parser(
        "field-link",
        help="run a command behind an emulated rural link (root): kiosk-client field-link --profile adsl -- CMD",
        description="Runs CMD in a 'kiosk' network namespace whose only way out is an emulated link to a "
        "'world' namespace (printed at start: run servers there with ip netns exec). Profiles: "
        + "; ".join(PROFILES)
        + ". The cut profile's cuts start with the command.",
    )
    fl.add_argument("--profile", choices=list(PROFILES), default="adsl")
    fl.add_argument("--seed", type=int, default=None, help="the loss and jitter draws (repeatable runs)")
    fl.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- CMD", help="the command and its arguments")
    fl.set_defaults(func=cmd_field_link)

    se = sub.add_parser(
        "session",
        help="the kiosk session started on boot: sway with the kiosk as its only client",
        description="Replaces itself by sway, configured so that the kiosk is its only client and no key "
        "leaves it; the kiosk is `kiosk-client run --config CONFIG`, or the command after --. "
        "When the kiosk ends, the session ends (the service manager starts a new one).",
    )
    se.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    se.add_argument(
        "--headless", metavar="WxH", help="no screen: sway's headless output of this size (tests)"
    )
    se.add_argument("--touch-screen", action="store_true", help="hide the pointer (default: from the config)")
    se.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- CMD", help="run this instead of the kiosk")
    se.set_defaults(func=cmd_session)

    st = sub.add_parser("selftest", help="check this machine: Python/Qt, camera, keyring, config")
    st.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    st.set_defaults(func=cmd_selftest)
    return p


def cmd_session(args: argparse.Namespace) -> int:
    from .system.kiosk_session import SessionOptions, exec_session

    command = args.argv[1:] if args.argv[:1] == ["--"] else list(args.argv)
    touch = args.touch_screen
    if not command:
        from .core.settings import load_settings

        touch = touch or load_settings(args.config).touch_screen  # a broken config stops here, clearly
        command = [sys.executable, "-m", "kiosk_client", "run", "--config", str(args.config)]
    size = None
    if args.headless:
        try:
            width, height = (int(n) for n in args.headless.lower().split("x"))
        except ValueError:
            raise ConfigError("--headless", None, f"expected WIDTHxHEIGHT, got {args.headless!r}") from None
        if not (320 <= width <= 7680 and 240 <= height <= 4320):
            raise ConfigError("--headless", None, f"expected a screen size, got {args.headless!r}")
        size = (width, height)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if not runtime:
        print("error: XDG_RUNTIME_DIR is not set (start the session through systemd/PAM)", file=sys.stderr)
        return 1
    exec_session(SessionOptions(tuple(command), touch_screen=touch, headless_size=size), Path(runtime))
    return 1  # not reached: the process is sway now


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    setup_logging(args.verbose)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except KioskError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
