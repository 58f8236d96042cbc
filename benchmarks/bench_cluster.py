"""Where the time of a video split across workers goes, and what more workers would give.

	python benchmarks/bench_cluster.py [--frames 120] [--shot-frames 30] [--width 640 --height 360] [--ray] [--keep]

One run of this script makes its own inputs (stand-in models with the real YuNet, a synthetic clip with a hard cut
every --shot-frames frames, tests/data/biden.jpg as the source), then measures with the real code paths:

- in this process: the driver's probe and plan (check_job_paths + plan_video_job + reading the sources), the
  cut search (decode + the tracker's scene-cut test per frame, what a part does from its chunk's start to its first
  cut: segments.CutBoundedFrames over the clip), the concat of the shot segments
  (video.concat.concat_copy) and the audio mux (workflows.video.finish_with_audio);
- in a DevicePool(['0']) worker process (the worker the split path uses): the content check and segment tasks,
  first on a cold worker, then again warm; cold minus warm is the worker start plus model load, and a line fitted to
  the warm segments (8 frames, every shot, the whole clip) gives the cost per frame and the fixed cost per segment;
- a child interpreter that imports what a run imports: the driver's own start;
- end to end through the CLI (`python facefusion.py headless-run ...`, wall time of the child): one process, and two
  device workers (--execution-device-ids 0 1); with --ray also on a LoopbackRayCluster of 2 CPUs (two workers).

From the measured costs it projects 1, 2, 4 and 8 workers with an explicit model (see project()); the split plans
and the order of hand-out are the driver's own (segments.plan_parts, each part moved to the clip's cuts, handed out
in order to the first idle worker). The projection assumes one device per worker. Measured numbers with several workers on a machine with few
cores cannot scale: the workers share the cores, so compare them with the projection only for what stays fixed.
"""
from __future__ import annotations

import argparse
import itertools
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Sequence, Tuple

if TYPE_CHECKING:
	from facefusion.config import RunConfig
	from facefusion.workflows.worker_tasks import SegmentOutput

PROJECT_DIR = Path(__file__).resolve().parents[1]
if str(PROJECT_DIR) not in sys.path:
	sys.path.insert(0, str(PROJECT_DIR))
# as facefusion.py does, before numpy / OpenCV / onnxruntime load here or in the spawned workers
os.environ.setdefault('OMP_NUM_THREADS', '1')

ENTRY_POINT = PROJECT_DIR / 'facefusion.py'
DATA_DIR = PROJECT_DIR / 'tests' / 'data'
SOURCE_PHOTO = DATA_DIR / 'biden.jpg'
RUN_OPTIONS = ('--face-detector-model', 'yunet')
# models are all on disk: a download attempt must fail at once instead of leaving the machine
UNREACHABLE_MIRROR = 'http://127.0.0.1:9'
PROJECTED_WORKERS = (1, 2, 4, 8)
# what a run imports before it touches the video (the driver's share of a run that is not probing or planning)
DRIVER_IMPORTS = "import os; os.environ.setdefault('OMP_NUM_THREADS', '1'); from facefusion import core; from facefusion.workflows import split_video, video; import cv2, numpy, onnxruntime"
SUCCEEDED = re.compile(r'processing video succeeded in ([0-9.]+) seconds')
SEGMENT_COUNT = re.compile(r'in (\d+) parts on')


@dataclass(frozen=True)
class Costs:
	"""Everything the projection needs, in seconds."""
	driver_start: float
	probe_plan: float
	worker_start_load: float
	content: float
	scan_per_frame: float
	segment_per_frame: float
	segment_fixed: float
	concat: float
	mux: float


@dataclass(frozen=True)
class CliRun:
	label: str
	wall_s: float
	# the engine's own "processing video succeeded in" seconds (from the run's start to its output), None on failure
	engine_s: Optional[float]
	segments: Optional[int]
	exit_code: int
	tail: str


# ---- inputs -------------------------------------------------------------------------------------------------------

def make_models(directory: Path) -> None:
	subprocess.run([sys.executable, '-m', 'facefusion.testing.standin_models', str(directory)], cwd=str(PROJECT_DIR), check=True, stdout=subprocess.DEVNULL)
	# the stand-in detectors find no real face; the real YuNet does, so the swapper has work on every frame
	for suffix in ('.onnx', '.hash'):
		shutil.copyfile(DATA_DIR / ('yunet_2023_mar' + suffix), directory / ('yunet_2023_mar' + suffix))


