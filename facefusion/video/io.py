"""Streaming video I/O: ffmpeg decodes into a rawvideo pipe, numpy frames come out; numpy frames go into a pipe,
ffmpeg encodes. No temp frame files (measured: 7-11x less overhead than temp PNGs).

VideoReader
	- frame-exact trim: seeks to the trim start frame's true presentation time (from the probe's packet scan, so it
	  is exact for variable-rate files too) and stops after the trim range, instead of decoding from frame 0
	  through a trim filter as 3.5.0 did;
	- ``-fps_mode passthrough`` (``-vsync`` is gone in ffmpeg 9): one output frame per decoded frame, none
	  duplicated or dropped, so ``Frame.index`` is the source frame number;
	- optional scale and fps conversion (for --output-video-scale / --output-video-fps and VFR sources);
	- rotation metadata applied by ffmpeg's autorotate, so frames arrive upright;
	- the YUV matrix and range chosen explicitly (tagged, or what players assume for untagged files) and handed to
	  the writer so a round trip does not shift colours (3.5.0 issue #415);
	- ``readinto`` straight into numpy buffers (no bytes object per frame);
	- a truncated or corrupt file ends in one ProcessingError line, not in a silently short video.

VideoWriter
	- encodes into a temporary name beside the output (``.<name>.<pid>.<token>.partial<ext>``); ``finalize()`` moves it
	  into place only when ffmpeg succeeded, ``abort()`` removes it, so a failed run never leaves a broken file
	  under the final name;
	- 3.5.0's quality / preset mappings (facefusion.video.encoders), yuv420p, BT.709 (or the reader's matrix) tags;
	- odd sizes: yuv420p needs even sizes, so one row / column is added by repeating the edge pixels (no content is
	  dropped, no resampling); a requested output scale is rounded to even instead.
"""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import IO, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from facefusion import child_process
from facefusion.errors import InputError, ProcessingError
from facefusion.logger import get_logger
from facefusion.partial_files import partial_media_name
from facefusion.types import Frame, VisionFrame
from facefusion.video import encoders, ffmpeg
from facefusion.video.probe import VideoInfo, probe_video, snap_frame_rate

# Linux lets an unprivileged process grow a pipe to 1 MiB (fs.pipe-max-size); fewer, larger transfers between
# ffmpeg and Python cost less per frame than the default 64 KiB
_PIPE_SIZE = 1 << 20
_F_SETPIPE_SZ = 1031
# tags written for each YUV matrix (colorspace, primaries, transfer)
COLOR_TAGS = {
	'bt709': ('bt709', 'bt709', 'bt709'),
	'bt601': ('smpte170m', 'smpte170m', 'smpte170m'),
	'smpte170m': ('smpte170m', 'smpte170m', 'smpte170m'),
	'bt470': ('bt470bg', 'bt470bg', 'smpte170m'),
	'bt2020': ('bt2020nc', 'bt2020', 'bt709'),
	'fcc': ('fcc', 'bt470m', 'bt709'),
	'smpte240m': ('smpte240m', 'smpte240m', 'smpte240m')
}
# swscale's fast defaults shift colours by a few levels on a 4:2:0 round trip (grey 128 came back as 126,126,124,
# a visible colour step against untouched video); exact rounding and full chroma interpolation keep it within ±1
_EXACT_COLOR_FLAGS = 'accurate_rnd+full_chroma_int+full_chroma_inp'
# at the video's own size the decoder repeats each chroma sample over its 2x2 pixels instead of interpolating it:
# the writer's conversion back to 4:2:0 then gives untouched pixels back at least as closely as bicubic interpolation did
# (1080p clip: 0.006 % of samples off by more than one level against 0.007 %), for about 40 % less decoder CPU, and
# it is the NVDEC route's conversion (video/nv12.py), so both decode routes hand the models the same pixels
_DECODE_COLOR_FLAGS = 'neighbor+' + _EXACT_COLOR_FLAGS


def _grow_pipe(stream: Optional[IO[bytes]]) -> None:
	if stream is None:
		return
	try:
		import fcntl
		fcntl.fcntl(stream.fileno(), _F_SETPIPE_SZ, _PIPE_SIZE)
	except (ImportError, OSError, ValueError):
		# not Linux, or capped lower by the system: the default size still works
		pass


def even(value: int) -> int:
	return value + (value % 2)


