"""The `benchmark` command, like FaceFusion 3.5.0's: the configured job on example targets of several resolutions,
`cycle_count` timed runs each, reported as average / fastest / slowest run and relative fps.

3.5.0 downloads its example targets; this engine makes them locally (a synthetic clip panning over a shipped photo,
with a soundtrack, see facefusion.testing.synthetic_video) into `.assets/examples/` and reuses them on later runs.
Like 3.5.0 the runs skip the 68-point landmarker (landmarker score 0), use bmp temp frames, drop the audio (volume 0),
encode with the ultrafast preset, keep models loaded (memory strategy tolerant) and write into a temp folder.

warm: one engine for all runs of a resolution and one untimed run before the timed ones (caches and sessions hot);
cold: every timed run starts a fresh engine (sessions loaded, caches empty), and that start is part of its time.
"""
from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple

from facefusion import logger
from facefusion.config import PROJECT_DIR, RunConfig

if TYPE_CHECKING:
	from facefusion.quality.records import QualitySummary
	from facefusion.workflows.engine import Engine
	from facefusion.workflows.job import JobPaths

EXAMPLES_DIR = PROJECT_DIR / '.assets' / 'examples'
# the source face of every run unless -s names another; the targets show a different person
SOURCE_PHOTO = PROJECT_DIR / 'tests' / 'data' / 'obama.jpg'
TARGET_PHOTO = 'biden.jpg'
# 16:9 sizes of the resolution names (even widths, as yuv420p needs)
RESOLUTION_SIZES: Dict[str, Tuple[int, int]] = {
	'240p': (426, 240),
	'360p': (640, 360),
	'540p': (960, 540),
	'720p': (1280, 720),
	'1080p': (1920, 1080),
	'1440p': (2560, 1440),
	'2160p': (3840, 2160),
}
EXAMPLE_FPS = 25
# two seconds: long enough that per-frame work dominates start-up, short enough for 2160p on a CPU
EXAMPLE_FRAME_COUNT = 50


@dataclass(frozen=True)
class BenchmarkResult:
	resolution: str
	target_path: str
	frame_count: int
	cycle_count: int
	run_times: Tuple[float, ...]
	# one more run with the quality monitor on (a report in the temp folder): its time and the monitor's summary,
	# so a speed-up that costs quality shows next to the speed figures
	monitored_time: float = 0.0
	quality: Optional['QualitySummary'] = None

	@property
	def monitor_busy(self) -> float:
		"""The monitor's own stage time as a share of the monitored run (it runs beside the other stages, so this is
		what it costs on a machine without a spare core, and the wall figure what it cost on this one)."""
		return self.quality.seconds / self.monitored_time if self.quality is not None and self.monitored_time > 0 else 0.0

	@property
	def monitor_cost(self) -> float:
		"""The monitored run's extra wall time over the average run, as a share of the average run."""
		return (self.monitored_time - self.average_run) / self.average_run if self.average_run > 0 and self.monitored_time > 0 else 0.0

	@property
	def total_time(self) -> float:
		return sum(self.run_times)

	@property
	def average_run(self) -> float:
		return statistics.fmean(self.run_times)

	@property
	def fastest_run(self) -> float:
		return min(self.run_times)

	@property
	def slowest_run(self) -> float:
		return max(self.run_times)

	@property
	def relative_fps(self) -> float:
		"""3.5.0's figure: every frame of every cycle over the total time of the timed runs."""
		return self.frame_count * self.cycle_count / self.total_time if self.total_time > 0 else 0.0


def example_target_path(resolution: str, frame_count: Optional[int] = None, directory: Optional[Path] = None) -> Path:
	"""`target-720p.mp4` for the standard length (3.5.0's names), `target-720p-150f.mp4` for another one."""
	frame_count = frame_count or EXAMPLE_FRAME_COUNT
	directory = Path(directory or EXAMPLES_DIR)
	suffix = '' if frame_count == EXAMPLE_FRAME_COUNT else f'-{frame_count}f'
	return directory / f'target-{resolution}{suffix}.mp4'


def ensure_example_target(resolution: str, frame_count: Optional[int] = None, directory: Optional[Path] = None) -> Path:
	"""The example clip of a resolution, made once (a moving camera over a portrait, with audio) and then reused."""
	from facefusion.testing.synthetic_video import make_synthetic_video

	frame_count = frame_count or EXAMPLE_FRAME_COUNT
	if resolution not in RESOLUTION_SIZES:
		raise ValueError(f'unknown benchmark resolution: {resolution}')
	path = example_target_path(resolution, frame_count, directory)
	if path.is_file() and path.stat().st_size > 0:
		return path
	path.parent.mkdir(parents=True, exist_ok=True)
	width, height = RESOLUTION_SIZES[resolution]
	logger.get_logger().info(f'making the example target {path} ({width}x{height}, {frame_count} frames)')
	# a private name first, so a parallel benchmark never reads a half-written clip
	partial_path = path.with_name(f'.{path.stem}.{os.getpid()}.partial{path.suffix}')
	try:
		make_synthetic_video(partial_path, photos=(TARGET_PHOTO,), width=width, height=height, fps=EXAMPLE_FPS, frame_count=frame_count)
		os.replace(partial_path, path)
	finally:
		if partial_path.exists():
			partial_path.unlink()
	return path


