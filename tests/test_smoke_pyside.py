"""PySide6 6.12 on Python 3.11 aborts ("Fatal Python error: none_dealloc") after a few thousand void
Qt calls. The project runs on 3.12+; this smoke test would catch a regression in that choice."""

from __future__ import annotations

import subprocess
import sys

import PySide6

SCRIPT = """
import os
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QApplication, QLabel
app = QApplication([])
label = QLabel()
for i in range(30000):
    label.setObjectName(f"n{i}")
    label.setText("x")
    QTimer.singleShot(0, lambda: None)
app.processEvents()
print("survived")
"""


def test_thousands_of_void_qt_calls_do_not_abort() -> None:
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "survived" in result.stdout, result.stderr[-2000:]


def test_the_python_and_pyside_pair_is_a_safe_one() -> None:
    major, minor = (int(p) for p in PySide6.__version__.split(".")[:2])
    assert sys.version_info >= (3, 12) or (major, minor) < (6, 12)
