"""Baseline (the FaceFusion 3.5.0 way) against the optimized default, on the same clip with the same models.

	python benchmarks/bench_pipeline.py [--standins heavy|small | --models-path DIR] [--resolution 720p]
		[--frames 150] [--variants baseline,optimized] [--repeats 1] [--out benchmarks/results]

Every run is its own `headless-run` in a child process of this script (one process tree, one after the other, the
variants interleaved when --repeats > 1), so each gets a fresh interpreter and its own peak memory. The child runs
the command line in-process through facefusion.core.cli and reports its wall time, its CPU time, the stage timer's
totals (decode, content, detect, landmark, embed, classify, swap, mask, paste, encode) and its peak resident memory
(VmHWM of the Python process); this script samples the resident memory of the child's whole tree (Python plus its
ffmpeg processes) for the tree's peak.

A variant is a name plus extra command-line options on top of the common job (see VARIANTS; --define adds more).
Writes results.md, results.json and results.png (grouped bars of the stage times per variant) into --out.

Stage times are sums over the threads that ran the stage: in the streaming pipeline stages overlap, and with
several workers one stage can add up to more than the wall time. They tell where the work goes, the wall time tells
how long it took.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

PROJECT_DIR = Path(__file__).resolve().parents[1]
if str(PROJECT_DIR) not in sys.path:
	sys.path.insert(0, str(PROJECT_DIR))

DEFAULT_CACHE_DIR = PROJECT_DIR / '.assets' / 'benchmarks'
DEFAULT_OUT_DIR = PROJECT_DIR / 'benchmarks' / 'results'
SOURCE_PHOTO = PROJECT_DIR / 'tests' / 'data' / 'obama.jpg'
# stages that are model calls (facefusion.inference.session.STAGE_OF_KIND)
MODEL_STAGES = ('detect', 'landmark', 'embed', 'classify', 'mask', 'content', 'swap', 'enhance')
# the stages the report shows first, in pipeline order; stages the timer reports beyond these are appended
STAGE_ORDER: Tuple[str, ...] = ('decode', 'content', 'detect', 'landmark', 'embed', 'classify', 'swap', 'enhance', 'mask', 'paste', 'encode')
# always shown (even at zero) because the issue asks for them
CORE_STAGES: Tuple[str, ...] = ('decode', 'detect', 'landmark', 'embed', 'swap', 'mask', 'paste', 'encode')
# the streaming pipeline's own stages in the stage timer (workflows/video.py: their time inside the stage function)
PIPELINE_STAGE_PREFIX = 'pipeline:'
PIPELINE_STAGES: Tuple[str, ...] = ('cues', 'analyse', 'process')


@dataclass(frozen=True)
class Variant:
	name: str
	arguments: Tuple[str, ...]
	description: str = ''

# 3.5.0's paste (the default blends multi-band with colour matching)
CONFORMANCE_PASTE = ('--face-swapper-blend-mode', 'feather', '--face-swapper-color-match', 'none')

VARIANTS: Dict[str, Variant] = {variant.name: variant for variant in (
	Variant('baseline', ('--workflow-strategy', 'disk', '--temp-frame-format', 'png', '--face-swapper-batching', 'never', *CONFORMANCE_PASTE),
		'the FaceFusion 3.5.0 way: disk workflow with png temp frames, full per-frame analysis, one swapper call per tile, feather paste'),
	Variant('optimized', (), 'the defaults: memory streaming'),
	Variant('batching-never', ('--face-swapper-batching', 'never'), 'the defaults, swapper batching never'),
	Variant('batching-auto', ('--face-swapper-batching', 'auto'), 'the defaults, swapper batching auto'),
	Variant('batching-always', ('--face-swapper-batching', 'always'), 'the defaults, swapper batching always'),
	Variant('baseline-enhancer', ('--workflow-strategy', 'disk', '--temp-frame-format', 'png', '--face-swapper-batching', 'never', *CONFORMANCE_PASTE, '--processors', 'face_swapper', 'face_enhancer'),
		'the 3.5.0 way (as baseline) with the face enhancer after the swapper'),
	Variant('swapper-enhancer', ('--processors', 'face_swapper', 'face_enhancer'), 'the defaults with the face enhancer (gfpgan_1.4) after the swapper'),
)}


@dataclass
class RunResult:
	variant: str
	repeat: int
	exit_code: int
	wall_s: float
	process_wall_s: float
	cpu_s: float
	peak_rss_mib: float
	peak_tree_rss_mib: float
	output_frames: Optional[int]
	stages: Dict[str, Dict[str, float]] = field(default_factory=dict)
	log_path: str = ''
	quality: Optional[Dict[str, Any]] = None
	# the thread plan and each model's per-item time in the run against its isolated time (CPU provider runs)
	models: Optional[Dict[str, Any]] = None
	# the part of cpu_s spent in child processes (ffmpeg)
	child_cpu_s: float = 0.0


# ---- the child: one command line, measured -------------------------------------------------------------------------

def read_peak_rss_mib() -> float:
	"""VmHWM (the peak resident set) of this process; ru_maxrss where /proc is missing."""
	try:
		with open('/proc/self/status', encoding='ascii') as status:
			for line in status:
				if line.startswith('VmHWM:'):
					return int(line.split()[1]) / 1024.0
	except OSError:
		pass
	peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
	# bytes on macOS, KiB on Linux
	return peak / (1024.0 * 1024.0) if sys.platform == 'darwin' else peak / 1024.0


def cpu_seconds() -> float:
	own = resource.getrusage(resource.RUSAGE_SELF)
	return own.ru_utime + own.ru_stime + child_cpu_seconds()


def child_cpu_seconds() -> float:
	"""CPU of the child processes the run waited for: its ffmpeg decoders, encoder, probes and muxes."""
	children = resource.getrusage(resource.RUSAGE_CHILDREN)
	return children.ru_utime + children.ru_stime


def run_worker(json_path: str, cli_arguments: Sequence[str]) -> int:
	# as facefusion.py does before numpy / OpenCV / onnxruntime load
	os.environ.setdefault('OMP_NUM_THREADS', '1')
	from facefusion import core
	from facefusion.inference.call_samples import RECORDER
	from facefusion.stage_timer import STAGE_TIMER

	STAGE_TIMER.reset()
	RECORDER.reset()
	RECORDER.enabled = True
	cpu_start = cpu_seconds()
	child_cpu_start = child_cpu_seconds()
	start = time.perf_counter()
	exit_code = core.cli(list(cli_arguments))
	wall = time.perf_counter() - start
	cpu = cpu_seconds() - cpu_start
	child_cpu = child_cpu_seconds() - child_cpu_start
	RECORDER.enabled = False
	stages = {stage: {'seconds': total.seconds, 'calls': total.calls, 'items': total.items} for stage, total in STAGE_TIMER.snapshot().items()}
	report = {'exit_code': exit_code, 'wall_s': wall, 'cpu_s': cpu, 'child_cpu_s': child_cpu, 'peak_rss_mib': read_peak_rss_mib(), 'stages': stages, 'quality': quality_of_run(), 'models': model_times(cli_arguments)}
	Path(json_path).write_text(json.dumps(report), encoding='utf-8')
	return exit_code


def model_times(cli_arguments: Sequence[str]) -> Optional[Dict[str, Any]]:
	"""After the run (measured before this): the thread plan it had, and every model's per-item time in the run
	against the same call replayed alone with the same intra-op threads. None on GPU providers (the replay runs on
	the CPU provider)."""
	from facefusion.cli.program import build_config
	from facefusion.config import RunConfig
	from facefusion.inference.call_samples import isolated_times, measured_parallelism
	from facefusion.inference.thread_plan import plan_threads, uses_gpu
	try:
		config = build_config(list(cli_arguments))
	except SystemExit:
		config = RunConfig()
	if uses_gpu(config):
		return None
	plan = plan_threads(config)
	timings = isolated_times(plan.intra_op_threads)
	nominal = max(1, min(plan.process_workers, plan.cores // max(1, plan.intra_op_threads)))
	return {
		'plan': {'cores': plan.cores, 'process_workers': plan.process_workers, 'intra_op_threads': plan.intra_op_threads},
		'calls': [vars(timing) for timing in timings],
		# the calls the machine really runs at once (nominal: cores // intra-op threads, at most the workers)
		'parallelism': measured_parallelism(nominal, plan.intra_op_threads) if nominal > 1 else 1.0
	}


def quality_of_run() -> Optional[Dict[str, Any]]:
	"""The quality monitor's summary of the run (with --quality on), or None (off, or the disk workflow)."""
	from facefusion.quality.quality_monitor import last_summary
	summary = last_summary()
	return summary.as_dict() if summary is not None else None


