"""Putting sound on the encoded (silent) video: the target's own audio, or an audio file given as a source.

Done better than 3.5.0:

- In sync and whole. The audio span is taken from the *presentation time of the first output frame* (from the
  probe's packet scan), not from ``frame / fps`` counted from zero. 3.5.0 always cut ``-ss 0 -to <end>``
  from the container start, so when the video stream starts after the audio (common in camera MP4s) the
  output audio was shifted against the picture and cut short. If the audio starts after the first frame, that
  gap becomes silence at the start instead of pulling the audio early.
- Trim-aware: a trimmed output gets exactly the audio of the trimmed span.
- Never silently lost. The audio encoder fits the container (encoders.resolve_audio_encoder); if muxing still
  fails, it is retried once with the container's default encoder, and if that fails too a loud warning says
  the output has no audio and the silent video is kept.

All outputs go through a temporary name in the output directory and are moved into place at the end.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Union

from facefusion import choices
from facefusion.video import encoders
from facefusion.video import ffmpeg
from facefusion.errors import FaceFusionError
from facefusion.logger import get_logger
from facefusion.video.io import temporary_path
from facefusion.video.probe import VideoInfo, probe_audio, read_header


@dataclass(frozen=True)
class AudioSpan:
	"""Which audio goes under the output: seconds ``start`` .. ``start + duration`` of stream ``stream_index`` of
	``path`` (times from the container start), preceded by ``lead_silence`` seconds of silence."""
	path: str
	stream_index: int
	start: float
	duration: float
	lead_silence: float = 0.0


@dataclass(frozen=True)
class AudioOutcome:
	has_audio: bool
	encoder: Optional[str]
	# 'restored', 'replaced', 'no-audio' (nothing to restore), 'muted' (volume 0) or 'failed'
	status: str


def find_audio_source(source_paths: Sequence[str]) -> Optional[str]:
	"""The first source path that is an audio file (3.5.0 then replaces the target's audio with it)."""
	for path in source_paths:
		if os.path.splitext(str(path))[1].lower() in choices.audio_extensions and os.path.isfile(str(path)):
			return str(path)
	return None


def target_audio_span(target: VideoInfo, trim_start: int, duration: float) -> Optional[AudioSpan]:
	"""The target's audio that plays under output frames trim_start onwards, for ``duration`` seconds."""
	if not target.has_audio or target.audio_stream_index is None:
		return None
	video_time = target.frame_time(trim_start)
	audio_start = target.audio_start_time or 0.0
	if audio_start > video_time:
		# the audio begins after this frame: keep its true place by starting with silence
		return AudioSpan(target.path, target.audio_stream_index, audio_start, duration - (audio_start - video_time), audio_start - video_time)
	return AudioSpan(target.path, target.audio_stream_index, video_time, duration)


def build_mux_command(video_path: Union[str, Path], span: AudioSpan, output_path: Union[str, Path], encoder: str, quality: int, volume: int, duration: float) -> List[str]:
	"""ffmpeg arguments: video stream copied, audio re-encoded from the span (so the cut is sample-exact)."""
	arguments = ['-y', '-i', str(video_path)]
	if span.start > 0:
		# an input -ss counts from the container start and, when decoding, drops samples before it exactly
		arguments += ['-ss', '{:.6f}'.format(span.start)]
	arguments += ['-i', span.path, '-map', '0:v:0', '-map', '1:{}'.format(span.stream_index), '-c:v', 'copy']
	arguments += ['-c:a', encoder] + encoders.audio_encoder_arguments(encoder, quality, str(output_path))
	# audio timestamps restart at zero so the stream starts with the first frame (no edit-list offset), then any
	# silence the span needs is put in front
	audio_filters = ['asetpts=PTS-STARTPTS']
	if span.lead_silence > 0:
		audio_filters.append('adelay={}:all=1'.format(int(round(span.lead_silence * 1000))))
	if volume != 100:
		audio_filters.append('volume={}'.format(round(volume / 100.0, 2)))
	arguments += ['-af', ','.join(audio_filters), '-t', '{:.6f}'.format(duration)]
	arguments += encoders.container_arguments('', str(output_path))
	arguments.append(str(output_path))
	return arguments


def mux_audio(video_path: Union[str, Path], span: AudioSpan, output_path: Union[str, Path], encoder: Optional[str], quality: int, volume: int, duration: float) -> Optional[str]:
	"""Mux once per encoder to try (the requested one, then the container default); returns the encoder that
	worked, or None after warning. The output appears under output_path only on success."""
	resolved = encoders.resolve_audio_encoder(encoder, str(output_path))
	attempts = [resolved]
	fallback = encoders.default_audio_encoder(os.path.splitext(str(output_path))[1])
	if fallback not in attempts:
		attempts.append(fallback)
	reasons = []
	for attempt in attempts:
		temp_path = temporary_path(output_path, 'audio')
		try:
			command = build_mux_command(video_path, span, temp_path, attempt, quality, volume, duration)
			result = ffmpeg.run_ffmpeg(command, what='Adding audio', check=False)
			if result.returncode == 0 and _has_audio_stream(temp_path):
				os.replace(temp_path, output_path)
				return attempt
			reasons.append('{}: {}'.format(attempt, ffmpeg.summarize_error(result.stderr, result.returncode)))
		finally:
			if temp_path.exists():
				temp_path.unlink()
	get_logger().warning('Restoring audio failed (%s); the output is written WITHOUT audio', '; '.join(reasons))
	return None


def _has_audio_stream(path: Path) -> bool:
	try:
		return read_header(str(path)).first('Audio') is not None
	except FaceFusionError:
		return False


def finalize_output(video_path: Union[str, Path], output_path: Union[str, Path], duration: float, target: Optional[VideoInfo] = None, trim_start: int = 0, source_paths: Sequence[str] = (), encoder: Optional[str] = None, quality: int = 80, volume: int = 100) -> AudioOutcome:
	"""Give the encoded silent video (a temporary file, e.g. VideoWriter.close()) its audio and move it to
	output_path. The silent file is consumed: after this call it is either the output or gone.

	duration is the video's length in seconds (VideoWriter.duration); the audio is cut to it."""
	video_path, output_path = Path(ffmpeg.local_path(video_path)), Path(ffmpeg.local_path(output_path))
	try:
		if volume <= 0:
			get_logger().info('Output audio volume is 0: writing the video without audio')
			os.replace(video_path, output_path)
			return AudioOutcome(False, None, 'muted')
		audio_source = find_audio_source(source_paths)
		span: Optional[AudioSpan] = None
		status = 'restored'
		if audio_source is not None:
			try:
				audio_info = probe_audio(audio_source)
			except FaceFusionError as exception:
				# the processed video is the valuable part: keep it, say loudly what is missing
				get_logger().warning('Replacing audio failed (%s); the output is written WITHOUT audio', exception.message)
				os.replace(video_path, output_path)
				return AudioOutcome(False, None, 'failed')
			span = AudioSpan(audio_source, audio_info.stream_index, audio_info.start_time, duration)
			status = 'replaced'
		elif target is not None:
			span = target_audio_span(target, trim_start, duration)
		if span is None or span.duration <= 0:
			os.replace(video_path, output_path)
			return AudioOutcome(False, None, 'no-audio')
		used = mux_audio(video_path, span, output_path, encoder, quality, volume, duration)
		if used is None:
			os.replace(video_path, output_path)
			return AudioOutcome(False, None, 'failed')
		return AudioOutcome(True, used, status)
	finally:
		if video_path.exists() and video_path != output_path:
			video_path.unlink()
