"""batch-run and a video on a real local Ray cluster (a head and two CPU workers) that lives in network and pid
namespaces of its own, so nothing it does can leave the machine (facefusion/testing/ray_cluster.py). Every output
is compared with the single-process run of the same options."""
from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import List, Sequence

import numpy as np
import pytest

from facefusion.testing.ray_cluster import LoopbackRayCluster, unavailable_reason
from facefusion.testing.synthetic_video import SyntheticClip, decode_audio
from facefusion.vision import read_image
from tests.conftest import ENTRY_POINT, read_frames

pytestmark = [pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason())), pytest.mark.slow]

SWAP = ('--face-detector-model', 'yunet', '--processors', 'face_swapper', '--output-video-quality', '100')


def run_in_cluster(cluster: LoopbackRayCluster, models_path: Path, arguments: Sequence[object], timeout: float = 240) -> 'object':
	environment = {'FACEFUSION_MODELS_PATH': str(models_path), 'FACEFUSION_RAY_NODE_IP': '127.0.0.1', 'PYTHONIOENCODING': 'utf-8'}
	return cluster.run([sys.executable, str(ENTRY_POINT), *[str(argument) for argument in arguments]], env=environment, capture_output=True, text=True, timeout=timeout)


def test_batch_run_on_the_cluster_equals_the_single_process_run(cluster: LoopbackRayCluster, run_cli: object, standin_models_dir: Path, data_dir: Path, three_shots: SyntheticClip, tmp_path: Path) -> None:
	targets = tmp_path / 'targets'
	targets.mkdir()
	for name in ('obama.jpg', 'obama_and_biden.jpg', 'biden.jpg'):
		shutil.copyfile(data_dir / name, targets / name)
	shutil.copyfile(three_shots.path, targets / 'clip.mp4')
	local, remote = tmp_path / 'local', tmp_path / 'remote'
	local.mkdir()
	remote.mkdir()
	common = ('batch-run', '-s', data_dir / 'obama.jpg', '-t', str(targets / '*'), *SWAP)
	result = run_cli(*common, '-o', str(local / '{target_name}{target_extension}'), models_path=standin_models_dir)
	assert result.returncode == 0, result.stderr
	# through Ray Client (ray://) where it is installed, else the head's address
	address = cluster.client_address or cluster.address
	result = run_in_cluster(cluster, standin_models_dir, [*common, '-o', str(remote / '{target_name}{target_extension}'), '--cluster-address', address])
	assert result.returncode == 0, result.stderr
	assert f'batch of 4 items on a Ray cluster (2 1-core CPU workers at {address})' in result.stderr
	assert sorted(os.listdir(remote)) == sorted(os.listdir(local)) == ['biden.jpg', 'clip.mp4', 'obama.jpg', 'obama_and_biden.jpg']
	for name in ('biden.jpg', 'obama.jpg', 'obama_and_biden.jpg'):
		assert np.array_equal(read_image(str(local / name)), read_image(str(remote / name))), name
	for left, right in zip(read_frames(local / 'clip.mp4'), read_frames(remote / 'clip.mp4'), strict=True):
		assert np.array_equal(left, right)
	assert np.array_equal(decode_audio(local / 'clip.mp4')[0], decode_audio(remote / 'clip.mp4')[0])


def test_a_video_in_three_segments_survives_a_killed_worker(cluster: LoopbackRayCluster, run_cli: object, standin_models_dir: Path, data_dir: Path, three_shots: SyntheticClip, tmp_path: Path) -> None:
	expected = tmp_path / 'local.mp4'
	common = ('headless-run', '-s', data_dir / 'biden.jpg', '-t', three_shots.path, *SWAP)
	assert run_cli(*common, '-o', expected, models_path=standin_models_dir).returncode == 0
	output_dir = tmp_path / 'out'
	output_dir.mkdir()
	killed: List[int] = []

	def kill_a_worker_mid_segment() -> None:
		# the first worker seen running a task is SIGKILLed: Ray restarts it and runs its task again
		deadline = time.monotonic() + 120
		while time.monotonic() < deadline and not killed:
			for pid in cluster.worker_pids('ClusterWorker.run'):
				cluster.kill_worker(pid)
				killed.append(pid)
				return
			time.sleep(0.02)

	killer = threading.Thread(target=kill_a_worker_mid_segment, daemon=True)
	killer.start()
	result = run_in_cluster(cluster, standin_models_dir, [*common, '-o', output_dir / 'out.mp4', '--cluster-address', cluster.address, '--log-level', 'debug'])
	killer.join(5)
	assert result.returncode == 0, result.stderr
	assert killed, 'no worker was seen running a task'
	assert 'in 4 parts on a Ray cluster' in result.stderr
	assert 'segments start at [0, 20, 40]' in result.stderr
	assert os.listdir(output_dir) == ['out.mp4']
	for index, (left, right) in enumerate(zip(read_frames(expected), read_frames(output_dir / 'out.mp4'), strict=True)):
		assert np.array_equal(left, right), f'frame {index} differs'
	expected_audio, expected_offset = decode_audio(expected)
	actual_audio, actual_offset = decode_audio(output_dir / 'out.mp4')
	assert np.array_equal(expected_audio, actual_audio) and expected_offset == actual_offset