# ---- the parent: inputs, runs, report -------------------------------------------------------------------------------

def parse_variant_definition(text: str) -> Variant:
	"""'name=--option value ...' (shell-style quoting) → a Variant."""
	name, separator, arguments = text.partition('=')
	name = name.strip()
	if not separator or not name:
		raise argparse.ArgumentTypeError(f'a variant definition is NAME=OPTIONS, got {text!r}')
	return Variant(name, tuple(shlex.split(arguments)), 'defined on the command line: ' + arguments.strip())


def resolve_variants(names: str, definitions: Sequence[Variant]) -> List[Variant]:
	table = dict(VARIANTS)
	table.update({variant.name: variant for variant in definitions})
	chosen: List[Variant] = []
	for name in [item.strip() for item in names.split(',') if item.strip()]:
		if name not in table:
			raise SystemExit(f'unknown variant {name!r} (known: {", ".join(table)}; add one with --define NAME=OPTIONS)')
		chosen.append(table[name])
	if not chosen:
		raise SystemExit('no variant to run')
	return chosen


def common_arguments(options: argparse.Namespace, target_path: Path, models_path: Path) -> List[str]:
	return [
		'headless-run', '-s', str(options.source), '-t', str(target_path), '--models-path', str(models_path),
		'--face-detector-model', options.face_detector_model, '--face-selector-mode', 'many',
		'--face-swapper-model', options.swapper, '--output-audio-encoder', 'aac',
		*shlex.split(options.extra_args),
	]


def required_models(argument_lists: Sequence[Sequence[str]]) -> List[str]:
	from facefusion.cli import program
	from facefusion.workflows.engine import collect_required_models
	names: List[str] = []
	for arguments in argument_lists:
		names += collect_required_models(program.build_config(list(arguments) + ['-o', 'benchmark-output.mp4']))
	return list(dict.fromkeys(names))


