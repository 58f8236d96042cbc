"""The target's audio encoded while the frames are processed, so that the mux after the last frame only copies it.

The mux that puts the target's audio under the processed video used to encode that audio after the last frame: a
tail of its own at the end of every run, about 0.1 s per 10 s of sound on one of these cores (7 s for a ten-minute
video, 9 % of such a run at 200 fps). Here the same encode (the same spans, filters, encoder and quality as
audio.build_mux_command) starts with the frames, in a process of its own at a lower priority, into a hidden file
beside the output in the output's container; the final mux copies both streams (audio.build_copy_mux_command) and
gives the same timestamps, edit lists and samples as the mux that encodes.

Only where the audio does not depend on how the run ends: the output holds every frame of the target (the whole
audio is kept, whatever the video's final duration), its container is MP4 / MOV (where copying the audio keeps its
priming and its start exactly: Matroska and others move it by the encoder's priming on some ffmpeg versions), the
audio is the target's own and not muted, and the encoder is one whose copy was checked to land exactly
(AHEAD_ENCODERS: AAC, the default, and MP3). Anything else, and any failure here, leaves the mux as it was.
"""
from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path
from typing import List, Optional, Sequence, Union

from facefusion import child_process
from facefusion.logger import get_logger
from facefusion.video import audio_timing, encoders, ffmpeg
from facefusion.video.audio import AudioSpan, EncodedAudio, build_audio_ahead_command, covers_whole_video, find_audio_source, target_audio_spans
from facefusion.video.io import temporary_path
from facefusion.video.probe import VideoInfo, read_header
from facefusion.video.side_streams import MOV_EXTENSIONS

# below the frames' processes: the encode fills what the pipeline leaves of the cores instead of competing with it
AHEAD_NICENESS = 10
# the encoders whose audio a copy puts exactly where the encoding mux does, in MP4 and MOV, with ffmpeg 5.1 and 9.0
# (opus is not among them: a copied opus track that starts after the first frame loses its pre-skip)
AHEAD_ENCODERS = ('aac', 'libmp3lame')


def plan_audio_spans(target: VideoInfo, output_path: Union[str, Path], trim_start: int, trim_end: Optional[int], source_paths: Sequence[str], volume: int, audio_streams: str) -> List[AudioSpan]:
	"""The spans finalize_output will mux, when they can be known before the run: every frame of the target into an
	MP4 / MOV with the target's own audio; else none."""
	if volume <= 0 or find_audio_source(source_paths) is not None or not target.has_audio:
		return []
	if os.path.splitext(str(output_path))[1].lower() not in MOV_EXTENSIONS:
		return []
	# finalize_output's own test of the whole target: then the spans do not depend on the duration
	if trim_end is None or not covers_whole_video(target, trim_start, trim_end, 0.0) or not encoders.keeps_stream_offsets(str(output_path)):
		return []
	spans = target_audio_spans(target, trim_start, 0.0, whole=True, streams=audio_streams)
	return [span for span in spans if span.duration is None or span.duration > 0]


class AudioAhead:
	"""One encode of the spans into a hidden file beside output_path, in a thread that waits for it and reads its
	start time. result() waits for it and gives the encoded audio, or None when it failed (the mux then encodes as
	before); discard() stops it and removes its file."""

	def __init__(self, spans: Sequence[AudioSpan], output_path: Union[str, Path], encoder: str, quality: int, volume: int) -> None:
		"""encoder: as encoders.resolve_audio_encoder chose it for the output."""
		self.spans = tuple(spans)
		self.output_path = str(output_path)
		self.encoder = encoder
		self.quality = quality
		self.volume = volume
		self.path = temporary_path(output_path, 'audio-ahead')
		self.process: Optional[subprocess.Popen] = None
		self.encoded: Optional[EncodedAudio] = None
		self.failure: Optional[str] = None
		self.lock = threading.Lock()
		self.stopped = False
		self.thread = threading.Thread(target=self.encode, name='audio-ahead', daemon=True)
		self.thread.start()

	def encode(self) -> None:
		try:
			delay = audio_timing.muxed_audio_delay(self.encoder, self.output_path)
			command = ffmpeg.base_command() + build_audio_ahead_command(self.spans, self.path, self.encoder, self.quality, self.volume, delay)
			with self.lock:
				if self.stopped:
					return
				get_logger().debug('ffmpeg (audio ahead): %s', ' '.join(command[1:]))
				self.process = child_process.popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
			lower_priority(self.process.pid)
			_, stderr = self.process.communicate()
			if self.process.returncode != 0:
				self.failure = ffmpeg.summarize_error(stderr.decode('utf-8', 'replace'), self.process.returncode)
				return
			header = read_header(str(self.path))
			if len(header.of_kind('Audio')) != len(self.spans):
				self.failure = 'the encoded file holds {} audio streams, not {}'.format(len(header.of_kind('Audio')), len(self.spans))
				return
			self.encoded = EncodedAudio(self.path, self.encoder, self.spans, header.start_time)
		except Exception as exception:
			# whatever it is, the mux encodes the audio itself; this thread must not end in a traceback
			self.failure = str(getattr(exception, 'message', None) or exception) or type(exception).__name__

	def result(self, spans: Sequence[AudioSpan], encoder: str) -> Optional[EncodedAudio]:
		"""The encoded audio, once the encode is done, if it holds these spans with this encoder; else None."""
		self.thread.join()
		if self.encoded is None:
			if self.failure is not None:
				get_logger().debug('audio encoded ahead failed (%s): the mux encodes it', self.failure)
			return None
		if tuple(spans) != self.spans or encoder != self.encoder:
			get_logger().debug('audio encoded ahead does not match the mux: the mux encodes it')
			return None
		return self.encoded

	def discard(self) -> None:
		"""Stop the encode if it still runs and remove its file (a no-op once the mux has used and removed it)."""
		with self.lock:
			self.stopped = True
			if self.process is not None and self.process.poll() is None:
				self.process.kill()
		self.thread.join()
		if self.path.exists():
			self.path.unlink()


def lower_priority(pid: int) -> None:
	try:
		os.setpriority(os.PRIO_PROCESS, pid, AHEAD_NICENESS)
	except (OSError, AttributeError):
		# gone already, or not a POSIX system: it runs at the normal priority
		pass


def start_audio_ahead(target: VideoInfo, output_path: Union[str, Path], trim_start: int, trim_end: Optional[int], source_paths: Sequence[str], encoder: Optional[str], quality: int, volume: int, audio_streams: str) -> Optional[AudioAhead]:
	"""An AudioAhead for the run, or None where the audio cannot be known before the run ends (plan_audio_spans)."""
	spans = plan_audio_spans(target, output_path, trim_start, trim_end, source_paths, volume, audio_streams)
	if not spans:
		return None
	# judged on the request first, so that a substitution is warned about once (the mux then takes this choice)
	requested = encoder or encoders.default_audio_encoder(os.path.splitext(str(output_path))[1])
	if requested not in AHEAD_ENCODERS:
		return None
	resolved = encoders.resolve_audio_encoder(encoder, str(output_path))
	if resolved not in AHEAD_ENCODERS:
		return None
	return AudioAhead(spans, output_path, resolved, quality, volume)
