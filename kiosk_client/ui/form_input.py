"""Turning the clerk's validated inputs into Qt events for the form view.

Keys go as key events (navigation and editing only); text goes as an input-method commit, so any
Unicode character (é, ñ, €, @, AZERTY or not) arrives exactly as typed, without keycodes.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QInputMethodEvent, QKeyEvent, QMouseEvent, QWheelEvent
from PySide6.QtWidgets import QApplication, QWidget

from ..core.control_protocol import KeyInput, PointerInput

KEYS = {
    "Tab": Qt.Key.Key_Tab,
    "Enter": Qt.Key.Key_Return,
    "Escape": Qt.Key.Key_Escape,
    "Backspace": Qt.Key.Key_Backspace,
    "Delete": Qt.Key.Key_Delete,
    "Space": Qt.Key.Key_Space,
    "ArrowLeft": Qt.Key.Key_Left,
    "ArrowRight": Qt.Key.Key_Right,
    "ArrowUp": Qt.Key.Key_Up,
    "ArrowDown": Qt.Key.Key_Down,
    "Home": Qt.Key.Key_Home,
    "End": Qt.Key.Key_End,
    "PageUp": Qt.Key.Key_PageUp,
    "PageDown": Qt.Key.Key_PageDown,
}
KEY_TEXT = {"Tab": "\t", "Enter": "\r", "Space": " ", "Backspace": "\b", "Escape": "\x1b"}
BUTTONS = {
    "left": Qt.MouseButton.LeftButton,
    "right": Qt.MouseButton.RightButton,
    "middle": Qt.MouseButton.MiddleButton,
}


def _mouse(
    target: QWidget, kind: QEvent.Type, pos: QPointF, button: Qt.MouseButton, buttons: Qt.MouseButton
) -> None:
    event = QMouseEvent(kind, pos, target.mapToGlobal(pos), button, buttons, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(target, event)


def inject_pointer(target: QWidget, message: PointerInput) -> QPointF:
    """Returns where the pointer is, in the target's pixels (for drawing the clerk's pointer)."""
    pos = QPointF(message.x * max(target.width() - 1, 1), message.y * max(target.height() - 1, 1))
    button = BUTTONS[message.button]
    none = Qt.MouseButton.NoButton
    if message.action == "move":
        _mouse(target, QEvent.Type.MouseMove, pos, none, none)
    elif message.action == "press":
        _mouse(target, QEvent.Type.MouseButtonPress, pos, button, button)
    elif message.action == "release":
        _mouse(target, QEvent.Type.MouseButtonRelease, pos, button, none)
    elif message.action in ("click", "double_click"):
        _mouse(target, QEvent.Type.MouseMove, pos, none, none)
        _mouse(target, QEvent.Type.MouseButtonPress, pos, button, button)
        _mouse(target, QEvent.Type.MouseButtonRelease, pos, button, none)
        if message.action == "double_click":
            _mouse(target, QEvent.Type.MouseButtonDblClick, pos, button, button)
            _mouse(target, QEvent.Type.MouseButtonRelease, pos, button, none)
    else:  # wheel
        event = QWheelEvent(
            pos,
            target.mapToGlobal(pos),
            QPoint(int(-message.dx), int(-message.dy)),
            QPoint(int(-message.dx), int(-message.dy)),
            none,
            Qt.KeyboardModifier.NoModifier,
            Qt.ScrollPhase.NoScrollPhase,
            False,
        )
        QApplication.sendEvent(target, event)
    return pos


def inject_key(target: QWidget, message: KeyInput) -> None:
    modifiers = Qt.KeyboardModifier.ShiftModifier if message.shift else Qt.KeyboardModifier.NoModifier
    key = KEYS[message.key]
    text = KEY_TEXT.get(message.key, "")
    QApplication.sendEvent(target, QKeyEvent(QEvent.Type.KeyPress, key, modifiers, text))
    QApplication.sendEvent(target, QKeyEvent(QEvent.Type.KeyRelease, key, modifiers, text))


# The fence (form_scripts.INPUT_FENCE): F13-F22 are the digits 0-9, F24 ends the number.
FENCE_NUMBERS = 10_000
_FENCE_DIGITS = tuple(Qt.Key(Qt.Key.Key_F13.value + d) for d in range(10))


def inject_fence(target: QWidget, number: int) -> None:
    """Sends fence `number` (0-9999) through the same input queue as the clerk's keys and pointer."""
    keys = [_FENCE_DIGITS[int(d)] for d in f"{number % FENCE_NUMBERS:04d}"] + [Qt.Key.Key_F24]
    for key in keys:
        QApplication.sendEvent(target, QKeyEvent(QEvent.Type.KeyPress, key, Qt.KeyboardModifier.NoModifier))
        QApplication.sendEvent(target, QKeyEvent(QEvent.Type.KeyRelease, key, Qt.KeyboardModifier.NoModifier))


def inject_text(target: QWidget, text: str) -> None:
    event = QInputMethodEvent("", [])
    event.setCommitString(text)
    QApplication.sendEvent(target, event)
