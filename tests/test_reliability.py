"""Nothing mixed, nothing lost: concurrent disk-workflow runs keep their own temp frames, SIGTERM / SIGHUP clean up
like Ctrl-C, a killed run's leftovers are removed by the next run, 16-bit images and EXIF survive, and a
write-protected output is refused. Real CLI subprocesses, real ffmpeg, the real YuNet and stand-in models."""
from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, List

import cv2
import numpy as np
import pytest

from facefusion import partial_files, vision
from facefusion.errors import ProcessingError
from facefusion.testing.synthetic_video import make_synthetic_video
from facefusion.video import temp_frames
from facefusion.video.io import VideoReader
from facefusion.video.probe import probe_video

from conftest import ENTRY_POINT, CliRunner, cli_environment

SWAP_ARGUMENTS = ('--face-detector-model', 'yunet', '--face-selector-mode', 'many', '--face-swapper-model', 'inswapper_128')
POSIX_ONLY = pytest.mark.skipif(sys.platform == 'win32', reason='POSIX signals and process ids')


def read_all_frames(path: Path) -> List[np.ndarray]:
	return [frame.pixels for frame in VideoReader(str(path))]


def cli_command(*arguments: object) -> List[str]:
	return [sys.executable, str(ENTRY_POINT), *[str(argument) for argument in arguments]]


def facefusion_lines(stderr: str) -> List[str]:
	return [line for line in stderr.splitlines() if line.startswith('[FACEFUSION]')]


def dead_pid() -> int:
	"""The id of a process that has exited (and been reaped)."""
	process = subprocess.Popen([sys.executable, '-c', 'pass'])
	process.wait()
	return process.pid


def session_processes(session_id: int) -> List[str]:
	"""`pid command` of every process still in the session (a CLI started with start_new_session leads its own),
	from /proc where there is one (slim images have no ps), else from ps."""
	found = []
	if Path('/proc/self/stat').is_file():
		for stat_path in Path('/proc').glob('[0-9]*/stat'):
			try:
				text = stat_path.read_text()
			except OSError:
				continue
			# pid (comm) state ppid pgrp session ...; comm may hold spaces and parentheses
			command, fields = text[text.index('(') + 1:text.rindex(')')], text[text.rindex(')') + 2:].split()
			if fields[3] == str(session_id):
				found.append(stat_path.parent.name + ' ' + command)
		return found
	listing = subprocess.run(['ps', '-e', '-o', 'pid=,sid=,comm='], capture_output=True, text=True, check=True).stdout
	for line in listing.splitlines():
		parts = line.split(None, 2)
		if len(parts) == 3 and parts[1] == str(session_id):
			found.append(parts[0] + ' ' + parts[2])
	return found


@pytest.fixture(scope='module')
def short_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
	path = tmp_path_factory.mktemp('short') / 'clip.mp4'
	make_synthetic_video(path, photos=('obama.jpg',), width=256, height=192, fps=25, frame_count=6, audio=False)
	return path


@pytest.fixture(scope='module')
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
	path = tmp_path_factory.mktemp('long') / 'long.mp4'
	make_synthetic_video(path, photos=('obama.jpg',), width=256, height=192, fps=25, frame_count=300, audio=True, crf=30)
	return path


# ---- 1. concurrent disk-workflow runs ---------------------------------------------------------------------------