def shot_starts(frames: int, shot_frames: int) -> List[int]:
	return list(range(shot_frames, frames, shot_frames))


def make_clip(path: Path, width: int, height: int, frames: int, shot_frames: int) -> List[int]:
	from facefusion.testing.synthetic_video import make_synthetic_video
	cuts = shot_starts(frames, shot_frames)
	make_synthetic_video(path, photos=('obama.jpg', 'biden.jpg'), width=width, height=height, frame_count=frames, cut_at=cuts[0] if cuts else None, more_cuts=tuple(cuts[1:]))
	return cuts


def cli_arguments(target: Path, output: Path) -> List[str]:
	return ['headless-run', '-s', str(SOURCE_PHOTO), '-t', str(target), '-o', str(output), *RUN_OPTIONS]


def cli_environment(models: Path) -> Dict[str, str]:
	environment = dict(os.environ)
	environment.update({'FACEFUSION_MODELS_PATH': str(models), 'FACEFUSION_DOWNLOAD_BASE_URL': UNREACHABLE_MIRROR, 'PYTHONIOENCODING': 'utf-8'})
	return environment


# ---- measurements -------------------------------------------------------------------------------------------------

def timed(function: Callable[..., object], *arguments: object) -> Tuple[float, object]:
	start = time.perf_counter()
	value = function(*arguments)
	return time.perf_counter() - start, value


def measure_driver_start(work: Path) -> float:
	"""Median of three child interpreters importing what a run imports."""
	seconds = []
	for _ in range(3):
		start = time.perf_counter()
		subprocess.run([sys.executable, '-c', DRIVER_IMPORTS], cwd=str(PROJECT_DIR), check=True)
		seconds.append(time.perf_counter() - start)
	return statistics.median(seconds)


def measure_probe_plan(config: 'RunConfig') -> float:
	from facefusion import vision
	from facefusion.workflows.job import check_job_paths, plan_video_job

	def probe_and_plan() -> None:
		paths = check_job_paths(config)
		plan_video_job(config, paths)
		for source_path in paths.source_paths:
			vision.read_image(source_path)

	# the first call pays this process's lazy imports, which measure_driver_start counts already
	probe_and_plan()
	return statistics.median(timed(probe_and_plan)[0] for _ in range(3))


@dataclass(frozen=True)
class WorkerMeasurements:
	# (cold content check - warm) + (cold first segment - warm): the process start, imports and every model load
	worker_start_load: float
	content_s: float
	# (frames, seconds) of every warm segment
	warm_segments: List[Tuple[int, float]]
	# the warm encodes of each shot, in order, for the concat
	shot_outputs: List['SegmentOutput']


def measure_worker(config: 'RunConfig', target_copy: Path, frames: int, cuts: Sequence[int]) -> WorkerMeasurements:
	"""Tasks on one DevicePool worker: each kind cold, then warm. The content check's result is cached per target and
	range in the worker, so the cold one asks about a copy of the clip (the engine is shared across paths)."""
	from facefusion.workflows.device_pool import DevicePool
	from facefusion.workflows.segments import MIN_SEGMENT_FRAMES
	from facefusion.workflows.split_video import segment_output_name
	from facefusion.workflows.worker_tasks import WorkerTask

	output_path = str(config.output_path)
	shots = list(zip([0, *cuts], [*cuts, frames]))
	labels = itertools.count()

	def segment_task(start: int, end: int) -> WorkerTask:
		return WorkerTask('segment', config.with_changes(output_path=segment_output_name(output_path, next(labels))), start, end)

	def run_one(pool: DevicePool, task: WorkerTask) -> Tuple[float, object]:
		start = time.perf_counter()
		results = list(pool.run([task]))
		seconds = time.perf_counter() - start
		result = results[0][1]
		if not result.ok:
			raise SystemExit(f'{task.kind} task failed: {result.error}')
		return seconds, result.value

	leftovers: List['SegmentOutput'] = []
	with DevicePool(['0'], log_level='error') as pool:
		content_cold, _ = run_one(pool, WorkerTask('content', config.with_changes(target_path=str(target_copy))))
		content_warm, _ = run_one(pool, WorkerTask('content', config))
		first_start, first_end = shots[0]
		segment_cold, output = run_one(pool, segment_task(first_start, first_end))
		leftovers.append(output)
		warm_segments: List[Tuple[int, float]] = []
		shot_outputs: List['SegmentOutput'] = []
		for start, end in shots:
			seconds, output = run_one(pool, segment_task(start, end))
			warm_segments.append((end - start, seconds))
			shot_outputs.append(output)
		segment_warm = warm_segments[0][1]
		for start, end in ((0, min(MIN_SEGMENT_FRAMES, frames)), (0, frames)):
			seconds, output = run_one(pool, segment_task(start, end))
			warm_segments.append((end - start, seconds))
			leftovers.append(output)
	for output in leftovers:
		os.remove(output.path)
	return WorkerMeasurements(content_cold - content_warm + segment_cold - segment_warm, content_warm, warm_segments, shot_outputs)


