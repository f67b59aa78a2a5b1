"""The call over aiortc: the kiosk is the offerer; camera, microphone and speaker are its media."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
from aioice import stun as aioice_stun
from aioice import turn as aioice_turn
from aiortc import RTCBundlePolicy, RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer, MediaRecorder, MediaRelay
from aiortc.rtcicetransport import connection_kwargs

from ..core.errors import CallError
from ..core.models import IceServer, RgbImage, SessionDescription
from ..core.playout import PlayoutSchedule
from ..core.ports import (
    CallConnected,
    CallConnectionLost,
    CallEvent,
    CallStats,
    ControlChannelOpened,
    ControlMessageReceived,
    DocumentsChannelClosed,
    DocumentsChannelOpened,
    DocumentsMessageReceived,
    MicrophoneMeter,
    RelayUnavailable,
    RemoteMediaStarted,
    VideoSink,
)
from ..core.settings import AudioSettings, CameraSettings
from ..core.uplink_control import UplinkController
from . import ice_consent, sctp_tuning, uplink_aiortc, video_recovery
from .camera_opencv import OpenCvCamera, PlaceholderSource, load_card, probe_camera
from .media_tracks import (
    FrameSource,
    GainAudioTrack,
    LatestFrame,
    LevelMeter,
    MutableAudioTrack,
    PacedVideoTrack,
    PushedVideoTrack,
    SilenceTrack,
    TrackReader,
)
from .playout_aiortc import PlayoutTrack, receiver_recoveries
from .uplink_aiortc import DocumentPace, UplinkGovernor

log = logging.getLogger(__name__)

PACE_SLACK = 32 * 1024  # bytes the documents may be ahead of their pace

sctp_tuning.install()
ice_consent.install()
video_recovery.install()
uplink_aiortc.install()

SELF_VIEW_FPS = 15.0
SYSTEM_ALSA_CONFIG = Path("/usr/share/alsa/alsa.conf")


def use_system_alsa_config() -> None:
    """PyAV's wheels bundle an alsa-lib that looks for its configuration under its build prefix, so
    even 'default' (PulseAudio/PipeWire, with echo cancellation) is unknown. Point it at the system's."""
    if "ALSA_CONFIG_PATH" not in os.environ and SYSTEM_ALSA_CONFIG.exists():
        os.environ["ALSA_CONFIG_PATH"] = str(SYSTEM_ALSA_CONFIG)
        os.environ.setdefault("ALSA_CONFIG_DIR", str(SYSTEM_ALSA_CONFIG.parent))


def rtc_configuration(ice_servers: tuple[IceServer, ...]) -> RTCConfiguration:
    # An explicit (possibly empty) list: aiortc would otherwise use a public STUN server.
    # MAX_BUNDLE: with aiortc's default (balanced) policy a second video track (the form view) stays
    # on a transport that BUNDLE negotiation stops, and never sends a frame.
    servers = [
        RTCIceServer(urls=list(s.urls), username=s.username, credential=s.credential) for s in ice_servers
    ]
    return RTCConfiguration(iceServers=servers, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)


def turn_url_used(servers: list[RTCIceServer]) -> str | None:
    """The one TURN URL aiortc will use from `servers`: `connection_kwargs` (aiortc/rtcicetransport.py)
    keeps the first STUN and the first usable TURN URL and silently drops the others."""
    for server in servers:
        for url in [server.urls] if isinstance(server.urls, str) else server.urls:
            if url.startswith(("turn:", "turns:")):
                kwargs = connection_kwargs([RTCIceServer(urls=url)])
                if "turn_server" in kwargs:
                    return url
    return None


def turn_label(kwargs: dict[str, Any]) -> str:
    return "tls" if kwargs.get("turn_ssl") else str(kwargs.get("turn_transport", "udp"))


PROBE_TIMEOUT_S = 3.0


