"""The workflows and the command routes: the one file that shows the whole pipeline wired together.

An image run reads top to bottom in run_image():
	check paths -> read source and target → models present (download) → inference → content check →
	reference faces -> processors prepared → target analysed once → processors in order → atomic write.

Errors a user can cause are FaceFusionError; cli() turns them into one line `[FACEFUSION] message` on stderr and the
error's exit code. Heavy modules (numpy, cv2, onnxruntime, the models) are imported inside the functions that use
them, so `--help`, `--version` and bad command lines answer at once and a module still being written cannot break
the command line.
"""
from __future__ import annotations

import inspect
import itertools
import os
import sys
import time
import traceback
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, List, Optional, Sequence, Tuple

from facefusion import choices, logger
from facefusion.cli import program
from facefusion.config import RunConfig
from facefusion.errors import FaceFusionError, InputError, ModelUnavailableError, ProcessingError
from facefusion.filesystem import get_file_extension, get_file_name, media_status, parent_directory, resolve_file_pattern, same_file

if TYPE_CHECKING:
	import numpy as np

	from facefusion.types import VisionFrame

UI_UNAVAILABLE_MESSAGE = 'the UI is not part of this build yet; use headless-run, or give run -s/-t/-o to process files'
CONTENT_REFUSED_MESSAGE = 'the target was refused by the content analyser (it appears to show adult content); nothing was processed'
INTERRUPTED_MESSAGE = 'interrupted by the user; no partial output was written'
EXIT_INTERRUPTED = 130
EXIT_UI_UNAVAILABLE = 2
# frames whose faces share one swapper call when batching across frames
FRAME_WINDOW = 8


# ---- entry points ------------------------------------------------------------------------------------------------

def main() -> None:
	# like 3.5.0: one OpenMP thread per library, since parallelism comes from our own workers and ORT's pools;
	# an explicit value in the environment is respected
	os.environ.setdefault('OMP_NUM_THREADS', '1')
	sys.exit(cli())


def cli(argv: Optional[Sequence[str]] = None) -> int:
	"""Run one command line (argv without the program name) and return the exit code."""
	config: Optional[RunConfig] = None
	try:
		try:
			config = program.build_config(argv)
		except SystemExit as request:
			# argparse has printed its usage / error / help already
			return exit_code_of(request)
		return route(config)
	except FaceFusionError as error:
		report(error.message)
		return error.exit_code
	except KeyboardInterrupt:
		report(INTERRUPTED_MESSAGE)
		return EXIT_INTERRUPTED
	except Exception as exception:
		if config is not None and config.log_level == 'debug':
			traceback.print_exc()
		report(f'unexpected error: {type(exception).__name__}: {exception} (run with --log-level debug for details)')
		return 1


def exit_code_of(request: SystemExit) -> int:
	if request.code is None:
		return 0
	if isinstance(request.code, int):
		return request.code
	print(request.code, file=sys.stderr)
	return 1


def report(message: str) -> None:
	"""One line on stderr, whatever the message holds."""
	print('[FACEFUSION] ' + ' '.join(str(message).split()), file=sys.stderr, flush=True)


def route(config: RunConfig) -> int:
	if config.command == 'force-download':
		return force_download(config)
	if config.command == 'run' and not has_media_paths(config):
		report(UI_UNAVAILABLE_MESSAGE)
		return EXIT_UI_UNAVAILABLE
	apply_system_memory_limit(config.system_memory_limit)
	if config.command == 'batch-run':
		return run_batch(config)
	if config.command == 'benchmark':
		from facefusion.workflows import benchmark as benchmarker
		return benchmarker.run(config)
	# headless-run, and run given paths: the same processing
	return run_job(config)


def has_media_paths(config: RunConfig) -> bool:
	return bool(config.source_paths or config.target_path or config.output_path)


def force_download(config: RunConfig) -> int:
	from facefusion.models.download import force_download as download_all
	return download_all(config.download_scope, config.models_path, config.download_providers)