def fps_text(fps: Union[float, str, Fraction]) -> str:
	"""A frame rate as ffmpeg wants it, exact for NTSC rates ('30000/1001', not 29.97)."""
	if isinstance(fps, str):
		return fps
	rate = fps if isinstance(fps, Fraction) else snap_frame_rate(float(fps))
	return '{}/{}'.format(rate.numerator, rate.denominator)


@dataclass(frozen=True)
class ReadPlan:
	"""The decode command's trim / size / rate decisions, shared by the pipe reader and the temp-frame extractor."""
	input_arguments: List[str]
	output_arguments: List[str]
	video_filter: str
	first_index: int
	expected_frames: Optional[int]
	width: int
	height: int


def plan_read(info: VideoInfo, trim_start: Optional[int] = None, trim_end: Optional[int] = None, size: Optional[Tuple[int, int]] = None, fps: Optional[Union[float, str]] = None, color_matrix: Optional[str] = None) -> ReadPlan:
	start, end = restrict_trim(info, trim_start, trim_end)
	if end <= start:
		raise InputError('The trim range {}..{} selects no frame of {} ({} frames)'.format(start, end, os.path.basename(info.path), info.frame_count))
	input_arguments: List[str] = []
	output_arguments: List[str] = []
	if start > 0:
		# seek to half a frame before the wanted frame: ffmpeg's accurate seek decodes from the previous keyframe
		# and drops everything earlier, so float rounding can never drop the wanted frame or keep the one before
		seek_time = info.frame_time(start) - 0.5 * info.frame_duration(start - 1)
		input_arguments += ['-ss', '{:.6f}'.format(max(seek_time, 0.0))]
	filters: List[str] = []
	expected_frames: Optional[int] = end - start
	if fps is not None:
		if end < info.frame_count:
			input_arguments += ['-t', '{:.6f}'.format(info.frame_time(end) - info.frame_time(start))]
		filters.append('fps={}'.format(fps_text(fps)))
		span = info.frame_time(end) - info.frame_time(start)
		expected_frames = max(1, round(span * float(Fraction(fps_text(fps)))))
		output_arguments += ['-fps_mode', 'cfr']
	else:
		if end < info.frame_count:
			output_arguments += ['-frames:v', str(end - start)]
		output_arguments += ['-fps_mode', 'passthrough']
	width, height = info.display_size
	scale = 'scale='
	flags = _DECODE_COLOR_FLAGS
	if size is not None and tuple(size) != (width, height):
		width, height = int(size[0]), int(size[1])
		scale += '{}:{}:'.format(width, height)
		flags = 'bicubic+' + _EXACT_COLOR_FLAGS
	scale += 'flags={}:'.format(flags)
	# decode with an explicit matrix so ffmpeg versions agree and the writer can use the same one
	scale += 'in_color_matrix={}:in_range={}'.format(color_matrix or info.effective_color_matrix(), info.effective_color_range())
	filters.append(scale)
	return ReadPlan(input_arguments, output_arguments, ','.join(filters), start, expected_frames, width, height)


def restrict_trim(info: VideoInfo, trim_start: Optional[int], trim_end: Optional[int]) -> Tuple[int, int]:
	"""Clamp a trim range to [0, frame_count] as 3.5.0's restrict_trim_frame does; None means the video's edge."""
	start = 0 if trim_start is None else min(max(int(trim_start), 0), info.frame_count)
	end = info.frame_count if trim_end is None else min(max(int(trim_end), 0), info.frame_count)
	return start, end


