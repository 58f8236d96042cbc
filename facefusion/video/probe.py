"""What a video file holds, read with ffmpeg alone (no ffprobe: the bundled ffmpeg comes without it).

One ffmpeg run, cheap, gives both parts (scan_with_header); beside it, a short decode per audio track finds where
its sound starts (the first track's from the start, the others' as soon as the header names them):

1. The header ffmpeg prints for its input, as ``ffmpeg -i <file>`` shows it: container duration and start, and per
   stream the codec, pixel format, colour tags, size, frame rate, rotation (display matrix), audio sample rate and
   channels. The run logs at ``level+info``, so the header's lines and the error lines are told apart by their tags.
2. A stream-copy pass (``-c copy -f framecrc``, demux only, no decoding: about 1 s per GB) lists every video
   packet and the audio packets with their exact timestamps. From it come the exact frame count, the true
   presentation time of every frame (used to seek to a trim start frame-exactly, also in VFR files), the exact
   frame rate, whether the rate is variable, and the start times of the video and audio streams, which 3.5.0
   ignored and so shifted or cut the audio. In MP4 / MOV files a stream ends where its edit list says (isobmff),
   which ffmpeg versions do not all carry into the packets.

Where that run prints no header (an unreadable file) or maps other streams than the header's first ones, the two
parts are read by two runs as before (read_header, scan_packets), and read_header's error is what the user sees.

Nothing here depends on how a version words its log: the header is read only for what every version prints alike
(the display matrix's 'rotation of X degrees' has the same sign in 5.1, 7.0 and 9.0, whether labelled 'displaymatrix'
or 'Display Matrix'), and times come from framecrc lines and the file's own boxes.

A file whose packets stop far short of what its header promises (a truncated download) raises InputError here,
before any work, instead of producing half a video.
"""
from __future__ import annotations

import array
import concurrent.futures
import dataclasses
import math
import os
import re
import subprocess
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Tuple, Union

from facefusion import child_process
from facefusion.errors import InputError
from facefusion.logger import get_logger
from facefusion.video import ffmpeg, isobmff

if TYPE_CHECKING:
	import numpy as np

# frame rates that real footage uses: a measured rate within 0.2 % of one of these is taken to be it
COMMON_FRAME_RATES: Tuple[Fraction, ...] = (
	Fraction(24000, 1001), Fraction(24), Fraction(25), Fraction(30000, 1001), Fraction(30), Fraction(48000, 1001),
	Fraction(48), Fraction(50), Fraction(60000, 1001), Fraction(60), Fraction(100), Fraction(120000, 1001),
	Fraction(120), Fraction(15), Fraction(12), Fraction(10), Fraction(5)
)
# names ffmpeg prints for a colour matrix -> names the scale filter's in/out_color_matrix accepts
SCALE_COLOR_MATRICES: Dict[str, str] = {
	'bt709': 'bt709', 'bt470bg': 'bt470', 'smpte170m': 'smpte170m', 'bt601': 'bt601', 'fcc': 'fcc',
	'smpte240m': 'smpte240m', 'bt2020nc': 'bt2020', 'bt2020c': 'bt2020'
}
_DISCARD_FLAG = 0x4
_NOPTS = -(2 ** 63)


@dataclass(frozen=True)
class StreamHeader:
	"""One stream as the ``ffmpeg -i`` header describes it."""
	index: int
	kind: str
	codec: str
	details: List[str]
	side_lines: List[str]
	start_time: Optional[float] = None
	attached_picture: bool = False
	# the ISO 639 code ffmpeg prints after the index ('Stream #0:1(eng)'), None when untagged ('und' too)
	language: Optional[str] = None

	@property
	def tags(self) -> Dict[str, str]:
		return _metadata_lines(self.side_lines)

	@property
	def title(self) -> Optional[str]:
		return self.tags.get('title')


@dataclass(frozen=True)
class Chapter:
	"""One chapter: seconds from the container start, as ffmpeg counts without -copyts."""
	start: float
	end: float
	title: Optional[str] = None


@dataclass(frozen=True)
class MediaHeader:
	path: str
	format_name: str
	duration: Optional[float]
	start_time: float
	streams: List[StreamHeader]
	# the container's own tags (title, creation_time, ...) and its chapters
	metadata: Dict[str, str] = field(default_factory=dict)
	chapters: List[Chapter] = field(default_factory=list)

	def of_kind(self, kind: str) -> List[StreamHeader]:
		return [stream for stream in self.streams if stream.kind == kind and not stream.attached_picture]

	def first(self, kind: str) -> Optional[StreamHeader]:
		for stream in self.streams:
			if stream.kind == kind and not stream.attached_picture:
				return stream
		return None


