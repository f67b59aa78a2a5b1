"""A synthetic citizen in front of the camera, for benches on emulated links: a face that sways,
blinks and talks in front of a room, with a camera sensor's noise on every frame.

Why not a card: a still image costs ≈65 kbit/s once encoded and hides every bitrate problem of a
thin uplink; a real webcam's picture changes everywhere, every frame (noise), and moves. The same
frames go to both kinds of sender in a bench: written once as a .y4m file for Chromium's fake camera
(`--use-file-for-fake-video-capture`), and played by `LoopingFrames` for the kiosk's video track.
The motion is periodic over the loop, so looping shows no jump.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

Image = np.ndarray[Any, np.dtype[np.uint8]]

WIDTH, HEIGHT, FPS = 640, 480, 20
LOOP_S = 5.0  # one loop of the motion; every frame of it is distinct (noise)
NOISE_SIGMA = 4.0  # a cheap webcam indoors, 8-bit levels


def _room(width: int, height: int) -> np.ndarray[Any, np.dtype[np.float32]]:
    """The visitor centre behind the citizen: a wall gradient, a door, a poster (some edges to code)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    room = np.empty((height, width, 3), np.float32)
    room[..., 0] = 150 + 40 * x / width  # BGR: a warm, pale wall
    room[..., 1] = 170 + 20 * y / height
    room[..., 2] = 190 - 30 * y / height
    room[40:420, 500:600] = (60, 90, 120)  # a wooden door
    cv2.rectangle(room, (40, 60), (170, 230), (200, 80, 40), -1)  # a poster
    for row in range(80, 220, 18):
        cv2.line(room, (55, row), (155, row), (250, 250, 250), 3)
    return room


def face_frame(index: int, rng: np.random.Generator, room: np.ndarray[Any, Any]) -> Image:
    """Frame `index` of the loop (FPS frames a second)."""
    phase = 2 * math.pi * index / (LOOP_S * FPS)
    image = room.copy()
    cx = int(WIDTH / 2 + 45 * math.sin(phase))  # sways left and right
    cy = int(HEIGHT / 2 + 10 + 12 * math.sin(2 * phase))  # and nods
    tilt = 8 * math.sin(phase)
    cv2.ellipse(image, (cx, cy + 170), (150, 90), 0, 180, 360, (90, 60, 40), -1)  # shoulders
    cv2.ellipse(image, (cx, cy - 10), (95, 125), tilt, 0, 360, (120, 150, 205), -1)  # face
    cv2.ellipse(image, (cx, cy - 95), (100, 55), tilt, 180, 360, (30, 40, 60), -1)  # hair
    blink = (index % (2 * FPS)) < 3  # a blink every two seconds
    for side in (-1, 1):
        eye = (cx + side * 35, cy - 30)
        cv2.ellipse(image, eye, (16, 2 if blink else 9), tilt, 0, 360, (40, 30, 30), -1)
    mouth = 4 + int(10 * abs(math.sin(7 * phase)))  # talking
    cv2.ellipse(image, (cx, cy + 55), (30, mouth), tilt, 0, 360, (60, 50, 140), -1)
    noise = rng.normal(0.0, NOISE_SIGMA, image.shape).astype(np.float32)
    frame: Image = np.clip(image + noise, 0, 255).astype(np.uint8)
    return frame


def face_frames(seconds: float = LOOP_S, seed: int = 7) -> list[Image]:
    """The loop's frames (BGR, 640×480); `seconds` of them at FPS."""
    rng = np.random.default_rng(seed)
    room = _room(WIDTH, HEIGHT)
    return [face_frame(i, rng, room) for i in range(int(seconds * FPS))]


def write_y4m(frames: list[Image], path: Path, fps: int = FPS) -> Path:
    """The frames as a YUV4MPEG2 file (4:2:0), which Chromium's fake camera plays in a loop."""
    height, width = frames[0].shape[:2]
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            out.write(b"FRAME\n")
            out.write(cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())
    return path


class LoopingFrames:
    """The loop as a camera for the kiosk's video track: the frame of the current time (a source, like
    `OpenCvCamera`: the track takes the newest picture when it wants one)."""

    def __init__(self, frames: list[Image], fps: int = FPS) -> None:
        self._frames = frames
        self._fps = fps
        self._start = time.monotonic()

    def latest(self) -> Image:
        index = int((time.monotonic() - self._start) * self._fps) % len(self._frames)
        return self._frames[index]
