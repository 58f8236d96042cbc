"""The job queue (3.5.0's job-* commands): job files in 3.5.0's format and folders, the step edits, runs through the
real workflows on stand-in models and the real YuNet, a job killed with SIGKILL and resumed, the lock, and a step
whose input vanished."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

import cv2
import numpy as np
import pytest

from facefusion import core
from facefusion.cli import program
from facefusion.jobs.finalize import finalize_output
from facefusion.jobs.lock import JobLock
from facefusion.jobs.steps import step_args_from_config

from conftest import ENTRY_POINT, UNREACHABLE_MIRROR, cli_environment

# 3.5.0's step keys for the processors both programs have (its program.py registers these with job_store)
UPSTREAM_STEP_KEYS: List[str] = [
	'source_paths', 'target_path', 'output_path',
	'face_detector_model', 'face_detector_size', 'face_detector_margin', 'face_detector_angles', 'face_detector_score',
	'face_landmarker_model', 'face_landmarker_score',
	'face_selector_mode', 'face_selector_order', 'face_selector_gender', 'face_selector_race', 'face_selector_age_start',
	'face_selector_age_end', 'reference_face_position', 'reference_face_distance', 'reference_frame_number',
	'face_occluder_model', 'face_parser_model', 'face_mask_types', 'face_mask_areas', 'face_mask_regions', 'face_mask_blur',
	'face_mask_padding', 'voice_extractor_model', 'trim_frame_start', 'trim_frame_end', 'temp_frame_format', 'keep_temp',
	'output_image_quality', 'output_image_scale', 'output_audio_encoder', 'output_audio_quality', 'output_audio_volume',
	'output_video_encoder', 'output_video_preset', 'output_video_quality', 'output_video_scale', 'output_video_fps',
	'processors', 'face_debugger_items', 'face_swapper_model', 'face_swapper_pixel_boost', 'face_swapper_weight',
]
DEBUGGER = ['--processors', 'face_debugger', '--face-detector-model', 'yunet']


@pytest.fixture
def jobs_path(tmp_path: Path, standin_models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
	monkeypatch.setenv('FACEFUSION_MODELS_PATH', str(standin_models_dir))
	monkeypatch.setenv('FACEFUSION_DOWNLOAD_BASE_URL', UNREACHABLE_MIRROR)
	# no facefusion.ini of the developer's
	monkeypatch.chdir(tmp_path)
	return tmp_path / 'jobs'


def job_cli(jobs_path: Path, *arguments: Any) -> int:
	return core.cli([str(argument) for argument in arguments] + ['--jobs-path', str(jobs_path)])


def job_file(jobs_path: Path, status: str, job_id: str) -> Dict[str, Any]:
	return json.loads((jobs_path / status / (job_id + '.json')).read_text())


def step_statuses(jobs_path: Path, status: str, job_id: str) -> List[str]:
	return [step['status'] for step in job_file(jobs_path, status, job_id)['steps']]


def copy_photo(data_dir: Path, name: str, destination: Path) -> Path:
	shutil.copyfile(data_dir / name, destination)
	return destination


def test_manager_commands_edit_drafted_jobs_in_3_5_0_format(jobs_path: Path, data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
	target = str(data_dir / 'obama.jpg')
	assert job_cli(jobs_path, 'job-create', 'edit') == 0
	assert sorted(path.name for path in jobs_path.iterdir() if not path.name.startswith('.')) == ['completed', 'drafted', 'failed', 'queued']
	assert job_cli(jobs_path, 'job-create', 'edit') == 1
	assert 'already exists' in capsys.readouterr().err
	assert job_cli(jobs_path, 'job-submit', 'edit') == 1
	assert 'has no steps' in capsys.readouterr().err

	assert job_cli(jobs_path, 'job-add-step', 'edit', *DEBUGGER, '-t', target, '-o', tmp_path / 'a.png') == 0
	assert job_cli(jobs_path, 'job-add-step', 'edit', '-t', target, '-o', tmp_path / 'b.png', '--face-mask-padding', '10') == 0
	assert job_cli(jobs_path, 'job-insert-step', 'edit', '0', '-t', target, '-o', tmp_path / 'first.png') == 0
	assert job_cli(jobs_path, 'job-remix-step', 'edit', '-1', *DEBUGGER, '-o', tmp_path / 'remix.png') == 0
	assert job_cli(jobs_path, 'job-remove-step', 'edit', '7') == 1
	assert 'has no step 7' in capsys.readouterr().err

	content = job_file(jobs_path, 'drafted', 'edit')
	assert set(content) == {'version', 'date_created', 'date_updated', 'steps'} and content['version'] == '1'
	steps = content['steps']
	assert [Path(step['args']['output_path']).name for step in steps] == ['first.png', 'a.png', 'b.png', 'remix.png']
	assert all(step['status'] == 'drafted' for step in steps)
	# the remix targets step 2's step file, named as 3.5.0 names it
	assert steps[3]['args']['target_path'] == str(tmp_path / 'b-edit-2.png')
	assert steps[2]['args']['face_mask_padding'] == [10, 10, 10, 10]
	assert steps[1]['args']['processors'] == ['face_debugger']

	assert job_cli(jobs_path, 'job-remove-step', 'edit', '0') == 0
	assert [Path(step['args']['output_path']).name for step in job_file(jobs_path, 'drafted', 'edit')['steps']] == ['a.png', 'b.png', 'remix.png']
	capsys.readouterr()
	assert job_cli(jobs_path, 'job-list', 'drafted') == 0
	listing = capsys.readouterr().out.splitlines()
	assert listing[0].split() == ['job', 'id', 'steps', 'date', 'created', 'date', 'updated', 'job', 'status']
	assert listing[2].split()[:2] == ['edit', '3'] and listing[2].split()[-1] == 'drafted'

	assert job_cli(jobs_path, 'job-submit', 'edit') == 0
	assert step_statuses(jobs_path, 'queued', 'edit') == ['queued'] * 3
	assert not (jobs_path / 'drafted' / 'edit.json').exists()
	# a queued job takes no more steps (3.5.0's help says drafted; its code would edit even a running job)
	assert job_cli(jobs_path, 'job-add-step', 'edit', '-t', target, '-o', tmp_path / 'c.png') == 1
	assert 'drafted jobs only' in capsys.readouterr().err
	assert job_cli(jobs_path, 'job-run', 'nonexistent') == 1
	assert 'not found' in capsys.readouterr().err
	assert job_cli(jobs_path, 'job-create', '../escape') == 1
	assert 'invalid job id' in capsys.readouterr().err

	for job_id in ('one', 'two'):
		assert job_cli(jobs_path, 'job-create', job_id) == 0
	assert job_cli(jobs_path, 'job-add-step', 'one', '-t', target, '-o', tmp_path / 'one.png') == 0
	# 'two' has no step and is the older file (oldest first, as in 3.5.0): --halt-on-error stops there, without it
	# submit-all reports it and submits the rest
	assert job_cli(jobs_path, 'job-submit-all', '--halt-on-error') == 1
	assert 'stopped at job two' in capsys.readouterr().err
	assert (jobs_path / 'drafted' / 'one.json').exists()
	assert job_cli(jobs_path, 'job-submit-all') == 1
	assert (jobs_path / 'queued' / 'one.json').exists() and (jobs_path / 'drafted' / 'two.json').exists()
	assert job_cli(jobs_path, 'job-delete', 'two') == 0
	assert job_cli(jobs_path, 'job-delete-all') == 0
	assert not list(jobs_path.glob('*/*.json'))


def test_job_run_runs_steps_remixes_and_finalizes(jobs_path: Path, data_dir: Path, tmp_path: Path) -> None:
	target = str(data_dir / 'obama.jpg')
	assert job_cli(jobs_path, 'job-create', 'run') == 0
	assert job_cli(jobs_path, 'job-add-step', 'run', '--face-detector-model', 'yunet', '-s', data_dir / 'biden.jpg', '-t', target, '-o', tmp_path / 'swap.png') == 0
	assert job_cli(jobs_path, 'job-remix-step', 'run', '0', *DEBUGGER, '-o', tmp_path / 'debug.png') == 0
	assert job_cli(jobs_path, 'job-submit', 'run') == 0
	assert job_cli(jobs_path, 'job-run', 'run') == 0

	assert step_statuses(jobs_path, 'completed', 'run') == ['completed', 'completed']
	assert sorted(path.name for path in tmp_path.iterdir() if path.is_file()) == ['debug.png', 'swap.png']
	original, swapped, debugged = (cv2.imread(str(path)) for path in (data_dir / 'obama.jpg', tmp_path / 'swap.png', tmp_path / 'debug.png'))
	assert swapped.shape == original.shape
	assert np.abs(swapped.astype(np.int16) - original.astype(np.int16)).max() > 0
	# the remix drew on the swapped result, not on the original
	assert np.abs(debugged.astype(np.int16) - swapped.astype(np.int16)).max() > 0
	# a completed job is not run again
	assert job_cli(jobs_path, 'job-run', 'run') == 1


def test_hand_written_3_5_0_job_file_runs(jobs_path: Path, data_dir: Path, tmp_path: Path) -> None:
	"""A job file as 3.5.0's job-add-step writes it (copied from one it wrote: every step key it registers, its
	defaults, keep_temp and source_paths as null, keys of processors this engine lacks)."""
	args: Dict[str, Any] = {
		'source_paths': None, 'target_path': str(data_dir / 'obama.jpg'), 'output_path': str(tmp_path / 'Upstream.PNG'),
		'face_detector_model': 'yunet', 'face_detector_size': '640x640', 'face_detector_margin': [0, 0, 0, 0],
		'face_detector_angles': [0], 'face_detector_score': 0.5, 'face_landmarker_model': '2dfan4', 'face_landmarker_score': 0.5,
		'face_selector_mode': 'reference', 'face_selector_order': 'large-small', 'face_selector_gender': None,
		'face_selector_race': None, 'face_selector_age_start': None, 'face_selector_age_end': None,
		'reference_face_position': 0, 'reference_face_distance': 0.3, 'reference_frame_number': 0,
		'face_occluder_model': 'xseg_1', 'face_parser_model': 'bisenet_resnet_34', 'face_mask_types': ['box'],
		'face_mask_areas': ['upper-face', 'lower-face', 'mouth'], 'face_mask_regions': ['skin', 'nose'], 'face_mask_blur': 0.3,
		'face_mask_padding': [0, 0, 0, 0], 'voice_extractor_model': 'kim_vocal_2', 'trim_frame_start': None,
		'trim_frame_end': None, 'temp_frame_format': 'png', 'keep_temp': None, 'output_image_quality': 80,
		'output_image_scale': 1.0, 'output_audio_encoder': 'flac', 'output_audio_quality': 80, 'output_audio_volume': 100,
		'output_video_encoder': 'libx264', 'output_video_preset': 'veryfast', 'output_video_quality': 80,
		'output_video_scale': 1.0, 'output_video_fps': None, 'processors': ['face_debugger'],
		'age_modifier_model': 'styleganex_age', 'age_modifier_direction': 0, 'background_remover_model': 'rmbg_2.0',
		'background_remover_color': [0, 0, 0, 0], 'expression_restorer_areas': ['upper-face', 'lower-face'],
		'face_enhancer_model': 'gfpgan_1.4', 'face_enhancer_blend': 80, 'face_enhancer_weight': 0.5,
		'face_editor_head_roll': 0.0, 'frame_colorizer_size': '256x256', 'deep_swapper_model': 'iperov/elon_musk_224',
		'deep_swapper_morph': 100, 'face_debugger_items': ['face-landmark-5/68', 'face-mask'],
		'face_swapper_model': 'hyperswap_1a_256', 'face_swapper_pixel_boost': '256x256', 'face_swapper_weight': 0.5,
		'lip_syncer_model': 'wav2lip_gan_96', 'lip_syncer_weight': 0.5,
	}
	content = {
		'version': '1', 'date_created': '2025-11-20T10:15:30.123456+01:00', 'date_updated': '2025-11-20T10:16:02.654321+01:00',
		'steps': [{'args': args, 'status': 'queued'}],
	}
	(jobs_path / 'queued').mkdir(parents=True)
	(jobs_path / 'queued' / 'upstream-2025-11-20-10-15-30.json').write_text(json.dumps(content, indent=4))

	assert job_cli(jobs_path, 'job-run-all') == 0
	# 3.5.0 lower-cases the extension of step files; the output keeps the name the step gave
	output = cv2.imread(str(tmp_path / 'Upstream.PNG'))
	assert output is not None and output.shape == cv2.imread(str(data_dir / 'obama.jpg')).shape
	done = job_file(jobs_path, 'completed', 'upstream-2025-11-20-10-15-30')
	assert done['steps'][0]['status'] == 'completed'
	# every key survives, also those of processors this engine does not have
	assert done['steps'][0]['args'] == args
	assert done['date_created'] == content['date_created'] and done['date_updated'] != content['date_updated']


def test_steps_written_here_carry_3_5_0_step_keys_and_read_back(tmp_path: Path, data_dir: Path) -> None:
	"""The other way round: a step written here has every key 3.5.0's runner applies, with values its options accept."""
	config = program.build_config([
		'job-add-step', 'x', '-s', str(data_dir / 'biden.jpg'), '-t', str(data_dir / 'obama.jpg'), '-o', str(tmp_path / 'o.mp4'),
		'--face-detector-margin', '5', '10', '--face-swapper-model', 'inswapper_128', '--face-landmarks-export', 'lm.json'
	])
	args = step_args_from_config(config)
	assert not [key for key in UPSTREAM_STEP_KEYS if key not in args]
	assert args['face_detector_margin'] == [5, 10, 5, 10]
	assert args['face_swapper_pixel_boost'] == '128x128'
	# 3.5.0 needs the encoders named (its defaults are the first available ones)
	assert args['output_video_encoder'] and args['output_audio_encoder'] == 'aac'
	assert args['voice_extractor_model'] == 'kim_vocal_2'
	# every path absolute, so the job runs from any folder
	assert args['face_landmarks_export'] == os.path.abspath('lm.json')
	json.dumps(args)


