"""File writers shared by the EPIC and SSv2 parts: the streaming video encoder (:class:`VideoWriter`: MP4
H.264 + AAC, WebM VP9), flow quantisation for the flow JPEGs (:func:`quantise_flow`) and the CSV / JSON
annotation writers (:func:`write_csv`, :func:`write_json`)."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np


class VideoWriter:
    """Streaming PyAV encoder: ``.MP4``/``.mp4`` → libx264 (ultrafast, yuv420p) + optional AAC mono;
    ``.webm`` → libvpx-vp9 (realtime), no audio. Frames are uint8 (n, H, W, 3) RGB."""

    def __init__(self, path: Path, width: int, height: int, fps: float, *, audio: np.ndarray | None = None,
                 audio_rate: int = 16000):
        mp4 = path.suffix.lower() == ".mp4"
        self.container = av.open(str(path), "w", format="mp4" if mp4 else "webm")
        self.fps = Fraction(fps).limit_denominator(1001)
        self.video = self.container.add_stream("libx264" if mp4 else "libvpx-vp9", rate=self.fps)
        self.video.width, self.video.height, self.video.pix_fmt = width, height, "yuv420p"
        self.video.options = ({"preset": "ultrafast", "crf": "23", "threads": "1"} if mp4 else
                              {"deadline": "realtime", "cpu-used": "8", "crf": "32", "b": "0", "threads": "1"})
        self.audio = None
        self.audio_data = audio
        self.audio_rate = audio_rate
        self.audio_done = 0
        if audio is not None:
            if not mp4:
                raise ValueError("audio is only written into MP4 files")
            self.audio = self.container.add_stream("aac", rate=audio_rate)
            self.audio.layout = "mono"
            self.audio.bit_rate = 32000
            self.audio.options = {"aac_coder": "fast"}
        self.frames = 0

    def write(self, frames: np.ndarray) -> None:
        """Encode ``frames`` uint8 (n, H, W, 3) RGB, and the audio up to their end time."""
        for image in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame.pts = self.frames
            self.frames += 1
            for packet in self.video.encode(frame):
                self.container.mux(packet)
        if self.audio is not None:
            self._write_audio(round(float(self.frames / self.fps) * self.audio_rate))

    def _write_audio(self, until: int, final: bool = False) -> None:
        step = 1024
        data = self.audio_data
        while self.audio_done + step <= until or (final and self.audio_done < len(data)):
            chunk = data[self.audio_done:self.audio_done + step]
            if len(chunk) < step:
                chunk = np.pad(chunk, (0, step - len(chunk)))
            frame = av.AudioFrame.from_ndarray(chunk[None, :].astype(np.float32), format="fltp", layout="mono")
            frame.sample_rate = self.audio_rate
            frame.time_base = Fraction(1, self.audio_rate)
            frame.pts = self.audio_done
            self.audio_done += step
            for packet in self.audio.encode(frame):
                self.container.mux(packet)

    def close(self) -> None:
        """Flush the encoders (the rest of the audio, zero-padded to whole 1024-sample frames) and close."""
        for packet in self.video.encode():
            self.container.mux(packet)
        if self.audio is not None:
            self._write_audio(len(self.audio_data), final=True)
            for packet in self.audio.encode():
                self.container.mux(packet)
        self.container.close()


def quantise_flow(d: np.ndarray, bound: float) -> np.ndarray:
    """Pixels → uint8 as :func:`modalbridge.io.flow.quantise_flow`: ``round((d/bound + 1)·127.5)``."""
    return np.clip(np.round((d / bound + 1.0) * 127.5), 0, 255).astype(np.uint8)


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """UTF-8 CSV with ``\\n`` line ends: the ``header`` row, then ``rows``."""
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def write_json(path: Path, data: Any, indent: int | None = None) -> None:
    """UTF-8 JSON (parent folders created): indented when ``indent`` is given, else compact (no spaces)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=indent, separators=None if indent else (",", ":")), encoding="utf-8")