def test_a_cluster_that_cannot_be_reached_is_one_clear_error(cluster: LoopbackRayCluster, standin_models_dir: Path, data_dir: Path, tmp_path: Path) -> None:
	started = time.monotonic()
	result = run_in_cluster(cluster, standin_models_dir, ['headless-run', '-s', data_dir / 'biden.jpg', '-t', data_dir / 'obama.jpg', '-o', tmp_path / 'out.jpg', '--cluster-address', '127.0.0.1:9', '--face-detector-model', 'yunet'], timeout=120)
	assert result.returncode != 0
	last_line = result.stderr.strip().splitlines()[-1]
	assert last_line.startswith('[FACEFUSION] cannot reach the Ray cluster at 127.0.0.1:9'), result.stderr
	assert time.monotonic() - started < 90
	assert not (tmp_path / 'out.jpg').exists()


def test_without_ray_the_option_says_how_to_install_it(standin_models_dir: Path, data_dir: Path, tmp_path: Path) -> None:
	import subprocess
	# ray made unimportable for this one process (a None entry in sys.modules makes `import ray` fail)
	code = 'import sys; sys.modules["ray"] = None; sys.argv = ["facefusion.py"] + sys.argv[1:]; from facefusion import core; core.main()'
	result = subprocess.run(
		[sys.executable, '-c', code, 'batch-run', '-t', str(data_dir / '*.jpg'), '-o', str(tmp_path / '{target_name}.jpg'), '--processors', 'face_debugger', '--cluster-address', 'auto'],
		capture_output=True, text=True, cwd=str(ENTRY_POINT.parent), env={**os.environ, 'FACEFUSION_MODELS_PATH': str(standin_models_dir)}, timeout=120
	)
	assert result.returncode != 0
	assert "pip install '.[cluster]'" in result.stderr.strip().splitlines()[-1]


def test_job_run_all_on_the_cluster_equals_the_local_run(cluster: LoopbackRayCluster, run_cli: object, standin_models_dir: Path, data_dir: Path, three_shots: SyntheticClip, tmp_path: Path) -> None:
	outputs = {}
	for place in ('local', 'remote'):
		jobs_path, output_dir = tmp_path / place / 'jobs', tmp_path / place / 'out'
		output_dir.mkdir(parents=True)
		for arguments in (
			('job-create', 'demo'),
			('job-add-step', 'demo', '-s', data_dir / 'obama.jpg', '-t', data_dir / 'obama_and_biden.jpg', '-o', output_dir / 'image.jpg', *SWAP),
			('job-add-step', 'demo', '-s', data_dir / 'biden.jpg', '-t', three_shots.path, '-o', output_dir / 'video.mp4', *SWAP),
			('job-submit', 'demo'),
			# a second job: on the cluster the two run side by side
			('job-create', 'other'),
			('job-add-step', 'other', '-s', data_dir / 'biden.jpg', '-t', data_dir / 'obama.jpg', '-o', output_dir / 'other.jpg', *SWAP),
			('job-submit', 'other')
		):
			assert run_cli(*arguments, '--jobs-path', jobs_path).returncode == 0
		run_all = ('job-run-all', '--jobs-path', jobs_path)
		if place == 'local':
			result = run_cli(*run_all, models_path=standin_models_dir)
		else:
			result = run_in_cluster(cluster, standin_models_dir, [*run_all, '--cluster-address', cluster.address])
		assert result.returncode == 0, result.stderr
		outputs[place] = output_dir
	assert 'in 4 parts on a Ray cluster' in result.stderr
	for name in ('image.jpg', 'other.jpg'):
		assert np.array_equal(read_image(str(outputs['local'] / name)), read_image(str(outputs['remote'] / name)))
	for left, right in zip(read_frames(outputs['local'] / 'video.mp4'), read_frames(outputs['remote'] / 'video.mp4'), strict=True):
		assert np.array_equal(left, right)