def test_concurrent_disk_runs_keep_their_own_frames(run_cli: CliRunner, standin_models_dir: Path, data_dir: Path, short_clip: Path, tmp_path: Path) -> None:
	"""Two runs at once on one target with different sources: each output is exactly what that run gives alone."""
	temp_path = tmp_path / 'temp'
	temp_path.mkdir()
	sources = {'biden': data_dir / 'biden.jpg', 'obama': data_dir / 'obama.jpg'}

	def arguments(source: Path, output: Path) -> List[object]:
		return ['headless-run', '-s', source, '-t', short_clip, '-o', output, '--workflow-strategy', 'disk', '--temp-path', temp_path, *SWAP_ARGUMENTS]

	alone = {}
	for name, source in sources.items():
		result = run_cli(*arguments(source, tmp_path / f'alone_{name}.mp4'), models_path=standin_models_dir)
		assert result.returncode == 0, result.stderr
		alone[name] = read_all_frames(tmp_path / f'alone_{name}.mp4')
	environment = cli_environment(standin_models_dir)
	processes = {
		name: subprocess.Popen(cli_command(*arguments(source, tmp_path / f'together_{name}.mp4')), env=environment, cwd=str(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
		for name, source in sources.items()
	}
	for name, process in processes.items():
		_, stderr = process.communicate(timeout=120)
		assert process.returncode == 0, stderr
	for name in sources:
		together = read_all_frames(tmp_path / f'together_{name}.mp4')
		assert len(together) == len(alone[name]) == 6
		assert all(np.array_equal(a, b) for a, b in zip(together, alone[name])), f'the {name} run was mixed with the other'
	# the two sources really give different pictures, so a mix could not pass unseen
	assert not all(np.array_equal(a, b) for a, b in zip(alone['biden'], alone['obama']))
	# every run removed its own folder (and the shared parent, once empty)
	assert list(temp_path.iterdir()) == []


def test_every_run_gets_its_own_temp_folder(tmp_path: Path) -> None:
	first = temp_frames.create_temp_directory(tmp_path, '/videos/a/clip.mp4')
	second = temp_frames.create_temp_directory(tmp_path, '/videos/b/clip.mp4')
	assert first != second and first.parent == second.parent == tmp_path / 'facefusion'
	assert first.name.startswith(f'clip.{os.getpid()}.') and not any(first.iterdir())
	temp_frames.clear_temp_directory(first)
	assert second.is_dir()
	temp_frames.clear_temp_directory(second)
	assert list(tmp_path.iterdir()) == []


def test_merged_frame_count_must_equal_the_extracted_count(tmp_path: Path) -> None:
	frames = tmp_path / 'frames'
	frames.mkdir()
	for number in range(1, 7):
		cv2.imwrite(str(frames / f'{number:08d}.png'), np.full((48, 64, 3), number * 30, np.uint8))
	merged = temp_frames.merge_frames(frames, 'png', (64, 48), 25, tmp_path / 'out.mp4', 'libx264', expected_frames=6)
	assert probe_video(str(merged)).frame_count == 6
	merged.unlink()
	# a frame gone in the middle (ffmpeg would stop there and exit 0 with a short video) or one too few: errors
	(frames / '00000004.png').unlink()
	with pytest.raises(ProcessingError, match='3 of 6|5 of 6'):
		temp_frames.merge_frames(frames, 'png', (64, 48), 25, tmp_path / 'out.mp4', 'libx264', expected_frames=6)
	with pytest.raises(ProcessingError, match='5 of 7'):
		temp_frames.merge_frames(frames, 'png', (64, 48), 25, tmp_path / 'out.mp4', 'libx264', expected_frames=7)
	assert sorted(path.name for path in tmp_path.iterdir()) == ['frames']


# ---- 3. SIGTERM, SIGHUP, SIGKILL ---------------------------------------------------------------------------------

def start_cli(arguments: List[object], models: Path, cwd: Path) -> subprocess.Popen:
	return subprocess.Popen(
		cli_command(*arguments), env=cli_environment(models), cwd=str(cwd), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
		start_new_session=True
	)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
	deadline = time.time() + timeout
	while time.time() < deadline:
		if condition():
			return
		time.sleep(0.05)
	raise AssertionError(f'timed out waiting for {what}')


@POSIX_ONLY
@pytest.mark.parametrize('signal_name, strategy, exit_code', [('SIGTERM', 'memory', 143), ('SIGHUP', 'disk', 129)])
def test_signal_cleans_up_like_ctrl_c(standin_models_dir: Path, data_dir: Path, long_clip: Path, tmp_path: Path, signal_name: str, strategy: str, exit_code: int) -> None:
	output_directory, temp_path = tmp_path / 'out', tmp_path / 'temp'
	output_directory.mkdir()
	temp_path.mkdir()
	process = start_cli(
		['headless-run', '-s', data_dir / 'biden.jpg', '-t', long_clip, '-o', output_directory / 'long.mp4', '--workflow-strategy', strategy, '--temp-path', temp_path, *SWAP_ARGUMENTS],
		standin_models_dir, tmp_path
	)
	try:
		if strategy == 'memory':
			# frames are being encoded: the hidden partial output exists
			wait_for(lambda: any(path.name.endswith('.partial.mp4') for path in output_directory.iterdir()), 'the partial output')
		else:
			# frames are on disk in this run's temp folder
			wait_for(lambda: any(temp_path.glob('facefusion/*/00000002.png')), 'the temp frames')
		# to the CLI alone, not its group: the CLI must stop its own ffmpeg children
		os.kill(process.pid, getattr(signal, signal_name))
		_, stderr = process.communicate(timeout=60)
	finally:
		if process.poll() is None:
			os.killpg(process.pid, signal.SIGKILL)
			process.wait()
	assert process.returncode == exit_code, stderr
	# one line says why it ended (the lines before it are the run's own log)
	lines = facefusion_lines(stderr)
	assert signal_name in lines[-1] and sum(signal_name in line for line in lines) == 1, stderr
	assert 'Traceback' not in stderr
	assert list(output_directory.iterdir()) == []
	assert list(temp_path.iterdir()) == []
	assert session_processes(process.pid) == []


@POSIX_ONLY
def test_next_run_removes_what_a_killed_run_left(run_cli: CliRunner, standin_models_dir: Path, data_dir: Path, long_clip: Path, tmp_path: Path) -> None:
	output_directory = tmp_path / 'out'
	output_directory.mkdir()
	process = start_cli(['headless-run', '-s', data_dir / 'biden.jpg', '-t', long_clip, '-o', output_directory / 'long.mp4', *SWAP_ARGUMENTS], standin_models_dir, tmp_path)
	try:
		wait_for(lambda: any(path.name.endswith('.partial.mp4') for path in output_directory.iterdir()), 'the partial output')
	finally:
		os.killpg(process.pid, signal.SIGKILL)
		process.communicate()
	left = list(output_directory.iterdir())
	# the partial video, and the audio being encoded beside it if it had started
	assert all(path.name.startswith(f'.long.{process.pid}.') for path in left), left
	assert sorted(path.name.rsplit('.', 2)[-2] for path in left) in (['partial'], ['audio-ahead', 'partial']), left
	# beside it: an image write of a dead process, an old-style partial (no pid) untouched for an hour, and files
	# that are not stale: this process's own partial, a fresh old-style one, an unrelated hidden file
	gone = dead_pid()
	stale = [output_directory / f'.photo.png.{gone}.0123abcd.tmp', output_directory / '.old.0badc0de.partial.mp4']
	kept = [output_directory / f'.live.{os.getpid()}.89abcdef.partial.mp4', output_directory / '.new.0badc0df.partial.mp4', output_directory / '.hidden']
	for path in stale + kept:
		path.write_bytes(b'x')
	hour_ago = time.time() - 3600
	os.utime(stale[1], (hour_ago, hour_ago))
	result = run_cli('headless-run', '-s', data_dir / 'obama.jpg', '-t', data_dir / 'biden.jpg', '-o', output_directory / 'swapped.jpg', *SWAP_ARGUMENTS, models_path=standin_models_dir)
	assert result.returncode == 0, result.stderr
	assert 'removed {} stale partial files'.format(len(left) + 2) in result.stderr
	assert sorted(path.name for path in output_directory.iterdir()) == sorted([path.name for path in kept] + ['swapped.jpg'])


@POSIX_ONLY
def test_stale_temp_folders_are_removed(tmp_path: Path) -> None:
	root = tmp_path / 'facefusion'
	stale = root / f'clip.{dead_pid()}.abc_1234'
	live = root / f'clip.{os.getpid()}.xyz_5678'
	# what --keep-temp kept, and a folder of another program (or of 3.5.0): never removed
	kept = root / partial_files.kept_temp_folder_name(f'clip.{dead_pid()}.def_5678')
	other = root / 'clip'
	for folder in (stale, live, kept, other):
		folder.mkdir(parents=True)
		(folder / '00000001.png').write_bytes(b'x')
	created = temp_frames.create_temp_directory(tmp_path, 'clip.mp4')
	assert sorted(path.name for path in root.iterdir()) == sorted([live.name, kept.name, other.name, created.name])
	assert kept.name == 'clip.def_5678.kept'


# ---- 6. 16-bit images and EXIF -----------------------------------------------------------------------------------

def test_sixteen_bit_png_stays_sixteen_bit(run_cli: CliRunner, standin_models_dir: Path, data_dir: Path, tmp_path: Path) -> None:
	photo = cv2.imread(str(data_dir / 'obama.jpg'))
	noise = np.random.default_rng(7).integers(-120, 121, photo.shape)
	deep = np.clip(photo.astype(np.int64) * 257 + noise, 0, 65535).astype(np.uint16)
	target, output = tmp_path / 'deep.png', tmp_path / 'out.png'
	cv2.imwrite(str(target), deep)
	result = run_cli('headless-run', '-s', data_dir / 'biden.jpg', '-t', target, '-o', output, *SWAP_ARGUMENTS, models_path=standin_models_dir)
	assert result.returncode == 0, result.stderr
	written = cv2.imread(str(output), cv2.IMREAD_UNCHANGED)
	assert written.dtype == np.uint16 and written.shape == deep.shape
	as_eight_bits = ((written.astype(np.uint32) + 128) // 257).astype(np.uint8)
	changed = as_eight_bits != vision.read_image(str(target))
	# the face was swapped, the rest keeps the file's exact 16-bit values (the top band holds no face)
	assert 0.005 < changed.any(axis=2).mean() < 0.5
	assert np.array_equal(written[~changed], deep[~changed])
	assert np.array_equal(written[:40], deep[:40])
	# a changed value is the 8-bit result scaled onto the full range
	assert np.array_equal(written[changed], as_eight_bits[changed].astype(np.uint16) * 257)


@pytest.mark.parametrize('extension', ['.png', '.tiff'])
def test_sixteen_bit_round_trip_with_alpha(tmp_path: Path, extension: str) -> None:
	rng = np.random.default_rng(3)
	deep = np.dstack([rng.integers(0, 65536, (20, 30, 3)), rng.integers(1000, 60000, (20, 30))]).astype(np.uint16)
	cv2.imwrite(str(tmp_path / 'in.png'), deep)
	frame, alpha, original = vision.read_image_with_original(tmp_path / 'in.png')
	assert frame.dtype == np.uint8 and original.deep_frame.dtype == np.uint16 and original.deep_alpha is not None
	result = frame.copy()
	result[5:10, 5:10] = (10, 200, 30)
	vision.write_image(tmp_path / ('out' + extension), result, alpha=alpha, original=original)
	written = cv2.imread(str(tmp_path / ('out' + extension)), cv2.IMREAD_UNCHANGED)
	assert written.dtype == np.uint16
	expected = deep.copy()
	expected[5:10, 5:10, :3] = np.array((10, 200, 30), np.uint16) * 257
	assert np.array_equal(written, expected)
	# a format that holds 8 bits gets the 8-bit result
	vision.write_image(tmp_path / 'out.webp', result, 100, alpha, original)
	assert cv2.imread(str(tmp_path / 'out.webp'), cv2.IMREAD_UNCHANGED).dtype == np.uint8


def make_rotated_jpeg(data_dir: Path, path: Path) -> np.ndarray:
	"""A JPEG stored turned a quarter left with orientation 6 (turn right to view) and a camera model tag; returns
	the upright pixels."""
	from PIL import Image
	upright = cv2.imread(str(data_dir / 'obama.jpg'))
	stored = np.ascontiguousarray(np.rot90(upright))
	image = Image.fromarray(cv2.cvtColor(stored, cv2.COLOR_BGR2RGB))
	exif = Image.Exif()
	exif[0x0112] = 6
	exif[0x0110] = 'TestCam 9000'
	image.save(path, quality=95, exif=exif.tobytes())
	return upright


def test_jpeg_keeps_exif_without_orientation(run_cli: CliRunner, standin_models_dir: Path, data_dir: Path, tmp_path: Path) -> None:
	from PIL import Image
	target, output = tmp_path / 'turned.jpg', tmp_path / 'out.jpg'
	upright = make_rotated_jpeg(data_dir, target)
	result = run_cli('headless-run', '-s', data_dir / 'biden.jpg', '-t', target, '-o', output, *SWAP_ARGUMENTS, models_path=standin_models_dir)
	assert result.returncode == 0, result.stderr
	with Image.open(output) as written:
		exif = written.getexif()
		size = written.size
	assert exif.get(0x0110) == 'TestCam 9000'
	assert 0x0112 not in exif
	# upright pixels: the upright size, and the picture matches the upright photo away from the face
	assert size == (upright.shape[1], upright.shape[0])
	pixels = cv2.imread(str(output), cv2.IMREAD_IGNORE_ORIENTATION | cv2.IMREAD_COLOR)
	assert np.abs(pixels[:40].astype(np.int16) - upright[:40].astype(np.int16)).mean() < 4


@pytest.mark.parametrize('extension', ['.png', '.webp', '.jpg'])
def test_exif_goes_into_every_format_that_holds_it(data_dir: Path, tmp_path: Path, extension: str) -> None:
	from PIL import Image
	upright = make_rotated_jpeg(data_dir, tmp_path / 'turned.jpg')
	frame, alpha, original = vision.read_image_with_original(tmp_path / 'turned.jpg')
	alpha = np.full(frame.shape[:2], 200, np.uint8) if extension == '.webp' else None
	vision.write_image(tmp_path / ('out' + extension), frame, 90, alpha, original)
	with Image.open(tmp_path / ('out' + extension)) as written:
		written.load()
		assert written.getexif().get(0x0110) == 'TestCam 9000'
		assert 0x0112 not in written.getexif()
		assert written.size == (upright.shape[1], upright.shape[0])
	if extension == '.png':
		# the pixels are the same as without EXIF
		assert np.array_equal(cv2.imread(str(tmp_path / 'out.png')), frame)


# ---- 7. write-protected outputs ----------------------------------------------------------------------------------

@pytest.mark.skipif(sys.platform == 'win32', reason='POSIX modes')
@pytest.mark.parametrize('kind', ['image', 'video'])
def test_write_protected_output_is_refused(run_cli: CliRunner, data_dir: Path, short_clip: Path, tmp_path: Path, kind: str) -> None:
	target = data_dir / 'obama.jpg' if kind == 'image' else short_clip
	output = tmp_path / ('out.jpg' if kind == 'image' else 'out.mp4')
	output.write_bytes(b'keep me')
	output.chmod(0o444)
	result = run_cli('headless-run', '-s', data_dir / 'biden.jpg', '-t', target, '-o', output, *SWAP_ARGUMENTS)
	assert result.returncode == 1
	lines = facefusion_lines(result.stderr)
	assert len(lines) == 1 and 'write-protected (mode 444)' in lines[0], result.stderr
	assert output.read_bytes() == b'keep me' and stat.S_IMODE(output.stat().st_mode) == 0o444
	assert sorted(path.name for path in tmp_path.iterdir()) == [output.name]


def test_partial_names_carry_the_writer_pid(tmp_path: Path) -> None:
	media = partial_files.partial_media_name(tmp_path / 'my.clip.mp4')
	image = partial_files.partial_image_name(tmp_path / 'photo.png')
	assert media.name.startswith(f'.my.clip.{os.getpid()}.') and media.suffix == '.mp4'
	assert image.name.startswith(f'.photo.png.{os.getpid()}.') and image.suffix == '.tmp'
	for path in (media, image):
		path.write_bytes(b'x')
	# the writer (this process) is alive: nothing is stale
	assert partial_files.stale_partial_files(tmp_path) == []
