"""A video split across device workers (--execution-device-ids 0 1): where the parts start, and that the joined
output is the one-device output frame by frame, with the same audio. On this CPU-only machine both "devices" run
the CPU provider, each worker process on its own core: the splitting, joining and retries are the same code a GPU
machine runs."""
from __future__ import annotations

import os
from pathlib import Path
from typing import List

import numpy as np
import pytest

from facefusion.config import RunConfig
from facefusion.testing.synthetic_video import SyntheticClip, decode_audio, make_synthetic_video
from facefusion.types import Frame
from facefusion.workflows.segments import CutBoundedFrames, Part, carries_state, plan_parts, why_not_split
from tests.conftest import read_frames

# quality 100 is x264's lossless mode: equal frames in give equal frames out, so "frame by frame" can be exact
LOSSLESS = ('--output-video-quality', '100')
SWAP = ('--face-detector-model', 'yunet', '--processors', 'face_swapper')
STATELESS = ('--face-tracker', 'none', '--temporal-smoothing', 'none', '--face-swapper-color-match', 'none')


@pytest.fixture(scope='module')
def one_shot(tmp_path_factory: pytest.TempPathFactory) -> SyntheticClip:
	path = tmp_path_factory.mktemp('one_shot') / 'one_shot.mp4'
	return make_synthetic_video(path, photos=('obama.jpg',), width=320, height=240, frame_count=40)


def test_parts_are_equal_chunks_searching_for_cuts_inside_only() -> None:
	parts = plan_parts(0, 60, workers=2, stateful=True)
	assert [(part.start, part.end, part.search_start, part.search_end) for part in parts] == [(0, 15, False, True), (15, 30, True, True), (30, 45, True, True), (45, 60, True, False)]
	assert all(not part.search_start and not part.search_end for part in plan_parts(10, 90, workers=2, stateful=False))
	assert plan_parts(0, 60, workers=1, stateful=True) == [Part(0, 0, 60, False, False)]
	# never shorter than the minimum
	assert len(plan_parts(0, 20, workers=4, stateful=True, min_frames=8)) == 2


def cut_bounded(part: Part, first: int, last: int, cuts: List[int]) -> List[int]:
	"""The frame indices CutBoundedFrames lets through from a stream of frames first..last whose shots change at
	cuts (each shot a flat grey of its own, which the real cut test tells apart)."""
	shot_of = lambda index: sum(1 for cut in cuts if index >= cut)  # noqa: E731
	frames = (Frame(index, np.full((64, 64, 3), 40 + 50 * (shot_of(index) % 4), np.uint8)) for index in range(first, last))
	return [frame.index for frame in CutBoundedFrames(part)(frames)]


def test_each_part_runs_from_the_first_cut_in_its_chunk_to_the_first_cut_in_the_next() -> None:
	cuts = [20, 40]
	parts = plan_parts(0, 60, workers=2, stateful=True)
	runs = [cut_bounded(part, part.start - 1 if part.search_start else part.start, 60 if part.search_end else part.end, cuts) for part in parts]
	assert runs == [list(range(0, 20)), list(range(20, 40)), list(range(40, 60)), []]
	# a cut exactly at a chunk bound starts the next part there
	assert cut_bounded(Part(1, 15, 30, True, True), 14, 60, [15, 45]) == list(range(15, 45))
	assert cut_bounded(Part(0, 0, 15, False, True), 0, 60, [15, 45]) == list(range(0, 15))
	# exact bounds for a stateless run
	assert cut_bounded(Part(1, 15, 30, False, False), 15, 30, cuts) == list(range(15, 30))


def test_what_carries_state_and_what_cannot_be_split() -> None:
	assert carries_state(RunConfig())
	assert not carries_state(RunConfig(face_tracker='none', temporal_smoothing='none', face_swapper_color_match='none'))
	assert why_not_split(RunConfig(), None, None) is None
	assert 'frame rate' in str(why_not_split(RunConfig(), '30', None))
	assert 'quality monitor' in str(why_not_split(RunConfig(quality_report='q.csv'), None, None))


