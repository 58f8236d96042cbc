"""Putting sound on the encoded (silent) video: the target's own audio, or an audio file given as a source.

Done better than 3.5.0:

- Whole and in sync. Untrimmed, the output keeps *all* of the target's audio and the streams' relative
  offsets: a camera clip whose audio starts 0.85 s before its first frame comes out with those 0.85 s of sound,
  the first frame again at 0.85 s (a stream start offset: an MP4 edit list, a Matroska timestamp), and the
  same duration. 3.5.0 cut the audio ``-ss 0 -to <end>`` from the container start, so such a clip lost its
  lead-in or had it shifted under the picture. Audio that starts after the first frame keeps its place the
  same way, and audio that runs on after the last frame is kept. Containers whose streams all start at zero (avi,
  mxf) cannot hold that offset: they get the audio under the frames, with silence in front of a late start.
- Trim-aware: a trimmed output gets exactly the audio under the trimmed frames, from the *presentation time of
  the first output frame* (the probe's packet scan), not ``frame / fps`` counted from zero.
- The same on every ffmpeg. Samples are placed by their own timestamps: the audio is decoded from its start
  (or from a coarse seek far before the cut), cut with ``atrim`` at absolute times and moved by a fixed
  ``asetpts`` offset. Where an input ``-ss`` lands and which first samples it drops differ between ffmpeg
  versions (5.1 and 7.x dropped a whole 20 ms opus frame from a webm soundtrack, 9.x did not).
- Never silently lost. The audio encoder fits the container (encoders.resolve_audio_encoder); if muxing still
  fails, it is retried once with the container's default encoder, and if that fails too a loud warning says
  the output has no audio and the silent video is kept.

All outputs go through a temporary name in the output directory and are moved into place at the end.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional, Protocol, Sequence, Tuple, Union

from facefusion import choices
from facefusion.errors import FaceFusionError, ProcessingError
from facefusion.logger import get_logger
from facefusion.video import audio_timing, encoders, ffmpeg, isobmff
from facefusion.video.io import temporary_path
from facefusion.video.probe import VideoInfo, probe_audio, read_header
from facefusion.video.side_streams import MOV_EXTENSIONS, SideStreams, prepare_side_streams

# a trimmed span that starts this far into the audio is reached with a coarse input seek first, landing this much
# before the cut (decoding two hours of audio to keep the last minute costs seconds; the cut stays exact)
SEEK_AFTER_SECONDS = 60.0
SEEK_MARGIN_SECONDS = 30.0
# what ffmpeg says (strerror) when writing fails for a reason that no other encoder would avoid
# less free space than this after a short write: the disk is full
FULL_DISK_BYTES = 1024 * 1024
WRITE_ERRORS = ('No space left on device', 'Disk quota exceeded', 'Input/output error', 'Read-only file system', 'File too large', 'Permission denied')


@dataclass(frozen=True)
class AudioSpan:
	"""Which audio goes under the output, and where.

	The samples of stream ``stream_index`` of ``path`` from ``start`` to ``end`` (seconds from that file's
	container start, as ffmpeg counts without -copyts; ``end`` None: to the end of the stream) are kept, and a
	sample at time t plays at ``t - shift`` on the output's clock. The output's first frame plays at
	``video_delay`` on that clock (above 0 when sound before the first frame is kept). ``audio_start`` is when
	the stream's first sample plays (same clock as start): a container whose streams all start at zero gets the
	gap up to it as silence instead."""
	path: str
	stream_index: int
	start: float
	end: Optional[float]
	shift: float
	video_delay: float = 0.0
	audio_start: float = 0.0
	# the stream's title: MP4 / MOV keep a track's name in its handler, which ffmpeg does not fill from a title
	title: Optional[str] = None

	@property
	def duration(self) -> Optional[float]:
		return None if self.end is None else self.end - self.start


@dataclass(frozen=True)
class AudioOutcome:
	has_audio: bool
	encoder: Optional[str]
	# 'restored', 'replaced', 'no-audio' (nothing to restore), 'muted' (volume 0) or 'failed'
	status: str


@dataclass(frozen=True)
class EncodedAudio:
	"""Audio encoded ahead of the mux (audio_ahead.py): its file, the encoder, the spans it holds, and where ffmpeg
	says it starts."""
	path: Path
	encoder: str
	spans: Tuple[AudioSpan, ...]
	start_time: float


class AudioEncodedAhead(Protocol):
	"""What the mux asks of audio encoded while the frames were processed (audio_ahead.AudioAhead)."""
	encoder: str

	def result(self, spans: Sequence[AudioSpan], encoder: str) -> Optional[EncodedAudio]:
		...


def find_audio_source(source_paths: Sequence[str]) -> Optional[str]:
	"""The first source path that is an audio file (3.5.0 then replaces the target's audio with it)."""
	for path in source_paths:
		if os.path.splitext(str(path))[1].lower() in choices.audio_extensions and os.path.isfile(str(path)):
			return str(path)
	return None


def covers_whole_video(target: VideoInfo, trim_start: int, trim_end: Optional[int], duration: float) -> bool:
	"""Whether the output holds every frame of the target (then it gets all of the audio, not a cut).

	Without trim_end (an older caller), the output covers the end when it lasts to within half a frame of it."""
	if trim_start > 0:
		return False
	if trim_end is not None:
		return trim_end >= target.frame_count
	video_end = target.video_start_time + target.duration
	return target.frame_time(0) + duration >= video_end - 0.5 / target.fps


def target_audio_span(target: VideoInfo, trim_start: int, duration: float, whole: bool = False) -> Optional[AudioSpan]:
	"""The target's audio for an output made of frames trim_start onwards, ``duration`` seconds long.

	whole: the output holds every frame, so it keeps all of the audio and the streams' offsets, its clock
	starting where the earlier stream starts. Otherwise the audio under the frames: from the first output
	frame's presentation time for ``duration`` seconds, audio that starts later keeping its place."""
	if not target.has_audio or target.audio_stream_index is None:
		return None
	audio_start = target.audio_start_time or 0.0
	title = target.audio_streams[0].title if target.audio_streams else None
	if whole:
		video_start = target.frame_time(0)
		origin = min(audio_start, video_start)
		return AudioSpan(target.path, target.audio_stream_index, origin, None, origin, video_start - origin, audio_start, title)
	video_time = target.frame_time(trim_start)
	end = video_time + duration
	if audio_start >= end or (target.audio_duration is not None and audio_start + target.audio_duration <= video_time):
		return None
	return AudioSpan(target.path, target.audio_stream_index, video_time, end, video_time, 0.0, audio_start, title)


def target_audio_spans(target: VideoInfo, trim_start: int, duration: float, whole: bool = False, streams: str = 'all') -> List[AudioSpan]:
	"""target_audio_span for every audio stream of the target (streams 'all') or the first one only ('first').

	Each stream keeps its own place against the picture; with whole, the output's clock starts where the earliest
	of them (or the first frame) starts, so every stream keeps its lead-in."""
	first = target_audio_span(target, trim_start, duration, whole)
	if streams == 'first' or len(target.audio_streams) < 2:
		return [first] if first is not None else []
	spans: List[AudioSpan] = []
	if whole:
		video_start = target.frame_time(0)
		origin = min([video_start] + [stream.start_time for stream in target.audio_streams])
		for stream in target.audio_streams:
			spans.append(AudioSpan(target.path, stream.index, origin, None, origin, video_start - origin, stream.start_time, stream.title))
		return spans
	video_time = target.frame_time(trim_start)
	end = video_time + duration
	for stream in target.audio_streams:
		if stream.start_time >= end or (stream.duration is not None and stream.start_time + stream.duration <= video_time):
			continue
		spans.append(AudioSpan(target.path, stream.index, video_time, end, video_time, 0.0, stream.start_time, stream.title))
	return spans


def build_mux_command(video_path: Union[str, Path], span: Union[AudioSpan, Sequence[AudioSpan]], output_path: Union[str, Path], encoder: str, quality: int, volume: int, audio_delay: float = 0.0, side: Optional[SideStreams] = None) -> List[str]:
	"""ffmpeg arguments: video stream copied (delayed by span.video_delay), audio re-encoded from the span (or from
	each of several spans of one file, all with the same start: one output stream each), plus side's subtitles,
	chapters and tags.

	No input -ss decides which samples are kept: atrim cuts at the span's absolute times, sample-exactly, and
	asetpts moves every sample by the same offset, so each keeps its place relative to the picture. audio_delay
	undoes what the muxer gets wrong (audio_timing.muxed_audio_delay)."""
	spans = [span] if isinstance(span, AudioSpan) else list(span)
	arguments = ['-y'] + _video_input_arguments(video_path, spans)
	audio_input, origin = _audio_input_arguments(spans)
	arguments += audio_input
	side_inputs, side_outputs = side.arguments(2 if spans else 1) if side is not None else ([], [])
	arguments += side_inputs + ['-map', '0:v:0']
	for each in spans:
		arguments += ['-map', '1:{}'.format(each.stream_index)]
	arguments += ['-c:v', 'copy']
	if spans:
		arguments += _audio_encoding_arguments(spans, origin, output_path, encoder, quality, volume, audio_delay)
	arguments += _title_arguments(spans, output_path) + side_outputs
	arguments += encoders.container_arguments('', str(output_path))
	arguments.append(str(output_path))
	return arguments


def build_audio_ahead_command(spans: Sequence[AudioSpan], output_path: Union[str, Path], encoder: str, quality: int, volume: int, audio_delay: float = 0.0) -> List[str]:
	"""The audio of build_mux_command alone, encoded the same way into a file of the output's container, so that
	the mux after the last frame only has to copy it (build_copy_mux_command)."""
	audio_input, origin = _audio_input_arguments(spans)
	arguments = ['-y'] + audio_input
	for each in spans:
		arguments += ['-map', '0:{}'.format(each.stream_index)]
	arguments += _audio_encoding_arguments(spans, origin, output_path, encoder, quality, volume, audio_delay)
	arguments.append(str(output_path))
	return arguments


def build_copy_mux_command(video_path: Union[str, Path], spans: Sequence[AudioSpan], audio_path: Union[str, Path], audio_start: float, output_path: Union[str, Path], side: Optional[SideStreams] = None) -> List[str]:
	"""build_mux_command's output from audio encoded ahead (build_audio_ahead_command): both streams copied.

	Without -copyts ffmpeg moves each input to start at zero; -itsoffset by the audio file's own start time (ffmpeg's
	'start:') puts its packets back where the encode placed them, priming and a late start included, so the muxer
	writes the same timestamps and edit lists as the mux that encodes."""
	arguments = ['-y'] + _video_input_arguments(video_path, spans)
	arguments += ['-itsoffset', '{:.6f}'.format(audio_start), '-i', str(audio_path)]
	side_inputs, side_outputs = side.arguments(2) if side is not None else ([], [])
	arguments += side_inputs + ['-map', '0:v:0', '-map', '1:a', '-c:v', 'copy', '-c:a', 'copy']
	arguments += _title_arguments(spans, output_path) + side_outputs
	arguments += encoders.container_arguments('', str(output_path))
	arguments.append(str(output_path))
	return arguments


def _video_input_arguments(video_path: Union[str, Path], spans: Sequence[AudioSpan]) -> List[str]:
	video_delay = spans[0].video_delay if spans else 0.0
	arguments = ['-itsoffset', '{:.6f}'.format(video_delay)] if video_delay > 0 else []
	return arguments + ['-i', str(video_path)]


def _audio_input_arguments(spans: Sequence[AudioSpan]) -> Tuple[List[str], float]:
	"""The audio input, and the time its filters count from: the input's seek point (0 without one)."""
	if not spans:
		return [], 0.0
	origin = 0.0
	arguments: List[str] = []
	if spans[0].start > SEEK_AFTER_SECONDS:
		origin = spans[0].start - SEEK_MARGIN_SECONDS
		arguments += ['-ss', '{:.6f}'.format(origin)]
	return arguments + ['-i', spans[0].path], origin


def _audio_encoding_arguments(spans: Sequence[AudioSpan], origin: float, output_path: Union[str, Path], encoder: str, quality: int, volume: int, audio_delay: float) -> List[str]:
	arguments = ['-c:a', encoder] + encoders.audio_encoder_arguments(encoder, quality, str(output_path))
	keeps_offsets = encoders.keeps_stream_offsets(str(output_path))
	for position, each in enumerate(spans):
		audio_filters = _audio_filters(each, origin, keeps_offsets, audio_delay, volume)
		arguments += ['-af' if len(spans) == 1 else '-filter:a:{}'.format(position), ','.join(audio_filters)]
	return arguments


def _title_arguments(spans: Sequence[AudioSpan], output_path: Union[str, Path]) -> List[str]:
	arguments: List[str] = []
	for position, each in enumerate(spans):
		if each.title and os.path.splitext(str(output_path))[1].lower() in MOV_EXTENSIONS:
			arguments += ['-metadata:s:a:{}'.format(position), 'handler_name={}'.format(each.title)]
	return arguments


def _audio_filters(span: AudioSpan, origin: float, keeps_offsets: bool, audio_delay: float, volume: int) -> List[str]:
	trim_start = span.start - origin
	lead_silence = max(span.audio_start, span.start) - span.shift + audio_delay
	if not keeps_offsets and lead_silence < 0:
		# the muxer plays the sound late (an encoder's priming that avi cannot flag): start that much later
		trim_start -= lead_silence
	trim = 'atrim=start={:.6f}'.format(trim_start)
	if span.end is not None:
		trim += ':end={:.6f}'.format(span.end - origin)
	if keeps_offsets:
		audio_filters = [trim, 'asetpts=PTS-{:.6f}/TB'.format(span.shift - origin - audio_delay)]
	else:
		# every stream starts at zero here (avi, mxf): the kept samples start the audio, after silence for as long
		# as they come after the first frame
		audio_filters = [trim, 'asetpts=PTS-STARTPTS']
		if lead_silence >= 0.0005:
			audio_filters.append('adelay={}:all=1'.format(int(round(lead_silence * 1000))))
	if volume != 100:
		audio_filters.append('volume={}'.format(round(volume / 100.0, 2)))
	return audio_filters


def mux_audio(video_path: Union[str, Path], span: Union[AudioSpan, Sequence[AudioSpan]], output_path: Union[str, Path], encoder: Optional[str], quality: int, volume: int, side: Optional[SideStreams] = None, ahead: Optional[AudioEncodedAhead] = None) -> Optional[str]:
	"""Mux once per encoder to try (the requested one, then the container default); returns the encoder that
	worked, or None after warning when the audio cannot go into the container. A write that fails (a full disk,
	an I/O error) raises ProcessingError instead: a video without its audio is not a result to keep silently.
	The output appears under output_path only on success.

	ahead: these spans' audio encoded while the frames were processed (audio_ahead.py); when it is there, the
	first mux only copies it, and a mux that fails that way is tried again encoding."""
	spans = [span] if isinstance(span, AudioSpan) else list(span)
	# the encoder was chosen (and any substitution warned about) when the audio was encoded ahead
	resolved = ahead.encoder if ahead is not None else encoders.resolve_audio_encoder(encoder, str(output_path))
	encoded = ahead.result(spans, resolved) if ahead is not None and spans else None
	attempts: List[Tuple[str, Optional[EncodedAudio]]] = ([(resolved, encoded)] if encoded is not None else []) + [(resolved, None)]
	fallback = encoders.default_audio_encoder(os.path.splitext(str(output_path))[1])
	if fallback != resolved and spans:
		attempts.append((fallback, None))
	reasons = []
	# the checks after a mux are separate ffmpeg runs that need not wait for each other: the silent video's packet
	# count runs alongside the mux, the output's header read alongside its packet count
	with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
		expected_count = pool.submit(_video_packet_count, Path(video_path))
		for attempt, copied in attempts:
			temp_path = temporary_path(output_path, 'audio')
			try:
				if copied is not None:
					command = build_copy_mux_command(video_path, spans, copied.path, copied.start_time, temp_path, side)
				else:
					command = build_mux_command(video_path, spans, temp_path, attempt, quality, volume, audio_timing.muxed_audio_delay(attempt, str(output_path)) if spans else 0.0, side)
				result = ffmpeg.run_ffmpeg(command, what='Adding audio', check=False)
				_raise_on_write_error(result.stderr, output_path)
				if result.returncode == 0:
					has_audio = pool.submit(_has_audio_stream, temp_path) if spans else None
					found = _video_packet_count(temp_path)
					if has_audio is None or has_audio.result():
						_check_complete(found, expected_count.result(), temp_path, output_path)
						_replace(temp_path, output_path)
						return attempt
				reasons.append('{}{}: {}'.format(attempt, ' (encoded ahead)' if copied is not None else '', ffmpeg.summarize_error(result.stderr, result.returncode)))
			finally:
				if temp_path.exists():
					temp_path.unlink()
				if copied is not None and copied.path.exists():
					# used once, whatever came of it: a retry encodes from the target
					copied.path.unlink()
	if spans:
		get_logger().warning('Restoring audio failed (%s); the output is written WITHOUT audio', '; '.join(reasons))
	else:
		get_logger().warning('Copying subtitles, chapters and tags failed (%s); the output is written without them', '; '.join(reasons))
	return None


def _raise_on_write_error(stderr: str, output_path: Union[str, Path]) -> None:
	for marker in WRITE_ERRORS:
		if marker.lower() in stderr.lower():
			raise ProcessingError('Writing {} failed: {}'.format(os.path.basename(str(output_path)), marker))


def _check_complete(found: int, expected: int, written: Path, output_path: Union[str, Path]) -> None:
	"""Raise unless the muxed file (found video packets) holds every video packet of the silent video (expected).
	ffmpeg 5.1 exits 0 without a word when the disk fills up (9.x reports it): the only sign is a file that stops early."""
	if found >= expected:
		return
	stats = os.statvfs(str(written.parent))
	reason = 'No space left on device' if stats.f_bavail * stats.f_frsize < FULL_DISK_BYTES else 'the file stops after {} of {} frames'.format(found, expected)
	raise ProcessingError('Writing {} failed: {}'.format(os.path.basename(str(output_path)), reason))


def _video_packet_count(path: Path) -> int:
	"""The frames of the first video stream that the file really holds: from an MP4 / MOV's own sample table (no
	ffmpeg start), else a stream copy to framecrc (demux only, one line per packet)."""
	tracks = isobmff.read_track_samples(str(path))
	video = next((track for track in tracks if track.handler == 'vide'), None) if tracks is not None else None
	if video is not None:
		return video.present
	result = ffmpeg.run_ffmpeg(['-i', str(path), '-map', '0:v:0', '-c', 'copy', '-f', 'framecrc', '-'], what='Checking {}'.format(path.name), check=False)
	return sum(1 for line in result.stdout.splitlines() if line and not line.startswith(b'#'))


def _replace(source: Path, destination: Path) -> None:
	try:
		os.replace(source, destination)
	except OSError as exception:
		raise ProcessingError('Writing {} failed: {}'.format(destination.name, exception.strerror or exception))


def _has_audio_stream(path: Path) -> bool:
	tracks = isobmff.read_track_samples(str(path))
	if tracks is not None:
		return any(track.handler == 'soun' and track.present > 0 for track in tracks)
	try:
		return read_header(str(path)).first('Audio') is not None
	except FaceFusionError:
		return False


def finalize_output(video_path: Union[str, Path], output_path: Union[str, Path], duration: float, target: Optional[VideoInfo] = None, trim_start: int = 0, source_paths: Sequence[str] = (), encoder: Optional[str] = None, quality: int = 80, volume: int = 100, trim_end: Optional[int] = None, audio_streams: str = 'all', ahead: Optional[AudioEncodedAhead] = None) -> AudioOutcome:
	"""Give the encoded silent video (a temporary file, e.g. VideoWriter.close()) its audio, the target's subtitles,
	chapters and tags, and move it to output_path. The silent file is consumed: after this call it is either the
	output or gone.

	duration is the video's length in seconds (VideoWriter.duration). The output made of frames
	[trim_start, trim_end) of target gets: all of the target's audio (every stream, or the first with
	audio_streams 'first'), its offsets kept, when that is every frame; the audio under those frames otherwise; an
	audio source from its start, cut to duration. A failed write raises ProcessingError and leaves nothing under
	output_path; audio that cannot be encoded into the container leaves the video without it (status 'failed').

	ahead: the target's audio encoded while the frames were processed (audio_ahead.start_audio_ahead); the mux
	copies it when it holds the spans decided here."""
	video_path, output_path = Path(ffmpeg.local_path(video_path)), Path(ffmpeg.local_path(output_path))
	try:
		spans: List[AudioSpan] = []
		status = 'no-audio'
		whole = target is not None and covers_whole_video(target, trim_start, trim_end, duration) and encoders.keeps_stream_offsets(str(output_path))
		audio_source = find_audio_source(source_paths)
		if volume <= 0:
			get_logger().info('Output audio volume is 0: writing the video without audio')
			status = 'muted'
		elif audio_source is not None:
			try:
				audio_info = probe_audio(audio_source)
			except FaceFusionError as exception:
				# the processed video is the valuable part: keep it, say loudly what is missing
				get_logger().warning('Replacing audio failed (%s); the output is written WITHOUT audio', exception.message)
				_finish_silent(video_path, output_path, target, trim_start, duration, whole, 0.0)
				return AudioOutcome(False, None, 'failed')
			spans = [AudioSpan(audio_source, audio_info.stream_index, audio_info.start_time, audio_info.start_time + duration, audio_info.start_time, 0.0, audio_info.start_time)]
			status = 'replaced'
		elif target is not None:
			spans = [span for span in target_audio_spans(target, trim_start, duration, whole, audio_streams) if span.duration is None or span.duration > 0]
			status = 'restored'
		if not spans:
			_finish_silent(video_path, output_path, target, trim_start, duration, whole, 0.0)
			return AudioOutcome(False, None, 'no-audio' if status != 'muted' else 'muted')
		# the target's clock against the output's: its frame trim_start plays at the first span's video_delay
		video_delay = spans[0].video_delay if status == 'restored' else 0.0
		with _side_streams(target, output_path, trim_start, duration, whole, video_delay) as side:
			used = mux_audio(video_path, spans, output_path, encoder, quality, volume, side, ahead if status == 'restored' else None)
		if used is None:
			_finish_silent(video_path, output_path, target, trim_start, duration, whole, 0.0)
			return AudioOutcome(False, None, 'failed')
		return AudioOutcome(True, used, status)
	finally:
		if video_path.exists() and video_path != output_path:
			video_path.unlink()


def _finish_silent(video_path: Path, output_path: Path, target: Optional[VideoInfo], trim_start: int, duration: float, whole: bool, video_delay: float) -> None:
	# no audio: the video gets the target's subtitles, chapters and tags all the same (a remux), or is moved as is
	with _side_streams(target, output_path, trim_start, duration, whole, video_delay) as side:
		if side is not None and not side.empty and mux_audio(video_path, [], output_path, None, 0, 100, side) is not None:
			return
	_replace(video_path, output_path)


@contextlib.contextmanager
def _side_streams(target: Optional[VideoInfo], output_path: Path, trim_start: int, duration: float, whole: bool, video_delay: float) -> Iterator[Optional[SideStreams]]:
	if target is None or target.header is None:
		yield None
		return
	with tempfile.TemporaryDirectory(prefix='facefusion-side-') as directory:
		video_time = target.frame_time(trim_start)
		end = None if whole else video_time + duration
		yield prepare_side_streams(target.header, str(output_path), directory, video_time - video_delay, video_time if not whole else -math.inf, end)
