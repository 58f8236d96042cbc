"""When each track of an MP4 / MOV file ends, read from the file's own boxes instead of from ffmpeg.

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
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from fractions import Fraction
from typing import BinaryIO, Iterator, List, Optional, Tuple

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
