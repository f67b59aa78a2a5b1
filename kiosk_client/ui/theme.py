"""All styles in one place: large type, high contrast, calm colours (the French state's blue)."""

from __future__ import annotations

import re

BLUE = "#000091"
INK = "#161616"
PAPER = "#f6f6f6"
RED = "#c9191e"
GREY = "#3a3a3a"

STYLESHEET = f"""
QWidget {{ background: {PAPER}; color: {INK}; font-family: "DejaVu Sans", sans-serif; font-size: 26px; }}
QLabel#title {{ font-size: 52px; font-weight: bold; color: {BLUE}; }}
QLabel#subtitle {{ font-size: 36px; }}
QLabel#clock {{ font-size: 40px; font-weight: bold; }}
QLabel#countdown {{ font-size: 64px; font-weight: bold; color: {BLUE}; }}
QLabel#hint {{ font-size: 30px; color: {GREY}; }}
QLabel#appointmentLine {{ font-size: 32px; padding: 6px 0; }}
QLabel#notices {{ font-size: 20px; color: {PAPER}; background: {GREY}; padding: 6px 14px; }}
QLabel#assistNotice {{ font-size: 28px; color: white; background: {BLUE}; padding: 14px 24px; border-radius: 8px; }}
QLabel#badge {{ font-size: 24px; color: white; background: {RED}; padding: 6px 12px; border-radius: 6px; }}
QLabel#callTitle {{ font-size: 30px; font-weight: bold; color: white; background: {BLUE}; padding: 8px 16px; }}
QPushButton {{
    font-size: 26px; min-height: 72px; padding: 8px 12px;
    border-radius: 12px; border: 3px solid {BLUE}; background: white; color: {BLUE};
}}
QPushButton:pressed {{ background: #dcdcff; border-width: 6px; }}
QPushButton#danger {{ background: {RED}; border-color: {RED}; color: white; }}
QPushButton#danger:pressed {{ background: #8f1016; }}
QPushButton#primary {{ background: {BLUE}; color: white; }}
QPushButton#primary:pressed {{ background: #00005c; }}
QPushButton:disabled, QPushButton#primary:disabled, QPushButton#danger:disabled {{
    background: #e6e6e6; border-color: #8c8c8c; color: #595959; border-style: dashed;
}}
QToolButton#ratingFace {{
    font-size: 26px; min-width: 140px; padding: 8px 8px 6px 8px;
    border-radius: 12px; border: 3px solid {BLUE}; background: white; color: {BLUE};
}}
QToolButton#ratingFace:pressed {{ background: #dcdcff; border-width: 6px; }}
QPushButton#rating_skip {{ min-width: 240px; }}
QPushButton#language {{ font-size: 22px; min-height: 64px; min-width: 160px; }}
QFrame#confirm {{ background: white; border: 4px solid {BLUE}; border-radius: 16px; }}
QFrame#confirm QLabel {{ background: white; }}
QLabel#confirmQuestion {{ font-size: 28px; }}
QLabel#volumeLevel {{ font-size: 28px; font-weight: bold; }}
QLabel#microphoneWords {{ font-size: 24px; color: {GREY}; }}
VideoView {{ background: #101010; }}
QFrame#controlBanner {{ background: {BLUE}; border-radius: 8px; }}
QFrame#documentsPanel {{ background: white; border: 4px solid {BLUE}; border-radius: 16px; }}
QFrame#documentsPanel QLabel {{ background: white; }}
QFrame#documentsFooter {{ background: white; border: 4px solid {BLUE}; border-top: 0; border-radius: 0 0 16px 16px; }}
QFrame#documentsFooter QLabel {{ background: white; }}
QFrame#pageTile {{ background: {PAPER}; border: 2px solid #c8c8c8; border-radius: 8px; }}
QFrame#pageTile QLabel {{ background: {PAPER}; }}
QLabel#documentsStatus {{ font-size: 28px; color: {RED}; }}
QLabel#transfers {{ font-size: 28px; font-weight: bold; color: {BLUE}; }}
QFrame#printPanel {{ background: white; border: 4px solid {BLUE}; border-radius: 16px; }}
QFrame#printPanel QLabel, QWidget#printPages {{ background: white; }}
QLabel#printPage {{ border: 2px solid #8c8c8c; }}
QLabel#printStatus {{ font-size: 30px; font-weight: bold; color: {BLUE}; }}
QLabel#printStatus[problem="true"] {{ color: {RED}; }}
QPushButton[role="printButton"] {{ font-size: 34px; min-height: 96px; font-weight: bold; }}
QFrame#controlBanner QLabel {{ background: {BLUE}; color: white; font-size: 26px; font-weight: bold; padding: 4px 10px; }}
QFrame#staffPanel {{ background: white; border: 6px solid {INK}; }}
QFrame#staffPanel QWidget {{ background: white; }}
QLabel#staffTitle {{ font-size: 34px; font-weight: bold; color: {INK}; }}
QLabel#staffMessage {{ font-size: 24px; font-weight: bold; color: {BLUE}; }}
QLabel#staffInfo, QLabel#staffDevices {{ font-size: 22px; }}
QLabel#staffKeypadValue {{ font-size: 44px; font-weight: bold; padding: 8px; }}
QLabel#staffPreview {{ border: 2px solid #c8c8c8; }}
QPushButton#staffKey {{ font-size: 32px; }}
QPushButton#staffClose {{ font-size: 22px; min-height: 64px; min-width: 160px; }}
QLabel#staffSection {{ font-size: 30px; font-weight: bold; color: {BLUE}; }}
QLabel#staffDeviceState {{ font-size: 22px; }}
QLabel#staffDeviceHint {{ font-size: 24px; font-weight: bold; }}
QLabel#staffLevel {{ font-size: 26px; font-weight: bold; }}
QFrame#staffCameraFrame {{ border: 2px solid #c8c8c8; }}
QFrame#staffPanel QLabel#staffCameraWords {{ font-size: 24px; color: white; background: {GREY}; padding: 24px; }}
QLabel#staffWalkInServicesTitle {{ font-size: 26px; font-weight: bold; }}
QLabel#staffWalkInServicesStatus {{ font-size: 24px; color: {GREY}; }}
QPushButton#staffWalkInService {{ font-size: 28px; font-weight: bold; text-align: left; padding: 10px 20px; }}
"""