def apply_system_memory_limit(limit_gib: int) -> None:
	"""--system-memory-limit as in 3.5.0: a data-segment limit in GiB (soft only, so it can be raised again)."""
	if limit_gib <= 0:
		return
	try:
		import resource
		_, hard_limit = resource.getrlimit(resource.RLIMIT_DATA)
		limit = limit_gib * 1024 ** 3
		if hard_limit != resource.RLIM_INFINITY:
			limit = min(limit, hard_limit)
		resource.setrlimit(resource.RLIMIT_DATA, (limit, hard_limit))
	except (ImportError, ValueError, OSError) as exception:
		logger.warn_once('system-memory-limit', f'--system-memory-limit could not be applied here ({exception}); running without it')


# ---- paths -------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class JobPaths:
	source_paths: List[str]
	target_path: str
	target_kind: str
	output_path: str


def describe_media_problem(role: str, path: str, status: str, wanted: str) -> str:
	extension = get_file_extension(path) or '(none)'
	if status == 'missing':
		return f'{role} not found: {path}'
	if status == 'directory':
		return f'{role} is a directory, not a file: {path}'
	if status == 'empty':
		return f'{role} is an empty file (0 bytes): {path}'
	if status == 'unreadable':
		return f'cannot read {role} (permission denied or I/O error): {path}'
	if status == 'mismatch':
		return f'{role} is not a valid file of its type: its content does not match its {extension} extension: {path}'
	if status == 'unsupported':
		return f'{role} must be {wanted}; {extension} is not supported: {path}'
	return f'{role} must be {wanted}, not {status}: {path}'


def image_or_video_wording() -> str:
	return f'an image ({" ".join(choices.image_extensions)}) or a video ({" ".join(choices.video_extensions)})'


def check_output_path(config: RunConfig, target_kind: str) -> str:
	if not config.output_path:
		raise InputError('no output path given: pass -o/--output-path')
	output_path = config.output_path
	# an existing folder as output: write the target's file name into it
	if os.path.isdir(output_path):
		output_path = os.path.join(output_path, os.path.basename(config.target_path or ''))
	directory = parent_directory(output_path)
	if not directory.is_dir():
		raise InputError(f'output directory does not exist: {directory} (create it first)')
	extension = get_file_extension(output_path)
	allowed = choices.image_extensions if target_kind == 'image' else choices.video_extensions
	if extension not in allowed:
		raise InputError(f'output of a {target_kind} target must end in one of {" ".join(allowed)}: {output_path}')
	for input_path in [config.target_path] + list(config.source_paths):
		if input_path and same_file(output_path, input_path):
			raise InputError(f'output path is an input file and would be overwritten: {output_path}')
	return output_path


def check_job_paths(config: RunConfig) -> JobPaths:
	"""Every path problem as a clear InputError, before anything is downloaded, loaded or written."""
	source_paths: List[str] = []
	for source_path in config.source_paths:
		status = media_status(source_path)
		if status == 'image':
			source_paths.append(source_path)
		elif status == 'audio':
			logger.warn_once('audio-source', f'audio source {source_path}: it replaces the audio of a video target (image targets ignore it)')
		else:
			raise InputError(describe_media_problem('source', source_path, status, f'an image ({" ".join(choices.image_extensions)})'))
	if not config.target_path:
		raise InputError('no target given: pass -t/--target-path')
	target_kind = media_status(config.target_path)
	if target_kind not in ('image', 'video'):
		raise InputError(describe_media_problem('target', config.target_path, target_kind, image_or_video_wording()))
	output_path = check_output_path(config, target_kind)
	return JobPaths(source_paths, config.target_path, target_kind, output_path)


# ---- models and the inference engine ---------------------------------------------------------------------------

def models_of(module: ModuleType, class_name: str, config: RunConfig) -> List[str]:
	"""The model names a component needs. The contracts allow `required_models` on the class (static) or on the
	module, with or without the config; accept each form so components can choose."""
	owner = getattr(module, class_name, None)
	function = getattr(owner, 'required_models', None) or getattr(module, 'required_models')
	if inspect.signature(function).parameters:
		return list(function(config))
	return list(function())