def test_step_with_a_vanished_input_fails_alone_and_retry_completes(jobs_path: Path, data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
	vanishing = copy_photo(data_dir, 'obama.jpg', tmp_path / 'vanishing.jpg')
	assert job_cli(jobs_path, 'job-create', 'gone') == 0
	assert job_cli(jobs_path, 'job-add-step', 'gone', *DEBUGGER, '-t', vanishing, '-o', tmp_path / 'first.png') == 0
	assert job_cli(jobs_path, 'job-add-step', 'gone', *DEBUGGER, '-t', data_dir / 'biden.jpg', '-o', tmp_path / 'second.png') == 0
	assert job_cli(jobs_path, 'job-remix-step', 'gone', '0', *DEBUGGER, '-o', tmp_path / 'third.png') == 0
	assert job_cli(jobs_path, 'job-submit', 'gone') == 0
	vanishing.unlink()
	capsys.readouterr()

	assert job_cli(jobs_path, 'job-run', 'gone') == 1
	err = capsys.readouterr().err
	assert f'step 0 failed: target not found: {vanishing}' in err
	assert 'step 2 failed: step 2 of job gone remixes step 0, whose result is missing' in err
	assert 'job-retry gone' in err
	# the step that could run did, and its output is there
	assert step_statuses(jobs_path, 'failed', 'gone') == ['failed', 'completed', 'failed']
	assert (tmp_path / 'second.png').is_file() and not (tmp_path / 'first.png').exists()

	copy_photo(data_dir, 'obama.jpg', vanishing)
	assert job_cli(jobs_path, 'job-retry', 'gone') == 0
	assert step_statuses(jobs_path, 'completed', 'gone') == ['completed'] * 3
	assert all((tmp_path / name).is_file() for name in ('first.png', 'second.png', 'third.png'))
	assert not list(tmp_path.glob('*-gone-*'))


def test_a_3_5_0_step_this_engine_cannot_run_fails_with_the_reason(jobs_path: Path, data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
	args = {'target_path': str(data_dir / 'obama.jpg'), 'output_path': str(tmp_path / 'o.png'), 'processors': ['lip_syncer']}
	(jobs_path / 'queued').mkdir(parents=True)
	(jobs_path / 'queued' / 'lips.json').write_text(json.dumps({'version': '1', 'date_created': '2025-11-20T10:00:00+00:00', 'date_updated': None, 'steps': [{'args': args, 'status': 'queued'}]}))
	(jobs_path / 'queued' / 'broken.json').write_text('{"version": "1", "steps": [')
	assert job_cli(jobs_path, 'job-run', 'lips') == 1
	assert "invalid choice: 'lip_syncer'" in capsys.readouterr().err
	assert job_cli(jobs_path, 'job-run', 'broken') == 1
	assert 'not valid JSON' in capsys.readouterr().err


def test_concat_joins_step_videos_in_order(tmp_path: Path) -> None:
	from facefusion.testing.synthetic_video import make_synthetic_video
	from facefusion.video.probe import probe_video
	first, second = tmp_path / 'o-j-0.mp4', tmp_path / 'o-j-1.mp4'
	make_synthetic_video(first, width=96, height=64, frame_count=10, audio=False)
	make_synthetic_video(second, width=96, height=64, frame_count=7, audio=False)
	finalize_output(str(tmp_path / 'o.mp4'), [str(first), str(second)])
	assert probe_video(str(tmp_path / 'o.mp4')).frame_count == 17
	assert sorted(path.name for path in tmp_path.iterdir()) == ['o.mp4']


def test_stale_lock_of_a_dead_process_is_taken_over_and_a_live_one_refuses(jobs_path: Path, data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
	assert job_cli(jobs_path, 'job-create', 'locked') == 0
	assert job_cli(jobs_path, 'job-add-step', 'locked', *DEBUGGER, '-t', data_dir / 'obama.jpg', '-o', tmp_path / 'o.png') == 0
	# held by a live holder (another open file description: flock conflicts even within one process)
	with JobLock(str(jobs_path), 'locked', 'test'):
		assert job_cli(jobs_path, 'job-submit', 'locked') == 1
		assert f'job locked is in use by process {os.getpid()}' in capsys.readouterr().err
	# a lock file a dead process left: its pid is written in it but no process holds it
	dead = subprocess.Popen([sys.executable, '-c', 'pass'])
	dead.wait()
	(jobs_path / '.locks' / 'locked.lock').write_bytes(b'\0' + str(dead.pid).encode())
	assert job_cli(jobs_path, 'job-submit', 'locked') == 0
	assert f'taking over the lock of process {dead.pid}' in capsys.readouterr().err


def wait_for(predicate: Any, timeout: float, what: str) -> None:
	deadline = time.monotonic() + timeout
	while not predicate():
		if time.monotonic() > deadline:
			raise AssertionError(f'timed out waiting for {what}')
		time.sleep(0.02)


def started_step(jobs_path: Path, job_id: str) -> bool:
	try:
		return step_statuses(jobs_path, 'queued', job_id)[1] == 'started'
	except (OSError, ValueError, IndexError):
		return False


@pytest.mark.parametrize('signum, left_in, left_status', [
	(signal.SIGKILL, 'queued', 'started'),
	# SIGTERM is handled like Ctrl-C: the run marks its step failed and moves the job to failed on the way out
	(signal.SIGTERM, 'failed', 'failed'),
])
def test_a_job_killed_mid_run_is_left_whole_and_retry_completes(signum: int, left_in: str, left_status: str, jobs_path: Path, data_dir: Path, tmp_path: Path, standin_models_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
	from facefusion.testing.synthetic_video import make_synthetic_video
	from facefusion.video.probe import probe_video
	clip = tmp_path / 'clip.mp4'
	make_synthetic_video(clip, width=160, height=120, frame_count=60)
	output = tmp_path / 'out'
	output.mkdir()
	assert job_cli(jobs_path, 'job-create', 'kill') == 0
	assert job_cli(jobs_path, 'job-add-step', 'kill', *DEBUGGER, '-t', data_dir / 'obama.jpg', '-o', output / 'photo.png') == 0
	assert job_cli(jobs_path, 'job-add-step', 'kill', *DEBUGGER, '--face-tracker', 'none', '-t', clip, '-o', output / 'clip.mp4') == 0
	assert job_cli(jobs_path, 'job-submit', 'kill') == 0

	log = (tmp_path / 'killed.log').open('w')
	process = subprocess.Popen(
		[sys.executable, str(ENTRY_POINT), 'job-run', 'kill', '--jobs-path', str(jobs_path)], cwd=str(tmp_path),
		env=cli_environment(standin_models_dir), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
	)
	try:
		wait_for(lambda: started_step(jobs_path, 'kill'), 60, 'the video step to start')
		# a second job-run of the same job while the first holds it is refused
		assert job_cli(jobs_path, 'job-run', 'kill') == 1
		assert f'job kill is in use by process {process.pid}' in capsys.readouterr().err
	finally:
		os.killpg(process.pid, signum)
		process.wait(timeout=60)
		log.close()
	assert process.returncode == (-signal.SIGKILL if signum == signal.SIGKILL else 128 + signum)

	# whole, in one folder: the photo step done, the video step started (SIGKILL) or failed (SIGTERM)
	assert step_statuses(jobs_path, left_in, 'kill') == ['completed', left_status]
	assert len(list(jobs_path.glob('*/kill.json'))) == 1
	assert not (output / 'clip.mp4').exists()
	assert job_cli(jobs_path, 'job-retry', 'kill') == 0
	err = capsys.readouterr().err
	if signum == signal.SIGKILL:
		# the lock file is left with the dead pid in it, and taken over
		assert f'taking over the lock of process {process.pid}' in err
	assert 'resuming, 1 of 2 steps are done already' in err
	assert 'processing step 1 of 2' not in err
	assert step_statuses(jobs_path, 'completed', 'kill') == ['completed', 'completed']
	assert probe_video(str(output / 'clip.mp4')).frame_count == 60
	assert sorted(path.name for path in output.iterdir() if not path.name.startswith('.')) == ['clip.mp4', 'photo.png']