async def allocate_once(kwargs: dict[str, Any], timeout_s: float) -> None:
    """One TURN Allocate with aiortc's connection kwargs (`connection_kwargs`), released at once;
    raises what aioice raises when it fails."""
    async with asyncio.timeout(timeout_s):
        transport, _ = await aioice_turn.create_turn_endpoint(
            asyncio.DatagramProtocol,
            server_addr=kwargs["turn_server"],
            username=kwargs.get("turn_username"),
            password=kwargs.get("turn_password"),
            ssl=kwargs.get("turn_ssl", False),
            transport=kwargs.get("turn_transport", "udp"),
        )
    transport.close()


async def diagnose_turn(kwargs: dict[str, Any]) -> tuple[bool, str]:
    """Why a TURN server gave no relay candidate: (refused, detail). aioice drops the reason (its
    gathering keeps only the tasks that succeeded, aioice/ice.py get_component_candidates), so one
    Allocate is tried again here, only when the relay is missing."""
    try:
        await allocate_once(kwargs, PROBE_TIMEOUT_S)
    except aioice_stun.TransactionFailed as exc:
        code = exc.response.attributes.get("ERROR-CODE", (0, ""))[0]
        # 401 Unauthorized: wrong or expired credential; 403/441: refused for this user.
        return code in (401, 403, 441), str(exc)
    except ssl.SSLCertVerificationError as exc:
        return False, f"its TLS certificate is not trusted: {exc.verify_message}"
    except (TimeoutError, OSError, ConnectionError, aioice_stun.TransactionError) as exc:
        return False, f"no answer ({type(exc).__name__}: {exc})" if str(exc) else "no answer"
    return False, "it answered only after the gathering's 5 s"


def describe_route(pc: RTCPeerConnection, configuration: RTCConfiguration) -> str | None:
    """The selected candidate pair as "<local> -> <remote>" (CallStats.route), a local relay with how
    it reaches the TURN server that `configuration` gave aiortc. aiortc has no public view of the
    pair: the nominated one lives in aioice's Connection._nominated."""
    kwargs = connection_kwargs(configuration.iceServers or [])
    turn = turn_label(kwargs) if "turn_server" in kwargs else None
    if pc.sctp is None:
        return None
    try:
        connection = pc.sctp.transport.transport._connection  # bundled: one ICE transport for all
        pair = next(iter(connection._nominated.values()))
    except (AttributeError, StopIteration):
        return None
    local = pair.local_candidate.type
    if local == "relay" and turn is not None:
        local = f"relay/{turn}"
    return f"{local} -> {pair.remote_candidate.type}"


def alsa_microphone(device: str) -> MediaPlayer:
    return MediaPlayer(device, format="alsa", options={"channels": "1", "sample_rate": "48000"})


def alsa_speaker(device: str) -> MediaRecorder:
    return MediaRecorder(device, format="alsa")


# The seams where the devices are opened (tests give a generated tone and a WAV file instead).
MicrophoneOpener = Callable[[str], MediaPlayer]
SpeakerOpener = Callable[[str], MediaRecorder]


def to_rgb_image(frame: av.VideoFrame) -> RgbImage:
    array = frame.to_ndarray(format="rgb24")
    return RgbImage(array.shape[1], array.shape[0], array.tobytes())