def test_two_devices_give_the_one_device_frames_and_audio(run_cli: object, standin_models_dir: Path, data_dir: Path, three_shots: SyntheticClip, tmp_path: Path) -> None:
	one_device = tmp_path / 'one.mp4'
	two_devices = tmp_path / 'two.mp4'
	common = ('headless-run', '-s', data_dir / 'biden.jpg', '-t', three_shots.path, *SWAP, *LOSSLESS)
	result = run_cli(*common, '-o', one_device, models_path=standin_models_dir)
	assert result.returncode == 0, result.stderr
	result = run_cli(*common, '-o', two_devices, '--execution-device-ids', '0', '1', '--log-level', 'debug', models_path=standin_models_dir)
	assert result.returncode == 0, result.stderr
	# four parts, whose bounds the workers moved to the two cuts: three segments
	assert 'in 4 parts on 2 device workers' in result.stderr
	assert 'segments start at [0, 20, 40] (4 parts)' in result.stderr, result.stderr
	expected, actual = read_frames(one_device), read_frames(two_devices)
	assert len(actual) == len(expected) == 60
	for index, (left, right) in enumerate(zip(expected, actual)):
		assert np.array_equal(left, right), f'frame {index} differs'
	# the faces were really swapped (the stand-in swapper changes them), so equality is not "nothing happened"
	assert not np.array_equal(read_frames(three_shots.path)[10], actual[10])
	expected_audio, expected_offset = decode_audio(one_device)
	actual_audio, actual_offset = decode_audio(two_devices)
	assert np.array_equal(expected_audio, actual_audio) and expected_offset == actual_offset
	assert sorted(os.listdir(tmp_path)) == ['one.mp4', 'two.mp4']


def test_a_stateless_run_splits_a_single_shot_evenly(run_cli: object, standin_models_dir: Path, data_dir: Path, one_shot: SyntheticClip, tmp_path: Path) -> None:
	common = ('headless-run', '-s', data_dir / 'biden.jpg', '-t', one_shot.path, *SWAP, *STATELESS, *LOSSLESS)
	assert run_cli(*common, '-o', tmp_path / 'one.mp4', models_path=standin_models_dir).returncode == 0
	result = run_cli(*common, '-o', tmp_path / 'two.mp4', '--execution-device-ids', '0', '1', '--log-level', 'debug', models_path=standin_models_dir)
	assert result.returncode == 0, result.stderr
	assert 'in 4 parts on 2 device workers' in result.stderr and 'segments start at [0, 10, 20, 30]' in result.stderr
	for left, right in zip(read_frames(tmp_path / 'one.mp4'), read_frames(tmp_path / 'two.mp4'), strict=True):
		assert np.array_equal(left, right)


def test_a_failing_segment_fails_the_run_and_leaves_nothing(run_cli: object, standin_models_dir: Path, data_dir: Path, tmp_path: Path, three_shots: SyntheticClip) -> None:
	# a source without a face fails in every worker (the source identity is computed there)
	blank = tmp_path / 'blank.png'
	import cv2
	cv2.imwrite(str(blank), np.full((200, 200, 3), 128, np.uint8))
	output_dir = tmp_path / 'out'
	output_dir.mkdir()
	result = run_cli('headless-run', '-s', blank, '-t', three_shots.path, '-o', output_dir / 'out.mp4', *SWAP, '--execution-device-ids', '0', '1', models_path=standin_models_dir)
	assert result.returncode != 0
	assert 'face' in result.stderr.strip().splitlines()[-1].lower()
	assert os.listdir(output_dir) == []