@dataclass(frozen=True)
class AudioInfo:
	path: str
	stream_index: int
	codec: str
	sample_rate: int
	channels: str
	duration: Optional[float]
	start_time: float


@dataclass(frozen=True)
class AudioStreamInfo:
	"""One of a video's audio streams: when its first sample plays (seconds from the container start) and, where
	the packet scan measured it (the first stream), how long it lasts."""
	index: int
	start_time: float
	duration: Optional[float] = None
	language: Optional[str] = None
	title: Optional[str] = None


@dataclass(frozen=True)
class VideoInfo:
	"""A video file's facts. Times are in seconds relative to the container start (what ffmpeg's input ``-ss``
	counts from); ``width`` / ``height`` are the stored size, ``display_width`` / ``display_height`` the size after
	the rotation players (and our reader, via ffmpeg's autorotate) apply."""
	path: str
	format_name: str
	width: int
	height: int
	fps: float
	fps_fraction: str
	frame_count: int
	duration: float
	codec: str
	pix_fmt: str
	video_stream_index: int
	# clockwise degrees a player turns the stored picture (0, 90, 180, 270): the classic 'rotate' tag; a phone's
	# portrait clip is 90. ffmpeg's display matrix prints the opposite sign ('rotation of -90.00 degrees').
	rotation: int = 0
	# presentation time of the first frame and of the audio stream's first sample
	video_start_time: float = 0.0
	has_audio: bool = False
	audio_stream_index: Optional[int] = None
	audio_codec: Optional[str] = None
	audio_sample_rate: Optional[int] = None
	audio_channels: Optional[str] = None
	audio_start_time: Optional[float] = None
	audio_duration: Optional[float] = None
	container_start_time: float = 0.0
	is_vfr: bool = False
	# how frame_count was found: 'packets' (exact, stream copy), 'decoded' (exact, full decode) or 'estimated'
	frame_count_source: str = 'packets'
	color_range: Optional[str] = None
	color_matrix: Optional[str] = None
	# presentation time of every frame in display order (seconds from the container start); None when estimated
	frame_times: Optional[np.ndarray] = field(default=None, compare=False, repr=False)
	# every audio stream in file order, the first one being audio_stream_index (empty without audio)
	audio_streams: Tuple[AudioStreamInfo, ...] = ()
	# the parsed header: subtitle streams, chapters and container tags for the output
	header: Optional[MediaHeader] = field(default=None, compare=False, repr=False)

	@property
	def display_width(self) -> int:
		return self.height if self.rotation in (90, 270) else self.width

	@property
	def display_height(self) -> int:
		return self.width if self.rotation in (90, 270) else self.height

	@property
	def display_size(self) -> Tuple[int, int]:
		return self.display_width, self.display_height

	@property
	def average_fps(self) -> float:
		"""Frames per second of playing time; differs from fps (the base rate) only for variable-rate files."""
		return self.frame_count / self.duration if self.duration > 0 else self.fps

	@property
	def media_duration(self) -> float:
		"""Seconds from the container start to the end of the stream that ends last: what a player shows as the
		file's length (the video's duration plus any audio before or after it)."""
		end = self.video_start_time + self.duration
		if self.audio_start_time is not None and self.audio_duration is not None:
			end = max(end, self.audio_start_time + self.audio_duration)
		return end - min(0.0, self.video_start_time, self.audio_start_time or 0.0)

	@property
	def audio_start_offset(self) -> Optional[float]:
		"""Audio start minus video start: negative when the audio begins before the first frame."""
		if self.audio_start_time is None:
			return None
		return self.audio_start_time - self.video_start_time

	def frame_time(self, frame_index: int) -> float:
		"""Presentation time of a frame (seconds from the container start); the end of the video for
		frame_index == frame_count, so [frame_time(s), frame_time(e)) is the span of frames s .. e - 1."""
		if self.frame_times is not None and len(self.frame_times) == self.frame_count:
			if frame_index < self.frame_count:
				return float(self.frame_times[max(frame_index, 0)])
			return self.video_start_time + self.duration
		return self.video_start_time + min(max(frame_index, 0), self.frame_count) / self.fps

	def frame_duration(self, frame_index: int) -> float:
		return self.frame_time(frame_index + 1) - self.frame_time(frame_index)

	def effective_color_matrix(self) -> str:
		"""The YUV matrix to convert with (scale-filter spelling). Untagged files get what players assume: BT.709
		for HD, BT.601 below it."""
		if self.color_matrix and self.color_matrix in SCALE_COLOR_MATRICES:
			return SCALE_COLOR_MATRICES[self.color_matrix]
		return 'bt709' if self.height >= 720 or self.width >= 1280 else 'bt601'

	def effective_color_range(self) -> str:
		"""'tv' (limited) unless the file says full range (or uses a yuvj* format, which means full range)."""
		if self.color_range == 'pc' or self.pix_fmt.startswith('yuvj'):
			return 'pc'
		return 'tv'