def collect_required_models(config: RunConfig) -> List[str]:
	"""Every model the run needs, once each: content analyser, face analysis, masks, then the processors."""
	from facefusion import content_analyser, face_analyser, face_masker
	from facefusion.processors import registry
	names: List[str] = []
	names += models_of(content_analyser, 'ContentAnalyser', config)
	names += models_of(face_analyser, 'FaceAnalyser', config)
	names += models_of(face_masker, 'FaceMasker', config)
	names += registry.required_models(config.processors, config)
	return list(dict.fromkeys(names))


@dataclass
class Engine:
	"""What stays loaded across the items of a batch: sessions and the analysers built on them."""
	inference: Any
	content_analyser: Any
	analyser: Any
	masker: Any

	def close(self) -> None:
		self.inference.release()


def start_engine(config: RunConfig) -> Engine:
	from facefusion.content_analyser import ContentAnalyser
	from facefusion.face_analyser import FaceAnalyser
	from facefusion.face_masker import FaceMasker
	from facefusion.inference.manager import InferenceManager
	from facefusion.models.download import ensure_models

	model_names = collect_required_models(config)
	logger.get_logger().debug('models: ' + ', '.join(model_names))
	ensure_models(model_names, config.models_path, config.download_providers)
	inference = InferenceManager(config)
	return Engine(
		inference=inference,
		content_analyser=ContentAnalyser(inference),
		analyser=FaceAnalyser(config, inference),
		masker=FaceMasker(config, inference),
	)


# ---- workflows ---------------------------------------------------------------------------------------------------

def run_job(config: RunConfig, engine: Optional[Engine] = None) -> int:
	"""One target: the image workflow or the video workflow, by what the target is."""
	paths = check_job_paths(config)
	if paths.target_kind == 'video':
		return run_video(config, engine)
	return run_image(config, engine)


def read_target_image(target_path: str, output_path: str, scale: float) -> Tuple['VisionFrame', Optional['np.ndarray']]:
	"""The target at output size. Alpha is kept (with the file's own colours) when the output format can hold it;
	otherwise transparent pixels are composited on black."""
	from facefusion import vision
	frame, alpha = vision.read_image_with_alpha(target_path)
	if alpha is not None and not vision.supports_alpha(output_path):
		frame, alpha = vision.composite_on_black(frame, alpha), None
	output_size = vision.scale_resolution((frame.shape[1], frame.shape[0]), scale)
	vision.check_image_size(output_size[0], output_size[1], f'{output_path} (the output at scale {scale:g})')
	frame = vision.resize_frame(frame, output_size)
	if alpha is not None:
		alpha = vision.resize_frame(alpha, output_size)
	return frame, alpha


def run_image(config: RunConfig, engine: Optional[Engine] = None) -> int:
	from facefusion import face_selector, vision

	start_time = time.perf_counter()
	paths = check_job_paths(config)
	if paths.target_kind != 'image':
		raise InputError(f'target is not an image: {paths.target_path}')
	# every file is decoded before any model work, so a corrupt file fails in a second, not after a download
	source_frames = [vision.read_image(source_path) for source_path in paths.source_paths]
	target_frame, target_alpha = read_target_image(paths.target_path, paths.output_path, config.output_image_scale)
	logger.get_logger().info(f'processing image {paths.target_path} -> {paths.output_path}')

	own_engine = engine is None
	engine = engine or start_engine(config)
	try:
		if engine.content_analyser.analyse_frame(target_frame):
			raise ProcessingError(CONTENT_REFUSED_MESSAGE)
		# for an image the reference frame is the target itself
		reference_faces = select_reference_faces(target_frame, engine, config) if config.face_selector_mode == 'reference' else []
		processors = build_processors(config, engine, reference_faces, source_frames)

		faces = face_selector.select_faces(target_frame, engine.analyser, config, reference_faces)
		output_frame = target_frame.copy()
		if faces:
			for processor in processors:
				output_frame = processor.process_frame(target_frame, faces, output_frame)
		else:
			logger.get_logger().warning(f'no face found in the target (or none matched the face selector); the output is the unchanged target: {paths.target_path}')
		release_processors(config, engine, processors)

		vision.write_image(paths.output_path, output_frame, config.output_image_quality, target_alpha)
	finally:
		if own_engine:
			engine.close()
	logger.get_logger().info(f'processing image succeeded in {time.perf_counter() - start_time:.2f} seconds')
	return 0


