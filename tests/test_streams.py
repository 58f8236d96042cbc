"""Nothing mixed, nothing lost: a failed write is a failure, every audio stream keeps its tags and sync, subtitles,
chapters and tags reach the output (cut to a trim), and 4:4:4 / 10-bit targets keep their format. On generated
media with the real ffmpeg, run with Debian's 5.1 and the bundled 9.0 (FACEFUSION_FFMPEG)."""
from __future__ import annotations

import contextlib
import logging
import math
import os
import subprocess
import wave
from pathlib import Path
from typing import Iterator, List, Optional, Sequence

import numpy as np
import pytest

from facefusion.errors import ProcessingError
from facefusion.testing.synthetic_video import find_beep_onsets
from facefusion.video import audio, ffmpeg
from facefusion.video.io import VideoReader, VideoWriter
from facefusion.video.probe import probe_video, read_header

from conftest import CliRunner

RATE = 48000
FPS = 25
SYNC = 0.003
# an AAC encode's priming (1024 samples) that a container cannot always flag moves the picture against the rest
PRIMING = 1.5 * 1024 / 48000
SRT = '1\n00:00:00,500 --> 00:00:01,000\nHello\n\n2\n00:00:01,200 --> 00:00:01,800\nWorld\n'
CHAPTERS = ';FFMETADATA1\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=1000\ntitle=One\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=1000\nEND=2000\ntitle=Two\n'
SWAP_ARGUMENTS = ('--face-detector-model', 'yunet', '--face-selector-mode', 'many', '--face-swapper-model', 'inswapper_128')


def write_tone(path: Path, frequency: float, beep_at: float, seconds: float = 2.0) -> None:
	"""A quiet tone with a loud 1 kHz beep at beep_at (find_beep_onsets finds it)."""
	times = np.arange(int(seconds * RATE)) / RATE
	samples = 0.1 * np.sin(2 * math.pi * frequency * times)
	beep = (times >= beep_at) & (times < beep_at + 0.05)
	samples[beep] = 0.8 * np.sin(2 * math.pi * 1000.0 * times[beep])
	with wave.open(str(path), 'wb') as handle:
		handle.setnchannels(1)
		handle.setsampwidth(2)
		handle.setframerate(RATE)
		handle.writeframes((samples * 32767).astype('<i2').tobytes())


def make_target(path: Path, pix_fmt: str = 'yuv420p', audio_tracks: int = 1, second_delay: float = 0.0, subtitles: bool = False, chapters: bool = False) -> Path:
	"""testsrc for 2 s at 25 fps; audio track 1: 440 Hz (eng), beep at 1.0 s; track 2: 660 Hz (fra, 'Francais'),
	beep at 1.2 s of its own time, starting second_delay seconds after the picture."""
	directory = path.parent
	arguments = ['-y', '-f', 'lavfi', '-i', 'testsrc=size=96x64:rate={}:duration=2'.format(FPS)]
	maps = ['-map', '0:v']
	tags = ['-metadata', 'title=Holiday', '-metadata', 'creation_time=2021-05-06T07:08:09.000000Z']
	for track in range(audio_tracks):
		tone = directory / '{}.tone{}.wav'.format(path.stem, track)
		write_tone(tone, (440.0, 660.0)[track], (1.0, 1.2)[track], 2.0 - (second_delay if track else 0.0))
		if track and second_delay:
			arguments += ['-itsoffset', str(second_delay)]
		arguments += ['-i', str(tone)]
		maps += ['-map', '{}:a'.format(track + 1)]
	tags += ['-metadata:s:a:0', 'language=eng']
	if audio_tracks > 1:
		tags += ['-metadata:s:a:1', 'language=fra', '-metadata:s:a:1', 'title=Francais']
	next_input = audio_tracks + 1
	if subtitles:
		(directory / 'cues.srt').write_text(SRT)
		arguments += ['-i', str(directory / 'cues.srt')]
		maps += ['-map', '{}:s'.format(next_input)]
		tags += ['-metadata:s:s:0', 'language=deu']
		next_input += 1
	if chapters:
		(directory / 'chapters.txt').write_text(CHAPTERS)
		arguments += ['-f', 'ffmetadata', '-i', str(directory / 'chapters.txt')]
		maps += ['-map_chapters', str(next_input)]
	codecs = ['-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', pix_fmt, '-c:a', 'aac']
	if subtitles:
		codecs += ['-c:s', 'mov_text' if path.suffix == '.mp4' else 'srt']
	ffmpeg.run_ffmpeg(arguments + maps + codecs + tags + [str(path)], what='Making a test target')
	return path