class VideoReader:
	"""Frames of a video, in order, as ``Frame(index, pixels)`` with BGR uint8 pixels.

	Use as an iterator (``for frame in reader``) or call ``read()`` / ``readinto(buffer)``; close() (or the
	context manager) stops ffmpeg early. ``decoder_arguments`` go before ``-i`` (e.g. ``-hwaccel cuda`` from
	gpu_video_pipeline.select_decoder).
	"""

	def __init__(self, source: Union[str, Path, VideoInfo], trim_start: Optional[int] = None, trim_end: Optional[int] = None, size: Optional[Tuple[int, int]] = None, fps: Optional[Union[float, str]] = None, decoder_arguments: Sequence[str] = (), color_matrix: Optional[str] = None, threads: Optional[int] = None) -> None:
		self.info = source if isinstance(source, VideoInfo) else probe_video(str(source))
		self.plan = plan_read(self.info, trim_start, trim_end, size, fps, color_matrix)
		self.width = self.plan.width
		self.height = self.plan.height
		self.frame_shape = (self.height, self.width, 3)
		self.frame_size = self.height * self.width * 3
		self.first_index = self.plan.first_index
		self.expected_frames = self.plan.expected_frames
		# without fps conversion the count is exact, so falling short of it means the file is damaged
		self._exact_count = fps is None
		self.frames_read = 0
		self._decoder_arguments = list(decoder_arguments)
		self._threads = threads
		self._process: Optional[subprocess.Popen] = None
		self._stderr: Optional[ffmpeg.StderrCollector] = None
		self._finished = False

	@property
	def frame_count(self) -> int:
		"""Frames this reader is expected to deliver (exact without fps conversion)."""
		return self.expected_frames or 0

	def _command(self) -> List[str]:
		command = ffmpeg.base_command() + self._decoder_arguments + self.plan.input_arguments
		if self._threads:
			# before -i: the decoder's threads (an output -threads would only reach the rawvideo encoder), and the
			# filter graph's (the colour conversion)
			command += ['-threads', str(self._threads), '-filter_threads', str(self._threads)]
		command += ['-i', self.info.path, '-map', '0:{}'.format(self.info.video_stream_index), '-an', '-sn', '-dn']
		command += ['-vf', self.plan.video_filter] + self.plan.output_arguments
		command += ['-pix_fmt', 'bgr24', '-f', 'rawvideo', 'pipe:1']
		return command

	def _start(self) -> subprocess.Popen:
		if self._process is None:
			command = self._command()
			get_logger().debug('ffmpeg: %s', ' '.join(command[1:]))
			try:
				self._process = child_process.popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
			except OSError as exception:
				raise ProcessingError('Reading {} failed: ffmpeg could not be started ({})'.format(self.info.path, exception))
			_grow_pipe(self._process.stdout)
			self._stderr = ffmpeg.StderrCollector(self._process.stderr)
		return self._process

	def start(self) -> None:
		"""Start ffmpeg now rather than at the first read: its start-up then overlaps what the caller does before."""
		if not self._finished:
			self._start()

	def readinto(self, buffer: np.ndarray) -> bool:
		"""Fill ``buffer`` (H x W x 3 uint8, C-contiguous) with the next frame; False at the end of the video."""
		if self._finished:
			return False
		if buffer.shape != self.frame_shape or buffer.dtype != np.uint8 or not buffer.flags.c_contiguous:
			raise ValueError('readinto needs a C-contiguous uint8 buffer of shape {}'.format(self.frame_shape))
		process = self._start()
		view = memoryview(buffer).cast('B')
		filled = 0
		while filled < self.frame_size:
			count = process.stdout.readinto(view[filled:])
			if not count:
				break
			filled += count
		if filled == self.frame_size:
			self.frames_read += 1
			return True
		self._finish(partial_bytes=filled)
		return False

	def read(self) -> Optional[Frame]:
		"""The next frame in a new array, or None at the end."""
		pixels = np.empty(self.frame_shape, dtype=np.uint8)
		index = self.first_index + self.frames_read
		if self.readinto(pixels):
			return Frame(index, pixels)
		return None

	def __iter__(self) -> Iterator[Frame]:
		try:
			while True:
				frame = self.read()
				if frame is None:
					return
				yield frame
		finally:
			self.close()

	def _finish(self, partial_bytes: int) -> None:
		self._finished = True
		process = self._process
		if process is None:
			return
		returncode = process.wait()
		self._stderr.join()
		stderr = self._stderr.text()
		self._process = None
		name = os.path.basename(self.info.path)
		if returncode != 0:
			raise ProcessingError('Decoding {} failed after {} frames: {}'.format(name, self.frames_read, ffmpeg.summarize_error(stderr, returncode)))
		expected = self.expected_frames
		short = self._exact_count and expected is not None and self.frames_read < expected
		if short and (ffmpeg.has_error_lines(stderr) or partial_bytes):
			raise ProcessingError('{} is truncated or corrupt: decoding stopped after {} of {} frames ({})'.format(name, self.frames_read, expected, ffmpeg.summarize_error(stderr)))
		if short:
			get_logger().warning('%s delivered %d of %d expected frames', name, self.frames_read, expected)

	def close(self) -> None:
		"""Stop ffmpeg (when the consumer stops early) and release the pipes; safe to call twice."""
		self._finished = True
		process = self._process
		self._process = None
		if process is not None:
			if process.poll() is None:
				process.kill()
			process.wait()
			if self._stderr is not None:
				self._stderr.join()
		for stream in (process.stdout, process.stderr) if process is not None else ():
			if stream is not None:
				stream.close()

	def __enter__(self) -> 'VideoReader':
		return self

	def __exit__(self, *exception_info: object) -> None:
		self.close()


