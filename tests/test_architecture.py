"""The ports-and-adapters rules, checked on the source: a violation fails the build."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "kiosk_client"
ADAPTER_LIBRARIES = {"PySide6", "httpx", "aiortc", "av", "cv2", "keyring", "pyinsane2", "aiohttp", "numpy"}


def imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:  # relative: resolve against the file's package
                base = path.relative_to(PACKAGE.parent).with_suffix("").parts[: -node.level]
                module = ".".join((*base, module)) if module else ".".join(base)
            names.add(module)
    return names


def modules(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py")) if folder else sorted(PACKAGE.glob("*.py"))


def test_core_imports_no_qt_network_or_device_library() -> None:
    for path in modules("core"):
        bad = {n for n in imports(path) if n.split(".")[0] in ADAPTER_LIBRARIES}
        assert not bad, f"{path.name} imports {bad}"


def test_only_ui_imports_pyside6() -> None:
    for path in PACKAGE.rglob("*.py"):
        if "ui" in path.relative_to(PACKAGE).parts or path.name == "render_assets.py":
            continue
        # selftest checks the Qt version in a child process; it only reads PySide6.__version__.
        if path.name == "selftest.py":
            continue
        assert not any(n.startswith("PySide6") for n in imports(path)), path


def test_the_kiosk_never_imports_the_reference_central() -> None:
    kiosk_paths = [
        *modules("core"),
        *modules("adapters"),
        *modules("ui"),
        PACKAGE / "app.py",
        PACKAGE / "runtime.py",
    ]
    for path in kiosk_paths:
        assert not any(n.startswith("kiosk_client.central") for n in imports(path)), path


def test_every_module_logs_through_its_own_logger() -> None:
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        if "logging." in text and "getLogger(" in text:
            assert "getLogger(__name__)" in text or path.name == "cli.py", path