@dataclass
class AnalysedFrame:
	frame: Any
	faces: List[Any]


@dataclass
class FrameWork:
	"""What a video run does to its frames, split in the two steps the streaming pipeline overlaps:
	analyse (find and select the target faces, in frame order: the tracker carries faces from frame to frame) and
	process (every processor in order, a window of frames at a time so model calls can batch across frames)."""
	config: RunConfig
	engine: Engine
	processors: List[Any]
	reference_faces: List[Any]
	tracker: Optional[Any] = None

	def analyse(self, frame: Any) -> AnalysedFrame:
		from facefusion import face_selector
		if self.tracker is not None:
			faces = self.tracker.process(frame.index, frame.pixels)
			return AnalysedFrame(frame, self.tracker.select_faces(frame.pixels, faces, self.reference_faces))
		return AnalysedFrame(frame, face_selector.select_faces(frame.pixels, self.engine.analyser, self.config, self.reference_faces))

	def analyse_window(self, frames: List[Any]) -> List[AnalysedFrame]:
		return [self.analyse(frame) for frame in frames]

	def process_window(self, window: List[AnalysedFrame]) -> List[Any]:
		"""Frames without a selected face pass through untouched; the others go through each processor together."""
		busy = [analysed for analysed in window if analysed.faces]
		outputs = [analysed.frame.pixels.copy() for analysed in busy]
		for processor in self.processors:
			outputs = processor.process_frames([(analysed.frame.pixels, analysed.faces, output) for analysed, output in zip(busy, outputs)])
		for analysed, output in zip(busy, outputs):
			analysed.frame.pixels = output
		return [analysed.frame for analysed in window]

	def process(self, analysed: AnalysedFrame) -> Any:
		return self.process_window([analysed])[0]


def frame_window_size(config: RunConfig, engine: Engine) -> int:
	"""How many frames the swap stage gathers per model call. Batching across frames pays off on GPU providers,
	where a call has a fixed launch cost; on the CPU provider a bigger batch costs the same per item (measured), so
	`auto` batches within a frame there (faces × pixel-boost tiles) and keeps frames flowing one by one."""
	if config.face_swapper_batching == 'never':
		return 1
	if config.face_swapper_batching == 'always' or engine.inference.on_gpu():
		return FRAME_WINDOW
	return 1


def run_video(config: RunConfig, engine: Optional[Engine] = None) -> int:
	"""decode → analyse → process → encode, then the target's audio; --workflow-strategy memory streams frames
	through threads joined by bounded queues, disk is the 3.5.0-like baseline with temp frame files."""
	from fractions import Fraction

	from facefusion.video import routes as gpu_video_pipeline
	from facefusion.stage_timer import STAGE_TIMER
	from facefusion.video.io import plan_video_geometry, read_video_frame, restrict_trim
	from facefusion.video.probe import probe_video

	start_time = time.perf_counter()
	# the debug line at the end reports this video's stages (a batch-run processes several)
	STAGE_TIMER.reset()
	paths = check_job_paths(config)
	if paths.target_kind != 'video':
		raise InputError(f'target is not a video: {paths.target_path}')
	info = probe_video(paths.target_path)
	trim_start, trim_end = restrict_trim(info, config.trim_frame_start, config.trim_frame_end)
	if trim_end <= trim_start:
		raise InputError(f'the trim range {trim_start}..{trim_end} holds no frame of {paths.target_path} ({info.frame_count} frames)')
	geometry = plan_video_geometry(info, config.output_video_scale, config.output_video_fps)
	device_id = int(config.execution_device_ids[0]) if config.execution_device_ids and str(config.execution_device_ids[0]).isdigit() else 0
	routes = gpu_video_pipeline.select_video_routes(config.video_decoder, config.video_encoder_route, config.output_video_encoder, paths.output_path, device_id)
	source_frames = [read_source_image(source_path) for source_path in paths.source_paths]
	logger.get_logger().info(f'processing video {paths.target_path} -> {paths.output_path} ({trim_end - trim_start} frames)')

	own_engine = engine is None
	engine = engine or start_engine(config)
	try:
		if engine.content_analyser.analyse_video(paths.target_path, trim_start, trim_end, info.fps):
			raise ProcessingError(CONTENT_REFUSED_MESSAGE)
		reference_faces = []
		if config.face_selector_mode == 'reference':
			reference_frame = read_video_frame(info, min(max(config.reference_frame_number, 0), max(info.frame_count - 1, 0)), size=geometry.decode_size)
			reference_faces = select_reference_faces(reference_frame, engine, config)
		processors = build_processors(config, engine, reference_faces, source_frames)
		work = FrameWork(config, engine, processors, reference_faces)
		if config.workflow_strategy == 'disk':
			# the 3.5.0-like baseline: frames are processed out of order by a pool, each with a full analysis
			silent_path, duration = process_video_on_disk(config, paths, info, routes, geometry, trim_start, trim_end, work)
		else:
			work.tracker = create_tracker(config, engine, float(Fraction(geometry.frame_fps)))
			try:
				silent_path, duration = process_video_in_memory(config, paths, info, routes, geometry, trim_start, trim_end, work)
			except BaseException:
				work.tracker.close(success=False)
				raise
			export_path = work.tracker.close()
			log_tracker_stats(work.tracker, export_path)
		release_processors(config, engine, processors)
		finish_video_output(config, paths, info, trim_start, silent_path, duration)
	finally:
		if own_engine:
			engine.close()
	log_stage_timings()
	logger.get_logger().info(f'processing video succeeded in {time.perf_counter() - start_time:.2f} seconds')
	return 0