def read_header(path: str) -> MediaHeader:
	"""Parse the ``ffmpeg -i`` header. Raises InputError for a missing or unreadable file."""
	if not os.path.isfile(path):
		raise InputError('{} does not exist or is not a file'.format(path))
	# ffmpeg exits 1 ('At least one output file must be specified') even when the header was read
	result = ffmpeg.run_ffmpeg(['-i', ffmpeg.local_path(path)], what='Reading {}'.format(os.path.basename(path)), quiet=False, check=False)
	return parse_header(result.stderr, path)


def parse_header(text: str, path: str) -> MediaHeader:
	lines = text.splitlines()
	input_line = next((line for line in lines if line.startswith('Input #0')), None)
	if input_line is None:
		raise InputError('{} is not a readable media file: {}'.format(os.path.basename(path), ffmpeg.summarize_error(text)))
	format_match = re.match(r'Input #0, (.+?), from ', input_line)
	format_name = format_match.group(1) if format_match else ''
	duration = None
	container_start = 0.0
	streams: List[StreamHeader] = []
	position = 0
	while position < len(lines):
		line = lines[position]
		duration_match = re.match(r'\s*Duration: (\S+?), start: (-?[\d.]+)', line) or re.match(r'\s*Duration: (\S+?),', line)
		if duration_match and not streams:
			duration = _parse_clock(duration_match.group(1))
			if duration_match.lastindex and duration_match.lastindex >= 2:
				container_start = float(duration_match.group(2))
		stream_match = re.match(r'\s*Stream #0:(\d+)(?:\[[^\]]*\])?(?:\(([^)]*)\))?: (\w+): (.*)$', line)
		if stream_match:
			indent = len(line) - len(line.lstrip())
			side_lines = []
			position += 1
			while position < len(lines) and (len(lines[position]) - len(lines[position].lstrip())) > indent and 'Stream #' not in lines[position]:
				side_lines.append(lines[position].strip())
				position += 1
			stream = _parse_stream(int(stream_match.group(1)), stream_match.group(3), stream_match.group(4), side_lines)
			language = stream_match.group(2)
			streams.append(dataclasses.replace(stream, language=language) if language and language != 'und' else stream)
			continue
		position += 1
	metadata = _metadata_lines(_block_after(lines, 'Input #0', 'Duration:'))
	return MediaHeader(path, format_name, duration, container_start, streams, metadata, _parse_chapters(lines, container_start))


def _block_after(lines: List[str], start: str, stop: str) -> List[str]:
	# the lines from the one starting with `start` up to the first holding `stop`
	block: List[str] = []
	inside = False
	for line in lines:
		if line.startswith(start):
			inside = True
			continue
		if inside and stop in line:
			break
		if inside:
			block.append(line.strip())
	return block


def _metadata_lines(lines: List[str]) -> Dict[str, str]:
	"""'key : value' lines of the first 'Metadata:' block (keys lower-cased: Matroska writes TITLE or title)."""
	values: Dict[str, str] = {}
	inside = False
	for line in lines:
		line = line.strip()
		if line == 'Metadata:':
			if inside:
				break
			inside = True
			continue
		match = re.match(r'([\w:.\-]+)\s*: (.*)$', line)
		if inside and match:
			values.setdefault(match.group(1).lower(), match.group(2))
		elif inside:
			break
	return values


def _parse_chapters(lines: List[str], container_start: float) -> List[Chapter]:
	chapters: List[Chapter] = []
	for position, line in enumerate(lines):
		match = re.match(r'\s*Chapter #0:\d+: start (-?[\d.]+), end (-?[\d.]+)', line)
		if match:
			following = [text.strip() for text in lines[position + 1:position + 4]]
			title = _metadata_lines(following).get('title') if following and following[0] == 'Metadata:' else None
			chapters.append(Chapter(float(match.group(1)) - container_start, float(match.group(2)) - container_start, title))
	return chapters


def _parse_stream(index: int, kind: str, rest: str, side_lines: List[str]) -> StreamHeader:
	details = _split_top_level(rest)
	codec = details[0].split()[0] if details and details[0] else 'unknown'
	start_time = None
	for detail in details:
		start_match = re.match(r'start (-?[\d.]+)', detail)
		if start_match:
			start_time = float(start_match.group(1))
	attached = '(attached pic)' in rest
	return StreamHeader(index, kind, codec, details, side_lines, start_time, attached)