class AiortcCall:
    # A source to send instead of the camera the settings name (bench field's synthetic face).
    camera_source: FrameSource | None = None

    def __init__(
        self,
        ice_servers: tuple[IceServer, ...],
        on_event: Callable[[CallEvent], None],
        camera: CameraSettings,
        audio: AudioSettings,
        sink: VideoSink | None,
        health: dict[str, str],
        form_frames: LatestFrame | None = None,
        meter: MicrophoneMeter | None = None,
        open_microphone: MicrophoneOpener = alsa_microphone,
        open_speaker: SpeakerOpener = alsa_speaker,
        uplink_control: bool = True,
    ) -> None:
        self._uplink_control = uplink_control
        configuration = rtc_configuration(ice_servers)
        self._configuration = configuration
        self._pc = RTCPeerConnection(configuration)
        # The TURN server this connection really uses (aiortc takes one; see turn_url_used).
        self._turn_url = turn_url_used(configuration.iceServers or [])
        self._turn_kwargs = connection_kwargs(configuration.iceServers or [])
        self._route: str | None = None
        self._meter = meter
        self._open_microphone = open_microphone
        self._open_speaker = open_speaker
        self._level_meter: LevelMeter | None = None
        self._mic_source: Any = None
        self._speaker_gain = 1.0
        self._gain_stage: GainAudioTrack | None = None
        self._preview_task: asyncio.Task[None] | None = None
        self._form_frames = form_frames
        self._on_event = on_event
        self._camera_settings = camera
        self._audio_settings = audio
        self._sink = sink
        self._health = health
        self._closed = False
        self._connected_at: float | None = None
        self._camera: OpenCvCamera | None = None
        self._video: PacedVideoTrack | None = None
        self._mic_player: MediaPlayer | None = None
        self._mic: MutableAudioTrack | None = None
        self._speaker: MediaRecorder | None = None
        self._speaker_task: asyncio.Task[None] | None = None
        self._relay = MediaRelay()
        self._control: Any = None
        self._readers: dict[str, TrackReader] = {}
        self._playout = PlayoutSchedule()
        self._playout_stages: list[PlayoutTrack] = []
        self._video_receiver: Any = None
        self._mic_enabled = True
        self._camera_enabled = True
        self._last_self_view = 0.0
        self._documents_pace = DocumentPace()
        self.uplink: UplinkGovernor | None = None
        self._pc.on("track", self._on_track)
        self._pc.on("connectionstatechange", self._on_connection_state)

    # -- media

    def _on_local_frame(self, image: np.ndarray[Any, np.dtype[np.uint8]]) -> None:
        if self._sink is None:
            return
        now = time.monotonic()
        if now - self._last_self_view < 1.0 / SELF_VIEW_FPS:
            return
        self._last_self_view = now
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        self._sink.local_frame(RgbImage(rgb.shape[1], rgb.shape[0], rgb.tobytes()))

    async def _open_devices(self) -> None:
        cam = self._camera_settings
        source: FrameSource
        if self.camera_source is not None:
            source = self.camera_source
        elif cam.device is None:
            source = PlaceholderSource(cam.width, cam.height)
            self._health["camera"] = "disabled"
        else:
            self._camera = OpenCvCamera(cam.device, cam.width, cam.height, cam.fps)
            self._camera.start()
            source = self._camera
        off = load_card("camera-off.png", cam.width, cam.height)
        self._video = PacedVideoTrack(source, cam.fps, disabled_image=off, on_frame=self._on_local_frame)
        self._video.enabled = self._camera_enabled
        self._preview_task = asyncio.get_running_loop().create_task(
            self._self_view_while_waiting(source, off)
        )

        microphone = self._audio_settings.microphone
        mic_source: Any = None
        if microphone is not None:
            try:
                self._mic_player = await asyncio.to_thread(self._open_microphone, microphone)
                mic_source = self._mic_player.audio
                self._health["microphone"] = "ok" if mic_source is not None else "missing"
            except (av.FFmpegError, OSError) as exc:
                log.warning("microphone %r unavailable, sending silence: %s", microphone, exc)
                self._health["microphone"] = "missing"
        else:
            self._health["microphone"] = "disabled"
        self._mic_source = mic_source
        if mic_source is None:
            self._mic = MutableAudioTrack(SilenceTrack())
            if self._meter is not None:
                self._meter.microphone_level(None)
        else:
            # One device, two readers through the relay: the call (buffered: every frame reaches the
            # clerk) and, while the citizen waits, the level bar (only the newest frame matters).
            self._mic = MutableAudioTrack(self._relay.subscribe(mic_source, buffered=True))
            if self._meter is not None:
                self._level_meter = LevelMeter(
                    self._relay.subscribe(mic_source, buffered=False), self._meter.microphone_level
                )
                self._level_meter.start()
        self._mic.enabled = self._mic_enabled

    async def _self_view_while_waiting(self, source: Any, off: Any) -> None:
        """The citizen sees themselves while waiting for the clerk (« Vous vous voyez ? »): until the
        call sends video, the self-view is fed from the camera here; then by the sending track."""
        assert self._video is not None
        while self._video.frames_sent == 0 and not self._closed:
            self._on_local_frame(source.latest() if self._video.enabled else off)
            await asyncio.sleep(1.0 / SELF_VIEW_FPS)

    def _on_track(self, track: Any) -> None:
        # The clerk's picture and voice are shown and played at their due time (adapters/
        # playout_aiortc.py): on a long round trip a retransmission then costs no freeze.
        receiver = next((t.receiver for t in self._pc.getTransceivers() if t.receiver.track is track), None)
        if track.kind == "video":
            self._video_receiver = receiver
        stage = PlayoutTrack(track, self._playout, receiver_recoveries(receiver))
        self._playout_stages.append(stage)
        track = stage
        if track.kind == "video":
            sink = self._sink
            reader = TrackReader(track, (lambda f: sink.remote_frame(to_rgb_image(f))) if sink else None)
        else:
            source = track
            if self._speaker is None and self._audio_settings.speaker is not None:
                # Unbuffered: if the speaker stalls or fails, frames are dropped instead of piling up.
                # The gain stage (« Son + » / « Son − ») sits right before the speaker.
                self._gain_stage = GainAudioTrack(
                    self._relay.subscribe(track, buffered=False), self._speaker_gain
                )
                self._speaker = self._start_speaker(self._gain_stage)
                if self._speaker is not None:
                    source = self._relay.subscribe(track, buffered=False)
            reader = TrackReader(source)
        kind = str(track.kind)
        reader.on_first = lambda: self._on_event(RemoteMediaStarted(kind))
        self._readers[kind] = reader
        reader.start()

    def _start_speaker(self, track: Any) -> MediaRecorder | None:
        device = self._audio_settings.speaker
        assert device is not None
        try:
            recorder = self._open_speaker(device)
            recorder.addTrack(track)
        except (av.FFmpegError, OSError, ValueError) as exc:
            log.warning("speaker %r unavailable: %s", device, exc)
            self._health["speaker"] = "missing"
            return None

        async def start() -> None:
            try:
                await recorder.start()
                self._health["speaker"] = "ok"
            except (av.FFmpegError, OSError, ValueError) as exc:
                log.warning("speaker %r unavailable: %s", device, exc)
                self._health["speaker"] = "missing"

        self._speaker_task = asyncio.get_running_loop().create_task(start())
        return recorder

    def _on_connection_state(self) -> None:
        state = self._pc.connectionState
        log.debug("connection state: %s", state)
        if state == "connected" and self._connected_at is None:
            self._connected_at = time.time()
            self._route = describe_route(self._pc, self._configuration)
            self._stop_level_meter()  # the clerk is here: the waiting screen's level bar is gone
            self._on_event(CallConnected(self._route))
        elif state in ("failed", "closed") and not self._closed:
            self._on_event(CallConnectionLost(state))

    # -- the Call port

    async def create_offer(self) -> SessionDescription:
        try:
            await self._open_devices()
            assert self._mic is not None and self._video is not None
            audio_sender = self._pc.addTrack(self._mic)
            camera_sender = self._pc.addTrack(self._video)
            form_sender = form_track = None
            if self._form_frames is not None:
                # The live form view: always the offer's second video track.
                form_track = PushedVideoTrack(self._form_frames)
                form_sender = self._pc.addTrack(form_track)
            # One estimate of the uplink for the voice, both pictures and the documents (README,
            # "Thin uplinks"): without it a document filled an ADSL uplink's 400 ms queue.
            if self._uplink_control:
                self._start_uplink_control(audio_sender, camera_sender, form_sender, form_track)
            # Remote control: ordered and reliable, created by the kiosk so it is in the offer.
            self._control = self._pc.createDataChannel("control", ordered=True)
            self._control.on("open", lambda: self._on_event(ControlChannelOpened()))
            self._control.on("message", lambda raw: self._on_event(ControlMessageReceived(raw)))
            # Documents: their own ordered, reliable channel, so a transfer never queues up input.
            documents = self._pc.createDataChannel("documents", ordered=True)
            link = AiortcDocumentLink(documents, self._documents_pace)
            documents.on("open", lambda: self._on_event(DocumentsChannelOpened(link)))
            documents.on("close", lambda: self._on_event(DocumentsChannelClosed(link)))
            documents.on("message", lambda raw: self._on_event(DocumentsMessageReceived(raw)))
            await self._pc.setLocalDescription(await self._pc.createOffer())
        except (ValueError, OSError, av.FFmpegError) as exc:
            raise CallError(f"could not prepare the offer: {exc}") from exc
        sdp = self._pc.localDescription.sdp
        if self._turn_url is not None and " typ relay" not in sdp:
            refused, detail = await diagnose_turn(self._turn_kwargs)
            log.warning("TURN %s gave no relay candidate: %s", self._turn_url, detail)
            self._on_event(RelayUnavailable(self._turn_url, refused, detail))
        return SessionDescription(sdp, "offer")

    def _start_uplink_control(
        self, audio_sender: Any, camera_sender: Any, form_sender: Any, form_track: Any
    ) -> None:
        assert self._video is not None
        self.uplink = UplinkGovernor(
            UplinkController(),
            camera_sender,
            form_sender,
            self._video,
            form_track,
            self._documents_pace,
            [s for s in (audio_sender, camera_sender, form_sender) if s is not None],
            lambda: self._pc.sctp,
        )
        self._documents_pace.rate_bps = self.uplink.controller.documents_share()
        self.uplink.start()

    async def accept_answer(self, answer: SessionDescription) -> None:
        try:
            await self._pc.setRemoteDescription(RTCSessionDescription(sdp=answer.sdp, type="answer"))
        except (ValueError, OSError) as exc:
            raise CallError(f"the clerk's answer was refused: {exc}") from exc

    def set_microphone_enabled(self, enabled: bool) -> None:
        self._mic_enabled = enabled
        if self._mic is not None:
            self._mic.enabled = enabled

    def set_camera_enabled(self, enabled: bool) -> None:
        self._camera_enabled = enabled
        if self._video is not None:
            self._video.enabled = enabled

    def set_speaker_gain(self, gain: float) -> None:
        self._speaker_gain = gain
        if self._gain_stage is not None:
            self._gain_stage.gain = gain

    def _stop_level_meter(self) -> None:
        meter, self._level_meter = self._level_meter, None
        if meter is not None:
            meter.stop()

    def stats(self) -> CallStats:
        video, audio = self._readers.get("video"), self._readers.get("audio")
        return CallStats(
            remote_video_frames=video.frames if video else 0,
            remote_audio_frames=audio.frames if audio else 0,
            first_remote_video_at=video.first_at if video else None,
            first_remote_audio_at=audio.first_at if audio else None,
            local_video_frames_sent=self._video.frames_sent if self._video else 0,
            connected_at=self._connected_at,
            route=self._route,
        )

    def _log_reception(self) -> None:
        """What the clerk's picture needed on this call's link (the figures a field report asks for)."""
        counters = getattr(self._video_receiver, "recovery", None)
        if counters is not None:
            log.info("clerk's video received: %s", counters)
        delay = self._playout.delay
        log.info(
            "playout: %d late video frames, delay %.0f ms at the end, %d voice frames skipped",
            self._playout.late_frames,
            delay.current_s * 1000,
            sum(stage.skipped for stage in self._playout_stages),
        )

    def camera_frame(self) -> np.ndarray[Any, np.dtype[np.uint8]] | None:
        """The newest picture of a working camera (BGR), for pages held up to it; None otherwise."""
        camera = self._camera
        if camera is None or camera.status != "ok" or self._closed:
            return None
        return camera.latest()

    def send_control(self, text: str) -> None:
        if self._control is not None and self._control.readyState == "open":
            self._control.send(text)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop_level_meter()
        if self._preview_task is not None:
            self._preview_task.cancel()
        if self.uplink is not None:
            await self.uplink.stop()
        for reader in self._readers.values():
            await reader.stop()
        for stage in self._playout_stages:
            await stage.aclose()
        self._log_reception()
        if self._speaker is not None:
            with contextlib.suppress(Exception):
                await self._speaker.stop()
        await self._pc.close()
        if self._mic is not None:
            self._mic.stop()
        if self._mic_source is not None:
            self._mic_source.stop()  # the relay's readers do not release the device: its own track does
        if self._camera is not None:
            await asyncio.to_thread(self._camera.stop)