def log_stage_timings() -> None:
	from facefusion.stage_timer import STAGE_TIMER
	totals = STAGE_TIMER.snapshot()
	if totals:
		logger.get_logger().debug('stage times: ' + ', '.join(f'{stage} {total.seconds:.2f}s/{total.calls}' for stage, total in sorted(totals.items())))


def release_processors(config: RunConfig, engine: Engine, processors: List[Any]) -> None:
	"""After a target: the processors drop their per-run state and --video-memory-strategy decides which sessions
	go (strict: all, moderate: the processors', tolerant: none); a batch-run loads what it needs again lazily."""
	from facefusion.processors import registry
	for processor in processors:
		processor.release()
	engine.inference.release_for_strategy(registry.required_models(config.processors, config))


def create_tracker(config: RunConfig, engine: Engine, fps: float) -> Any:
	"""Faces as tracks across the video (keyframe detection, optical flow between, smoothing); with
	--face-tracker none and --temporal-smoothing none it passes 3.5.0's per-frame analysis through unchanged."""
	from facefusion.tracking.tracker import FaceTracker
	return FaceTracker(config, engine.analyser, fps=fps)


def log_tracker_stats(tracker: Any, export_path: Optional[str]) -> None:
	stats = tracker.stats
	logger.get_logger().debug(f'face tracker: {stats.detector_runs} detector runs, {stats.keyframes} keyframes, reasons {dict(stats.reasons)}, {len(stats.scene_cuts)} scene cuts')
	if export_path:
		logger.get_logger().info(f'landmarks written to {export_path}')


def read_source_image(source_path: str) -> 'VisionFrame':
	from facefusion import vision
	return vision.read_image(source_path)


def select_reference_faces(reference_frame: 'VisionFrame', engine: Engine, config: RunConfig) -> List[Any]:
	from facefusion import face_selector
	return face_selector.get_reference_faces(reference_frame, engine.analyser, config)


def build_processors(config: RunConfig, engine: Engine, reference_faces: List[Any], source_frames: List[Any]) -> List[Any]:
	from facefusion.processors.base import ProcessingContext
	from facefusion.processors.registry import create_processors
	context = ProcessingContext(
		config=config,
		inference=engine.inference,
		analyser=engine.analyser,
		masker=engine.masker,
		reference_faces=reference_faces,
		source_frames=source_frames,
	)
	processors = create_processors(config.processors, context)
	for processor in processors:
		processor.prepare()
	return processors