def search_cuts(config: 'RunConfig', frames: int) -> List[int]:
	"""What a part does before its first cut, over the whole clip: decode, and the scene-cut test on every frame
	(CutBoundedFrames searching a chunk as long as the clip); returns the cuts the test sees."""
	from facefusion.tracking.smoother import SceneCutDetector
	from facefusion.video.io import plan_video_geometry
	from facefusion.video.probe import probe_video
	from facefusion.video.routes import open_reader, select_decoder

	info = probe_video(str(config.target_path))
	geometry = plan_video_geometry(info)
	detector = SceneCutDetector()
	found: List[int] = []
	reader = open_reader(info, select_decoder('cpu', 0, warn=False), 0, frames, geometry.decode_size, geometry.decode_fps, info.effective_color_matrix())
	try:
		for frame in reader:
			if detector.update(frame.pixels):
				found.append(frame.index)
	finally:
		reader.close()
	return found


def fit_line(points: Sequence[Tuple[int, float]]) -> Tuple[float, float]:
	"""Least-squares seconds = fixed + frames × per_frame; returns (per_frame, fixed), the fixed part at least 0."""
	mean_x = statistics.fmean(x for x, _ in points)
	mean_y = statistics.fmean(y for _, y in points)
	spread = sum((x - mean_x) ** 2 for x, _ in points)
	if spread == 0:
		return mean_y / max(mean_x, 1), 0.0
	slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / spread
	fixed = mean_y - slope * mean_x
	if fixed < 0:
		# noise on a busy machine: put everything into the per-frame cost rather than report a negative start
		return mean_y / mean_x, 0.0
	return slope, fixed


def measure_concat(parts: Sequence['SegmentOutput'], work: Path) -> Tuple[float, Path]:
	from facefusion.video.concat import concat_copy
	joined = work / 'joined.mp4'
	seconds, _ = timed(concat_copy, [part.path for part in parts], joined, f'Joining {len(parts)} segments')
	return seconds, joined


def measure_mux(config: 'RunConfig', joined: Path, duration: float, work: Path) -> float:
	"""finish_with_audio consumes its silent input, so it gets a copy of the joined file, and writes its own output."""
	from facefusion.workflows.job import check_job_paths, plan_video_job
	from facefusion.workflows.video import finish_with_audio
	silent = work / 'silent.mp4'
	shutil.copyfile(joined, silent)
	mux_config = config.with_changes(output_path=str(work / 'muxed.mp4'))
	job = plan_video_job(mux_config, check_job_paths(mux_config))
	seconds, note = timed(finish_with_audio, job, silent, duration)
	if note:
		print(f'  note: the mux says {note}')
	return seconds


def parse_cli_run(label: str, completed: subprocess.CompletedProcess, wall_s: float) -> CliRun:
	text = completed.stderr + completed.stdout
	succeeded = SUCCEEDED.search(text)
	segments = SEGMENT_COUNT.search(text)
	return CliRun(label, wall_s, float(succeeded.group(1)) if succeeded else None, int(segments.group(1)) if segments else None, completed.returncode, text.strip()[-600:])