def prepare_models(options: argparse.Namespace, argument_lists: Sequence[Sequence[str]]) -> Tuple[Path, str]:
	"""(models folder, label): the folder given, or the stand-ins each variant needs written into the cache."""
	if options.models_path:
		return Path(options.models_path).resolve(), f'models in {options.models_path}'
	from facefusion.testing.standin_models import write_standin_models
	directory = Path(options.cache_dir).resolve() / f'standins-{options.standins}'
	# the models the jobs need, found with a placeholder folder (collecting names does not look at files)
	names = required_models(argument_lists)
	write_standin_models(directory, names, variant=options.standins)
	return directory, f'{options.standins} stand-ins (real YuNet) in {directory}'


def probe_frame_count(path: Path) -> Optional[int]:
	try:
		from facefusion.video.probe import probe_video
		return int(probe_video(str(path)).frame_count)
	except Exception:
		return None


def child_pids(pid: int) -> List[int]:
	"""Direct children of a process, from /proc/PID/task/*/children."""
	pids: List[int] = []
	try:
		children_files = list(Path(f'/proc/{pid}/task').glob('*/children'))
	except OSError:
		# the process ended between two looks
		return pids
	for children_file in children_files:
		try:
			pids += [int(item) for item in children_file.read_text(encoding='ascii').split()]
		except (OSError, ValueError):
			continue
	return pids


def tree_rss_mib(root_pid: int) -> float:
	"""Resident memory of a process and all its descendants now (MiB); 0 where /proc cannot tell."""
	total_kib = 0
	pending, seen = [root_pid], set()
	while pending:
		pid = pending.pop()
		if pid in seen:
			continue
		seen.add(pid)
		try:
			with open(f'/proc/{pid}/statm', encoding='ascii') as statm:
				total_kib += int(statm.read().split()[1]) * (os.sysconf('SC_PAGE_SIZE') // 1024)
		except (OSError, ValueError, IndexError):
			continue
		pending += child_pids(pid)
	return total_kib / 1024.0


class TreeMemorySampler:
	"""Samples the resident memory of a process tree (the Python child plus its ffmpeg processes) every interval
	and keeps the largest sum: ru_maxrss cannot give this, since an exec'd child inherits its parent's peak."""

	def __init__(self, pid: int, interval: float = 0.05) -> None:
		self.pid = pid
		self.interval = interval
		self.peak_mib = 0.0
		self.stopped = threading.Event()
		self.thread = threading.Thread(target=self.loop, daemon=True)

	def loop(self) -> None:
		while not self.stopped.is_set():
			try:
				self.peak_mib = max(self.peak_mib, tree_rss_mib(self.pid))
			except OSError:
				# a process of the tree ended mid-look; the next sample sees the tree as it is then
				pass
			self.stopped.wait(self.interval)

	def __enter__(self) -> 'TreeMemorySampler':
		self.thread.start()
		return self

	def __exit__(self, *_: Any) -> None:
		self.stopped.set()
		self.thread.join()


def run_child(variant: Variant, repeat: int, arguments: Sequence[str], output_path: Path, log_directory: Path) -> RunResult:
	log_path = log_directory / f'{variant.name}-{repeat}.log'
	with tempfile.TemporaryDirectory(prefix='bench-pipeline-') as scratch:
		json_path = Path(scratch) / 'report.json'
		command = [sys.executable, str(Path(__file__).resolve()), '--worker-json', str(json_path), '--', *arguments, '-o', str(output_path)]
		environment = dict(os.environ)
		environment.setdefault('OMP_NUM_THREADS', '1')
		start = time.perf_counter()
		with open(log_path, 'w', encoding='utf-8') as log:
			log.write(' '.join(shlex.quote(part) for part in command) + '\n')
			log.flush()
			process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=environment)
			with TreeMemorySampler(process.pid) as sampler:
				returncode = process.wait()
		process_wall = time.perf_counter() - start
		report: Dict[str, Any] = json.loads(json_path.read_text(encoding='utf-8')) if json_path.is_file() else {}
	exit_code = report.get('exit_code', returncode)
	if exit_code != 0 or returncode != 0:
		tail = log_path.read_text(encoding='utf-8', errors='replace').splitlines()[-15:]
		raise SystemExit(f'variant {variant.name} failed (exit {exit_code}); the end of {log_path}:\n' + '\n'.join(tail))
	return RunResult(
		variant=variant.name, repeat=repeat, exit_code=exit_code, wall_s=report['wall_s'], process_wall_s=process_wall,
		cpu_s=report['cpu_s'], peak_rss_mib=report['peak_rss_mib'], peak_tree_rss_mib=sampler.peak_mib,
		output_frames=probe_frame_count(output_path), stages=report['stages'], log_path=str(log_path), quality=report.get('quality'),
		models=report.get('models'), child_cpu_s=report.get('child_cpu_s', 0.0)
	)


def ordered_stages(runs: Sequence[RunResult]) -> List[str]:
	seen = {stage for run in runs for stage, total in run.stages.items() if (total['seconds'] > 0 or stage in CORE_STAGES) and not stage.startswith(PIPELINE_STAGE_PREFIX)}
	stages = [stage for stage in STAGE_ORDER if stage in seen or stage in CORE_STAGES]
	return stages + sorted(seen - set(stages))