@contextlib.contextmanager
def warnings_logged() -> Iterator[List[str]]:
	"""The facefusion logger's warnings while the block runs (a handler of its own: other tests may stop the
	logger from propagating to caplog's)."""
	messages: List[str] = []
	handler = logging.Handler(logging.WARNING)
	handler.emit = lambda record: messages.append(record.getMessage())
	logger = logging.getLogger('facefusion')
	logger.addHandler(handler)
	try:
		yield messages
	finally:
		logger.removeHandler(handler)


def pass_through(target: Path, output: Path, trim_start: Optional[int] = None, trim_end: Optional[int] = None, **options: object) -> audio.AudioOutcome:
	"""The video workflow without processors: read, write at the target's format, finalize with audio."""
	info = probe_video(str(target))
	reader = VideoReader(info, trim_start=trim_start, trim_end=trim_end)
	writer = VideoWriter(output, reader.width, reader.height, info.fps_fraction, preset='ultrafast', source_pix_fmt=info.pix_fmt)
	for frame in reader:
		writer.write(frame.pixels)
	silent = writer.close()
	return audio.finalize_output(silent, output, writer.duration, target=info, trim_start=reader.first_index, trim_end=reader.first_index + reader.frame_count, **options)


def stream_audio(path: Path, stream: int) -> np.ndarray:
	result = ffmpeg.run_ffmpeg(['-i', str(path), '-map', '0:a:{}'.format(stream), '-ac', '1', '-ar', str(RATE), '-f', 'f32le', '-'], what='Decoding')
	return np.frombuffer(result.stdout, dtype='<f4')


def main_frequency(samples: np.ndarray) -> float:
	# the background tone (beep cut out): the strongest bin of the first 0.4 s
	part = samples[int(0.05 * RATE):int(0.45 * RATE)]
	spectrum = np.abs(np.fft.rfft(part * np.hanning(len(part))))
	return float(np.fft.rfftfreq(len(part), 1 / RATE)[np.argmax(spectrum)])


def onsets_in_video_time(path: Path, stream: int) -> List[float]:
	"""Beep onsets of audio stream `stream` on the output's picture clock."""
	info = probe_video(str(path))
	header = read_header(str(path))
	audio_stream = header.of_kind('Audio')[stream]
	start = next(each.start_time for each in info.audio_streams if each.index == audio_stream.index)
	return [onset + start - info.video_start_time for onset in find_beep_onsets(stream_audio(path, stream))]


def output_subtitles(path: Path) -> str:
	return ffmpeg.run_ffmpeg(['-i', str(path), '-map', '0:s:0', '-f', 'srt', '-'], what='Reading subtitles').stdout.decode()


def srt_seconds(clock: str) -> float:
	hours, minutes, seconds = clock.strip().replace(',', '.').split(':')
	return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def cue_times(path: Path) -> List[float]:
	"""Start and end of every subtitle cue on the picture's clock (the first frame at 0: it may start after the
	file's start, when the audio starts earlier, e.g. AAC priming in Matroska)."""
	video_start = probe_video(str(path)).video_start_time
	lines = [line for line in output_subtitles(path).splitlines() if ' --> ' in line]
	return [srt_seconds(clock) - video_start for line in lines for clock in line.split(' --> ')]


def chapter_times(path: Path) -> List[float]:
	video_start = probe_video(str(path)).video_start_time
	return [time - video_start for chapter in read_header(str(path)).chapters for time in (chapter.start, chapter.end)]


def chapter_titles(path: Path) -> List[Optional[str]]:
	return [chapter.title for chapter in read_header(str(path)).chapters]


# ---- every audio stream -------------------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def two_tracks(tmp_path_factory: pytest.TempPathFactory) -> Path:
	return make_target(tmp_path_factory.mktemp('two_tracks') / 'two.mkv', audio_tracks=2, second_delay=0.2)


@pytest.mark.parametrize('extension', ['.mkv', '.mp4'])
def test_every_audio_stream_is_kept_with_its_tags_and_sync(two_tracks: Path, tmp_path: Path, extension: str) -> None:
	output = tmp_path / ('out' + extension)
	outcome = pass_through(two_tracks, output)
	assert outcome.has_audio and outcome.status == 'restored'
	streams = read_header(str(output)).of_kind('Audio')
	assert [stream.language for stream in streams] == ['eng', 'fra']
	# MP4 names a track in its handler
	assert streams[1].tags['handler_name' if extension == '.mp4' else 'title'] == 'Francais'
	assert main_frequency(stream_audio(output, 0)) == pytest.approx(440, abs=5)
	assert main_frequency(stream_audio(output, 1)) == pytest.approx(660, abs=5)
	# each beep where it was against the picture: 1.0 s, and 0.2 s + 1.2 s for the late second track
	assert onsets_in_video_time(output, 0) == [pytest.approx(1.0, abs=SYNC)]
	assert onsets_in_video_time(output, 1) == [pytest.approx(1.4, abs=SYNC)]