class AiortcCallFactory:
    camera_source: FrameSource | None = None  # given to every call (see AiortcCall.camera_source)

    def __init__(
        self,
        camera: CameraSettings,
        audio: AudioSettings,
        sink: VideoSink | None = None,
        form_frames: LatestFrame | None = None,
        meter: MicrophoneMeter | None = None,
        open_microphone: MicrophoneOpener = alsa_microphone,
        open_speaker: SpeakerOpener = alsa_speaker,
        uplink_control: bool = True,
    ) -> None:
        use_system_alsa_config()
        self._uplink_control = uplink_control
        self._meter = meter
        self._open_microphone = open_microphone
        self._open_speaker = open_speaker
        self._form_frames = form_frames
        self._camera = camera
        self._audio = audio
        self._sink = sink
        self._current: AiortcCall | None = None
        self._health: dict[str, str] = {
            "camera": "disabled" if camera.device is None else "unknown",
            "microphone": "disabled" if audio.microphone is None else "unknown",
            "speaker": "disabled" if audio.speaker is None else "unknown",
        }

    async def probe(self) -> dict[str, str]:
        """Check the camera once at start-up so the animateur hears about a missing one before a call."""
        self._health["camera"] = await asyncio.to_thread(probe_camera, self._camera.device)
        return dict(self._health)

    def new_call(
        self, ice_servers: tuple[IceServer, ...], on_event: Callable[[CallEvent], None]
    ) -> AiortcCall:
        self._current = AiortcCall(
            ice_servers,
            on_event,
            self._camera,
            self._audio,
            self._sink,
            self._health,
            self._form_frames,
            self._meter,
            self._open_microphone,
            self._open_speaker,
            self._uplink_control,
        )
        self._current.camera_source = self.camera_source
        return self._current

    def camera_frame(self) -> np.ndarray[Any, np.dtype[np.uint8]] | None:
        """The current call's camera picture (see AiortcCall.camera_frame)."""
        return self._current.camera_frame() if self._current is not None else None

    def device_health(self) -> dict[str, str]:
        return dict(self._health)