LARGER_TEXT = 1.25  # "Texte plus grand": every size in the stylesheet, a quarter larger


def stylesheet(scale: float = 1.0) -> str:
    """The stylesheet with every font size multiplied by `scale` (buttons' heights follow their text)."""
    if scale == 1.0:
        return STYLESHEET
    return re.sub(
        r"font-size: (\d+)px", lambda m: f"font-size: {round(int(m.group(1)) * scale)}px", STYLESHEET
    )


# Set on the keyboard itself, so "Texte plus grand" leaves it alone: its keys are large already, and
# larger ones pushed the page and the clerk off a 1280x720 screen.
KEYBOARD_STYLESHEET = f"""
QFrame#keyboard {{ background: #e3e3fd; border-top: 4px solid {BLUE}; }}
QFrame#keyboard QLabel {{ background: #e3e3fd; }}
QLabel#keyboardHint {{ font-size: 24px; font-weight: bold; color: {BLUE}; padding: 2px 6px; }}
QPushButton#key, QPushButton#keyAction {{
    min-height: 64px; padding: 0 2px; font-size: 30px; border-radius: 8px;
    border: 3px solid {BLUE}; background: white; color: {BLUE};
}}
QPushButton#keyAction {{ font-size: 22px; background: {PAPER}; }}
QPushButton#keyAction:checked {{ background: {BLUE}; color: white; }}
QPushButton#key:pressed, QPushButton#keyAction:pressed {{ background: {BLUE}; color: white; }}
QPushButton#keyAction:disabled {{ background: #e6e6e6; border-color: #8c8c8c; color: #595959; border-style: dashed; }}
"""