def test_a_worker_killed_during_a_segment_is_replaced_and_its_segment_done_again(standin_models_dir: Path, data_dir: Path, three_shots: SyntheticClip, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
	import signal

	from facefusion.workflows.device_pool import DevicePool
	from facefusion.workflows.split_video import segment_output_name
	from facefusion.workflows.worker_tasks import WorkerTask

	monkeypatch.setenv('FACEFUSION_MODELS_PATH', str(standin_models_dir))
	output_path = str(tmp_path / 'out.mp4')
	config = RunConfig(source_paths=[str(data_dir / 'biden.jpg')], target_path=str(three_shots.path), output_path=output_path, face_detector_model='yunet', processors=['face_swapper'], models_path=str(standin_models_dir))
	tasks = [WorkerTask('segment', config.with_changes(output_path=segment_output_name(output_path, index)), start, start + 20, label=f'segment {index}') for index, start in enumerate((0, 20, 40))]
	pool = DevicePool(['0', '1'])
	killed: List[int] = []

	def kill_a_busy_worker(frames: int) -> None:
		# on the first frames reported: SIGKILL the worker that reported them (the one running a segment)
		if not killed:
			busy = [worker for worker in pool.workers if worker.task_index is not None]
			killed.append(busy[0].process.pid)
			os.kill(busy[0].process.pid, signal.SIGKILL)

	with pool:
		results = dict(pool.run(tasks, on_frames=kill_a_busy_worker))
	assert killed and sorted(results) == [0, 1, 2]
	outputs = [results[index].value for index in range(3)]
	assert [(output.start, output.frames) for output in outputs] == [(0, 20), (20, 20), (40, 20)]
	for output in outputs:
		assert len(read_frames(Path(output.path))) == 20
		os.remove(output.path)
	# the killed worker's half-written file carries its pid: the next run in the folder removes it
	from facefusion.partial_files import remove_stale_partial_files
	remove_stale_partial_files(tmp_path)
	assert os.listdir(tmp_path) == []


def test_ctrl_c_stops_every_device_worker_and_leaves_nothing(standin_models_dir: Path, data_dir: Path, tmp_path: Path) -> None:
	import signal
	import subprocess
	import sys
	import time

	from tests.conftest import ENTRY_POINT, cli_environment
	clip = tmp_path / 'long.mp4'
	make_synthetic_video(clip, photos=('obama.jpg', 'biden.jpg'), width=320, height=240, frame_count=300, cut_at=150, audio=True)
	output_directory = tmp_path / 'out'
	output_directory.mkdir()
	# a session of its own: Ctrl-C in a terminal reaches the whole process group, the device workers too
	process = subprocess.Popen(
		[sys.executable, str(ENTRY_POINT), 'headless-run', '-s', str(data_dir / 'biden.jpg'), '-t', str(clip), '-o', str(output_directory / 'long.mp4'), *SWAP, '--execution-device-ids', '0', '1'],
		env=cli_environment(standin_models_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
	)
	deadline = time.time() + 90
	while time.time() < deadline and len(list(output_directory.iterdir())) < 2:
		time.sleep(0.1)
	assert len(list(output_directory.iterdir())) >= 2, 'the two workers never started writing their segments'
	os.killpg(process.pid, signal.SIGINT)
	_, stderr = process.communicate(timeout=60)
	assert process.returncode == 130, stderr
	assert list(output_directory.iterdir()) == []
	# no worker outlives the run (a zombie is a process that has ended: this sandbox's pid 1 does not reap orphans)
	time.sleep(0.5)
	listed = subprocess.run(['ps', '-o', 'pid=,stat=,args=', '-s', str(process.pid)], capture_output=True, text=True).stdout.splitlines()
	assert [line for line in listed if line.split()[1][0] != 'Z'] == []


def test_a_pool_left_early_stops_the_abandoned_tasks_and_serves_the_next_run(standin_models_dir: Path, data_dir: Path, three_shots: SyntheticClip, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
	from facefusion.workflows.device_pool import DevicePool
	from facefusion.workflows.split_video import segment_output_name
	from facefusion.workflows.worker_tasks import WorkerTask

	monkeypatch.setenv('FACEFUSION_MODELS_PATH', str(standin_models_dir))
	output_path = str(tmp_path / 'out.mp4')
	config = RunConfig(source_paths=[str(data_dir / 'biden.jpg')], target_path=str(three_shots.path), output_path=output_path, face_detector_model='yunet', processors=['face_swapper'], models_path=str(standin_models_dir))
	tasks = [WorkerTask('segment', config.with_changes(output_path=segment_output_name(output_path, index)), start, start + 20) for index, start in enumerate((0, 20, 40))]
	with DevicePool(['0', '1']) as pool:
		for index, result in pool.run(tasks):
			os.remove(result.value.path)
			# the caller stops after the first part, as a failed part or Ctrl-C would make it
			break
		# the other worker's abandoned part was stopped: its partial file is gone, no result of it comes later
		assert sorted(os.listdir(tmp_path)) == []
		results = dict(pool.run(tasks))
	assert [(results[index].value.start, results[index].value.frames) for index in range(3)] == [(0, 20), (20, 20), (40, 20)]
	for result in results.values():
		os.remove(result.value.path)


def test_batch_run_items_across_two_devices_equal_the_one_device_run(run_cli: object, standin_models_dir: Path, data_dir: Path, tmp_path: Path) -> None:
	import shutil
	targets = tmp_path / 'targets'
	targets.mkdir()
	for name in ('obama.jpg', 'obama_and_biden.jpg', 'biden.jpg'):
		shutil.copyfile(data_dir / name, targets / name)
	outputs = {}
	for devices in (('0',), ('0', '1')):
		output_dir = tmp_path / ('out-' + '-'.join(devices))
		output_dir.mkdir()
		result = run_cli('batch-run', '-s', data_dir / 'obama.jpg', '-t', str(targets / '*'), '-o', str(output_dir / '{target_name}.png'), *SWAP, '--execution-device-ids', *devices, models_path=standin_models_dir)
		assert result.returncode == 0, result.stderr
		outputs[devices] = output_dir
	assert 'batch of 3 items on 2 device workers' in result.stderr
	from facefusion.vision import read_image
	for name in ('obama.png', 'obama_and_biden.png', 'biden.png'):
		assert np.array_equal(read_image(str(outputs[('0',)] / name)), read_image(str(outputs[('0', '1')] / name))), name
