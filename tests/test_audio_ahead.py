"""The target's audio encoded while the frames are processed (video/audio_ahead.py): the output is the one the mux
that encodes after the last frame gives, packet for packet and sample for sample, in every case where it is used;
it is not used where the audio depends on how the run ends; a run that stops leaves nothing of it. Real ffmpeg on
generated clips, with Debian's 5.1 and the bundled 9.0 (FACEFUSION_FFMPEG)."""
from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from facefusion.testing.synthetic_video import make_synthetic_video
from facefusion.video import audio, ffmpeg
from facefusion.video.audio_ahead import plan_audio_spans, start_audio_ahead
from facefusion.video.io import VideoReader, VideoWriter
from facefusion.video.probe import VideoInfo, probe_video, read_header


def silent_video(target: Path, directory: Path) -> Tuple[VideoInfo, Path, float]:
	"""The target's frames encoded again without sound, as the video workflow leaves them for the mux."""
	info = probe_video(str(target))
	reader = VideoReader(info)
	writer = VideoWriter(directory / ('silent' + target.suffix), reader.width, reader.height, info.fps_fraction, preset='ultrafast', color_matrix=info.effective_color_matrix())
	for frame in reader:
		writer.write(frame.pixels)
	return info, writer.close(), writer.duration


def stream_digests(path: Path) -> Dict[str, str]:
	"""Per stream, what a player gets: the packets (timestamps, sizes, contents) and, for audio, the decoded samples;
	and where ffmpeg says the file and each stream start."""
	facts: Dict[str, str] = {}
	header = read_header(str(path))
	facts['start'] = '{:.6f}'.format(header.start_time)
	for position, stream in enumerate(header.streams):
		packets = ffmpeg.run_ffmpeg(['-i', str(path), '-map', '0:{}'.format(stream.index), '-c', 'copy', '-f', 'framecrc', '-'], what='packets')
		facts['packets {} {}'.format(position, stream.kind)] = hashlib.sha1(packets.stdout).hexdigest()
		if stream.kind == 'Audio':
			samples = ffmpeg.run_ffmpeg(['-i', str(path), '-map', '0:{}'.format(stream.index), '-f', 's16le', '-'], what='samples')
			facts['samples {}'.format(position)] = hashlib.sha1(samples.stdout).hexdigest()
		facts['tags {}'.format(position)] = repr(sorted((key, value) for key, value in stream.tags.items() if key in ('handler_name', 'language', 'title')))
	return facts


def two_track_target(path: Path) -> Path:
	"""A clip with a second, titled audio track that starts 0.2 s after the picture."""
	first = path.with_name('one.mp4')
	make_synthetic_video(first, frame_count=25, beep_times=(0.5,))
	ffmpeg.run_ffmpeg([
		'-y', '-i', str(first), '-itsoffset', '0.2', '-f', 'lavfi', '-i', 'sine=frequency=660:duration=0.6:sample_rate=48000',
		'-map', '0:v', '-map', '0:a', '-map', '1:a', '-c:v', 'copy', '-c:a', 'aac', '-metadata:s:a:1', 'title=Second',
		'-metadata:s:a:1', 'handler_name=Second', str(path)
	], what='two tracks')
	return path


@pytest.mark.parametrize('case, extension, encoder', [
	('plain', '.mp4', None),
	('sound first', '.mp4', None),
	('sound late', '.mov', None),
	('two tracks', '.mp4', None),
	('plain', '.mov', 'libmp3lame'),
	('sound late', '.mp4', 'libmp3lame'),
])
def test_audio_encoded_ahead_gives_the_output_of_the_encoding_mux(tmp_path: Path, case: str, extension: str, encoder: str, debug_records: List[logging.LogRecord]) -> None:
	target = tmp_path / ('target' + extension)
	if case == 'two tracks':
		two_track_target(target)
	else:
		make_synthetic_video(target, frame_count=25, audio_offset={'plain': 0.0, 'sound first': -0.85, 'sound late': 0.4}[case], beep_times=(0.5,))
	info, silent, duration = silent_video(target, tmp_path)
	silent_copy = tmp_path / ('silent copy' + extension)
	shutil.copyfile(silent, silent_copy)
	options = dict(target=info, trim_start=0, trim_end=info.frame_count, encoder=encoder)
	encoding, copying = tmp_path / ('encoding' + extension), tmp_path / ('copying' + extension)
	assert audio.finalize_output(silent, encoding, duration, **options).status == 'restored'
	ahead = start_audio_ahead(info, copying, 0, info.frame_count, (), encoder, 80, 100, 'all')
	assert ahead is not None
	debug_records.clear()
	outcome = audio.finalize_output(silent_copy, copying, duration, ahead=ahead, **options)
	assert outcome.status == 'restored' and outcome.encoder == (encoder or 'aac')
	# the mux copied the audio encoded ahead, which is gone with it
	assert any('-c:a copy' in record.getMessage() for record in debug_records)
	assert not ahead.path.exists()
	assert stream_digests(copying) == stream_digests(encoding)
	assert sorted(path.name for path in tmp_path.iterdir() if path.name.startswith('.')) == []


def test_audio_that_depends_on_how_the_run_ends_is_left_to_the_mux(tmp_path: Path) -> None:
	target = tmp_path / 'target.mp4'
	make_synthetic_video(target, frame_count=25)
	info = probe_video(str(target))
	whole = {'output_path': tmp_path / 'out.mp4', 'trim_start': 0, 'trim_end': info.frame_count, 'source_paths': (), 'volume': 100, 'audio_streams': 'all'}
	assert [span.stream_index for span in plan_audio_spans(info, **whole)] == [info.audio_stream_index]
	# a trim (the cut follows the frames written), another container, an audio source, no sound at all
	for change in ({'trim_start': 5}, {'trim_end': info.frame_count - 1}, {'output_path': tmp_path / 'out.mkv'}, {'output_path': tmp_path / 'out.webm'},
		{'source_paths': (str(target.with_suffix('.wav')),)}, {'volume': 0}):
		if 'source_paths' in change:
			target.with_suffix('.wav').write_bytes(b'')
		assert plan_audio_spans(info, **{**whole, **change}) == [], change
	# opus: a copied track that starts late loses its pre-skip
	assert start_audio_ahead(info, tmp_path / 'out.mp4', 0, info.frame_count, (), 'libopus', 80, 100, 'all') is None


def test_a_run_that_stops_leaves_nothing_of_the_audio_ahead(tmp_path: Path) -> None:
	"""Discarded while it still encodes (two minutes of sound), the encode stops and its file goes."""
	target = tmp_path / 'long.mp4'
	ffmpeg.run_ffmpeg([
		'-y', '-f', 'lavfi', '-i', 'color=size=64x64:rate=1:duration=120', '-f', 'lavfi', '-i', 'sine=duration=120:sample_rate=48000',
		'-c:v', 'libx264', '-preset', 'ultrafast', '-c:a', 'alac', str(target)
	], what='long clip')
	info = probe_video(str(target))
	ahead = start_audio_ahead(info, tmp_path / 'out.mp4', 0, info.frame_count, (), None, 80, 100, 'all')
	assert ahead is not None
	for _ in range(200):
		if ahead.process is not None and ahead.path.exists():
			break
		subprocess.run(['sleep', '0.01'], check=True)
	assert ahead.process is not None
	ahead.discard()
	assert ahead.process.poll() is not None
	assert sorted(path.name for path in tmp_path.iterdir()) == ['long.mp4']