def run_cli(label: str, arguments: Sequence[str], models: Path, work: Path) -> CliRun:
	start = time.perf_counter()
	completed = subprocess.run([sys.executable, str(ENTRY_POINT), *arguments], cwd=str(work), env=cli_environment(models), capture_output=True, text=True, encoding='utf-8', timeout=600)
	return parse_cli_run(label, completed, time.perf_counter() - start)


def run_ray(arguments: Sequence[str], models: Path, work: Path) -> Tuple[Optional[CliRun], str]:
	"""The CLI against a LoopbackRayCluster of 2 CPUs (two one-core workers), run inside the cluster's namespaces.
	Returns (the run or None, what to print about the cluster)."""
	from facefusion.testing.ray_cluster import LoopbackRayCluster, RayClusterError, unavailable_reason
	reason = unavailable_reason()
	if reason is not None:
		return None, 'skipped: ' + reason
	cluster = LoopbackRayCluster(num_cpus=2)
	try:
		cluster.start()
		environment = cli_environment(models)
		environment['FACEFUSION_RAY_NODE_IP'] = '127.0.0.1'
		start = time.perf_counter()
		completed = cluster.run([sys.executable, str(ENTRY_POINT), *arguments, '--cluster-address', cluster.address], env=environment, cwd=str(work), capture_output=True, text=True, encoding='utf-8', timeout=600)
		run = parse_cli_run('ray, 2 CPU workers', completed, time.perf_counter() - start)
		return run, f'cluster start {cluster.start_seconds or 0.0:.1f} s (not counted)'
	except (RayClusterError, subprocess.TimeoutExpired) as exception:
		return None, 'skipped: ' + str(exception).strip().splitlines()[0][:200]
	finally:
		cluster.stop()


# ---- projection ---------------------------------------------------------------------------------------------------

def makespan(durations: Sequence[float], workers: int) -> float:
	"""Tasks handed out in this order, each to the worker that is free first (the driver's loop); the last finish."""
	free_at = [0.0] * max(workers, 1)
	for duration in durations:
		earliest = free_at.index(min(free_at))
		free_at[earliest] += duration
	return max(free_at)


@dataclass(frozen=True)
class Projection:
	workers: int
	segments: int
	seconds: float


def first_cut_from(cuts: Sequence[int], frame: int, end: int) -> int:
	return min([cut for cut in cuts if cut >= frame] + [end])


def project(costs: Costs, frames: int, cuts: Sequence[int], workers: int) -> Projection:
	"""1 worker: the one-process run (no cut search, no concat); the models load in the driver, so only the worker
	start's part beyond the driver's own start counts:
		T(1) = driver start + probe/plan + model load + content + segment fixed + frames × per-frame + mux
	W workers (the split path, each worker on a device of its own), the driver's parts handed out in order after the
	content check, each part costing its cut search, a segment's fixed cost and its frames:
		T(W) = driver start + probe/plan + worker start + model load
			+ makespan(content, parts: searched frames × search per-frame + fixed + frames × per-frame) + concat + mux
	"""
	from facefusion.workflows.segments import plan_parts
	fixed = costs.driver_start + costs.probe_plan
	if workers <= 1:
		model_load = max(costs.worker_start_load - costs.driver_start, 0.0)
		return Projection(1, 1, fixed + model_load + costs.content + costs.segment_fixed + frames * costs.segment_per_frame + costs.mux)
	tasks = [costs.content]
	segments = 0
	for part in plan_parts(0, frames, workers, stateful=True):
		start = first_cut_from(cuts, part.start, frames) if part.search_start else part.start
		end = first_cut_from(cuts, part.end, frames) if part.search_end else part.end
		searched = min(start, part.end) - part.start
		if start >= end or start >= part.end:
			tasks.append(searched * costs.scan_per_frame)
			continue
		segments += 1
		tasks.append(searched * costs.scan_per_frame + costs.segment_fixed + (end - start) * costs.segment_per_frame)
	concat = costs.concat if segments > 1 else 0.0
	seconds = fixed + costs.worker_start_load + makespan(tasks, workers) + concat + costs.mux
	return Projection(workers, segments, seconds)


# ---- report -------------------------------------------------------------------------------------------------------