def test_a_trim_cuts_every_audio_stream_alike(two_tracks: Path, tmp_path: Path) -> None:
	output = tmp_path / 'cut.mkv'
	# frames 10 .. 44: 0.4 s .. 1.8 s of the target
	pass_through(two_tracks, output, trim_start=10, trim_end=45)
	info = probe_video(str(output))
	assert info.frame_count == 35 and len(info.audio_streams) == 2
	assert onsets_in_video_time(output, 0) == [pytest.approx(0.6, abs=SYNC)]
	assert onsets_in_video_time(output, 1) == [pytest.approx(1.0, abs=SYNC)]
	for stream in (0, 1):
		assert len(stream_audio(output, stream)) / RATE == pytest.approx(1.4, abs=0.04)


def test_first_keeps_only_the_first_audio_stream(two_tracks: Path, tmp_path: Path) -> None:
	output = tmp_path / 'first.mkv'
	pass_through(two_tracks, output, audio_streams='first')
	streams = read_header(str(output)).of_kind('Audio')
	assert [stream.language for stream in streams] == ['eng']
	assert main_frequency(stream_audio(output, 0)) == pytest.approx(440, abs=5)


# ---- subtitles, chapters, tags ----------------------------------------------------------------------------------

@pytest.mark.parametrize('extension', ['.mkv', '.mp4'])
def test_subtitles_chapters_and_tags_are_copied(tmp_path: Path, extension: str) -> None:
	target = make_target(tmp_path / ('target' + extension), subtitles=True, chapters=True)
	output = tmp_path / ('out' + extension)
	pass_through(target, output)
	header = read_header(str(output))
	subtitle = header.of_kind('Subtitle')
	assert len(subtitle) == 1 and subtitle[0].codec == ('mov_text' if extension == '.mp4' else 'subrip') and subtitle[0].language == 'deu'
	# on the picture where they were, within the AAC priming the audio mux may move the picture by
	assert len(cue_times(target)) == 4 and cue_times(output) == pytest.approx(cue_times(target), abs=PRIMING)
	assert chapter_titles(output) == ['One', 'Two'] and chapter_times(output) == pytest.approx(chapter_times(target), abs=PRIMING)
	assert header.metadata['title'] == 'Holiday'
	if extension == '.mp4':
		assert header.metadata['creation_time'].startswith('2021-05-06T07:08:09')


def test_srt_in_matroska_becomes_mov_text_in_mp4_and_a_trim_moves_it(tmp_path: Path) -> None:
	target = make_target(tmp_path / 'target.mkv', subtitles=True, chapters=True)
	output = tmp_path / 'cut.mp4'
	# frames 30 .. 49: 1.2 s .. 2.0 s; 'Hello' (0.5 .. 1.0) is gone, 'World' starts the output
	pass_through(target, output, trim_start=30)
	header = read_header(str(output))
	assert header.of_kind('Subtitle')[0].codec == 'mov_text'
	first_frame = probe_video(str(target)).frame_time(30) - probe_video(str(target)).video_start_time
	assert 'Hello' not in output_subtitles(output) and cue_times(output) == pytest.approx([0.0, cue_times(target)[3] - first_frame], abs=PRIMING)
	assert chapter_titles(output) == ['Two'] and chapter_times(output) == pytest.approx([0.0, chapter_times(target)[3] - first_frame], abs=PRIMING)


def test_a_container_without_subtitles_warns_once(tmp_path: Path) -> None:
	target = make_target(tmp_path / 'target.mkv', subtitles=True)
	output = tmp_path / 'out.avi'
	with warnings_logged() as messages:
		pass_through(target, output)
	warnings = [message for message in messages if 'subtitle' in message]
	assert len(warnings) == 1 and '.avi' in warnings[0]
	header = read_header(str(output))
	assert not header.of_kind('Subtitle') and header.first('Audio') is not None


def test_a_target_without_audio_still_gets_its_subtitles(tmp_path: Path) -> None:
	target = make_target(tmp_path / 'target.mkv', audio_tracks=0, subtitles=True)
	output = tmp_path / 'out.mkv'
	outcome = pass_through(target, output)
	assert outcome.status == 'no-audio'
	assert len(read_header(str(output)).of_kind('Subtitle')) == 1 and sorted(path.name for path in tmp_path.iterdir() if path.name.startswith(('out', '.out'))) == ['out.mkv']