def _split_top_level(text: str) -> List[str]:
	# 'yuv420p(tv, bt709, progressive)' holds commas that do not separate the stream's fields
	parts, depth, current = [], 0, ''
	for character in text:
		if character in '([':
			depth += 1
		elif character in ')]':
			depth -= 1
		if character == ',' and depth == 0:
			parts.append(current.strip())
			current = ''
			continue
		current += character
	if current.strip():
		parts.append(current.strip())
	return parts


def _parse_clock(text: str) -> Optional[float]:
	match = re.match(r'(\d+):(\d+):([\d.]+)', text)
	if not match:
		return None
	return int(match.group(1)) * 3600 + int(match.group(2)) * 60 + float(match.group(3))


def _parse_rate(text: str) -> Optional[float]:
	match = re.match(r'([\d.]+)(k?)$', text)
	if not match:
		return None
	value = float(match.group(1)) * (1000 if match.group(2) else 1)
	return value if value > 0 else None


@dataclass
class PacketScan:
	"""What the stream-copy pass saw."""
	video_pts: np.ndarray
	video_time_base: Fraction
	video_end: Optional[float]
	audio_start: Optional[float]
	audio_end: Optional[float]
	stderr: str
	returncode: int
	# when the last audio packet starts: a container's own end of the stream must lie after it
	audio_last: Optional[float] = None


class PacketTally:
	"""The framecrc lines of a stream-copy pass, counted as they come: output stream 0 is the video, 1 the audio."""

	def __init__(self) -> None:
		self.time_bases: Dict[int, Fraction] = {}
		self.video_pts = array.array('q')
		self.video_end_ticks: Optional[int] = None
		self.audio_start_ticks: Optional[int] = None
		self.audio_end_ticks: Optional[int] = None
		self.audio_last_ticks: Optional[int] = None

	def add(self, raw_line: bytes) -> None:
		if raw_line.startswith(b'#'):
			time_base_match = re.match(rb'#tb (\d+): (\d+)/(\d+)', raw_line)
			if time_base_match:
				self.time_bases[int(time_base_match.group(1))] = Fraction(int(time_base_match.group(2)), int(time_base_match.group(3)))
			return
		fields = raw_line.split(b',')
		if len(fields) < 6:
			return
		stream, pts, duration = int(fields[0]), int(fields[2]), int(fields[3])
		flags = 1
		for extra in fields[6:]:
			extra = extra.strip()
			if extra.startswith(b'F=0x'):
				flags = int(extra[4:], 16)
		if pts == _NOPTS or flags & _DISCARD_FLAG:
			return
		if stream == 0:
			self.video_pts.append(pts)
			self.video_end_ticks = pts + duration if self.video_end_ticks is None else max(self.video_end_ticks, pts + duration)
		else:
			self.audio_start_ticks = pts if self.audio_start_ticks is None else min(self.audio_start_ticks, pts)
			self.audio_end_ticks = pts + duration if self.audio_end_ticks is None else max(self.audio_end_ticks, pts + duration)
			self.audio_last_ticks = pts if self.audio_last_ticks is None else max(self.audio_last_ticks, pts)

	def scan(self, stderr: str, returncode: int) -> PacketScan:
		# numpy only now: the probe starts before the engine's imports are done, and its first ffmpeg need not wait
		import numpy as np
		video_time_base = self.time_bases.get(0, Fraction(1, 1000))
		audio_time_base = self.time_bases.get(1, Fraction(1, 1000))
		return PacketScan(
			video_pts=np.sort(np.frombuffer(self.video_pts, dtype=np.int64)) if self.video_pts else np.zeros(0, dtype=np.int64),
			video_time_base=video_time_base,
			video_end=float(self.video_end_ticks * video_time_base) if self.video_end_ticks is not None else None,
			audio_start=float(self.audio_start_ticks * audio_time_base) if self.audio_start_ticks is not None else None,
			audio_end=float(self.audio_end_ticks * audio_time_base) if self.audio_end_ticks is not None else None,
			stderr=stderr,
			returncode=returncode,
			audio_last=float(self.audio_last_ticks * audio_time_base) if self.audio_last_ticks is not None else None
		)