def read_video_frame(source: Union[str, VideoInfo], frame_index: int, size: Optional[Tuple[int, int]] = None) -> VisionFrame:
	"""One frame by number (e.g. --reference-frame-number), by seeking, without decoding the frames before it."""
	info = source if isinstance(source, VideoInfo) else probe_video(str(source))
	index = min(max(int(frame_index), 0), info.frame_count - 1)
	with VideoReader(info, trim_start=index, trim_end=index + 1, size=size) as reader:
		frame = reader.read()
	if frame is None:
		raise ProcessingError('Frame {} of {} could not be read'.format(index, os.path.basename(info.path)))
	return frame.pixels


def temporary_path(output_path: Union[str, Path], label: str = 'partial') -> Path:
	"""A unique hidden name beside the output that keeps its extension (ffmpeg picks the muxer by extension) and
	names this process, so a later run can tell a killed run's leftover from a live run's file."""
	return partial_media_name(output_path, label)


def build_encode_filter(width: int, height: int, encoder: str, output_size: Optional[Tuple[int, int]] = None, color_matrix: str = 'bt709', output_fps: Optional[Union[float, str]] = None, pixel_format: Optional[str] = None) -> Tuple[str, Tuple[int, int]]:
	"""The -vf chain from BGR input to what the encoder takes, and the encoded size.

	4:2:0 needs even sizes: an odd frame gets one more row / column copied from its edge (pad + fillborders
	smear), so no pixel is lost or resampled; a requested output size (a scale) is rounded up to even instead.
	output_fps re-times the frames (duplicating or dropping) when the output rate differs from the input's."""
	pixel_format = pixel_format or encoders.video_pixel_format(encoder)
	# chroma subsampled in both directions (4:2:0) or across (4:2:2) takes even sizes only
	needs_even = pixel_format == 'nv12' or pixel_format.startswith(('yuv420p', 'yuv422p'))
	filters: List[str] = []
	if output_fps is not None:
		filters.append('fps={}'.format(fps_text(output_fps)))
	target_width, target_height = width, height
	if output_size is not None and tuple(output_size) != (width, height):
		target_width, target_height = int(output_size[0]), int(output_size[1])
		if needs_even:
			target_width, target_height = even(target_width), even(target_height)
		filters.append('scale={}:{}:flags=bicubic'.format(target_width, target_height))
	elif needs_even and (width % 2 or height % 2):
		target_width, target_height = even(width), even(height)
		filters.append('pad={}:{}:0:0'.format(target_width, target_height))
		filters.append('fillborders=right={}:bottom={}:mode=smear'.format(target_width - width, target_height - height))
	if pixel_format == 'nv12' or pixel_format.startswith('yuv'):
		colorspace, primaries, transfer = COLOR_TAGS.get(color_matrix, COLOR_TAGS['bt709'])
		filters.append('scale=out_color_matrix={}:out_range=tv:flags={}'.format(color_matrix, _EXACT_COLOR_FLAGS))
		filters.append('format={}'.format(pixel_format))
		# tag what we encoded so players do not guess (untagged HD is guessed BT.709, SD BT.601)
		filters.append('setparams=range=tv:colorspace={}:color_primaries={}:color_trc={}'.format(colorspace, primaries, transfer))
	else:
		filters.append('format={}'.format(pixel_format))
	return ','.join(filters), (target_width, target_height)


@dataclass(frozen=True)
class VideoGeometry:
	"""Sizes and rates of a video run, following 3.5.0's --output-video-scale / --output-video-fps rules but
	without its waste: shrinking and dropping frames happen at decode (fewer pixels and frames to process),
	enlarging and adding frames at encode (3.5.0 also deferred upscaling to the merge)."""
	# VideoReader(size=, fps=): None keeps the target's own
	decode_size: Optional[Tuple[int, int]]
	decode_fps: Optional[str]
	# what travels through the pipeline: the writer's width / height / fps
	frame_size: Tuple[int, int]
	frame_fps: str
	# VideoWriter(output_size=, output_fps=): None keeps frame_size / frame_fps
	output_size: Optional[Tuple[int, int]]
	output_fps: Optional[str]