# ---- a failed write ----------------------------------------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
	"""A 2 MiB tmpfs (needs root, as in CI)."""
	mount_point = tmp_path / 'small'
	mount_point.mkdir()
	if os.geteuid() != 0 or subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', str(mount_point)], capture_output=True).returncode != 0:
		pytest.skip('mounting a tmpfs needs root')
	try:
		yield mount_point
	finally:
		subprocess.run(['umount', '-l', str(mount_point)], check=False)


def fill(directory: Path, leave: int) -> None:
	stats = os.statvfs(str(directory))
	free = stats.f_bavail * stats.f_frsize
	with open(directory / 'filler', 'wb') as handle:
		handle.write(b'\0' * max(free - leave, 0))


def test_a_full_disk_while_adding_audio_is_an_error_and_leaves_nothing(two_tracks: Path, small_disk: Path, tmp_path: Path) -> None:
	info = probe_video(str(two_tracks))
	reader = VideoReader(info)
	silent_directory = tmp_path / 'silent'
	silent_directory.mkdir()
	writer = VideoWriter(silent_directory / 'out.mkv', reader.width, reader.height, info.fps_fraction, preset='ultrafast')
	for frame in reader:
		writer.write(frame.pixels)
	silent = writer.close()
	# room for a little, not for the video with its audio
	fill(small_disk, silent.stat().st_size // 2)
	with pytest.raises(ProcessingError, match='No space left on device'):
		audio.finalize_output(silent, small_disk / 'out.mkv', writer.duration, target=info)
	assert sorted(path.name for path in small_disk.iterdir()) == ['filler'] and not silent.exists()


def test_the_cli_exits_1_on_a_full_disk(run_cli: CliRunner, standin_models_dir: Path, data_dir: Path, two_tracks: Path, small_disk: Path, tmp_path: Path) -> None:
	# a first run measures the output; the disk then has room for the silent video but not for it and the mux
	reference = tmp_path / 'reference.mkv'
	arguments: Sequence[str] = ('headless-run', '-s', data_dir / 'biden.jpg', '-t', two_tracks, '--temp-path', tmp_path, *SWAP_ARGUMENTS)
	assert run_cli(*arguments, '-o', reference, models_path=standin_models_dir).returncode == 0
	assert [stream.language for stream in read_header(str(reference)).of_kind('Audio')] == ['eng', 'fra']
	fill(small_disk, int(reference.stat().st_size * 1.2))
	result = run_cli(*arguments, '-o', small_disk / 'out.mkv', models_path=standin_models_dir)
	lines = [line for line in result.stderr.splitlines() + result.stdout.splitlines() if line.strip()]
	assert result.returncode == 1 and 'No space left on device' in lines[-1] and 'Traceback' not in result.stderr
	assert sorted(path.name for path in small_disk.iterdir()) == ['filler']


# ---- chroma and bit depth ----------------------------------------------------------------------------------------

@pytest.mark.parametrize('pix_fmt', ['yuv444p', 'yuv420p10le'])
def test_444_and_10_bit_targets_keep_their_format(tmp_path: Path, pix_fmt: str) -> None:
	target = make_target(tmp_path / 'target.mp4', pix_fmt=pix_fmt, audio_tracks=0)
	output = tmp_path / 'out.mp4'
	pass_through(target, output)
	info = probe_video(str(output))
	assert info.pix_fmt == pix_fmt and info.frame_count == 50


def test_the_cli_keeps_444_with_the_disk_workflow_and_one_audio_stream_on_request(run_cli: CliRunner, standin_models_dir: Path, data_dir: Path, tmp_path: Path) -> None:
	target = make_target(tmp_path / 'target.mkv', pix_fmt='yuv444p', audio_tracks=2)
	output = tmp_path / 'out.mkv'
	result = run_cli(
		'headless-run', '-s', data_dir / 'biden.jpg', '-t', target, '-o', output, '--temp-path', tmp_path, *SWAP_ARGUMENTS,
		'--workflow-strategy', 'disk', '--output-audio-streams', 'first', models_path=standin_models_dir
	)
	assert result.returncode == 0, result.stderr
	assert probe_video(str(output)).pix_fmt == 'yuv444p'
	assert [stream.language for stream in read_header(str(output)).of_kind('Audio')] == ['eng']


def test_an_encoder_without_the_format_says_what_is_reduced(tmp_path: Path) -> None:
	output = tmp_path / 'out.mp4'
	with warnings_logged() as messages:
		writer = VideoWriter(output, 64, 48, 25, encoder='mpeg4', source_pix_fmt='yuv444p')
		writer.write(np.zeros((48, 64, 3), dtype=np.uint8))
		writer.finalize()
	assert len(messages) == 1 and 'yuv420p' in messages[0] and 'mpeg4' in messages[0]
	assert probe_video(str(output)).pix_fmt == 'yuv420p'