def frame_progress(total: int, description: str) -> Any:
	from tqdm import tqdm
	return tqdm(total=total, desc=description, unit='frame', disable=None, smoothing=0.1, dynamic_ncols=True)


def process_video_in_memory(config: RunConfig, paths: JobPaths, info: Any, routes: Any, geometry: Any, trim_start: int, trim_end: int, work: FrameWork) -> Tuple[Any, float]:
	"""The streaming default: no temp frames; decode, analyse, process and encode overlap in their own threads."""
	from facefusion.video import routes as gpu_video_pipeline
	from facefusion.workflows.stage_pipeline import Stage, StagePipeline
	from facefusion.stage_timer import STAGE_TIMER
	from facefusion.video.io import VideoWriter

	reader = gpu_video_pipeline.open_reader(info, routes.decoder, trim_start, trim_end, geometry.decode_size, geometry.decode_fps, info.effective_color_matrix())
	writer = VideoWriter(
		paths.output_path, geometry.frame_size[0], geometry.frame_size[1], geometry.frame_fps, routes.encoder.encoder,
		config.output_video_quality, config.output_video_preset, geometry.output_size, info.effective_color_matrix(),
		output_fps=geometry.output_fps
	)

	window_size = frame_window_size(config, work.engine)

	def decoded_windows() -> Any:
		iterator = iter(reader)
		while True:
			window = []
			while len(window) < window_size:
				with STAGE_TIMER.measure('decode'):
					frame = next(iterator, None)
				if frame is None:
					break
				window.append(frame)
			if not window:
				return
			yield window

	# the processors run in several threads: onnxruntime, numpy and OpenCV release the GIL for the heavy parts;
	# the analysis stays in one thread, in frame order, since the tracker carries faces from frame to frame
	process_workers = max(1, min(config.execution_thread_count, os.cpu_count() or 1))
	pipeline = StagePipeline(decoded_windows(), [
		Stage('analyse', work.analyse_window),
		Stage('process', work.process_window, workers=process_workers),
	], queue_size=max(2, 8 // window_size))
	try:
		with frame_progress(trim_end - trim_start, 'processing') as progress:
			for window in pipeline:
				for frame in window:
					with STAGE_TIMER.measure('encode'):
						writer.write(frame.pixels)
				progress.update(len(window))
		silent_path = writer.close()
	except BaseException:
		pipeline.stop()
		writer.abort()
		raise
	finally:
		reader.close()
	return silent_path, writer.duration


def process_video_on_disk(config: RunConfig, paths: JobPaths, info: Any, routes: Any, geometry: Any, trim_start: int, trim_end: int, work: FrameWork) -> Tuple[Any, float]:
	"""The 3.5.0-like baseline: extract every frame to a temp image, process the files with a pool of
	--execution-thread-count workers (one frame per task, full analysis per frame), merge them back."""
	from concurrent.futures import ThreadPoolExecutor, as_completed
	from fractions import Fraction

	from facefusion import vision
	from facefusion.video import temp_frames
	from facefusion.stage_timer import STAGE_TIMER
	from facefusion.types import Frame

	directory = temp_frames.create_temp_directory(config.temp_path, paths.target_path)
	try:
		with STAGE_TIMER.measure('decode'):
			frame_count = temp_frames.extract_frames(info, directory, config.temp_frame_format, trim_start, trim_end, geometry.decode_size, geometry.decode_fps, routes.decoder.decoder_arguments)
		frame_paths = temp_frames.list_temp_frames(directory, config.temp_frame_format)

		def process_file(index: int, frame_path: Any) -> None:
			with STAGE_TIMER.measure('decode'):
				pixels = vision.read_image(str(frame_path))
			frame = work.process(work.analyse(Frame(index, pixels)))
			with STAGE_TIMER.measure('encode'):
				vision.write_image(str(frame_path), frame.pixels, 100)

		with ThreadPoolExecutor(max_workers=config.execution_thread_count) as executor, frame_progress(len(frame_paths), 'processing') as progress:
			futures = [executor.submit(process_file, trim_start + position, frame_path) for position, frame_path in enumerate(frame_paths)]
			try:
				for future in as_completed(futures):
					future.result()
					progress.update()
			except BaseException:
				for future in futures:
					future.cancel()
				raise
		with STAGE_TIMER.measure('encode'):
			silent_path = temp_frames.merge_frames(
				directory, config.temp_frame_format, geometry.frame_size, geometry.frame_fps, paths.output_path,
				routes.encoder.encoder, config.output_video_quality, config.output_video_preset, geometry.output_size,
				info.effective_color_matrix(), geometry.output_fps
			)
	finally:
		temp_frames.clear_temp_directory(directory, config.keep_temp)
	return silent_path, frame_count / float(Fraction(geometry.frame_fps))


def finish_video_output(config: RunConfig, paths: JobPaths, info: Any, trim_start: int, silent_path: Any, duration: float) -> None:
	"""Audio from the target (or an audio source) onto the silent video, then the move into the final name."""
	from facefusion.video import audio
	try:
		audio.finalize_output(
			silent_path, paths.output_path, duration, target=info, trim_start=trim_start, source_paths=config.source_paths,
			encoder=config.output_audio_encoder, quality=config.output_audio_quality, volume=config.output_audio_volume
		)
	finally:
		# finalize_output consumes the silent file; a failure before that must not leave it behind
		if os.path.exists(str(silent_path)):
			os.remove(str(silent_path))


# ---- batch-run -------------------------------------------------------------------------------------------------

PATTERN_FIELDS = ('index', 'source_name', 'target_name', 'target_extension')


def plan_batch(config: RunConfig) -> List[RunConfig]:
	"""One RunConfig per source × target (or per target without sources), outputs named by the output pattern."""
	source_paths = resolve_file_pattern(config.source_pattern)
	target_paths = resolve_file_pattern(config.target_pattern)
	if config.source_pattern and not source_paths:
		raise InputError(f'no file matches the source pattern: {config.source_pattern}')
	if not target_paths:
		raise InputError(f'no file matches the target pattern: {config.target_pattern}')
	pairs: List[Tuple[Optional[str], str]] = list(itertools.product(source_paths, target_paths)) if source_paths else [(None, target_path) for target_path in target_paths]

	items: List[RunConfig] = []
	for index, (source_path, target_path) in enumerate(pairs):
		fields = {
			'index': index,
			'target_name': get_file_name(target_path),
			# with its dot, as 3.5.0: 'outputs/{target_name}{target_extension}'
			'target_extension': get_file_extension(target_path),
		}
		if source_path:
			fields['source_name'] = get_file_name(source_path)
		try:
			output_path = str(config.output_pattern).format(**fields)
		except KeyError as exception:
			raise InputError(
				f'the output pattern uses {{{exception.args[0]}}}, which is not available here '
				f'(available: {", ".join("{" + name + "}" for name in fields)})'
			) from exception
		except (ValueError, IndexError) as exception:
			raise InputError(f'the output pattern is malformed ({exception}): {config.output_pattern}') from exception
		items.append(config.with_changes(source_paths=[source_path] if source_path else [], target_path=target_path, output_path=output_path))

	output_paths = [item.output_path for item in items]
	if len(set(output_paths)) < len(output_paths):
		raise InputError(f'the output pattern gives several items the same output path; add {{index}} or names: {config.output_pattern}')
	return items


def run_batch(config: RunConfig) -> int:
	from tqdm import tqdm
	from tqdm.contrib.logging import logging_redirect_tqdm

	items = plan_batch(config)
	engine: Optional[Engine] = None
	failures = 0
	try:
		with logging_redirect_tqdm(loggers=[logger.get_logger()]):
			for item in tqdm(items, desc='batch', unit='item', disable=None):
				try:
					check_job_paths(item)
					# the models are loaded once for the whole batch: only paths differ between items
					engine = engine or start_engine(item)
					run_job(item, engine)
				except ModelUnavailableError:
					raise
				except FaceFusionError as error:
					failures += 1
					logger.get_logger().error(f'{item.target_path}: {error.message}')
	finally:
		if engine is not None:
			engine.close()
	if failures:
		raise ProcessingError(f'{failures} of {len(items)} batch items failed (see above)')
	return 0