def print_report(options: argparse.Namespace, cuts: Sequence[int], costs: Costs, shot_count: int, runs: Dict[int, CliRun], ray_run: Optional[CliRun], ray_note: str) -> None:
	frames = options.frames
	cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()
	print()
	print(f'clip {options.width}x{options.height}, {frames} frames, {len(cuts) + 1} shots (cuts at {", ".join(map(str, cuts)) or "none"}), {cores} CPU cores, {" ".join(RUN_OPTIONS)}')
	print()
	print('measured                                        seconds')
	rows = (
		('driver start (interpreter + imports)', f'{costs.driver_start:8.3f}'),
		('driver probe + plan', f'{costs.probe_plan:8.3f}'),
		('worker start + model load (cold - warm)', f'{costs.worker_start_load:8.3f}'),
		('content check (warm worker)', f'{costs.content:8.3f}'),
		('cut search (decode + cut test), per frame', f'{costs.scan_per_frame:8.4f}'),
		('segment, per frame (warm worker)', f'{costs.segment_per_frame:8.4f}'),
		('segment, fixed per segment (warm worker)', f'{costs.segment_fixed:8.3f}'),
		(f'concat of {shot_count} segments', f'{costs.concat:8.3f}'),
		('audio mux', f'{costs.mux:8.3f}'),
	)
	for name, value in rows:
		print(f'  {name:<44}{value}')
	print()
	print('PROJECTION (one device per worker; not a measurement):')
	print('  T(1) = driver start + probe/plan + model load + content + segment fixed + frames x per-frame + mux')
	print('  T(W) = driver start + probe/plan + worker start/load + concat + mux')
	print('         + makespan(content, parts in order: searched frames x search + fixed + frames x per-frame)')
	print()
	projections = [project(costs, frames, cuts, workers) for workers in PROJECTED_WORKERS]
	base = projections[0].seconds
	measured_base = runs[1].wall_s if 1 in runs and runs[1].exit_code == 0 else None
	print('workers  segments  projected s  frames/s  speed-up | measured s  frames/s  speed-up  (engine s)')
	for projection in projections:
		line = f'{projection.workers:>7}  {projection.segments:>8}  {projection.seconds:>11.2f}  {frames / projection.seconds:>8.1f}  {base / projection.seconds:>7.2f}x'
		run = runs.get(projection.workers)
		if run is not None and run.exit_code == 0:
			speed_up = f'{measured_base / run.wall_s:>7.2f}x' if measured_base else '       -'
			engine = f'{run.engine_s:.2f}' if run.engine_s is not None else '-'
			line += f' | {run.wall_s:>10.2f}  {frames / run.wall_s:>8.1f}  {speed_up}  ({engine})'
		elif run is not None:
			line += f' | failed (exit {run.exit_code})'
		print(line)
	if options.project_frames > frames:
		long_frames = options.project_frames
		long_cuts = shot_starts(long_frames, options.shot_frames)
		long_projections = [project(costs, long_frames, long_cuts, workers) for workers in PROJECTED_WORKERS]
		print(f'the same costs projected onto {long_frames} frames ({len(long_cuts) + 1} shots of {options.shot_frames} frames):')
		for projection in long_projections:
			print(f'{projection.workers:>7}  {projection.segments:>8}  {projection.seconds:>11.2f}  {long_frames / projection.seconds:>8.1f}  {long_projections[0].seconds / projection.seconds:>7.2f}x')
	if ray_run is not None and ray_run.exit_code == 0:
		engine = f'{ray_run.engine_s:.2f}' if ray_run.engine_s is not None else '-'
		speed_up = f'{measured_base / ray_run.wall_s:.2f}x' if measured_base else '-'
		print(f'ray, 2 CPU workers, {ray_run.segments} segments: measured {ray_run.wall_s:.2f} s, {frames / ray_run.wall_s:.1f} frames/s, {speed_up} ({engine} engine s); {ray_note}')
	elif ray_run is not None:
		print(f'ray: failed (exit {ray_run.exit_code}): {ray_run.tail.splitlines()[-1] if ray_run.tail else ""}')
	elif options.ray:
		print(f'ray: {ray_note}')
	print()
	print(f'measured s: wall time of the CLI child; engine s: the run\'s own "succeeded in" time. On this {cores}-core machine')
	print('the measured workers share the same cores (each worker gets a share of them), so the measured 2-worker run')
	print('cannot scale; the projection assumes one device per worker. A shot is never split: past one worker per')
	print('segment the projection stops improving (more shots, or a stateless run, give more segments).')
	for run in [*runs.values(), *([ray_run] if ray_run is not None else [])]:
		if run.exit_code != 0:
			print(f'\n{run.label} failed (exit {run.exit_code}):\n{run.tail}')


