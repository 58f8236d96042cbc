"""The video workflow end to end: real ffmpeg on real clips made from the test photos, the real YuNet detector and
stand-in models, run through the CLI as a user would."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from facefusion.testing.synthetic_video import decode_audio, find_beep_onsets, make_synthetic_video
from facefusion.video.io import VideoReader
from facefusion.video.probe import probe_video

from conftest import ENTRY_POINT, CliRunner, cli_environment

SWAP_ARGUMENTS = ('--face-detector-model', 'yunet', '--face-selector-mode', 'many', '--face-swapper-model', 'inswapper_128')


@pytest.fixture(scope='module')
def clip_with_audio(tmp_path_factory: pytest.TempPathFactory) -> Path:
	"""≥ 150 frames with pan and zoom and an audio track, as the issue asks."""
	path = tmp_path_factory.mktemp('clips') / 'pan.mp4'
	make_synthetic_video(path, photos=('obama.jpg',), width=320, height=240, fps=25, frame_count=150, audio=True)
	return path


def read_all_frames(path: Path) -> list:
	return [frame.pixels for frame in VideoReader(str(path))]


@pytest.mark.parametrize('strategy', ['memory', 'disk'])
def test_output_keeps_frames_fps_duration_and_audio(run_cli: CliRunner, standin_models_dir: Path, data_dir: Path, clip_with_audio: Path, tmp_path: Path, strategy: str) -> None:
	output_path = tmp_path / 'out.mp4'
	result = run_cli(
		'headless-run', '-s', data_dir / 'biden.jpg', '-t', clip_with_audio, '-o', output_path, '--workflow-strategy', strategy,
		'--temp-path', tmp_path, *SWAP_ARGUMENTS, models_path=standin_models_dir
	)
	assert result.returncode == 0, result.stderr
	source_info, output_info = probe_video(str(clip_with_audio)), probe_video(str(output_path))
	assert output_info.frame_count == source_info.frame_count == 150
	assert output_info.fps == pytest.approx(source_info.fps)
	assert output_info.duration == pytest.approx(source_info.duration, abs=1 / source_info.fps)
	assert output_info.has_audio
	assert output_info.audio_duration == pytest.approx(source_info.duration, abs=0.1)
	# the face was swapped: frames differ from the input, but only in part of the picture
	source_frames, output_frames = read_all_frames(clip_with_audio), read_all_frames(output_path)
	changed = [np.mean(np.abs(a.astype(np.int16) - b.astype(np.int16)).max(axis=2) > 40) for a, b in zip(source_frames, output_frames)]
	assert min(changed) > 0.005
	assert max(changed) < 0.5
	# nothing but the output is left in the output folder (no temp frames, no partial files)
	assert sorted(path.name for path in tmp_path.iterdir() if path.is_file()) == ['out.mp4']


def test_audio_before_the_first_frame_is_kept_and_a_trim_cuts_it(run_cli: CliRunner, standin_models_dir: Path, data_dir: Path, tmp_path: Path) -> None:
	# a camera clip: sound from 0 s (a beep at 0.35 s), the first frame at 0.85 s, a beep under frame 12 (1.33 s)
	target = tmp_path / 'camera.mp4'
	make_synthetic_video(target, frame_count=25, audio_offset=-0.85, beep_times=(-0.5, 0.48))
	whole, trimmed = tmp_path / 'whole.mp4', tmp_path / 'trimmed.mp4'
	for output, trim in ((whole, ()), (trimmed, ('--trim-frame-start', '5', '--trim-frame-end', '20'))):
		result = run_cli('headless-run', '-s', data_dir / 'biden.jpg', '-t', target, '-o', output, '--temp-path', tmp_path, *SWAP_ARGUMENTS, *trim, models_path=standin_models_dir)
		assert result.returncode == 0, result.stderr
	source, output = probe_video(str(target)), probe_video(str(whole))
	# within 1.5 AAC frames (32 ms, the priming an AAC encode adds); the sound itself within 3 ms
	assert output.media_duration == pytest.approx(source.media_duration, abs=0.032) and source.media_duration == pytest.approx(1.85, abs=0.032)
	assert output.video_start_time == pytest.approx(source.video_start_time, abs=0.032) and output.frame_count == 25
	assert output.audio_duration == pytest.approx(source.audio_duration, abs=0.032)
	samples, offset = decode_audio(whole)
	assert [onset + offset for onset in find_beep_onsets(samples)] == [pytest.approx(-0.5, abs=0.003), pytest.approx(0.48, abs=0.003)]
	# frames 5 .. 19 start at 0.2 s of video time: only the sound under them, the second beep 0.28 s in
	cut = probe_video(str(trimmed))
	assert cut.frame_count == 15 and cut.media_duration == pytest.approx(0.6, abs=0.032) and cut.video_start_time == pytest.approx(0.0, abs=0.032)
	samples, offset = decode_audio(trimmed)
	assert [onset + offset for onset in find_beep_onsets(samples)] == [pytest.approx(0.28, abs=0.003)]


@pytest.fixture(scope='module')
def short_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
	path = tmp_path_factory.mktemp('short') / 'short.mp4'
	make_synthetic_video(path, photos=('obama_and_biden.jpg',), width=480, height=270, fps=25, frame_count=20, audio=False)
	return path


def run_variant(run_cli: CliRunner, models: Path, source: Path, clip: Path, output: Path, *arguments: str) -> list:
	result = run_cli(
		'headless-run', '-s', source, '-t', clip, '-o', output, '--output-video-quality', '100', '--temp-path', output.parent,
		*SWAP_ARGUMENTS, *arguments, models_path=models
	)
	assert result.returncode == 0, result.stderr
	return read_all_frames(output)


def test_memory_and_disk_strategies_agree(run_cli: CliRunner, standin_models_dir: Path, data_dir: Path, short_clip: Path, tmp_path: Path) -> None:
	"""With per-frame analysis (3.5.0's), streaming and temp frames give the same pictures."""
	memory_frames = run_variant(run_cli, standin_models_dir, data_dir / 'biden.jpg', short_clip, tmp_path / 'memory.mp4', '--face-tracker', 'none', '--temporal-smoothing', 'none')
	disk_frames = run_variant(run_cli, standin_models_dir, data_dir / 'biden.jpg', short_clip, tmp_path / 'disk.mp4', '--workflow-strategy', 'disk', '--temp-frame-format', 'png')
	assert len(memory_frames) == len(disk_frames) == 20
	for memory_frame, disk_frame in zip(memory_frames, disk_frames):
		assert np.mean(np.abs(memory_frame.astype(np.int16) - disk_frame.astype(np.int16))) < 1.5


def test_batching_across_frames_equals_one_call_per_tile(run_cli: CliRunner, standin_models_dir: Path, data_dir: Path, short_clip: Path, tmp_path: Path) -> None:
	"""--face-swapper-batching always (a window of frames × faces × tiles per call, through the dynamic-batch copy of
	inswapper) against never (3.5.0's one tile per call), frame by frame: equal within float rounding, which can
	move a truncated pixel by one level at most."""
	arguments = ('--face-swapper-pixel-boost', '256x256')
	batched = run_variant(run_cli, standin_models_dir, data_dir / 'biden.jpg', short_clip, tmp_path / 'always.mp4', '--face-swapper-batching', 'always', *arguments)
	single = run_variant(run_cli, standin_models_dir, data_dir / 'biden.jpg', short_clip, tmp_path / 'never.mp4', '--face-swapper-batching', 'never', *arguments)
	assert len(batched) == len(single) == 20
	for batched_frame, single_frame in zip(batched, single):
		difference = np.abs(batched_frame.astype(np.int16) - single_frame.astype(np.int16))
		assert difference.mean() < 0.05
		assert np.mean(difference > 2) < 0.001


def test_trim_keeps_the_matching_span(run_cli: CliRunner, standin_models_dir: Path, data_dir: Path, clip_with_audio: Path, tmp_path: Path) -> None:
	output_path = tmp_path / 'trim.mp4'
	result = run_cli(
		'headless-run', '-s', data_dir / 'biden.jpg', '-t', clip_with_audio, '-o', output_path, '--trim-frame-start', '100',
		'--trim-frame-end', '125', *SWAP_ARGUMENTS, models_path=standin_models_dir
	)
	assert result.returncode == 0, result.stderr
	output_info = probe_video(str(output_path))
	assert output_info.frame_count == 25
	assert output_info.has_audio
	assert output_info.audio_duration == pytest.approx(1.0, abs=0.1)


def test_video_without_audio_and_without_faces(run_cli: CliRunner, standin_models_dir: Path, data_dir: Path, tmp_path: Path) -> None:
	"""A silent clip of an empty scene: the output is the input (re-encoded), silent, with a warning-free success."""
	import cv2
	clip = tmp_path / 'empty.mp4'
	writer = cv2.VideoWriter(str(tmp_path / 'raw.avi'), cv2.VideoWriter_fourcc(*'MJPG'), 10, (160, 120))
	for index in range(12):
		writer.write(np.full((120, 160, 3), 40 + index * 10, np.uint8))
	writer.release()
	from facefusion.video import ffmpeg
	ffmpeg.run_ffmpeg(['-y', '-i', str(tmp_path / 'raw.avi'), '-c:v', 'libx264', '-crf', '0', '-pix_fmt', 'yuv444p', str(clip)], 'make clip')
	output_path = tmp_path / 'empty_out.mp4'
	result = run_cli('headless-run', '-s', data_dir / 'biden.jpg', '-t', clip, '-o', output_path, *SWAP_ARGUMENTS, models_path=standin_models_dir)
	assert result.returncode == 0, result.stderr
	output_info = probe_video(str(output_path))
	assert output_info.frame_count == 12
	assert not output_info.has_audio
	for source_frame, output_frame in zip(read_all_frames(clip), read_all_frames(output_path)):
		assert np.abs(source_frame.astype(np.int16) - output_frame.astype(np.int16)).mean() < 2


def test_one_frame_and_odd_size_video(run_cli: CliRunner, standin_models_dir: Path, data_dir: Path, tmp_path: Path) -> None:
	clip = tmp_path / 'odd.mp4'
	make_synthetic_video(clip, photos=('obama.jpg',), width=251, height=187, fps=25, frame_count=1, audio=False)
	output_path = tmp_path / 'odd_out.mp4'
	result = run_cli('headless-run', '-s', data_dir / 'biden.jpg', '-t', clip, '-o', output_path, *SWAP_ARGUMENTS, models_path=standin_models_dir)
	assert result.returncode == 0, result.stderr
	output_info = probe_video(str(output_path))
	assert output_info.frame_count == 1
	# the picture keeps all its content: at least the input size (an odd side gets one padded row / column)
	assert output_info.width >= 251 and output_info.height >= 187


def test_truncated_video_is_refused_and_nothing_is_written(run_cli: CliRunner, standin_models_dir: Path, data_dir: Path, clip_with_audio: Path, tmp_path: Path) -> None:
	broken = tmp_path / 'broken.mp4'
	broken.write_bytes(clip_with_audio.read_bytes()[:4000])
	output_path = tmp_path / 'broken_out.mp4'
	result = run_cli('headless-run', '-s', data_dir / 'biden.jpg', '-t', broken, '-o', output_path, *SWAP_ARGUMENTS, models_path=standin_models_dir)
	assert result.returncode != 0
	lines = [line for line in result.stderr.splitlines() if line.startswith('[FACEFUSION]')]
	assert lines and 'Traceback' not in result.stderr
	assert sorted(path.name for path in tmp_path.iterdir()) == ['broken.mp4']


def test_unwritable_output_directory(run_cli: CliRunner, standin_models_dir: Path, data_dir: Path, clip_with_audio: Path, tmp_path: Path) -> None:
	result = run_cli('headless-run', '-s', data_dir / 'biden.jpg', '-t', clip_with_audio, '-o', tmp_path / 'missing' / 'out.mp4', *SWAP_ARGUMENTS, models_path=standin_models_dir)
	assert result.returncode == 1
	assert 'output directory does not exist' in result.stderr


@pytest.mark.skipif(sys.platform == 'win32', reason='POSIX signals')
def test_ctrl_c_leaves_no_output(standin_models_dir: Path, data_dir: Path, tmp_path: Path) -> None:
	clip = tmp_path / 'long.mp4'
	make_synthetic_video(clip, photos=('obama.jpg',), width=320, height=240, fps=25, frame_count=400, audio=True)
	output_directory = tmp_path / 'out'
	output_directory.mkdir()
	process = subprocess.Popen(
		[sys.executable, str(ENTRY_POINT), 'headless-run', '-s', str(data_dir / 'biden.jpg'), '-t', str(clip), '-o', str(output_directory / 'long.mp4'), *SWAP_ARGUMENTS],
		env=cli_environment(standin_models_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
	)
	# wait until frames are being written (the partial file appears), then interrupt as Ctrl-C would
	def writing() -> bool:
		return any(path.name.endswith('.partial.mp4') for path in output_directory.iterdir())

	deadline = time.time() + 60
	while time.time() < deadline and not writing():
		time.sleep(0.1)
	assert writing(), 'the run never started writing'
	process.send_signal(signal.SIGINT)
	_, stderr = process.communicate(timeout=60)
	assert process.returncode == 130, stderr
	assert 'interrupted' in stderr
	assert list(output_directory.iterdir()) == []


def test_each_model_is_loaded_once_per_run(run_cli: CliRunner, standin_models_dir: Path, data_dir: Path, clip_with_audio: Path, tmp_path: Path) -> None:
	# 150 frames at 25 fps: 6 content samples, so the check's last batch (2 of 4) is judged after the last frame; under
	# the default strict memory strategy the sessions are released after the run, and that batch must not load the
	# content models a second time
	result = run_cli(
		'headless-run', '-s', data_dir / 'biden.jpg', '-t', clip_with_audio, '-o', tmp_path / 'out.mp4', '--temp-path', tmp_path,
		'--video-memory-strategy', 'strict', '--log-level', 'debug', *SWAP_ARGUMENTS, models_path=standin_models_dir
	)
	assert result.returncode == 0, result.stderr
	loads = [line.split('session ', 1)[1].split(' on ', 1)[0] for line in (result.stdout + result.stderr).splitlines() if '] session ' in line and ' on [' in line]
	assert {'nsfw_1', 'nsfw_2', 'nsfw_3', 'inswapper_128'} <= set(loads)
	assert sorted(loads) == sorted(set(loads))