def benchmark_config(config: RunConfig, target_path: Path, output_path: Path, source_paths: Sequence[str]) -> RunConfig:
	"""The job of one benchmark run, with 3.5.0's benchmark overrides."""
	return config.with_changes(
		command='headless-run',
		source_paths=list(source_paths),
		target_path=str(target_path),
		output_path=str(output_path),
		face_landmarker_score=0.0,
		temp_frame_format='bmp',
		output_audio_volume=0,
		output_video_preset='ultrafast',
		video_memory_strategy='tolerant',
	)


def count_frames(target_path: Path) -> int:
	from facefusion.video.probe import probe_video
	return int(probe_video(str(target_path)).frame_count)


def benchmark_resolution(config: RunConfig, resolution: str, source_paths: Sequence[str], output_directory: Path) -> BenchmarkResult:
	from facefusion.workflows.engine import start_engine
	from facefusion.workflows.job import check_job_paths
	from facefusion.workflows.target import run_target

	target_path = ensure_example_target(resolution)
	job = benchmark_config(config, target_path, output_directory / f'benchmark-{resolution}.mp4', source_paths)
	paths = check_job_paths(job)
	run_times: List[float] = []
	report_path = output_directory / f'benchmark-{resolution}-quality.csv'
	if config.benchmark_mode == 'warm':
		engine = start_engine(job)
		try:
			run_target(job, paths, engine)
			for _ in range(config.benchmark_cycle_count):
				start = time.perf_counter()
				run_target(job, paths, engine)
				run_times.append(time.perf_counter() - start)
			monitored_time, quality = monitored_run(job, paths, report_path, engine)
		finally:
			engine.close()
	else:
		for _ in range(config.benchmark_cycle_count):
			start = time.perf_counter()
			# no engine handed over: the run loads its sessions and builds empty caches itself
			run_target(job, paths, None)
			run_times.append(time.perf_counter() - start)
		monitored_time, quality = monitored_run(job, paths, report_path, None)
	return BenchmarkResult(resolution, str(target_path), count_frames(target_path), config.benchmark_cycle_count, tuple(run_times), monitored_time, quality)


def monitored_run(job: RunConfig, paths: 'JobPaths', report_path: Path, engine: Optional['Engine']) -> Tuple[float, Optional['QualitySummary']]:
	"""One more run like the timed ones (same engine in warm mode, its own in cold mode) with the quality monitor on."""
	from facefusion.quality.quality_monitor import last_summary
	from facefusion.workflows.target import run_target
	previous = last_summary()
	start = time.perf_counter()
	run_target(job.with_changes(quality_report=str(report_path)), paths, engine)
	seconds = time.perf_counter() - start
	# the monitor leaves its summary when it closes; an earlier run's is not this one's
	summary = last_summary()
	return seconds, summary if summary is not previous else None


def format_table(results: Sequence[BenchmarkResult]) -> str:
	# the quality columns sit before relative_fps, which stays last as in 3.5.0's table
	headers = ('resolution', 'frames', 'cycles', 'average_run', 'fastest_run', 'slowest_run', 'monitor_cost', 'tpsnr_in_out', 'face_ssim', 'alerts', 'relative_fps')
	rows = [
		(result.resolution, str(result.frame_count), str(result.cycle_count), f'{result.average_run:.2f} s',
		 f'{result.fastest_run:.2f} s', f'{result.slowest_run:.2f} s') + quality_cells(result) + (f'{result.relative_fps:.2f}',)
		for result in results
	]
	widths = [max(len(header), *(len(row[index]) for row in rows)) if rows else len(header) for index, header in enumerate(headers)]

	def line(cells: Sequence[str]) -> str:
		return '| ' + ' | '.join(cell.ljust(width) for cell, width in zip(cells, widths)) + ' |'

	separator = '|' + '|'.join('-' * (width + 2) for width in widths) + '|'
	return '\n'.join([line(headers), separator] + [line(row) for row in rows])


def quality_cells(result: BenchmarkResult) -> Tuple[str, str, str, str]:
	quality = result.quality
	if quality is None:
		return '-', '-', '-', '-'
	return (
		f'{100 * result.monitor_busy:.1f} % busy, {100 * result.monitor_cost:+.1f} % wall', f'{quality.mean_tpsnr_in:.1f} / {quality.mean_tpsnr_out:.1f} dB', f'{quality.mean_face_ssim:.3f}',
		str(sum(quality.alerts.values()))
	)


def run_benchmark(config: RunConfig) -> int:
	"""The command: every requested resolution in order, then the table on stdout."""
	from facefusion.errors import InputError

	source_paths = list(config.source_paths) or [str(SOURCE_PHOTO)]
	for source_path in source_paths:
		if not os.path.isfile(source_path):
			raise InputError(f'source not found: {source_path}')
	os.makedirs(config.temp_path, exist_ok=True)
	output_directory = Path(tempfile.mkdtemp(prefix='facefusion-benchmark-', dir=config.temp_path))
	results: List[BenchmarkResult] = []
	try:
		for resolution in config.benchmark_resolutions:
			result = benchmark_resolution(config, resolution, source_paths, output_directory)
			logger.get_logger().info(f'benchmark {resolution}: {result.average_run:.2f} s per run, {result.relative_fps:.2f} fps')
			results.append(result)
	finally:
		shutil.rmtree(output_directory, ignore_errors=True)
	print(format_table(results), flush=True)
	return 0
