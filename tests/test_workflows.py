"""The workflows on their typed job: a video job is planned once, and its output does not depend on how many worker
threads process the frames (the analyse stage owns the faces; processors only read them)."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import List

import numpy as np
import pytest

from facefusion import vision
from facefusion.cli import program
from facefusion.config import RunConfig
from facefusion.testing.synthetic_video import make_synthetic_video
from facefusion.video.io import VideoReader
from facefusion.workflows.engine import engine_for
from facefusion.workflows.job import VideoJob, check_job_paths, plan_video_job
from facefusion.workflows.video import run_video_job

DATA_DIR = Path(__file__).resolve().parent / 'data'


@pytest.fixture(scope='module')
def two_face_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
	"""Two real faces over 24 frames with a moving camera, so the tracker carries them between keyframes."""
	path = tmp_path_factory.mktemp('clips') / 'two_faces.mp4'
	make_synthetic_video(path, photos=('obama_and_biden.jpg',), width=480, height=270, frame_count=24, audio=False)
	return path


def video_config(standin_models_dir: Path, clip: Path, output: Path, *options: str) -> RunConfig:
	return program.build_config([
		'headless-run', '-s', str(DATA_DIR / 'biden.jpg'), '-t', str(clip), '-o', str(output), '--models-path', str(standin_models_dir),
		'--face-detector-model', 'yunet', '--face-selector-mode', 'many', *options
	])


def run_with_workers(config: RunConfig, workers: int) -> VideoJob:
	job = dataclasses.replace(plan_video_job(config, check_job_paths(config)), process_workers=workers)
	source_frames = [vision.read_image(path) for path in job.paths.source_paths]
	with engine_for(config, None) as engine:
		run_video_job(job, engine, source_frames)
	return job


@pytest.mark.parametrize('options', [
	# the weight mixes each target face's own embedding in: the embedding must come from the analysis, not from
	# whichever worker thread happened to compute it first
	('--face-swapper-weight', '0.8'),
	('--face-swapper-weight', '0.8', '--face-swapper-batching', 'always'),
])
def test_output_is_byte_identical_with_one_and_four_process_workers(standin_models_dir: Path, two_face_clip: Path, tmp_path: Path, options: List[str]) -> None:
	outputs = []
	for workers in (1, 4):
		output = tmp_path / f'workers-{workers}.mp4'
		job = run_with_workers(video_config(standin_models_dir, two_face_clip, output, *options), workers)
		assert job.process_workers == workers
		outputs.append(output.read_bytes())
	assert outputs[0] == outputs[1]
	# and the faces were swapped: frames differ from the input by far more than the encoder's noise
	changed = [int(np.abs(output.astype(np.int16) - target.astype(np.int16)).max()) for output, target in zip(read_frames(tmp_path / 'workers-4.mp4'), read_frames(two_face_clip))]
	assert len(changed) == 24 and min(changed) > 40


def test_tracker_cues_made_ahead_give_the_same_output(standin_models_dir: Path, two_face_clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
	"""Where the thread plan has a core for it (GPU providers), a stage of its own makes the tracker's stateless
	per-frame cues ahead of the analysis: the output is the same, byte for byte, as when the analysis makes them."""
	from facefusion.tracking import tracker as tracker_module
	made: List[int] = []
	real_frame_cues = tracker_module.frame_cues

	def counted_frame_cues(*arguments: object) -> object:
		made.append(1)
		return real_frame_cues(*arguments)
	monkeypatch.setattr(tracker_module, 'frame_cues', counted_frame_cues)
	outputs = []
	for cue_workers in (0, 1):
		output = tmp_path / f'cues-{cue_workers}.mp4'
		config = video_config(standin_models_dir, two_face_clip, output, '--face-swapper-weight', '0.8')
		job = dataclasses.replace(plan_video_job(config, check_job_paths(config)), process_workers=2, cue_workers=cue_workers)
		source_frames = [vision.read_image(path) for path in job.paths.source_paths]
		with engine_for(config, None) as engine:
			run_video_job(job, engine, source_frames)
		outputs.append(output.read_bytes())
		# the cue stage ran only when the job has a worker for it, once per frame
		assert len(made) == 24 * cue_workers
	assert outputs[0] == outputs[1]


def read_frames(path: Path) -> List[np.ndarray]:
	reader = VideoReader(str(path))
	try:
		return [frame.pixels for frame in reader]
	finally:
		reader.close()


def test_video_job_holds_the_plan(standin_models_dir: Path, two_face_clip: Path, tmp_path: Path) -> None:
	config = video_config(standin_models_dir, two_face_clip, tmp_path / 'out.mp4', '--trim-frame-start', '4', '--trim-frame-end', '20')
	job = plan_video_job(config, check_job_paths(config))
	assert (job.trim_start, job.trim_end, job.frame_count) == (4, 20, 16)
	assert job.fps == 25.0
	assert job.geometry.frame_size == (480, 270)
	assert job.routes.decoder.backend == 'ffmpeg'
	with pytest.raises(dataclasses.FrozenInstanceError):
		job.trim_start = 0  # type: ignore[misc]
