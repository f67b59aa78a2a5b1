"""The citizen's on-screen keyboard: French AZERTY, large keys, accents and @ always in sight.

Why not Qt Virtual Keyboard (it ships in the PySide6 wheels):
- it opens itself for any focused text field, including one the clerk focused by remote control; this
  keyboard opens only on the citizen's own touch (the form view says which touches are theirs);
- in a widget application it is either a separate top-level window (which cage, the kiosk's compositor,
  would make full screen) or a Qt Quick InputPanel in a QQuickWidget: a second rendering stack in the
  window, for one panel;
- its accented letters hide behind a long press; here é è à ç ê ù are keys of their own, because the
  citizens at these kiosks rarely know a long press.

It sends what is typed as signals; the call screen hands them to the form view. Its keys never take the
keyboard focus, so the page's field keeps it while the citizen types.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QPushButton, QVBoxLayout

from .i18n import Translator
from .theme import KEYBOARD_STYLESHEET
from .widgets import label

# Rows of characters; the last row's action keys are added around them.
LETTERS = (
    ("1", "2", "3", "4", "5", "6", "7", "8", "9", "0"),
    ("a", "z", "e", "r", "t", "y", "u", "i", "o", "p", "é", "è"),
    ("q", "s", "d", "f", "g", "h", "j", "k", "l", "m", "à", "ç"),
    ("w", "x", "c", "v", "b", "n", "'", ",", ".", "-", "@"),
)
SYMBOLS = (
    ("1", "2", "3", "4", "5", "6", "7", "8", "9", "0"),
    ("!", "?", ";", ":", "/", "(", ")", '"', "+", "=", "*", "#"),
    ("&", "%", "€", "$", "_", "<", ">", "[", "]", "{", "}", "|"),
    ("ê", "ù", "ô", "î", "ë", "ï", "û", "â", "œ", "«", "»"),
)
KEY_GAP = 5


class OnScreenKeyboard(QFrame):
    typed = Signal(str)  # characters for the focused field
    key = Signal(str)  # "Backspace", "Tab" or "Enter"
    close_requested = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("keyboard")
        self.setStyleSheet(KEYBOARD_STYLESHEET)
        self._shift = False
        self._symbols = False
        self.hint = label("keyboardHint")
        self.hint.hide()
        self._character_keys: list[list[QPushButton]] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 6, 10, 6)
        layout.setSpacing(KEY_GAP)
        layout.addWidget(self.hint)
        self.backspace = self._action("keyBackspace", lambda: self.key.emit("Backspace"))
        self.backspace.setAutoRepeat(True)  # held down, it keeps erasing, like a real keyboard
        self.backspace.setAutoRepeatDelay(600)
        self.backspace.setAutoRepeatInterval(150)
        self.shift = self._action("keyShift", self._toggle_shift)
        self.shift.setCheckable(True)
        for index, characters in enumerate(LETTERS):
            row = QHBoxLayout()
            row.setSpacing(KEY_GAP)
            keys = []
            if index == 3:
                row.addWidget(self.shift, 2)
            for _ in characters:
                key = QPushButton()
                key.setObjectName("key")
                key.setFocusPolicy(Qt.FocusPolicy.NoFocus)
                key.clicked.connect(self._character_pressed)
                keys.append(key)
                row.addWidget(key, 1)
            if index == 0:
                row.addWidget(self.backspace, 3)
            self._character_keys.append(keys)
            layout.addLayout(row)
        self.symbols = self._action("keySymbols", self._toggle_symbols)
        self.space = self._action("keySpace", lambda: self.typed.emit(" "))
        self.next = self._action("keyNext", lambda: self.key.emit("Tab"))
        self.enter = self._action("keyEnter", lambda: self.key.emit("Enter"))
        self.close_key = self._action("keyClose", self.close_requested.emit)
        bottom = QHBoxLayout()
        bottom.setSpacing(KEY_GAP)
        for widget, stretch in (
            (self.symbols, 3),
            (self.space, 4),
            (self.next, 2),
            (self.enter, 2),
            (self.close_key, 4),
        ):
            bottom.addWidget(widget, stretch)
        layout.addLayout(bottom)
        self._relabel()

    def _action(self, role: str, slot: object) -> QPushButton:
        key = QPushButton()
        key.setObjectName("keyAction")
        key.setProperty("role", role)
        key.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        key.clicked.connect(slot)
        return key

    def translate(self, t: Translator, clerk: str) -> None:
        self.backspace.setText(t("keyboard.backspace"))
        self.shift.setText(t("keyboard.shift"))
        self.space.setText(t("keyboard.space"))
        self.next.setText(t("keyboard.next"))
        self.enter.setText(t("keyboard.enter"))
        self.close_key.setText(t("keyboard.close"))
        self._t = t
        self.hint.setText(t("keyboard.secret_hint", clerk=clerk))
        self._relabel()

    def open_for(self, secret: bool) -> None:
        """Shown for a field; `secret` (a password) adds the reassurance that the clerk cannot see it."""
        self.hint.setVisible(secret)
        self.show()

    def reset(self) -> None:
        """Back to lower-case letters, closed: how the next field and the next citizen find it."""
        self.hide()
        self.hint.hide()
        self._shift = self._symbols = False
        self.shift.setChecked(False)
        self._relabel()

    def _toggle_shift(self) -> None:
        self._shift = not self._shift
        self._relabel()

    def _toggle_symbols(self) -> None:
        self._symbols = not self._symbols
        self._relabel()

    def _relabel(self) -> None:
        rows = SYMBOLS if self._symbols else LETTERS
        for keys, characters in zip(self._character_keys, rows, strict=True):
            for index, key in enumerate(keys):
                character = characters[index] if index < len(characters) else ""
                if self._shift and not self._symbols:
                    character = character.upper()
                key.setText(character.replace("&", "&&"))  # a lone & would be a shortcut mark
                key.setProperty("character", character)
                key.setVisible(bool(character))
        self.shift.setChecked(self._shift)
        self.shift.setEnabled(not self._symbols)
        translate = getattr(self, "_t", None)
        if translate is not None:
            self.symbols.setText(translate("keyboard.letters" if self._symbols else "keyboard.symbols"))

    def _character_pressed(self) -> None:
        sender = self.sender()
        character = sender.property("character") if isinstance(sender, QPushButton) else None
        if not character:
            return
        self.typed.emit(str(character))
        if self._shift:  # one capital, then back to small letters, as on a phone
            self._shift = False
            self._relabel()
