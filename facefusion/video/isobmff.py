"""When each track of an MP4 / MOV file ends, and how many of its samples the file holds, read from the file's own
boxes instead of from ffmpeg.

The end of a track's last frame is not in its packets: an MP4 stores sample *decode* steps (stts), and how long
the last frame shows is only in the track's edit list (elst), which the muxer writes from the encoder's last
packet duration. ffmpeg versions turn the decode steps into packet durations differently (a variable-rate clip
of 40 frames whose edit list says 2.00 s reads 2.00 s with 9.x and 1.96 s with 5.1 to 7.x), and none of them
stretches the last packet to the edit list's end. The boxes are the same for every version, so this module
reads them: the presentation end of each track on the movie timeline, the clock ffmpeg's timestamps count on
(empty edits included, so a track that starts late ends late).

Only what is cheap and unambiguous is read: the top-level boxes are skipped by their sizes until ``moov``, and a
track gives an end only with an edit list made of empty edits followed by a single normal-rate edit.
Fragmented files (``mvex``: their samples are in ``moof`` boxes further on) give no answer.

The sample count answers "is every frame in the file" after a write without an ffmpeg start (100 ms with a
distribution's ffmpeg): a sample counts when its bytes, found through the sample table (sizes, chunks, chunk
offsets), lie inside the file, so a file cut short by a full disk counts fewer than its index lists.
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from fractions import Fraction
from typing import BinaryIO, Dict, Iterator, List, Optional, Tuple

# a moov this large is not a normal file's index: give no answer rather than read it into memory
MAX_MOOV_BYTES = 256 * 1024 * 1024
_CONTAINER_BOXES = (b'trak', b'mdia', b'edts')


@dataclass(frozen=True)
class Edit:
	# on the movie timescale
	segment_duration: int
	# on the track's media timescale; -1 is an empty edit (the track starts that much later)
	media_time: int
	rate: Fraction


@dataclass(frozen=True)
class TrackTiming:
	handler: str
	media_timescale: int
	media_duration: int
	movie_timescale: int
	edits: List[Edit] = field(default_factory=list)

	@property
	def presentation_end(self) -> Optional[float]:
		"""Seconds on the movie timeline at which the track's last frame stops showing; None when the edit list
		is of a kind this module does not follow (several segments, a rate other than 1)."""
		if not self.edits:
			return None
		*leading, last = self.edits
		if last.media_time == -1 or last.rate != 1 or any(edit.media_time != -1 for edit in leading) or self.movie_timescale <= 0:
			return None
		return sum(edit.segment_duration for edit in self.edits) / self.movie_timescale


@dataclass(frozen=True)
class TrackSamples:
	handler: str
	# samples the track's sample table lists, and of them those whose bytes lie inside the file
	listed: int
	present: int


def read_track_samples(path: str) -> Optional[List[TrackSamples]]:
	"""One TrackSamples per ``trak`` in file order, or None when the file is not a plain ISO media file or a sample
	table cannot be followed (compact sizes, an index that names fewer chunks than samples)."""
	try:
		with open(path, 'rb') as handle:
			file_size = os.fstat(handle.fileno()).st_size
			moov = _read_moov(handle, file_size)
			if moov is None or any(kind == b'mvex' for kind, _ in _boxes(moov)):
				return None
			tracks = [_parse_samples(body, file_size) for kind, body in _boxes(moov) if kind == b'trak']
	except (OSError, struct.error, ValueError):
		return None
	return None if any(track is None for track in tracks) else [track for track in tracks if track is not None]


def _parse_samples(trak: bytes, file_size: int) -> Optional[TrackSamples]:
	handler = ''
	tables: Dict[bytes, bytes] = {}
	for kind, body in _boxes(trak):
		if kind != b'mdia':
			continue
		for inner_kind, inner_body in _boxes(body):
			if inner_kind == b'hdlr' and len(inner_body) >= 12:
				handler = inner_body[8:12].decode('latin-1')
			elif inner_kind == b'minf':
				for minf_kind, minf_body in _boxes(inner_body):
					if minf_kind == b'stbl':
						tables = dict(_boxes(minf_body))
	if b'stsz' not in tables or b'stsc' not in tables or not (b'stco' in tables or b'co64' in tables):
		return None
	constant_size, count = struct.unpack_from('>II', tables[b'stsz'], 4)
	sizes = [constant_size] * count if constant_size else list(struct.unpack_from('>' + str(count) + 'I', tables[b'stsz'], 12))
	runs_count = struct.unpack_from('>I', tables[b'stsc'], 4)[0]
	runs = [struct.unpack_from('>II', tables[b'stsc'], 8 + index * 12) for index in range(runs_count)]
	if b'co64' in tables:
		chunk_count = struct.unpack_from('>I', tables[b'co64'], 4)[0]
		offsets = struct.unpack_from('>' + str(chunk_count) + 'Q', tables[b'co64'], 8)
	else:
		chunk_count = struct.unpack_from('>I', tables[b'stco'], 4)[0]
		offsets = struct.unpack_from('>' + str(chunk_count) + 'I', tables[b'stco'], 8)
	sample, present = 0, 0
	for run_index, (first_chunk, samples_per_chunk) in enumerate(runs):
		last_chunk = runs[run_index + 1][0] - 1 if run_index + 1 < len(runs) else chunk_count
		for chunk in range(first_chunk, last_chunk + 1):
			end = offsets[chunk - 1]
			for _ in range(min(samples_per_chunk, count - sample)):
				end += sizes[sample]
				present += end <= file_size
				sample += 1
	if sample != count:
		return None
	return TrackSamples(handler, count, present)


def read_track_timings(path: str) -> Optional[List[TrackTiming]]:
	"""One TrackTiming per ``trak`` in file order (the order of ffmpeg's stream indices), or None when the file
	is not a plain ISO media file or its boxes cannot be read."""
	try:
		with open(path, 'rb') as handle:
			moov = _read_moov(handle, os.fstat(handle.fileno()).st_size)
			if moov is None:
				return None
			return _parse_moov(moov)
	except (OSError, struct.error, ValueError):
		return None


def _read_moov(handle: BinaryIO, file_size: int) -> Optional[bytes]:
	position = 0
	while position + 8 <= file_size:
		handle.seek(position)
		size, kind, header_size = _read_box_header(handle, file_size - position)
		if size < header_size:
			return None
		if kind == b'moov':
			if size > MAX_MOOV_BYTES:
				return None
			body = handle.read(size - header_size)
			return body if len(body) == size - header_size else None
		position += size
	return None


def _read_box_header(handle: BinaryIO, remaining: int) -> Tuple[int, bytes, int]:
	size, kind = struct.unpack('>I4s', handle.read(8))
	if size == 1:
		return struct.unpack('>Q', handle.read(8))[0], kind, 16
	if size == 0:
		# the box runs to the end of the file
		return remaining, kind, 8
	return size, kind, 8


def _boxes(data: bytes) -> Iterator[Tuple[bytes, bytes]]:
	position = 0
	while position + 8 <= len(data):
		size, kind = struct.unpack_from('>I4s', data, position)
		header_size = 8
		if size == 1:
			size = struct.unpack_from('>Q', data, position + 8)[0]
			header_size = 16
		elif size == 0:
			size = len(data) - position
		if size < header_size or position + size > len(data):
			raise ValueError('a box overruns its parent')
		yield kind, data[position + header_size:position + size]
		position += size


def _parse_moov(moov: bytes) -> Optional[List[TrackTiming]]:
	movie_timescale = 0
	tracks: List[TrackTiming] = []
	for kind, body in _boxes(moov):
		if kind == b'mvex':
			return None
		if kind == b'mvhd':
			movie_timescale = _parse_timescale_and_duration(body)[0]
	for kind, body in _boxes(moov):
		if kind == b'trak':
			tracks.append(_parse_trak(body, movie_timescale))
	return tracks


def _parse_trak(trak: bytes, movie_timescale: int) -> TrackTiming:
	handler, media_timescale, media_duration = '', 0, 0
	edits: List[Edit] = []
	for kind, body in _boxes(trak):
		if kind == b'edts':
			for inner_kind, inner_body in _boxes(body):
				if inner_kind == b'elst':
					edits = _parse_elst(inner_body)
		elif kind == b'mdia':
			for inner_kind, inner_body in _boxes(body):
				if inner_kind == b'mdhd':
					media_timescale, media_duration = _parse_timescale_and_duration(inner_body)
				elif inner_kind == b'hdlr' and len(inner_body) >= 12:
					handler = inner_body[8:12].decode('latin-1')
	return TrackTiming(handler, media_timescale, media_duration, movie_timescale, edits)


def _parse_timescale_and_duration(body: bytes) -> Tuple[int, int]:
	# mvhd and mdhd share the layout: version, flags, creation and modification time, then timescale and duration
	if body[0] == 1:
		return struct.unpack_from('>IQ', body, 20)
	return struct.unpack_from('>II', body, 12)


def _parse_elst(body: bytes) -> List[Edit]:
	version = body[0]
	count = struct.unpack_from('>I', body, 4)[0]
	entry_format, entry_size = ('>Qqhh', 20) if version == 1 else ('>Iihh', 12)
	edits = []
	for position in range(8, 8 + count * entry_size, entry_size):
		segment_duration, media_time, rate_integer, rate_fraction = struct.unpack_from(entry_format, body, position)
		edits.append(Edit(segment_duration, media_time, Fraction(rate_integer) + Fraction(rate_fraction, 65536)))
	return edits
