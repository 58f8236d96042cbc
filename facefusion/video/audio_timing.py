"""How far the running ffmpeg misplaces the sound it encodes into a container, measured once and then undone.

Two cases are known. ffmpeg 5.1's Matroska / WebM muxer stores an opus stream's timestamps without its codec
delay (the 6.5 ms pre-skip) while every reader subtracts that delay again: the sound plays 6 to 7 ms early
against the picture, once more with every pass through the engine (7.x and 9.x store it right). And avi cannot
flag an encoder's priming on any version: AAC or MP3 plays 21 to 23 ms late. Rather than keep a table of
versions and containers, the muxer is asked: a short burst at a known time is encoded with the output's encoder
into the output's container, decoded again, and the burst's onset compared with where it was put (the burst,
not the first decoded sample, because priming that a container cannot flag, AAC in Matroska before 9.x, shows
up as extra samples in front while the sound itself may stay in place). The result is cached per binary,
encoder and container; the mux then moves the audio by it.
"""
from __future__ import annotations

import functools
import math
import os
import tempfile
import wave
from typing import Optional

import numpy as np

from facefusion.errors import FaceFusionError
from facefusion.logger import get_logger
from facefusion.video import encoders, ffmpeg
from facefusion.video.probe import decoded_audio_start

CHECK_SAMPLE_RATE = 48000
CHECK_BURST_AT = 0.1
CHECK_LENGTH = 0.3
CHECK_THRESHOLD = 0.3
# below a millisecond is the onset detector's own noise; above this the check itself went wrong
MIN_CORRECTION = 0.001
MAX_CORRECTION = 0.1


def muxed_audio_delay(encoder: str, output_path: str) -> float:
	"""Seconds to delay the audio by (negative: to advance it) so that it plays where it was placed, for this
	encoder in the container of output_path; 0.0 when the muxer places it right or the check cannot run."""
	extension = os.path.splitext(str(output_path))[1].lower()
	return _measure(ffmpeg.find_ffmpeg(), encoder, extension)


def _burst(sample_count: int) -> np.ndarray:
	times = np.arange(sample_count) / CHECK_SAMPLE_RATE
	return np.where(times >= CHECK_BURST_AT, 0.8 * np.sin(2 * math.pi * 1000.0 * (times - CHECK_BURST_AT)), 0.0)


def _onset(samples: np.ndarray) -> float:
	loud = np.flatnonzero(np.abs(samples) > CHECK_THRESHOLD)
	return float(loud[0]) / CHECK_SAMPLE_RATE if len(loud) else math.nan


@functools.lru_cache(maxsize=None)
def _measure(binary: str, encoder: str, extension: str) -> float:
	"""Measured once per binary, encoder and container, and remembered on disk (binary_facts.py); a check that
	could not run counts as no correction and is asked again next time."""
	from facefusion.binary_facts import remembered
	measured = remembered(binary, f'audio-delay {encoder} {extension}', lambda: _checked_measurement(encoder, extension), keep=lambda value: value is not None)
	return 0.0 if measured is None else measured


def _checked_measurement(encoder: str, extension: str) -> Optional[float]:
	try:
		delay = _measure_once(encoder, extension)
	except (OSError, FaceFusionError) as exception:
		get_logger().debug('Checking the audio timing of %s in %s failed: %s', encoder, extension, exception)
		return None
	if delay is None:
		return None
	if not math.isfinite(delay) or abs(delay) < MIN_CORRECTION or abs(delay) > MAX_CORRECTION:
		return 0.0
	get_logger().debug('ffmpeg plays %s audio in %s %.1f ms early (negative: late): moving it by that much', encoder, extension, delay * 1000)
	return delay


def _measure_once(encoder: str, extension: str) -> Optional[float]:
	"""The measured misplacement, or None when the check could not run (the encoder refused the container)."""
	with tempfile.TemporaryDirectory(prefix='facefusion-audio-timing-') as directory:
		source_path = os.path.join(directory, 'burst.wav')
		check_path = os.path.join(directory, 'burst' + extension)
		reference = _burst(int(CHECK_LENGTH * CHECK_SAMPLE_RATE))
		with wave.open(source_path, 'wb') as handle:
			handle.setnchannels(1)
			handle.setsampwidth(2)
			handle.setframerate(CHECK_SAMPLE_RATE)
			handle.writeframes((reference * 32767).astype('<i2').tobytes())
		# timestamps as the encoder and muxer make them, not moved to start at zero
		arguments = ['-y', '-i', source_path, '-c:a', encoder] + encoders.audio_encoder_arguments(encoder, 80, check_path)
		arguments += ['-avoid_negative_ts', 'disabled', check_path]
		if ffmpeg.run_ffmpeg(arguments, what='Checking audio timing', check=False).returncode != 0:
			return None
		start = decoded_audio_start(check_path, 0)
		decoded = ffmpeg.run_ffmpeg(['-i', check_path, '-map', '0:a:0', '-ac', '1', '-ar', str(CHECK_SAMPLE_RATE), '-f', 'f32le', '-'], what='Checking audio timing', check=False)
		if start is None or decoded.returncode != 0:
			return None
		return _onset(reference) - (start + _onset(np.frombuffer(decoded.stdout, dtype='<f4')))