def summarise(variants: Sequence[Variant], runs: Sequence[RunResult], frame_count: int) -> List[Dict[str, Any]]:
	"""Per variant: medians over its repeats (one repeat: that run), fps, and ratios against the first variant
	(the baseline when it is listed first)."""
	stages = ordered_stages(runs)
	summaries: List[Dict[str, Any]] = []
	for variant in variants:
		own = [run for run in runs if run.variant == variant.name]
		wall = statistics.median(run.wall_s for run in own)
		summaries.append({
			'name': variant.name,
			'description': variant.description,
			'arguments': list(variant.arguments),
			'wall_s': wall,
			'fastest_wall_s': min(run.wall_s for run in own),
			'process_wall_s': statistics.median(run.process_wall_s for run in own),
			'fps': frame_count / wall if wall > 0 else 0.0,
			'cpu_s': statistics.median(run.cpu_s for run in own),
			'peak_rss_mib': max(run.peak_rss_mib for run in own),
			'peak_tree_rss_mib': max(run.peak_tree_rss_mib for run in own),
			'output_frames': own[-1].output_frames,
			'stages': {stage: {
				'seconds': statistics.median(run.stages.get(stage, {}).get('seconds', 0.0) for run in own),
				'calls': int(statistics.median(run.stages.get(stage, {}).get('calls', 0) for run in own)),
			} for stage in stages},
			'runs': [vars(run) for run in own],
		})
	for summary, variant in zip(summaries, variants):
		own = [run for run in runs if run.variant == variant.name]
		swap_calls = statistics.median(run.stages.get('swap', {}).get('calls', 0) for run in own)
		swap_items = statistics.median(run.stages.get('swap', {}).get('items', 0) for run in own)
		# model-call seconds (summed over the threads that made them) per wall second: how much of the run the models fill
		model_seconds = statistics.median(sum(total.get('seconds', 0.0) for stage, total in run.stages.items() if stage in MODEL_STAGES) for run in own)
		summary['swap_mean_batch'] = swap_items / swap_calls if swap_calls else 0.0
		enhance_calls = statistics.median(run.stages.get('enhance', {}).get('calls', 0) for run in own)
		enhance_items = statistics.median(run.stages.get('enhance', {}).get('items', 0) for run in own)
		summary['enhance_mean_batch'] = enhance_items / enhance_calls if enhance_calls else 0.0
		summary['model_share'] = model_seconds / summary['wall_s'] if summary['wall_s'] > 0 else 0.0
		# the quality monitor's summary of the variant's first run (the figures are deterministic per variant)
		summary['quality'] = next((run.quality for run in own if run.quality is not None), None)
		summary.update(model_floor(own, summary['wall_s']))
		# per frame, summed over the stage's workers (streaming runs only; the disk workflow has no such stages)
		summary['pipeline_ms_per_frame'] = {
			name: statistics.median(run.stages.get(PIPELINE_STAGE_PREFIX + name, {}).get('seconds', 0.0) for run in own) * 1000 / frame_count
			for name in PIPELINE_STAGES
			if frame_count and any(PIPELINE_STAGE_PREFIX + name in run.stages for run in own)
		}
	reference = summaries[0]
	for summary in summaries:
		summary['speed_up'] = reference['wall_s'] / summary['wall_s'] if summary['wall_s'] > 0 else 0.0
		summary['cpu_ratio'] = reference['cpu_s'] / summary['cpu_s'] if summary['cpu_s'] > 0 else 0.0
	return summaries


