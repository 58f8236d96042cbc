"""What else a target holds besides picture and sound: subtitle streams, chapters and the container's tags.

The mux (video.audio) puts them into the output. Subtitles and chapters follow the output's clock: a trimmed output
keeps only the cues and chapters under its frames, moved so that they stay on the same picture. ffmpeg's own
input seek does not do that the same way on every version (5.1 keeps a cue that ended before the seek point and
both keep empty chapters), so the cues are read out as text, cut and moved here, and handed back as files.

- Text subtitles only: srt and ass go into Matroska as they are (ass keeps its styling), mov_text and srt become
  mov_text in MP4 / MOV. Bitmap subtitles (DVD, PGS) or a container without text subtitles (avi, webm with ass...):
  one warning, the subtitles are not copied.
- Tags: the container's own ones (title, creation_time, artist...), not those that describe the file's encoding
  (the muxer writes its own) and not a rotation (the frames are already turned upright).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from facefusion.logger import get_logger
from facefusion.video import ffmpeg
from facefusion.video.probe import Chapter, MediaHeader, StreamHeader

TEXT_SUBTITLE_CODECS = ('subrip', 'srt', 'ass', 'ssa', 'mov_text', 'webvtt', 'text')
# tags that describe how a file was written, not what it is: the muxer writes its own
SKIPPED_TAGS = ('major_brand', 'minor_version', 'compatible_brands', 'encoder', 'rotate', 'duration', 'handler_name', 'vendor_id')
MATROSKA_EXTENSIONS = ('.mkv', '.mka')
MOV_EXTENSIONS = ('.mp4', '.m4v', '.mov')
# a cue or chapter shorter than this after the cut is dropped (what is left of one that ended at the cut)
MIN_SPAN = 0.001


@dataclass(frozen=True)
class SubtitleTrack:
	path: str
	codec: str
	language: Optional[str] = None
	title: Optional[str] = None


@dataclass
class SideStreams:
	"""The output's subtitle files, chapter file and tags; empty when the target has none."""
	subtitles: List[SubtitleTrack] = field(default_factory=list)
	# an ffmetadata file with the kept chapters; drop_chapters: the target has chapters, none lies in the output
	chapters_path: Optional[str] = None
	drop_chapters: bool = False
	metadata: Dict[str, str] = field(default_factory=dict)

	@property
	def empty(self) -> bool:
		return not self.subtitles and self.chapters_path is None and not self.drop_chapters and not self.metadata

	def arguments(self, first_input: int) -> Tuple[List[str], List[str]]:
		"""(inputs, outputs) ffmpeg arguments: the files as inputs first_input onwards, their maps, codecs and tags."""
		inputs: List[str] = []
		outputs: List[str] = []
		for position, track in enumerate(self.subtitles):
			inputs += ['-i', track.path]
			outputs += ['-map', '{}:0'.format(first_input + position), '-c:s:{}'.format(position), track.codec]
			for key, value in (('language', track.language), ('title', track.title)):
				if value:
					outputs += ['-metadata:s:s:{}'.format(position), '{}={}'.format(key, value)]
		if self.chapters_path is not None:
			inputs += ['-f', 'ffmetadata', '-i', self.chapters_path]
			outputs += ['-map_chapters', str(first_input + len(self.subtitles))]
		elif self.drop_chapters:
			outputs += ['-map_chapters', '-1']
		for key, value in self.metadata.items():
			outputs += ['-metadata', '{}={}'.format(key, value)]
		return inputs, outputs


def output_subtitle_codec(codec: str, output_path: str) -> Optional[str]:
	"""The codec a text subtitle becomes in the output's container, None when it cannot hold it."""
	extension = os.path.splitext(str(output_path))[1].lower()
	if codec not in TEXT_SUBTITLE_CODECS:
		return None
	if extension in MATROSKA_EXTENSIONS:
		return 'ass' if codec in ('ass', 'ssa') else 'srt'
	if extension in MOV_EXTENSIONS:
		return 'mov_text'
	return None


def prepare_side_streams(header: MediaHeader, output_path: str, directory: str, shift: float, start: float, end: Optional[float]) -> SideStreams:
	"""Read the target's subtitles, chapters and tags for an output whose time t is the target's t + shift, made of
	the target's [start, end) (end None: to its end). Files go into directory (a temporary one)."""
	side = SideStreams(metadata={key: value for key, value in header.metadata.items() if key not in SKIPPED_TAGS})
	subtitle_streams = header.of_kind('Subtitle')
	skipped: List[str] = []
	for stream in subtitle_streams:
		codec = output_subtitle_codec(stream.codec, output_path)
		track = _extract_subtitle(header.path, stream, codec, directory, shift, start, end) if codec else None
		if track is None:
			skipped.append(stream.codec)
		else:
			side.subtitles.append(track)
	if skipped:
		get_logger().warning('%d subtitle stream(s) (%s) cannot go into a %s file: the output has no such subtitles', len(skipped), ', '.join(sorted(set(skipped))), os.path.splitext(str(output_path))[1] or 'such')
	if header.chapters:
		kept = _cut_chapters(header.chapters, shift, start, end)
		if kept:
			side.chapters_path = os.path.join(directory, 'chapters.txt')
			_write_chapters(side.chapters_path, kept)
		else:
			side.drop_chapters = True
	return side


