"""The global thread plan: ONNX Runtime intra-op threads × concurrent model calls ≤ cores on the CPU provider."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facefusion.config import RunConfig
from facefusion.inference.call_samples import RECORDER, isolated_times, measured_parallelism
from facefusion.inference.manager import InferenceManager
from facefusion.inference.thread_plan import plan_threads
from facefusion.testing.standin_models import write_standin_models


@pytest.mark.parametrize('cores, thread_count', [(1, 8), (2, 8), (2, 1), (4, 2), (16, 8), (16, 3), (6, 4)])
def test_workers_times_intra_op_threads_fit_the_cores(cores: int, thread_count: int) -> None:
	plan = plan_threads(RunConfig(execution_thread_count=thread_count), cores=cores)
	assert 1 <= plan.process_workers <= min(cores, thread_count)
	assert plan.intra_op_threads >= 1
	assert plan.process_workers * plan.intra_op_threads <= cores
	# no core left idle when the workers do not take them all
	assert cores - plan.process_workers * plan.intra_op_threads < plan.process_workers


def test_one_call_at_a_time_gets_every_core() -> None:
	assert plan_threads(RunConfig(), concurrent_calls=1, cores=8).intra_op_threads == 8


def test_gpu_providers_keep_onnx_runtime_defaults() -> None:
	plan = plan_threads(RunConfig(execution_providers=['cuda']), cores=16)
	assert plan.intra_op_threads == 0 and plan.process_workers == 8
	# the decoder keeps ffmpeg's threads to keep up with the device
	assert plan.decoder_threads == 0


@pytest.mark.parametrize('cores', [1, 2, 16])
def test_cpu_providers_decode_on_one_thread(cores: int) -> None:
	"""The workers keep the cores busy on the CPU provider: ffmpeg's decoder gets one thread, not one per core, and
	the tracker's cues stay on the analysis thread."""
	plan = plan_threads(RunConfig(), cores=cores)
	assert plan.decoder_threads == 1 and plan.cue_workers == 0


@pytest.mark.parametrize('cores, thread_count, cue_workers', [(16, 4, 1), (16, 8, 1), (4, 4, 0), (3, 2, 0), (4, 2, 1)])
def test_gpu_providers_make_the_tracker_cues_ahead_where_a_core_is_spare(cores: int, thread_count: int, cue_workers: int) -> None:
	plan = plan_threads(RunConfig(execution_providers=['cuda'], execution_thread_count=thread_count), cores=cores)
	assert plan.cue_workers == cue_workers


@pytest.mark.parametrize('providers, size, threads', [
	(['cpu'], (640, 360), 1), (['cpu'], (1024, 576), 1), (['cpu'], (1280, 720), 0), (['cpu'], (1920, 1080), 0), (['cuda'], (640, 360), 0)
])
def test_small_frames_encode_on_one_thread_on_the_cpu_provider(providers: list, size: tuple, threads: int) -> None:
	from facefusion.inference.thread_plan import encoder_threads
	assert encoder_threads(plan_threads(RunConfig(execution_providers=providers), cores=2), *size) == threads


def test_a_video_job_carries_the_encoder_threads_to_the_writer(tmp_path: Path) -> None:
	"""Planned from the target: a 320x240 clip on the CPU provider is encoded by one thread."""
	from facefusion.testing.synthetic_video import make_synthetic_video
	from facefusion.workflows.job import JobPaths, plan_video_job
	target = tmp_path / 'clip.mp4'
	make_synthetic_video(target, frame_count=5, audio=False)
	job = plan_video_job(RunConfig(target_path=str(target), output_path=str(tmp_path / 'out.mp4')), JobPaths((), str(target), 'video', str(tmp_path / 'out.mp4')))
	assert job.encoder_threads == 1


def test_sessions_and_the_video_workers_follow_one_plan(tmp_path: Path) -> None:
	write_standin_models(tmp_path, ['inswapper_128', 'arcface_w600k_r50'])
	config = RunConfig(models_path=str(tmp_path))
	manager = InferenceManager(config)
	plan = manager.thread_plan
	assert plan_threads(config).process_workers == plan.process_workers
	for name in ('inswapper_128', 'arcface_w600k_r50'):
		options = manager.get(name).session.get_session_options()
		assert options.intra_op_num_threads == plan.intra_op_threads
	assert plan.process_workers * plan.intra_op_threads <= plan.cores


def test_recorded_calls_replay_alone(tmp_path: Path) -> None:
	"""The benchmark's isolated times: what a model ran in the run, replayed one call at a time."""
	write_standin_models(tmp_path, ['inswapper_128'])
	session = InferenceManager(RunConfig(models_path=str(tmp_path), face_swapper_batching='never')).get('inswapper_128')
	RECORDER.reset()
	RECORDER.enabled = True
	try:
		feed = {'target': np.zeros((1, 3, 128, 128), np.float32), 'source': np.ones((1, 512), np.float32)}
		for _ in range(3):
			session.run(feed)
	finally:
		RECORDER.enabled = False
	timings = isolated_times(1, repeats=2)
	# with a pool of intra-op threads the caller's CPU is only a part of the call's: not reported
	pooled = isolated_times(2, repeats=1)
	# two one-thread calls at once: more than one call's worth of throughput on two cores, never more than two (the
	# replay is timed, so the bound is loose; the stand-in is a few milliseconds a call). The suite's other worker
	# may be running a whole engine meanwhile (measured: 0.12 then), so a replay that missed is taken again, up to
	# five times; one that returns nothing, or never lands, still fails
	parallelism = None
	for _ in range(5):
		parallelism = measured_parallelism(2, 1, repeats=4)
		if parallelism is None or 0.3 < parallelism < 2.6:
			break
	RECORDER.reset()
	assert [(timing.name, timing.stage, timing.calls, timing.items) for timing in timings] == [('inswapper_128', 'swap', 3, 3)]
	assert timings[0].isolated_seconds_per_item > 0 and timings[0].run_seconds_per_item > 0
	# one intra-op thread computes on the caller: its CPU is the call's, never more than the call's wall time
	assert 0 < timings[0].run_cpu_seconds_per_item <= timings[0].run_seconds_per_item * 1.05 + 1e-3
	assert 0 < timings[0].isolated_cpu_seconds_per_item <= timings[0].isolated_seconds_per_item * 1.05 + 1e-3
	assert pooled[0].run_cpu_seconds_per_item is None and pooled[0].isolated_cpu_seconds_per_item is None
	assert parallelism is not None and 0.3 < parallelism < 2.6
	assert measured_parallelism(2, 1) is None


def test_an_image_engine_gives_each_session_every_core(tmp_path: Path) -> None:
	"""An image's model calls run one after another: its engine plans one call at a time."""
	from facefusion.inference.thread_plan import available_cores
	from facefusion.workflows.engine import start_engine
	write_standin_models(tmp_path)
	config = RunConfig(models_path=str(tmp_path), execution_thread_count=8)
	engine = start_engine(config, concurrent_calls=1)
	try:
		assert engine.inference.thread_plan.intra_op_threads == available_cores()
		assert engine.inference.get('arcface_w600k_r50').session.get_session_options().intra_op_num_threads == available_cores()
	finally:
		engine.close()