def main(arguments: Optional[Sequence[str]] = None) -> int:
	parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
	parser.add_argument('--frames', type=int, default=120, help='frames in the synthetic clip (default 120)')
	parser.add_argument('--shot-frames', type=int, default=30, help='a hard cut every this many frames (default 30)')
	parser.add_argument('--width', type=int, default=640)
	parser.add_argument('--height', type=int, default=360)
	parser.add_argument('--project-frames', type=int, default=None, help='also project the measured costs onto a clip this long with the same shots (default 10 x --frames; 0: no)')
	parser.add_argument('--ray', action='store_true', help='also run on a LoopbackRayCluster with 2 CPU workers (skipped where it cannot start)')
	parser.add_argument('--keep', action='store_true', help='keep the temp folder (models, clip, outputs) and print its path')
	options = parser.parse_args(arguments)
	if options.frames < 16 or options.shot_frames < 8:
		parser.error('--frames must be at least 16 and --shot-frames at least 8')
	if options.project_frames is None:
		options.project_frames = 10 * options.frames

	work = Path(tempfile.mkdtemp(prefix='bench-cluster-'))
	try:
		return run_benchmark(options, work)
	finally:
		if options.keep:
			print(f'\nkept {work}')
		else:
			shutil.rmtree(work, ignore_errors=True)


def run_benchmark(options: argparse.Namespace, work: Path) -> int:
	models = work / 'models'
	clip = work / 'clip.mp4'
	print('making inputs (stand-in models, synthetic clip) ...', flush=True)
	make_models(models)
	cuts = make_clip(clip, options.width, options.height, options.frames, options.shot_frames)
	clip_copy = work / 'clip-copy.mp4'
	shutil.copyfile(clip, clip_copy)
	# this process and the pool's workers (spawned with this environment) read the models from here
	os.environ['FACEFUSION_MODELS_PATH'] = str(models)
	os.environ['FACEFUSION_DOWNLOAD_BASE_URL'] = UNREACHABLE_MIRROR

	from facefusion import logger
	from facefusion.cli.program import build_config
	logger.init('error')
	config = build_config(cli_arguments(clip, work / 'bench.mp4'))

	print('measuring the parts ...', flush=True)
	driver_start = measure_driver_start(work)
	probe_plan = measure_probe_plan(config)
	scan_seconds, found = timed(search_cuts, config, options.frames)
	if sorted(found) != cuts:
		print(f'  note: the scan found cuts at {sorted(found)}, the clip has them at {cuts}')
	worker = measure_worker(config, clip_copy, options.frames, cuts)
	per_frame, segment_fixed = fit_line(worker.warm_segments)
	concat_seconds, joined = measure_concat(worker.shot_outputs, work)
	for output in worker.shot_outputs:
		os.remove(output.path)
	mux_seconds = measure_mux(config, joined, sum(output.duration for output in worker.shot_outputs), work)
	costs = Costs(driver_start, probe_plan, worker.worker_start_load, worker.content_s, scan_seconds / options.frames, per_frame, segment_fixed, concat_seconds, mux_seconds)

	print('running the CLI end to end (1 process, 2 device workers) ...', flush=True)
	runs = {
		1: run_cli('one process', cli_arguments(clip, work / 'one.mp4'), models, work),
		2: run_cli('2 device workers', [*cli_arguments(clip, work / 'two.mp4'), '--execution-device-ids', '0', '1'], models, work),
	}
	ray_run: Optional[CliRun] = None
	ray_note = ''
	if options.ray:
		print('running the CLI on a loopback Ray cluster (2 CPUs) ...', flush=True)
		ray_run, ray_note = run_ray(cli_arguments(clip, work / 'ray.mp4'), models, work)
	print_report(options, cuts, costs, len(worker.shot_outputs), runs, ray_run, ray_note)
	failed = [run for run in [*runs.values(), *([ray_run] if ray_run is not None else [])] if run.exit_code != 0]
	return 1 if failed else 0


if __name__ == '__main__':
	sys.exit(main())