def scan_packets(path: str, video_index: int, audio_index: Optional[int]) -> PacketScan:
	"""List packet timestamps with a stream copy to framecrc (demux only). Timestamps stay the file's own (-copyts)."""
	arguments = ffmpeg.base_command() + ['-copyts', '-i', path, '-map', '0:{}'.format(video_index)]
	if audio_index is not None:
		arguments += ['-map', '0:{}'.format(audio_index)]
	arguments += ['-c', 'copy', '-f', 'framecrc', '-']
	process = child_process.popen(arguments, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
	collector = ffmpeg.StderrCollector(process.stderr)
	tally = PacketTally()
	for raw_line in process.stdout:
		tally.add(raw_line)
	process.wait()
	collector.join()
	return tally.scan(collector.text(), process.returncode)


class HeaderLog(ffmpeg.StderrCollector):
	"""Drains the stderr of a run at -loglevel level+info: the input's header as ``ffmpeg -i`` prints it (every line
	up to the output's), handed to on_header as soon as it is whole; the input stream behind each output stream; and
	the error lines (text()), as a run at -loglevel error prints them."""

	def __init__(self, stream: object, path: str, on_header: Callable[[MediaHeader], None]) -> None:
		self.path = path
		self.on_header = on_header
		self.header_lines: List[str] = []
		self.header: Optional[MediaHeader] = None
		self.header_done = False
		# output stream index -> input stream index, from 'Stream mapping:'
		self.mapping: Dict[int, int] = {}
		# last: the collector starts draining at once
		super().__init__(stream)

	def take(self, line: str) -> None:
		level, line = ffmpeg.split_log_level(line)
		if level in ffmpeg.ERROR_LEVELS:
			self.lines.append(line)
		if self.header_done:
			mapping_match = re.match(r'\s*Stream #0:(\d+)\S* -> #0:(\d+)', line)
			if mapping_match:
				self.mapping[int(mapping_match.group(2))] = int(mapping_match.group(1))
		# 9.x prints the mapping before the output's streams, 5.1 after them: either one ends the input's header
		elif line.startswith('Output #0') or line.startswith('Stream mapping:'):
			self.ended()
		else:
			self.header_lines.append(line)

	def ended(self) -> None:
		if self.header_done:
			return
		self.header_done = True
		if not any(line.startswith('Input #0') for line in self.header_lines):
			return
		try:
			header = parse_header('\n'.join(self.header_lines), self.path)
		except Exception as exception:
			# read_header reads it again and raises what is wrong; this thread must go on draining the pipe
			get_logger().debug('probe: the header of the scan did not parse (%s)', exception)
			return
		self.header = header
		try:
			self.on_header(header)
		except Exception as exception:
			get_logger().debug('probe: the header callback failed (%s)', exception)


@dataclass
class HeaderScan:
	header: MediaHeader
	scan: PacketScan
	# output stream index -> input stream index: 0 the video, 1 the audio when there is some
	mapping: Dict[int, int]


def scan_with_header(path: str, on_header: Callable[[MediaHeader], None]) -> Optional[HeaderScan]:
	"""The header and the packet scan of the first video and the first audio stream from one ffmpeg run (one
	process start instead of two, and the scan no longer waits for the header); on_header gets the header as soon
	as it is read, while the packets still come. None when the run printed no header (an unreadable file, or an
	ffmpeg that does not know the level flag): read_header then says why."""
	arguments = ffmpeg.base_command('level+info') + ['-nostats', '-copyts', '-i', path, '-map', '0:V:0', '-map', '0:a:0?', '-c', 'copy', '-f', 'framecrc', '-']
	process = child_process.popen(arguments, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
	log = HeaderLog(process.stderr, path, on_header)
	tally = PacketTally()
	for raw_line in process.stdout:
		tally.add(raw_line)
	process.wait()
	log.join()
	if log.header is None:
		return None
	return HeaderScan(log.header, tally.scan(log.text(), process.returncode), log.mapping)


def apply_container_ends(path: str, format_name: str, video_index: int, audio_index: Optional[int], scan: PacketScan) -> PacketScan:
	"""The scan with each stream's end taken from an MP4 / MOV file's edit lists where they say it.

	How long the last frame shows is in the edit list, not in the packets, and ffmpeg versions derive packet
	durations differently (a variable-rate clip: 2.00 s with 9.x, 1.96 s with 5.1 to 7.x, the edit list saying
	2.00 s). Reading the edit list gives every version the same answer, the one players show."""
	if not format_name.startswith('mov,') or not len(scan.video_pts):
		return scan
	timings = isobmff.read_track_timings(path)
	if not timings:
		return scan
	video_last = float(int(scan.video_pts[-1]) * scan.video_time_base)
	video_end = _container_end(timings, video_index, 'vide', video_last, scan.video_end)
	audio_end = _container_end(timings, audio_index, 'soun', scan.audio_last, scan.audio_end)
	return dataclasses.replace(scan, video_end=video_end, audio_end=audio_end)


def _container_end(timings: List[isobmff.TrackTiming], index: Optional[int], handler: str, last_start: Optional[float], packet_end: Optional[float]) -> Optional[float]:
	# ffmpeg numbers an MP4's streams in the order of its tracks; a mismatch means this is not that file
	if index is None or index >= len(timings) or timings[index].handler != handler or last_start is None:
		return packet_end
	track = timings[index]
	end = track.presentation_end
	if end is None or end <= last_start:
		return packet_end
	# an edit list counts on the movie timescale (often 1 ms): within a tick, the packets are the finer answer
	if packet_end is not None and abs(end - packet_end) <= 1.0 / track.movie_timescale:
		return packet_end
	return end


def decoded_audio_start(path: str, audio_stream: Union[int, str]) -> Optional[float]:
	"""When the first decoded audio sample of a stream (its index, or a specifier such as 'a:0') plays, in file
	timestamps; None where there is no such stream or it does not decode. Differs from the first packet's time when
	the codec drops a pre-skip the container does not flag (opus in webm / mkv: about 6.5 ms), or when damaged first
	packets do not decode."""
	arguments = ['-copyts', '-i', path, '-map', '0:{}'.format(audio_stream), '-frames:a', '1', '-f', 'framecrc', '-']
	result = ffmpeg.run_ffmpeg(arguments, what='Reading the audio start of {}'.format(os.path.basename(path)), check=False)
	time_base_match = re.search(rb'#tb 0: (\d+)/(\d+)', result.stdout)
	packet_match = re.search(rb'^0,\s*-?\d+,\s*(-?\d+),', result.stdout, flags=re.MULTILINE)
	if result.returncode != 0 or not time_base_match or not packet_match:
		return None
	return int(packet_match.group(1)) * int(time_base_match.group(1)) / int(time_base_match.group(2))


def count_frames_by_decoding(path: str, video_index: int) -> int:
	"""Decode every frame (no conversion, no output) and count them: exact for any file, but costs a full decode."""
	arguments = ['-progress', 'pipe:1', '-nostats', '-i', path, '-map', '0:{}'.format(video_index), '-fps_mode', 'passthrough', '-f', 'null', '-']
	result = ffmpeg.run_ffmpeg(arguments, what='Counting the frames of {}'.format(os.path.basename(path)))
	counts = re.findall(rb'^frame=(\d+)', result.stdout, flags=re.MULTILINE)
	return int(counts[-1]) if counts else 0


def snap_frame_rate(rate: float) -> Fraction:
	"""A measured rate as the fraction it most likely is (29.97 -> 30000/1001)."""
	nearest = min(COMMON_FRAME_RATES, key=lambda common: abs(rate - float(common)))
	if abs(rate - float(nearest)) <= float(nearest) * 0.002:
		return nearest
	return Fraction(rate).limit_denominator(1001)


def parse_rotation(side_lines: List[str]) -> int:
	for line in side_lines:
		matrix_match = re.search(r'rotation of (-?[\d.]+) degrees', line)
		if matrix_match:
			# the display matrix angle is counter-clockwise; report the clockwise 'rotate' convention
			return int(round(-float(matrix_match.group(1)) / 90.0)) * 90 % 360
		tag_match = re.match(r'rotate\s*:\s*(-?\d+)', line)
		if tag_match:
			return int(round(float(tag_match.group(1)) / 90.0)) * 90 % 360
	return 0


def _parse_video_details(stream: StreamHeader) -> Dict[str, object]:
	facts: Dict[str, object] = {'pix_fmt': 'unknown', 'width': 0, 'height': 0, 'fps': None, 'tbr': None, 'color_range': None, 'color_matrix': None}
	for position, detail in enumerate(stream.details):
		size_match = re.match(r'(\d+)x(\d+)', detail)
		if size_match and not facts['width']:
			facts['width'], facts['height'] = int(size_match.group(1)), int(size_match.group(2))
			continue
		fps_match = re.match(r'([\d.]+k?) fps', detail)
		if fps_match:
			facts['fps'] = _parse_rate(fps_match.group(1))
		tbr_match = re.match(r'([\d.]+k?) tbr', detail)
		if tbr_match:
			facts['tbr'] = _parse_rate(tbr_match.group(1))
		if position == 1:
			pix_match = re.match(r'(\w+)(?:\((.*)\))?', detail)
			if pix_match:
				facts['pix_fmt'] = pix_match.group(1)
				for tag in (pix_match.group(2) or '').split(','):
					tag = tag.strip()
					if tag in ('tv', 'pc'):
						facts['color_range'] = tag
					elif tag.split('/')[0] in SCALE_COLOR_MATRICES:
						facts['color_matrix'] = tag.split('/')[0]
	return facts


def probe_video(path: str, decode_count: bool = False) -> VideoInfo:
	"""Everything the video workflow needs to know about a target. ``decode_count`` forces an exact frame count by
	decoding (slow; for files whose packets are not frames, e.g. field-coded interlaced streams)."""
	path = os.path.abspath(str(path))
	with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
		decoded_starts: Dict[int, 'concurrent.futures.Future[Optional[float]]'] = {}
		# where the first audio track's first decoded sample plays, asked at once beside the header and the packets
		# (by its place, 'a:0', as the header is not read yet): nearly every video has sound, and asking after the header
		# put one more ffmpeg start (0.1 s) before the decoder's; a file without sound only answers None
		# a missing file goes straight to read_header, which says so
		readable = os.path.isfile(path)
		first_audio_start = pool.submit(decoded_audio_start, path, 'a:0') if readable else None

		def ask_audio_starts(header: MediaHeader) -> None:
			# the other audio tracks' starts need their indices from the header: asked while the packets are still
			# being listed
			if header.first('Video') is None:
				return
			for position, stream in enumerate(header.of_kind('Audio')):
				if stream.index in decoded_starts:
					continue
				if position == 0 and first_audio_start is not None:
					decoded_starts[stream.index] = first_audio_start
				else:
					decoded_starts[stream.index] = pool.submit(decoded_audio_start, path, stream.index)
		combined = scan_with_header(path, ask_audio_starts) if readable else None
		header = combined.header if combined is not None else read_header(path)
		video = header.first('Video')
		if video is None:
			raise InputError('{} has no video stream'.format(os.path.basename(path)))
		audio = header.first('Audio')
		facts = _parse_video_details(video)
		if not facts['width'] or not facts['height']:
			raise InputError('{} has a video stream of unknown size (codec {})'.format(os.path.basename(path), video.codec))
		ask_audio_starts(header)
		expected_mapping = {0: video.index, **({1: audio.index} if audio else {})}
		if combined is not None and combined.mapping == expected_mapping:
			scan = combined.scan
		else:
			# the combined run mapped other streams than the header's first ones (or printed no header): listed by index
			scan = scan_packets(path, video.index, audio.index if audio else None)
		scan = apply_container_ends(path, header.format_name, video.index, audio.index if audio else None, scan)
		audio_starts = {index: future.result() for index, future in decoded_starts.items()}
	header_rate = facts['tbr'] or facts['fps'] or 25.0
	header_frames = int(round(header.duration * header_rate)) if header.duration else None
	frame_count = len(scan.video_pts)
	name = os.path.basename(path)
	if frame_count == 0:
		raise InputError('{} has no readable video frames: {}'.format(name, ffmpeg.summarize_error(scan.stderr, scan.returncode)))
	damaged = scan.returncode != 0 or ffmpeg.has_error_lines(scan.stderr)
	if damaged and header_frames and frame_count < 0.9 * header_frames:
		raise InputError('{} is truncated or corrupt: {} of about {} frames are readable ({})'.format(name, frame_count, header_frames, ffmpeg.summarize_error(scan.stderr)))
	if damaged:
		get_logger().warning('%s has damaged data (%s); it may show glitches', name, ffmpeg.summarize_error(scan.stderr))
	import numpy as np
	time_base = scan.video_time_base
	frame_times = scan.video_pts.astype(np.float64) * float(time_base) - header.start_time
	video_start = float(frame_times[0])
	if scan.video_end is not None:
		duration = scan.video_end - header.start_time - video_start
	else:
		duration = frame_count / header_rate
	deltas = np.diff(scan.video_pts)
	is_vfr = False
	if len(deltas) >= 2:
		median_delta = float(np.median(deltas))
		# one tick of jitter is rounding (e.g. 29.97 fps in a 1/1000 time base), more is a variable rate
		tolerance = max(1.0, median_delta * 0.02)
		is_vfr = bool(np.any(np.abs(deltas - median_delta) > tolerance))
	if is_vfr:
		# like ffprobe's r_frame_rate: the rate of the most common frame step (the camera's base rate), so a
		# VFR clip converted to constant rate at this fps loses no frame
		steps, counts = np.unique(deltas[deltas > 0], return_counts=True)
		rate = snap_frame_rate(1.0 / (float(steps[np.argmax(counts)]) * float(time_base)))
	elif len(deltas) >= 1 and deltas.min() == deltas.max() and deltas[0] > 0:
		# every step equal: the time base gives the rate exactly (512 / 15360 s -> 30, 3003 / 90000 s -> 30000/1001)
		rate = Fraction(1) / (int(deltas[0]) * time_base)
	elif frame_count >= 2 and frame_times[-1] > frame_times[0]:
		# a constant rate measured over the whole clip is exact even in coarse time bases (29.97 fps in 1/1000)
		measured_rate = (frame_count - 1) / (frame_times[-1] - frame_times[0])
		rate = snap_frame_rate(measured_rate)
	else:
		rate = snap_frame_rate(header_rate)
	if duration <= 0 or not math.isfinite(duration):
		duration = frame_count / float(rate)
	audio_start = scan.audio_start
	if audio is not None and audio_start is not None:
		audio_start = audio_starts.get(audio.index)
		audio_start = scan.audio_start if audio_start is None else audio_start
	audio_streams: List[AudioStreamInfo] = []
	if audio is not None:
		first_start = (audio_start - header.start_time) if audio_start is not None else 0.0
		first_duration = (scan.audio_end - audio_start) if audio_start is not None and scan.audio_end is not None else None
		audio_streams.append(AudioStreamInfo(audio.index, first_start, first_duration, audio.language, audio.title))
		for extra in header.of_kind('Audio')[1:]:
			# a second language track: its own start, read like the first one's (one short decode each)
			extra_start = audio_starts.get(extra.index)
			if extra_start is None:
				extra_start = extra.start_time if extra.start_time is not None else header.start_time
			audio_streams.append(AudioStreamInfo(extra.index, extra_start - header.start_time, None, extra.language, extra.title))
	frame_count_source = 'packets'
	if decode_count:
		decoded = count_frames_by_decoding(path, video.index)
		if decoded != frame_count:
			get_logger().debug('%s: %d packets but %d decoded frames', name, frame_count, decoded)
			frame_times = None
		frame_count = decoded
		frame_count_source = 'decoded'
	return VideoInfo(
		path=path,
		format_name=header.format_name,
		width=int(facts['width']),
		height=int(facts['height']),
		fps=float(rate),
		fps_fraction='{}/{}'.format(rate.numerator, rate.denominator),
		frame_count=frame_count,
		duration=float(duration),
		codec=video.codec,
		pix_fmt=str(facts['pix_fmt']),
		video_stream_index=video.index,
		rotation=parse_rotation(video.side_lines),
		video_start_time=video_start,
		has_audio=audio is not None,
		audio_stream_index=audio.index if audio else None,
		audio_codec=audio.codec if audio else None,
		audio_sample_rate=_audio_sample_rate(audio),
		audio_channels=_audio_channels(audio),
		audio_start_time=(audio_start - header.start_time) if audio_start is not None else (0.0 if audio else None),
		audio_duration=(scan.audio_end - audio_start) if audio_start is not None and scan.audio_end is not None else None,
		container_start_time=header.start_time,
		is_vfr=is_vfr,
		frame_count_source=frame_count_source,
		color_range=facts['color_range'],
		color_matrix=facts['color_matrix'],
		frame_times=frame_times,
		audio_streams=tuple(audio_streams),
		header=header
	)


def _audio_sample_rate(audio: Optional[StreamHeader]) -> Optional[int]:
	if audio is None:
		return None
	for detail in audio.details:
		match = re.match(r'(\d+) Hz', detail)
		if match:
			return int(match.group(1))
	return None


def _audio_channels(audio: Optional[StreamHeader]) -> Optional[str]:
	if audio is None:
		return None
	for position, detail in enumerate(audio.details):
		if re.match(r'\d+ Hz', detail) and position + 1 < len(audio.details):
			return audio.details[position + 1]
	return None


def probe_audio(path: str) -> AudioInfo:
	"""The first audio stream of any media file (an audio source for --source-paths, or a video's soundtrack)."""
	path = os.path.abspath(str(path))
	header = read_header(path)
	audio = header.first('Audio')
	if audio is None:
		raise InputError('{} has no audio stream'.format(os.path.basename(path)))
	start_time = audio.start_time if audio.start_time is not None else header.start_time
	return AudioInfo(path, audio.index, audio.codec, _audio_sample_rate(audio) or 0, _audio_channels(audio) or '', header.duration, start_time - header.start_time)


def is_video_file(path: str) -> bool:
	"""Whether ffmpeg finds a real (not cover-art) video stream in the file."""
	try:
		return read_header(str(path)).first('Video') is not None
	except InputError:
		return False