class AiortcDocumentLink:
    """The documents channel as the core's DocumentLink: sending, and waiting for the SCTP buffer to
    drain so chunks never pile up ahead of the call's other traffic."""

    def __init__(self, channel: Any, pace: DocumentPace | None = None) -> None:
        self._channel = channel
        self.pace = pace or DocumentPace()
        self._low = asyncio.Event()
        channel.on("bufferedamountlow", self._low.set)
        channel.on("close", self._low.set)

    def is_open(self) -> bool:
        return bool(self._channel.readyState == "open")

    def send_text(self, text: str) -> None:
        if self.is_open():
            self._channel.send(text)

    def send_bytes(self, data: bytes) -> None:
        if not self.is_open():
            raise ConnectionError("the documents channel is closed")
        self._channel.send(data)
        self.pace.consume(len(data))

    def buffered_amount(self) -> int:
        return int(self._channel.bufferedAmount)

    async def ready(self) -> None:
        # A couple of chunks' slack: enough to keep the channel busy, never a queue of its own.
        await self.pace.paid(PACE_SLACK)

    async def drained(self, low: int) -> None:
        self._channel.bufferedAmountLowThreshold = low
        while self.is_open() and self._channel.bufferedAmount > low:
            self._low.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):  # a missed event costs a second, not the transfer
                    await self._low.wait()
        if not self.is_open():
            raise ConnectionError("the documents channel closed")