def model_floor(own: Sequence[RunResult], wall: float) -> Dict[str, Any]:
	"""The swapper's per-item time in the run against isolated, and the model floor: the sum over every model
	call of its isolated time, divided by the calls the machine really runs at once (measured, and at most cores //
	intra-op threads and the workers); wall / floor is how close the run comes to doing nothing but model calls."""
	measured = [run.models for run in own if run.models]
	if not measured:
		return {'swap_run_ms': None, 'swap_isolated_ms': None, 'model_floor_s': None, 'floor_ratio': None}
	models = measured[0]
	plan = models['plan']
	nominal = max(1, min(plan['process_workers'], plan['cores'] // max(1, plan['intra_op_threads'])))
	# measured where the run recorded it; never above the nominal count (a noisy replay must not lower the floor)
	parallel = min(float(models.get('parallelism') or nominal), float(nominal))
	model_seconds = sum(call['items'] * call['isolated_seconds_per_item'] for call in models['calls'])
	floor = model_seconds / parallel
	cpu = statistics.median(run.cpu_s for run in own)
	ffmpeg_cpu = statistics.median(run.child_cpu_s for run in own)
	threads = plan['intra_op_threads']
	swap = [call for call in models['calls'] if call['stage'] == 'swap' and call['items']]
	swap_main = max(swap, key=lambda call: call['items'] * call['isolated_seconds_per_item']) if swap else None
	# the calls' own CPU in the run, where one intra-op thread makes it measurable (call_samples)
	cpu_measured = all(call.get('run_cpu_seconds_per_item') is not None for call in models['calls'])
	model_cpu_in_run = sum(call['items'] * call['run_cpu_seconds_per_item'] for call in models['calls']) if cpu_measured else None
	model_cpu_alone = model_seconds * threads
	return {
		'plan': plan,
		'swap_run_ms': swap_main['run_seconds_per_item'] * 1000 if swap_main else None,
		'swap_isolated_ms': swap_main['isolated_seconds_per_item'] * 1000 if swap_main else None,
		'swap_run_cpu_ms': swap_main['run_cpu_seconds_per_item'] * 1000 if swap_main and cpu_measured else None,
		'swap_isolated_cpu_ms': swap_main['isolated_cpu_seconds_per_item'] * 1000 if swap_main and cpu_measured else None,
		# alone, but with as many calls at once as the run makes: the cost of sharing the caches and memory bus
		'swap_together_cpu_ms': swap_main['isolated_cpu_seconds_per_item'] * 1000 * nominal / parallel if swap_main and cpu_measured else None,
		'calls_at_once_nominal': nominal,
		'model_floor_s': floor,
		'floor_ratio': wall / floor if floor > 0 else None,
		'parallelism': parallel,
		# the CPU seconds the run spent outside its model calls (at their isolated cost), and how busy it kept the
		# cores: with every core busy, the wall time cannot fall below (model + other CPU) / cores, however the work
		# is ordered
		'other_cpu_s': max(0.0, cpu - model_cpu_alone),
		'cores_busy': cpu / (wall * plan['cores']) if wall > 0 and plan.get('cores') else None,
		# where the CPU went: the model calls alone and in the run, the ffmpeg processes, and the rest of the engine
		'model_cpu_alone_s': model_cpu_alone,
		'model_cpu_in_run_s': model_cpu_in_run,
		'ffmpeg_cpu_s': ffmpeg_cpu,
		'engine_other_cpu_s': max(0.0, cpu - ffmpeg_cpu - (model_cpu_in_run if model_cpu_in_run is not None else model_cpu_alone)),
		'idle_core_s': max(0.0, wall * plan['cores'] - cpu) if plan.get('cores') else None,
		# the floor with the decode and encode added on the same cores: what the wall would come to if everything of
		# the engine's own beside the model calls were free
		'floor_with_ffmpeg_s': floor + ffmpeg_cpu / (parallel * threads) if floor > 0 else None,
	}


def format_optional(value: Optional[float], pattern: str) -> str:
	return '-' if value is None else format(value, pattern)


def optional_ratio(numerator: Optional[float], denominator: Optional[float]) -> Optional[float]:
	return numerator / denominator if numerator and denominator else None


def table_row(cells: Sequence[str]) -> str:
	return '| ' + ' | '.join(cells) + ' |'


def table_block(prose: Sequence[str], header: Sequence[str], rows: Sequence[Sequence[str]], text_columns: int = 1) -> List[str]:
	"""A paragraph, then a markdown table whose first text_columns columns are text and the rest numbers."""
	alignment = ['---'] * text_columns + ['---:'] * (len(header) - text_columns)
	return ['', *prose, '', table_row(header), table_row(alignment), *[table_row(row) for row in rows]]


def formatted(values: Sequence[Tuple[Optional[float], str]]) -> List[str]:
	return [format_optional(value, pattern) for value, pattern in values]


def plan_text(plan: Optional[Dict[str, Any]]) -> str:
	if not plan:
		return '-'
	return f"{plan.get('process_workers', '-')} × {plan.get('intra_op_threads', '-')} on {plan.get('cores', '-')}"


def core_time(summary: Dict[str, Any]) -> Optional[float]:
	cores = (summary.get('plan') or {}).get('cores')
	return summary['wall_s'] * cores if cores else None


def pipeline_cells(summary: Dict[str, Any]) -> List[Tuple[Optional[float], str]]:
	per_frame = summary.get('pipeline_ms_per_frame') or {}
	analyse = per_frame.get('analyse')
	return [(analyse, '.2f'), (1000 / analyse if analyse else None, '.1f'), (summary['fps'], '.1f'), (per_frame.get('process'), '.2f'), (per_frame.get('cues'), '.2f')]


def relative_to_project(text: str) -> str:
	"""Reports name files relative to the project, so they read the same on every machine."""
	return text.replace(str(PROJECT_DIR) + '/', '')


def markdown_report(results: Dict[str, Any]) -> str:
	job = results['job']
	summaries = results['variants']
	lines = [
		f"## Pipeline benchmark: {job['resolution']} ({job['width']}x{job['height']}), {job['frames']} frames, {job['models']}",
		'',
		f"Swapper {job['swapper']}, detector {job['face_detector_model']}, selector many, {results['machine']['cpu_count']} CPU cores, "
		f"load average {results['machine']['load_average_before']} before / {results['machine']['load_average_after']} after, "
		f"{job['repeats']} repeat(s), speed-up against `{results['reference']}`.",
		'',
		'| variant | wall (s) | end-to-end fps | speed-up | CPU (s) | CPU ratio | peak RSS (MiB) | peak tree RSS (MiB) | swapper mean batch | enhancer mean batch | model time / wall | output frames |',
		'|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
	]
	for summary in summaries:
		lines.append(
			f"| {summary['name']} | {summary['wall_s']:.2f} | {summary['fps']:.2f} | {summary['speed_up']:.2f}× | {summary['cpu_s']:.1f} | "
			f"{summary['cpu_ratio']:.2f}× | {summary['peak_rss_mib']:.0f} | {summary['peak_tree_rss_mib']:.0f} | {summary['swap_mean_batch']:.1f} | {summary['enhance_mean_batch']:.1f} | "
			f"{summary['model_share']:.0%} | {summary['output_frames']} |"
		)
	if any(summary.get('model_floor_s') for summary in summaries):
		lines += table_block([
			'Cores used once: the swapper per item in the run against the same call alone (same intra-op threads), and the',
			'wall time against the model floor (every model call at its isolated time, over the calls the machine really runs',
			'at once: measured by replaying the heaviest call on every worker at the same time). The CPU the run spent outside',
			'its model calls and how busy it kept the cores say what stands between the two:',
		], [
			'variant', 'thread plan', 'swapper ms / item in run', 'isolated', 'run / isolated', 'calls at once', 'model floor (s)', 'wall / floor',
			'other CPU (s)', 'cores busy'
		], [[summary['name'], plan_text(summary.get('plan'))] + formatted([
			(summary.get('swap_run_ms'), '.1f'), (summary.get('swap_isolated_ms'), '.1f'),
			(optional_ratio(summary.get('swap_run_ms'), summary.get('swap_isolated_ms')), '.2f'), (summary.get('parallelism'), '.2f'),
			(summary.get('model_floor_s'), '.2f'), (summary.get('floor_ratio'), '.2f'), (summary.get('other_cpu_s'), '.1f'), (summary.get('cores_busy'), '.0%')
		]) for summary in summaries], text_columns=2)
		lines += table_block([
			"Where the CPU went (seconds; core time = cores × wall). The swapper CPU per item is the calling thread's, which",
			'is the whole call with one intra-op thread (else not measured, -): alone, and alone with as many calls at once as',
			'the run makes (the replay above), against the run, it says whether a call does more work in the run than the',
			'shared caches explain, or only waits longer for a core. The floor with ffmpeg adds the decode and encode to the',
			'model floor on the same cores: the wall if the rest of the engine cost nothing.',
		], [
			'variant', 'core time', 'model calls alone', 'model calls in run', 'ffmpeg', 'rest of the engine', 'idle', 'swapper CPU ms / item in run',
			'alone', 'alone, in parallel', 'run / in parallel', 'floor with ffmpeg (s)', 'wall / floor with ffmpeg'
		], [[summary['name']] + formatted([
			(core_time(summary), '.1f'), (summary.get('model_cpu_alone_s'), '.1f'), (summary.get('model_cpu_in_run_s'), '.1f'), (summary.get('ffmpeg_cpu_s'), '.1f'),
			(summary.get('engine_other_cpu_s'), '.1f'), (summary.get('idle_core_s'), '.1f'), (summary.get('swap_run_cpu_ms'), '.1f'),
			(summary.get('swap_isolated_cpu_ms'), '.1f'), (summary.get('swap_together_cpu_ms'), '.1f'),
			(optional_ratio(summary.get('swap_run_cpu_ms'), summary.get('swap_together_cpu_ms')), '.2f'), (summary.get('floor_with_ffmpeg_s'), '.2f'),
			(optional_ratio(summary['wall_s'], summary.get('floor_with_ffmpeg_s')), '.2f')
		]) for summary in summaries])
	if any(summary.get('pipeline_ms_per_frame') for summary in summaries):
		lines += table_block([
			"The streaming pipeline's stages: time inside each stage's function per frame, summed over its workers. The",
			'analysis stage is one thread that takes the frames in order: at the load of this run, 1000 / its ms a frame is',
			'the most fps the pipeline could reach, whatever the device does; near the end-to-end fps, that thread is the limit:',
		], [
			'variant', 'analysis (ms / frame)', 'fps it allows', 'end-to-end fps', 'process, all workers (ms / frame)', 'cues (ms / frame)'
		], [[summary['name']] + formatted(pipeline_cells(summary)) for summary in summaries])
	stages = list(summaries[0]['stages'])
	lines += [
		'',
		'Stage time in seconds, summed over the threads that ran it (calls):',
		'',
		'| stage | ' + ' | '.join(summary['name'] for summary in summaries) + ' |',
		'|---|' + '---:|' * len(summaries),
	]
	for stage in stages:
		cells = [f"{summary['stages'][stage]['seconds']:.2f} ({summary['stages'][stage]['calls']})" for summary in summaries]
		lines.append(f'| {stage} | ' + ' | '.join(cells) + ' |')
	lines += quality_lines(summaries)
	lines += ['', 'Variants:', '']
	for summary in summaries:
		options = ' '.join(summary['arguments']) or '(none)'
		lines.append(f"- `{summary['name']}`: {summary['description']}; options `{options}`")
	lines += ['', f"Command: `{results['command']}`", '']
	return '\n'.join(lines)


def quality_lines(summaries: Sequence[Dict[str, Any]]) -> List[str]:
	"""The quality monitor's summary next to the speed figures, so a speed-up that costs quality shows (monitor
	time is the monitor's own stage time; it runs beside the other stages, so the wall time grows by less)."""
	if not any(summary.get('quality') for summary in summaries):
		return []
	lines = [
		'', 'Quality monitor (`--quality-report`; the disk workflow is not monitored):', '',
		'| variant | face tPSNR in / out (dB) | face PSNR (dB) | face SSIM | jitter (px) | lossless outside | alerts | monitor time / wall |',
		'|---|---:|---:|---:|---:|---:|---:|---:|',
	]
	for summary in summaries:
		quality = summary.get('quality')
		if not quality:
			lines.append(f"| {summary['name']} | - | - | - | - | - | - | - |")
			continue
		alerts = ', '.join(f'{kind} {count}' for kind, count in quality['alerts'].items() if count) or 'none'
		share = quality['seconds'] / summary['wall_s'] if summary['wall_s'] > 0 else 0.0
		lines.append(
			f"| {summary['name']} | {quality['mean_tpsnr_in']:.2f} / {quality['mean_tpsnr_out']:.2f} | {quality['mean_face_psnr']:.2f} | "
			f"{quality['mean_face_ssim']:.3f} | {quality['mean_jitter']:.3f} | {quality['outside_lossless']}/{quality['outside_checked']} | {alerts} | {share:.1%} |"
		)
	return lines


# colours (BGR) for up to eight variants, then repeated
BAR_COLOURS: Tuple[Tuple[int, int, int], ...] = (
	(180, 119, 31), (14, 127, 255), (44, 160, 44), (40, 39, 214), (189, 103, 148), (75, 86, 140), (194, 119, 227), (127, 127, 127)
)


def nice_step(maximum: float, ticks: int = 6) -> float:
	raw = maximum / max(ticks, 1)
	magnitude = 10 ** int(f'{raw:e}'.split('e')[1])
	for factor in (1, 2, 2.5, 5, 10):
		if raw <= factor * magnitude:
			return factor * magnitude
	return 10 * magnitude


def draw_chart(results: Dict[str, Any], path: Path) -> None:
	"""Grouped bars with OpenCV: one group per stage plus the end-to-end wall time, one bar per variant."""
	import cv2
	import numpy as np

	summaries = results['variants']
	groups = list(summaries[0]['stages']) + ['wall']
	values = [[summary['stages'][group]['seconds'] if group != 'wall' else summary['wall_s'] for group in groups] for summary in summaries]
	width, height = 1400, 640
	left, right, top, bottom = 80, 30, 70, 70
	canvas = np.full((height, width, 3), 255, np.uint8)
	font = cv2.FONT_HERSHEY_SIMPLEX
	job = results['job']
	title = f"{job['resolution']} {job['frames']} frames, {job['models'].split(' in ')[0]}: stage seconds (thread-summed) and wall time"
	cv2.putText(canvas, title, (left, 30), font, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
	maximum = max(max(row) for row in values) or 1.0
	step = nice_step(maximum)
	top_value = step * (int(maximum / step) + 1)
	plot_height = height - top - bottom
	plot_width = width - left - right

	def y_of(value: float) -> int:
		return int(round(height - bottom - value / top_value * plot_height))

	tick = 0.0
	while tick <= top_value + 1e-9:
		y = y_of(tick)
		cv2.line(canvas, (left, y), (width - right, y), (225, 225, 225), 1)
		cv2.putText(canvas, f'{tick:g}', (8, y + 5), font, 0.45, (60, 60, 60), 1, cv2.LINE_AA)
		tick += step
	cv2.line(canvas, (left, top), (left, height - bottom), (0, 0, 0), 1)
	cv2.line(canvas, (left, height - bottom), (width - right, height - bottom), (0, 0, 0), 1)
	cv2.putText(canvas, 's', (left - 20, top - 10), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)

	group_width = plot_width / len(groups)
	bar_width = max(4, int(group_width * 0.8 / len(summaries)))
	for group_index, group in enumerate(groups):
		group_left = left + group_index * group_width + group_width * 0.1
		for variant_index, row in enumerate(values):
			x1 = int(group_left + variant_index * bar_width)
			y1 = y_of(row[group_index])
			colour = BAR_COLOURS[variant_index % len(BAR_COLOURS)]
			cv2.rectangle(canvas, (x1, y1), (x1 + bar_width - 2, height - bottom), colour, -1)
			if row[group_index] > 0:
				label = f'{row[group_index]:.1f}'
				cv2.putText(canvas, label, (x1, y1 - 4), font, 0.33, (40, 40, 40), 1, cv2.LINE_AA)
		(text_width, _), _ = cv2.getTextSize(group, font, 0.5, 1)
		centre = int(left + (group_index + 0.5) * group_width)
		cv2.putText(canvas, group, (centre - text_width // 2, height - bottom + 22), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)

	legend_x, legend_y = width - right - 330, top - 20
	for variant_index, summary in enumerate(summaries):
		y = legend_y + variant_index * 22
		colour = BAR_COLOURS[variant_index % len(BAR_COLOURS)]
		cv2.rectangle(canvas, (legend_x, y), (legend_x + 14, y + 14), colour, -1)
		label = f"{summary['name']}: {summary['wall_s']:.1f} s, {summary['fps']:.2f} fps, {summary['speed_up']:.2f}x"
		cv2.putText(canvas, label, (legend_x + 20, y + 12), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
	if not cv2.imwrite(str(path), canvas):
		raise SystemExit(f'cannot write {path}')


def load_average() -> str:
	try:
		return ' '.join(f'{value:.2f}' for value in os.getloadavg())
	except OSError:
		return 'unknown'


def build_parser() -> argparse.ArgumentParser:
	parser = argparse.ArgumentParser(prog='python benchmarks/bench_pipeline.py', description=__doc__.split('\n')[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
	models = parser.add_mutually_exclusive_group()
	models.add_argument('--models-path', default=None, help='a folder with the real models (instead of stand-ins)')
	models.add_argument('--standins', choices=('small', 'heavy', 'pinned', 'heavy-pinned'), default='heavy', help='stand-in set generated into the cache (heavy: swappers cost like the real ones; pinned: the inswapper graphs hard-code batch 1 in their reshapes)')
	parser.add_argument('--resolution', default='720p', help='clip size: 240p 360p 540p 720p 1080p 1440p 2160p')
	parser.add_argument('--frames', type=int, default=150, help='clip length in frames (25 fps)')
	parser.add_argument('--variants', default='baseline,optimized', help=f'comma-separated, the first is the reference of the speed-up; known: {", ".join(VARIANTS)}')
	parser.add_argument('--define', action='append', type=parse_variant_definition, default=[], metavar='NAME=OPTIONS', help='add a variant: a name and its extra headless-run options')
	parser.add_argument('--repeats', type=int, default=1, help='runs per variant (interleaved); the report shows medians')
	parser.add_argument('--swapper', default='inswapper_128', help='face swapper model')
	parser.add_argument('--face-detector-model', default='yunet', help='face detector model (yunet is real in the stand-in set)')
	parser.add_argument('--source', default=str(SOURCE_PHOTO), help='source photo')
	parser.add_argument('--extra-args', default='', help='options added to every variant (shell-quoted string)')
	parser.add_argument('--cache-dir', default=str(DEFAULT_CACHE_DIR), help='where clips and stand-ins are kept between runs')
	parser.add_argument('--out', default=str(DEFAULT_OUT_DIR), help='folder for results.md, results.json, results.png and the run logs')
	parser.add_argument('--keep-outputs', action='store_true', help='keep the output videos (in OUT/outputs)')
	parser.add_argument('--quality', choices=('on', 'off'), default='on', help='run the quality monitor in every run (its summary is reported next to the speed figures)')
	return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
	arguments = list(sys.argv[1:] if argv is None else argv)
	if arguments[:1] == ['--worker-json']:
		separator = arguments.index('--')
		return run_worker(arguments[1], arguments[separator + 1:])

	from facefusion.workflows.benchmark import RESOLUTION_SIZES, ensure_example_target

	options = build_parser().parse_args(arguments)
	if options.resolution not in RESOLUTION_SIZES:
		raise SystemExit(f'unknown resolution {options.resolution} (known: {", ".join(RESOLUTION_SIZES)})')
	if options.frames < 1 or options.repeats < 1:
		raise SystemExit('--frames and --repeats must be at least 1')
	variants = resolve_variants(options.variants, options.define)
	out_directory = Path(options.out).resolve()
	log_directory = out_directory / 'logs'
	log_directory.mkdir(parents=True, exist_ok=True)
	cache_directory = Path(options.cache_dir).resolve()

	target_path = ensure_example_target(options.resolution, options.frames, cache_directory / 'clips')
	# the models folder is not known before the models are, so the names are collected with a placeholder path
	placeholder = common_arguments(options, target_path, cache_directory)
	models_path, models_label = prepare_models(options, [placeholder + list(variant.arguments) for variant in variants])
	common = common_arguments(options, target_path, models_path)

	output_directory = out_directory / 'outputs' if options.keep_outputs else Path(tempfile.mkdtemp(prefix='bench-pipeline-outputs-'))
	output_directory.mkdir(parents=True, exist_ok=True)
	load_before = load_average()
	runs: List[RunResult] = []
	try:
		for repeat in range(options.repeats):
			for variant in variants:
				print(f'[bench] {variant.name} (run {repeat + 1} of {options.repeats}) ...', flush=True)
				quality = ['--quality-report', str(log_directory / f'{variant.name}-{repeat}.quality.csv')] if options.quality == 'on' else []
				run = run_child(variant, repeat, common + list(variant.arguments) + quality, output_directory / f'{variant.name}-{repeat}.mp4', log_directory)
				print(f'[bench] {variant.name}: {run.wall_s:.2f} s, {options.frames / run.wall_s:.2f} fps, CPU {run.cpu_s:.1f} s, peak {run.peak_rss_mib:.0f} MiB', flush=True)
				runs.append(run)
	finally:
		if not options.keep_outputs:
			shutil.rmtree(output_directory, ignore_errors=True)

	width, height = RESOLUTION_SIZES[options.resolution]
	import onnxruntime
	results: Dict[str, Any] = {
		'created': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
		'command': 'python benchmarks/bench_pipeline.py ' + ' '.join(shlex.quote(part) for part in arguments),
		'machine': {
			'cpu_count': os.cpu_count(), 'platform': platform.platform(), 'python': platform.python_version(),
			'onnxruntime': onnxruntime.__version__, 'load_average_before': load_before, 'load_average_after': load_average(),
		},
		'job': {
			'resolution': options.resolution, 'width': width, 'height': height, 'frames': options.frames, 'fps': 25,
			'clip': str(target_path), 'models': models_label, 'swapper': options.swapper,
			'face_detector_model': options.face_detector_model, 'repeats': options.repeats, 'common_arguments': common,
		},
		'reference': variants[0].name,
		'variants': summarise(variants, runs, options.frames),
	}
	(out_directory / 'results.json').write_text(relative_to_project(json.dumps(results, indent=2)) + '\n', encoding='utf-8')
	markdown = markdown_report(results)
	(out_directory / 'results.md').write_text(relative_to_project(markdown), encoding='utf-8')
	draw_chart(results, out_directory / 'results.png')
	print(markdown)
	print(f'[bench] wrote {out_directory / "results.md"}, results.json, results.png')
	return 0


if __name__ == '__main__':
	sys.exit(main())