def plan_video_geometry(info: VideoInfo, output_video_scale: float = 1.0, output_video_fps: Optional[float] = None) -> VideoGeometry:
	native = info.display_size
	decode_size: Optional[Tuple[int, int]] = None
	output_size: Optional[Tuple[int, int]] = None
	frame_size = native
	if output_video_scale and output_video_scale != 1.0:
		# each side scaled and rounded to an even number, as 3.5.0 does
		requested = (max(2, int(round(native[0] * output_video_scale / 2.0)) * 2), max(2, int(round(native[1] * output_video_scale / 2.0)) * 2))
		if requested < native:
			decode_size = frame_size = requested
		elif requested != native:
			output_size = requested
	decode_fps: Optional[str] = None
	frame_fps = info.fps_fraction
	output_fps: Optional[str] = None
	if info.is_vfr:
		# a variable-rate target becomes constant-rate at its base rate: frames keep their time, audio stays in sync
		decode_fps = info.fps_fraction
	if output_video_fps:
		# 3.5.0 clamps an explicit rate to 1..60
		wanted = fps_text(min(max(float(output_video_fps), 1.0), 60.0))
		if float(Fraction(wanted)) < info.fps:
			decode_fps = frame_fps = wanted
		elif float(Fraction(wanted)) > info.fps:
			output_fps = wanted
	return VideoGeometry(decode_size, decode_fps, frame_size, frame_fps, output_size, output_fps)


def build_encode_arguments(encoder: str, quality: int, preset: str, output_path: Union[str, Path], pixel_format: Optional[str] = None) -> List[str]:
	"""Codec, quality, preset and container flags after the -vf chain (shared with the temp-frame merge)."""
	arguments = ['-c:v', encoder] + encoders.video_encoder_arguments(encoder, quality, preset)
	arguments += ['-pix_fmt', pixel_format or encoders.video_pixel_format(encoder)]
	arguments += encoders.container_arguments(encoder, str(output_path))
	return arguments


def choose_pixel_format(encoder: str, source_pix_fmt: Optional[str]) -> str:
	"""The output's pixel format for a target of source_pix_fmt; says once (per output) what is reduced."""
	pixel_format, note = encoders.output_pixel_format(encoder, source_pix_fmt)
	if note is not None:
		get_logger().warning('Target is %s: %s', source_pix_fmt, note)
	return pixel_format