def _extract_subtitle(path: str, stream: StreamHeader, codec: str, directory: str, shift: float, start: float, end: Optional[float]) -> Optional[SubtitleTrack]:
	text_format = 'ass' if codec == 'ass' else 'srt'
	result = ffmpeg.run_ffmpeg(['-i', path, '-map', '0:{}'.format(stream.index), '-f', text_format, '-'], what='Reading the subtitles of {}'.format(os.path.basename(path)), check=False)
	if result.returncode != 0:
		get_logger().debug('Reading subtitle stream %d failed: %s', stream.index, ffmpeg.summarize_error(result.stderr, result.returncode))
		return None
	text = result.stdout.decode('utf-8', errors='replace')
	text = _cut_ass(text, shift, start, end) if text_format == 'ass' else _cut_srt(text, shift, start, end)
	subtitle_path = os.path.join(directory, 'subtitle{}.{}'.format(stream.index, text_format))
	with open(subtitle_path, 'w', encoding='utf-8') as handle:
		handle.write(text)
	return SubtitleTrack(subtitle_path, codec, stream.language, stream.title)


def _cut(cue_start: float, cue_end: float, shift: float, start: float, end: Optional[float]) -> Optional[Tuple[float, float]]:
	# the part of [cue_start, cue_end) inside [start, end), on the output's clock
	low = max(cue_start, start)
	high = cue_end if end is None else min(cue_end, end)
	if high - low < MIN_SPAN:
		return None
	return low - shift, high - shift


_SRT_TIME = re.compile(r'(\d+):(\d\d):(\d\d)[,.](\d\d\d)\s*-->\s*(\d+):(\d\d):(\d\d)[,.](\d\d\d)')


def _srt_seconds(parts: Tuple[str, ...]) -> float:
	return int(parts[0]) * 3600 + int(parts[1]) * 60 + int(parts[2]) + int(parts[3]) / 1000.0


def _srt_clock(seconds: float) -> str:
	milliseconds = int(round(max(seconds, 0.0) * 1000))
	return '{:02d}:{:02d}:{:02d},{:03d}'.format(milliseconds // 3600000, milliseconds // 60000 % 60, milliseconds // 1000 % 60, milliseconds % 1000)


def _cut_srt(text: str, shift: float, start: float, end: Optional[float]) -> str:
	blocks = []
	for block in re.split(r'\r?\n\r?\n', text.strip()):
		lines = block.splitlines()
		time_line = next((position for position, line in enumerate(lines) if _SRT_TIME.search(line)), None)
		if time_line is None:
			continue
		groups = _SRT_TIME.search(lines[time_line]).groups()
		kept = _cut(_srt_seconds(groups[:4]), _srt_seconds(groups[4:]), shift, start, end)
		if kept is not None:
			blocks.append('{}\n{} --> {}\n{}'.format(len(blocks) + 1, _srt_clock(kept[0]), _srt_clock(kept[1]), '\n'.join(lines[time_line + 1:])))
	return '\n\n'.join(blocks) + '\n'


_ASS_CLOCK = re.compile(r'(\d+):(\d\d):(\d\d)\.(\d\d)$')


def _ass_seconds(text: str) -> Optional[float]:
	match = _ASS_CLOCK.match(text.strip())
	if not match:
		return None
	return int(match.group(1)) * 3600 + int(match.group(2)) * 60 + int(match.group(3)) + int(match.group(4)) / 100.0


def _ass_clock(seconds: float) -> str:
	centiseconds = int(round(max(seconds, 0.0) * 100))
	return '{}:{:02d}:{:02d}.{:02d}'.format(centiseconds // 360000, centiseconds // 6000 % 60, centiseconds // 100 % 60, centiseconds % 100)


def _cut_ass(text: str, shift: float, start: float, end: Optional[float]) -> str:
	lines = []
	for line in text.splitlines():
		if line.startswith('Dialogue:'):
			fields = line.split(',', 3)
			cue_start, cue_end = (_ass_seconds(fields[1]), _ass_seconds(fields[2])) if len(fields) == 4 else (None, None)
			if cue_start is None or cue_end is None:
				continue
			kept = _cut(cue_start, cue_end, shift, start, end)
			if kept is None:
				continue
			line = ','.join((fields[0], _ass_clock(kept[0]), _ass_clock(kept[1]), fields[3]))
		lines.append(line)
	return '\n'.join(lines) + '\n'


def _cut_chapters(chapters: List[Chapter], shift: float, start: float, end: Optional[float]) -> List[Chapter]:
	kept = []
	for chapter in chapters:
		span = _cut(chapter.start, chapter.end, shift, start, end)
		if span is not None:
			kept.append(Chapter(span[0], span[1], chapter.title))
	return kept


def _escape(text: str) -> str:
	# ffmetadata escapes these with a backslash
	return re.sub(r'([=;#\\\n])', r'\\\1', text)


def _write_chapters(path: str, chapters: List[Chapter]) -> None:
	lines = [';FFMETADATA1']
	for chapter in chapters:
		lines += ['[CHAPTER]', 'TIMEBASE=1/1000', 'START={}'.format(int(round(chapter.start * 1000))), 'END={}'.format(int(round(chapter.end * 1000)))]
		if chapter.title:
			lines.append('title={}'.format(_escape(chapter.title)))
	with open(path, 'w', encoding='utf-8') as handle:
		handle.write('\n'.join(lines) + '\n')