class VideoWriter:
	"""BGR frames in, an encoded video out, under its final name only after ``finalize()``.

	``encoder`` is used as given (resolve it first with encoders.resolve_video_encoder or
	gpu_video_pipeline.select_encoder); None picks the default for the container. ``source_pix_fmt`` (the target's
	pixel format) keeps a 4:4:4 or 10-bit target so where the encoder can (encoders.output_pixel_format).
	"""

	def __init__(self, output_path: Union[str, Path], width: int, height: int, fps: Union[float, str, Fraction], encoder: Optional[str] = None, quality: int = 80, preset: str = 'veryfast', output_size: Optional[Tuple[int, int]] = None, color_matrix: str = 'bt709', threads: Optional[int] = None, extra_arguments: Sequence[str] = (), output_fps: Optional[Union[float, str]] = None, source_pix_fmt: Optional[str] = None) -> None:
		self.output_path = Path(ffmpeg.local_path(output_path))
		if not self.output_path.parent.is_dir():
			raise InputError('The output directory {} does not exist'.format(self.output_path.parent))
		self.width = int(width)
		self.height = int(height)
		self.fps = fps_text(fps)
		self.encoder = encoder or encoders.resolve_video_encoder(None, str(self.output_path))
		self.quality = quality
		self.preset = preset
		self.frame_shape = (self.height, self.width, 3)
		self.frames_written = 0
		self.temp_path = temporary_path(self.output_path)
		self.pixel_format = choose_pixel_format(self.encoder, source_pix_fmt)
		video_filter, self.encoded_size = build_encode_filter(self.width, self.height, self.encoder, output_size, color_matrix, output_fps, self.pixel_format)
		if self.encoded_size != (self.width, self.height) and output_size is None:
			get_logger().info('Encoding %dx%d as %dx%d: %s needs even sizes, the edge row / column is repeated', self.width, self.height, self.encoded_size[0], self.encoded_size[1], self.pixel_format)
		command = ffmpeg.base_command()
		if threads:
			# the colour conversion's slice threads too (a global option), not only the encoder's
			command += ['-filter_threads', str(threads)]
		command += ['-y', '-f', 'rawvideo', '-pix_fmt', 'bgr24', '-s', '{}x{}'.format(self.width, self.height), '-r', self.fps, '-i', 'pipe:0']
		command += ['-map', '0:v:0', '-an', '-vf', video_filter]
		if threads:
			command += ['-threads', str(threads)]
		command += build_encode_arguments(self.encoder, quality, preset, self.output_path, self.pixel_format) + list(extra_arguments)
		command.append(str(self.temp_path))
		self._command = command
		self._process: Optional[subprocess.Popen] = None
		self._stderr: Optional[ffmpeg.StderrCollector] = None
		self._state = 'open'

	@property
	def duration(self) -> float:
		"""Seconds of video written so far (frames / fps)."""
		return self.frames_written / float(Fraction(self.fps))

	def _start(self) -> subprocess.Popen:
		if self._process is None:
			get_logger().debug('ffmpeg: %s', ' '.join(self._command[1:]))
			try:
				self._process = child_process.popen(self._command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, bufsize=0)
			except OSError as exception:
				raise ProcessingError('Encoding {} failed: ffmpeg could not be started ({})'.format(self.output_path.name, exception))
			_grow_pipe(self._process.stdin)
			self._stderr = ffmpeg.StderrCollector(self._process.stderr)
		return self._process

	def start(self) -> None:
		"""Start ffmpeg now rather than at the first frame: its start-up (0.1 s with a distribution's ffmpeg) then
		overlaps whatever comes before that frame."""
		if self._state == 'open':
			self._start()

	def write(self, pixels: VisionFrame) -> None:
		if self._state != 'open':
			raise ProcessingError('Writing to {} after it was {}'.format(self.output_path.name, self._state))
		if pixels.shape != self.frame_shape or pixels.dtype != np.uint8:
			raise ValueError('VideoWriter for {}x{} got a frame of shape {} {}'.format(self.width, self.height, pixels.shape, pixels.dtype))
		process = self._start()
		data = memoryview(np.ascontiguousarray(pixels)).cast('B')
		try:
			# a raw pipe write may be partial when the pipe is full; loop until the whole frame is in
			written = 0
			while written < len(data):
				written += process.stdin.write(data[written:])
		except (BrokenPipeError, OSError):
			self._fail('Encoding {} failed at frame {}'.format(self.output_path.name, self.frames_written))
		self.frames_written += 1

	def write_frame(self, frame: Frame) -> None:
		self.write(frame.pixels)

	def _fail(self, message: str) -> None:
		process = self._process
		returncode = process.wait() if process is not None else None
		if self._stderr is not None:
			self._stderr.join()
		reason = ffmpeg.summarize_error(self._stderr.text() if self._stderr else '', returncode)
		self.abort()
		raise ProcessingError('{}: {}'.format(message, reason))

	def close(self) -> Path:
		"""Finish encoding and return the temporary file (for the audio step); the final name is still untouched."""
		if self._state == 'closed':
			return self.temp_path
		if self._state != 'open':
			raise ProcessingError('{} was already {}'.format(self.output_path.name, self._state))
		if self.frames_written == 0:
			self.abort()
			raise ProcessingError('No frames were written to {}'.format(self.output_path.name))
		process = self._process
		try:
			process.stdin.close()
		except (BrokenPipeError, OSError):
			pass
		returncode = process.wait()
		self._stderr.join()
		if returncode != 0 or not self.temp_path.is_file() or self.temp_path.stat().st_size == 0:
			self._fail('Encoding {} failed'.format(self.output_path.name))
		self._state = 'closed'
		return self.temp_path

	def finalize(self) -> Path:
		"""Finish encoding and move the video to its final name (replacing an older file there)."""
		temp_path = self.close()
		os.replace(temp_path, self.output_path)
		self._state = 'finalized'
		return self.output_path

	def abort(self) -> None:
		"""Stop ffmpeg and remove the temporary file; the final name is never touched. Safe to call twice."""
		process = self._process
		self._process = None
		if process is not None:
			if process.poll() is None:
				process.kill()
			process.wait()
			for stream in (process.stdin, process.stderr):
				try:
					if stream is not None:
						stream.close()
				except OSError:
					pass
		if self._stderr is not None:
			self._stderr.join()
		if self._state != 'finalized':
			try:
				self.temp_path.unlink()
			except FileNotFoundError:
				pass
			self._state = 'aborted'

	def __enter__(self) -> 'VideoWriter':
		return self

	def __exit__(self, exception_type: Optional[type], exception: Optional[BaseException], traceback: object) -> None:
		# an exception (or Ctrl-C) inside the block must not leave a half-written file anywhere
		if exception_type is not None:
			self.abort()
		elif self._state == 'open':
			self.finalize()
