"""The video workflow: decode → analyse → process → encode, then the target's audio.

Step by step on one VideoRun: content check → reference faces and processors → the frames (streamed through
threads joined by bounded queues with --workflow-strategy memory, or through temp frame files with disk, the
3.5.0-like baseline) → processors released → audio restored and the output moved into its final name.

Data flows one way through the frames: the analyse stage (one thread, in frame order, since the tracker carries
faces from frame to frame) owns the Face records and fills in everything the processors need; the process stage
(several workers) only reads them.
"""
from __future__ import annotations

import concurrent.futures
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, List, Optional, Tuple

from facefusion import logger
from facefusion.config import RunConfig
from facefusion.errors import FaceFusionError, ProcessingError
from facefusion.workflows.engine import Engine, build_processors, engine_for, needs_target_embeddings, preload_sessions, release_processors, select_reference_faces
from facefusion.workflows.image import CONTENT_REFUSED_MESSAGE
from facefusion.workflows.job import JobPaths, VideoJob, plan_video_job

if TYPE_CHECKING:
	from tqdm import tqdm

	from facefusion.content_analyser import StreamedVideoCheck
	from facefusion.processors.base import Processor
	from facefusion.quality.quality_monitor import QualityMonitor
	from facefusion.tracking.track import FrameReport
	from facefusion.tracking.tracker import FaceTracker
	from facefusion.types import Face, Frame, VisionFrame
	from facefusion.video.audio_ahead import AudioAhead
	from facefusion.video.routes import FrameReader

# frames whose faces share one swapper call when batching across frames
FRAME_WINDOW = 8
# the stage timer's names for the streaming pipeline's stages (their time inside the stage function, per window)
PIPELINE_STAGE_PREFIX = 'pipeline:'


@dataclass
class VideoRun:
	"""One video target on its way through the steps: the planned job, and what each step leaves."""
	job: VideoJob
	engine: Engine
	source_frames: List['VisionFrame']
	reference_faces: List['Face'] = field(default_factory=list)
	processors: List['Processor'] = field(default_factory=list)
	# the encoded frames without audio, and their duration (seconds)
	silent_path: Optional[Path] = None
	duration: float = 0.0
	# what the last line must say besides success (the audio could not be kept)
	final_note: Optional[str] = None
	# told the number of frames each time a window is encoded (a segment worker reports to its driver this way)
	on_frames: Optional[Callable[[int], None]] = None
	# which of the decoded frames go through (a part of a split video: segments.CutBoundedFrames); with a filter, a
	# run that lets no frame through ends with no file (silent_path None) instead of failing
	frame_filter: Optional[Callable[[Iterator['Frame']], Iterator['Frame']]] = None
	# the content check fed by the pipeline's own frames (streams_content_check), judged before the output is kept
	content_check: Optional['StreamedVideoCheck'] = None
	# processors prepared before the job was planned (run_video), used instead of preparing them again
	preparation: Optional['Preparation'] = None
	# the decoder started right after the probe (run_video), used instead of opening another
	reader: Optional['FrameReader'] = None
	# the target's audio, encoded while the frames are processed where it can be known in advance
	audio_ahead: Optional['AudioAhead'] = None


VideoStep = Callable[[VideoRun], None]


@dataclass
class Preparation:
	"""The processors prepared while the target was being probed, or why that failed (raised where the preparation
	would have run, so that a content refusal still comes first)."""
	processors: List['Processor'] = field(default_factory=list)
	error: Optional[Exception] = None


def run_video(config: RunConfig, paths: JobPaths, engine: Optional[Engine] = None) -> int:
	"""The probe of the target spends most of its time waiting for ffmpeg: meanwhile the sources are decoded, the
	engine is started and the processors are prepared (the source face), unless a model still has to be downloaded
	(nothing is fetched for a target that turns out to be unreadable) or --face-selector-mode reference needs a frame
	of the target first; and as soon as the probe is done, the decoder starts. A target's error is still reported
	before any other."""
	start_time = time.perf_counter()
	with concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix='probe') as pool:
		planned = pool.submit(plan_and_start_decoding, config, paths)
		pool.submit(warm_colour_tables)
		try:
			try:
				# imported only now: numpy, OpenCV and the model registry load while the probe runs
				from facefusion import vision
				from facefusion.models.download import models_present
				from facefusion.workflows.engine import collect_required_models
				# every file is decoded before any model work, so a corrupt source fails in a second, not after a download
				source_frames = [vision.read_image(source_path) for source_path in paths.source_paths]
				early = config.face_selector_mode != 'reference' and models_present(collect_required_models(config), config.models_path)
			except BaseException:
				planned.result()
				raise
			if not early:
				planned.result()
			with engine_for(config, engine) as run_engine:
				if early:
					preload_sessions(config, run_engine, content_target=str(paths.target_path))
				preparation = prepare_early(config, run_engine, source_frames) if early else None
				target = planned.result()
				note = run_video_job(target.job, run_engine, source_frames, preparation, target.reader)
		finally:
			close_early_reader(planned)
	log_video_success(start_time, note)
	return 0


@dataclass
class PlannedTarget:
	job: VideoJob
	# the decoder, started right after the probe (the streaming workflow only)
	reader: Optional['FrameReader'] = None


def plan_and_start_decoding(config: RunConfig, paths: JobPaths) -> PlannedTarget:
	job = plan_video_job(config, paths)
	# an ffmpeg pipe only: PyNvVideoCodec's decoder belongs to the CUDA context of the thread that made it, and this
	# is not the thread that reads the frames
	if job.config.workflow_strategy != 'memory' or job.routes.decoder.backend == 'pynvvideocodec':
		return PlannedTarget(job)
	reader = open_job_reader(job)
	start = getattr(reader, 'start', None)
	if start is not None:
		start()
	return PlannedTarget(job, reader)


def close_early_reader(planned: 'concurrent.futures.Future[PlannedTarget]') -> None:
	"""Whatever happened: a decoder started for the target does not outlive the run (closing twice is harmless)."""
	if planned.cancelled() or planned.exception() is not None:
		return
	reader = planned.result().reader
	if reader is not None:
		reader.close()


def open_job_reader(job: VideoJob) -> 'FrameReader':
	from facefusion.video.routes import open_reader
	geometry = job.geometry
	return open_reader(job.info, job.routes.decoder, job.trim_start, job.trim_end, geometry.decode_size, geometry.decode_fps, job.color_matrix, job.decoder_threads)


def warm_colour_tables() -> None:
	"""OpenCV fills its L*a*b* tables on the first conversion (60 ms on one of these cores), which the landmarker of
	the source face would otherwise wait for; here they are filled beside the probe (the conversion releases the GIL)."""
	import cv2
	import numpy as np
	cv2.cvtColor(np.zeros((8, 8, 3), np.uint8), cv2.COLOR_RGB2Lab)


def prepare_early(config: RunConfig, engine: Engine, source_frames: List['VisionFrame']) -> Preparation:
	try:
		return Preparation(build_processors(config, engine, [], source_frames))
	except Exception as exception:
		return Preparation(error=exception)


def log_video_success(start_time: float, note: Optional[str]) -> None:
	"""The last line of a video run (one process or split across workers), with what it must add."""
	seconds = time.perf_counter() - start_time
	if note:
		logger.get_logger().warning(f'processing video succeeded in {seconds:.2f} seconds, but {note}')
	else:
		logger.get_logger().info(f'processing video succeeded in {seconds:.2f} seconds')


def run_video_job(job: VideoJob, engine: Engine, source_frames: List['VisionFrame'], preparation: Optional[Preparation] = None, reader: Optional['FrameReader'] = None) -> Optional[str]:
	"""The steps on one planned job with its decoded source images (and its processors, when prepared already, and
	its decoder, when started already); returns what the last line must add."""
	from facefusion.stage_timer import STAGE_TIMER

	# the debug line at the end reports this video's stages (a batch-run processes several)
	STAGE_TIMER.reset()
	logger.get_logger().info(f'processing video {job.paths.target_path} -> {job.paths.output_path} ({job.frame_count} frames)')
	run = VideoRun(job, engine, source_frames, preparation=preparation, reader=reader)
	try:
		for step in VIDEO_STEPS:
			step(run)
	finally:
		if run.content_check is not None:
			# whatever failed: its thread must not be inside a model call when the interpreter exits
			run.content_check.stop()
		if run.audio_ahead is not None:
			# unused when the run failed: its process stops and its file goes
			run.audio_ahead.discard()
	log_stage_timings()
	return run.final_note


# ---- the steps ---------------------------------------------------------------------------------------------------

def refuse_adult_content(run: VideoRun) -> None:
	job = run.job
	if run.engine.content_analyser.analyse_video(job.paths.target_path, job.trim_start, job.trim_end, job.info.fps):
		raise ProcessingError(CONTENT_REFUSED_MESSAGE)


def streams_content_check(job: VideoJob) -> bool:
	"""Whether the pipeline's frames can serve the content check: the streaming workflow decodes every frame of the
	range at the target's own size and rate, upright, so its frame numbers are the target's."""
	geometry = job.geometry
	return job.config.workflow_strategy == 'memory' and geometry.decode_size is None and geometry.decode_fps is None and job.info.rotation == 0


def prepare_and_check_content(run: VideoRun) -> None:
	"""The processors' preparation, and the content check: fed by the pipeline's frames where it can be (one read of
	the video; its verdict is judged before the output is kept, and a certain refusal stops the run early), else in a
	thread of its own beside the preparation, before any frame is processed. A verdict known from an earlier run of the
	same range (batch-run, the UI) is used as it is. Either way a refusal is what the user is told, even when
	something else failed too."""
	job = run.job
	from facefusion.content_analyser import StreamedVideoCheck
	analyser = run.engine.content_analyser
	known = analyser.video_results.get((str(job.paths.target_path), job.trim_start, job.trim_end, job.info.fps))
	if known is not None or not streams_content_check(job):
		refuse_adult_content_while_preparing(run)
		return
	try:
		prepare_processors(run)
	except BaseException as exception:
		if not isinstance(exception, KeyboardInterrupt):
			refuse_adult_content(run)
		raise
	run.content_check = StreamedVideoCheck(analyser, job.paths.target_path, job.trim_start, job.trim_end, job.info.fps)


def refuse_flagged_video(run: VideoRun) -> None:
	"""The streamed content check's verdict, before the output is kept: a refused video leaves nothing behind."""
	if run.content_check is not None and run.content_check.verdict():
		if run.silent_path is not None and os.path.exists(run.silent_path):
			os.remove(run.silent_path)
		raise ProcessingError(CONTENT_REFUSED_MESSAGE)


def refuse_if_flagged(run: VideoRun) -> None:
	"""A refusal, if the scan finds one; a scan that fails otherwise (the video broke off, which is why the run is
	failing) leaves the run's own error to be reported."""
	try:
		refuse_adult_content(run)
	except ProcessingError as error:
		if error.message == CONTENT_REFUSED_MESSAGE:
			raise
	except FaceFusionError:
		pass


def refuse_adult_content_while_preparing(run: VideoRun) -> None:
	"""The content check and the processors' preparation (the source face, the sessions) need nothing of each other:
	the check runs in a thread of its own meanwhile. Its verdict still comes first: a refused target is refused even
	when the preparation failed too, and nothing is processed before the check has passed. A daemon thread, so that
	Ctrl-C does not wait for the check's scan of the video."""
	import threading
	outcome: List[BaseException] = []

	def check() -> None:
		try:
			refuse_adult_content(run)
		except BaseException as exception:
			outcome.append(exception)

	checker = threading.Thread(target=check, name='content-check', daemon=True)
	checker.start()
	try:
		prepare_processors(run)
	except BaseException as exception:
		if not isinstance(exception, KeyboardInterrupt):
			checker.join()
			if outcome:
				raise outcome[0] from None
		raise
	checker.join()
	if outcome:
		raise outcome[0]


def prepare_processors(run: VideoRun) -> None:
	from facefusion.video.io import read_video_frame
	job = run.job
	if run.preparation is not None:
		if run.preparation.error is not None:
			raise run.preparation.error
		run.processors = run.preparation.processors
		return
	if job.config.face_selector_mode == 'reference':
		frame_number = min(max(job.config.reference_frame_number, 0), max(job.info.frame_count - 1, 0))
		reference_frame = read_video_frame(job.info, frame_number, size=job.geometry.decode_size)
		run.reference_faces = select_reference_faces(reference_frame, run.engine, job.config)
	run.processors = build_processors(job.config, run.engine, run.reference_faces, run.source_frames)


def encode_audio_ahead(run: VideoRun) -> None:
	"""The target's audio starts encoding beside the frames (audio_ahead.py), so the mux after the last frame
	only copies it."""
	run.audio_ahead = start_job_audio_ahead(run.job)


def start_job_audio_ahead(job: VideoJob) -> Optional['AudioAhead']:
	from facefusion.video.audio_ahead import start_audio_ahead
	config = job.config
	return start_audio_ahead(
		job.info, job.paths.output_path, job.trim_start, job.trim_end, config.source_paths, config.output_audio_encoder,
		config.output_audio_quality, config.output_audio_volume, config.output_audio_streams
	)


def process_frames(run: VideoRun) -> None:
	job = run.job
	if job.config.workflow_strategy == 'disk':
		if job.config.quality_report or job.config.quality_plot:
			# the monitor needs the frames in order, which the disk workflow's pool does not keep
			logger.get_logger().warning('the quality monitor runs with --workflow-strategy memory only; no report for this run')
		# the 3.5.0-like baseline: frames are processed out of order by a pool, each with a full analysis
		run.silent_path, run.duration = process_video_on_disk(job, FrameSteps(job.config, run.engine, run.processors, run.reference_faces))
		return
	tracker = create_tracker(job, run.engine)
	steps = FrameSteps(job.config, run.engine, run.processors, run.reference_faces, tracker)
	content_check = run.content_check
	try:
		run.silent_path, run.duration = process_video_in_memory(job, steps, run.on_frames, run.frame_filter, content_check, run.reader)
	except BaseException as exception:
		tracker.close(success=False)
		if content_check is not None:
			content_check.stop()
			if not isinstance(exception, KeyboardInterrupt) and not content_check.refused_early:
				# the stream stopped short of the range: the verdict comes first, from a scan of its own
				refuse_if_flagged(run)
		raise
	export_path = tracker.close()
	log_tracker_stats(tracker, export_path)


def release(run: VideoRun) -> None:
	release_processors(run.job.config, run.engine, run.processors)


def target_pixel_format(job: VideoJob) -> Optional[str]:
	"""The target's pixel format for the encoder to keep, or None for 3.5.0's 8-bit 4:2:0."""
	return job.info.pix_fmt if job.config.output_video_pixel_format == 'auto' else None


def add_audio(run: VideoRun) -> None:
	"""Audio from the target (or an audio source) onto the silent video, then the move into the final name."""
	run.final_note = finish_with_audio(run.job, run.silent_path, run.duration, run.audio_ahead)


def finish_with_audio(job: VideoJob, silent_path: Optional[Path], duration: float, ahead: Optional['AudioAhead'] = None) -> Optional[str]:
	"""The silent video of the whole trim range (one encode, or the joined segments) with the target's audio, under
	the output's final name; returns what the last line must add (the audio could not be kept), or None."""
	from facefusion.video import audio
	config = job.config
	try:
		outcome = audio.finalize_output(
			silent_path, job.paths.output_path, duration, target=job.info, trim_start=job.trim_start, trim_end=job.trim_end,
			source_paths=config.source_paths,
			encoder=config.output_audio_encoder, quality=config.output_audio_quality, volume=config.output_audio_volume,
			audio_streams=config.output_audio_streams, ahead=ahead
		)
		if outcome.status == 'failed':
			return 'the output has NO audio (it could not be encoded into {})'.format(os.path.splitext(str(job.paths.output_path))[1])
		return None
	finally:
		# finalize_output consumes the silent file; a failure before that must not leave it behind
		if silent_path is not None and os.path.exists(silent_path):
			os.remove(silent_path)


def release_for_next_segment(run: VideoRun) -> None:
	"""A segment worker keeps its sessions for the next segment: only the processors' per-run state goes."""
	for processor in run.processors:
		processor.release()


# the streamed check's verdict comes before the sessions are released: its last batch is judged after the last frame,
# and would load the content models again under the strict memory strategy
VIDEO_STEPS: Tuple[VideoStep, ...] = (prepare_and_check_content, encode_audio_ahead, process_frames, refuse_flagged_video, release, add_audio)
# a part of a split video (workflows/split_video.py): the driver checks the content once and adds the audio once
SEGMENT_STEPS: Tuple[VideoStep, ...] = (prepare_processors, process_frames, release_for_next_segment)


# ---- what happens to each frame ----------------------------------------------------------------------------------

@dataclass
class AnalysedFrame:
	"""A decoded frame with the target faces selected on it (everything the processors read already filled in)."""
	frame: 'Frame'
	faces: List['Face']
	# every face the tracker handed out (the selected ones among them) and its report, for the quality monitor
	tracked: Optional[List['Face']] = None
	report: Optional['FrameReport'] = None


@dataclass
class FrameSteps:
	"""The two steps the streaming pipeline overlaps: analyse (find and select the target faces, in frame order) and
	process (every processor in order, a window of frames at a time so model calls can batch across frames)."""
	config: RunConfig
	engine: Engine
	processors: List['Processor']
	reference_faces: List['Face']
	tracker: Optional['FaceTracker'] = None

	def __post_init__(self) -> None:
		self.needs_embeddings = needs_target_embeddings(self.processors)

	def make_cues(self, frames: List['Frame']) -> List['Frame']:
		"""The tracker's stateless per-frame work for a window, ahead of the analysis (its own stage, when the thread
		plan has a core for it)."""
		from facefusion.tracking.tracker import frame_cues
		if self.tracker is not None:
			for frame in frames:
				frame.cues = frame_cues(frame.pixels, self.tracker.options)
		return frames

	def analyse(self, frame: 'Frame') -> AnalysedFrame:
		from facefusion import face_selector
		if self.tracker is not None:
			tracked = self.tracker.process(frame.index, frame.pixels, frame.cues)
			# the cues served their one frame: the flow image is not kept for the process stage
			frame.cues = None
			faces = self.tracker.select_faces(frame.pixels, tracked, self.reference_faces)
			if faces and self.needs_embeddings:
				self.tracker.provide_embeddings(frame.pixels, faces)
			return AnalysedFrame(frame, faces, tracked, self.tracker.last_report)
		faces = face_selector.select_faces(frame.pixels, self.engine.analyser, self.config, self.reference_faces)
		if faces and self.needs_embeddings:
			self.engine.analyser.ensure_embeddings(frame.pixels, faces)
		return AnalysedFrame(frame, faces)

	def analyse_window(self, frames: List['Frame']) -> List[AnalysedFrame]:
		analysed_frames = [self.analyse(frame) for frame in frames]
		# in frame order, on the one analyse thread: state kept along a track does not depend on the process workers
		for analysed in analysed_frames:
			for processor in self.processors:
				processor.observe(analysed.frame.pixels, analysed.faces)
		return analysed_frames

	def process_window(self, window: List[AnalysedFrame]) -> List['Frame']:
		"""Frames without a selected face pass through untouched; the others go through each processor together.
		The processors read the frames and faces and return new pixels; nothing they are given is changed."""
		from facefusion.types import Frame
		busy = [analysed for analysed in window if analysed.faces]
		outputs = [analysed.frame.pixels.copy() for analysed in busy]
		for processor in self.processors:
			outputs = processor.process_frames([(analysed.frame.pixels, analysed.faces, output) for analysed, output in zip(busy, outputs)])
		processed = {id(analysed): Frame(analysed.frame.index, output) for analysed, output in zip(busy, outputs)}
		return [processed.get(id(analysed), analysed.frame) for analysed in window]

	def process_window_for_monitor(self, window: List[AnalysedFrame]) -> Tuple[List[AnalysedFrame], List['Frame']]:
		"""process_window, with the analysed window kept beside the outputs for the quality stage behind it."""
		return window, self.process_window(window)

	def process(self, analysed: AnalysedFrame) -> 'Frame':
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


def create_quality_monitor(config: RunConfig) -> Optional['QualityMonitor']:
	"""The quality monitor when a report or a plot is asked for (video targets, memory workflow); None costs nothing."""
	from facefusion.quality.quality_monitor import QualityMonitor, QualitySettings
	settings = QualitySettings.from_config(config)
	return QualityMonitor(settings) if settings.enabled() else None


def create_tracker(job: VideoJob, engine: Engine) -> 'FaceTracker':
	"""Faces as tracks across the video (keyframe detection, optical flow between, smoothing); with
	--face-tracker none and --temporal-smoothing none it passes 3.5.0's per-frame analysis through unchanged."""
	from facefusion.tracking.tracker import FaceTracker
	return FaceTracker(job.config, engine.analyser, fps=job.fps)


# ---- the two strategies ------------------------------------------------------------------------------------------

def process_video_in_memory(
	job: VideoJob, steps: FrameSteps, on_frames: Optional[Callable[[int], None]] = None, frame_filter: Optional[Callable[[Iterator['Frame']], Iterator['Frame']]] = None,
	content_check: Optional['StreamedVideoCheck'] = None, reader: Optional['FrameReader'] = None
) -> Tuple[Optional[Path], float]:
	"""The streaming default: no temp frames; decode, analyse, process and encode overlap in their own threads. A
	content check is offered every decoded frame; its certain refusal ends the run."""
	from facefusion.stage_timer import STAGE_TIMER
	from facefusion.video.io import VideoWriter
	from facefusion.workflows.stage_pipeline import Stage, StagePipeline

	config, geometry = job.config, job.geometry
	reader = reader or open_job_reader(job)
	writer = VideoWriter(
		job.paths.output_path, geometry.frame_size[0], geometry.frame_size[1], geometry.frame_fps, job.routes.encoder.encoder,
		config.output_video_quality, config.output_video_preset, geometry.output_size, job.color_matrix,
		output_fps=geometry.output_fps, source_pix_fmt=target_pixel_format(job), threads=job.encoder_threads or None
	)
	window_size = frame_window_size(config, steps.engine)

	def decoded_windows() -> Iterator[List['Frame']]:
		frames = frame_filter(iter(reader)) if frame_filter is not None else iter(reader)
		while True:
			window = []
			while len(window) < window_size:
				with STAGE_TIMER.measure('decode'):
					frame = next(frames, None)
				if frame is None:
					break
				if content_check is not None:
					content_check.offer(frame.index, frame.pixels)
				window.append(frame)
			if content_check is not None and content_check.refused_early:
				raise ProcessingError(CONTENT_REFUSED_MESSAGE)
			if not window:
				return
			yield window

	monitor = create_quality_monitor(config)
	# the tracker's stateless cues made ahead of the analysis, where the thread plan has a core for them
	cue_stages = [Stage('cues', steps.make_cues, workers=job.cue_workers)] if job.cue_workers and steps.tracker is not None else []
	if monitor is None:
		stages = [*cue_stages, Stage('analyse', steps.analyse_window), Stage('process', steps.process_window, workers=job.process_workers)]
	else:
		from facefusion.quality.tap import QualityTap
		# the monitor is a stage of its own behind the processors: it measures one window while the next is processed
		stages = [
			*cue_stages,
			Stage('analyse', steps.analyse_window),
			Stage('process', steps.process_window_for_monitor, workers=job.process_workers),
			Stage('quality', QualityTap(monitor, steps.processors))
		]
	pipeline = StagePipeline(decoded_windows(), stages, queue_size=max(2, 8 // window_size))
	try:
		# the encoder starts while the first window is decoded, analysed and processed; the stages start before the
		# progress bar, whose first import of tqdm (50 ms here) then overlaps the first window instead of delaying it
		writer.start()
		pipeline.start()
		with frame_progress(job.frame_count, 'processing') as progress:
			for window in pipeline:
				for frame in window:
					with STAGE_TIMER.measure('encode'):
						writer.write(frame.pixels)
				progress.update(len(window))
				if on_frames is not None:
					on_frames(len(window))
		# each stage's time inside its function, summed over its workers: the analysis stage is one thread in frame
		# order, so frames / its time bounds the whole pipeline's fps (--log-level debug, the pipeline benchmark)
		for name, (windows, seconds) in pipeline.timings().items():
			STAGE_TIMER.add(PIPELINE_STAGE_PREFIX + name, seconds, windows)
		if monitor is not None:
			# the report and plot are finished before the output is: a failure there fails the run cleanly
			monitor.close()
		if frame_filter is not None and writer.frames_written == 0:
			writer.abort()
			return None, 0.0
		silent_path = writer.close()
	except BaseException:
		pipeline.stop()
		writer.abort()
		if monitor is not None:
			monitor.close(success=False)
		raise
	finally:
		reader.close()
	return silent_path, writer.duration


def process_video_on_disk(job: VideoJob, steps: FrameSteps) -> Tuple[Path, float]:
	"""The 3.5.0-like baseline: extract every frame to a temp image, process the files with a pool of
	--execution-thread-count workers (one frame per task, full analysis per frame), merge them back."""
	from concurrent.futures import ThreadPoolExecutor, as_completed

	from facefusion import vision
	from facefusion.stage_timer import STAGE_TIMER
	from facefusion.types import Frame
	from facefusion.video import temp_frames

	config, geometry = job.config, job.geometry
	directory = temp_frames.create_temp_directory(config.temp_path, job.paths.target_path)
	try:
		with STAGE_TIMER.measure('decode'):
			frame_count = temp_frames.extract_frames(
				job.info, directory, config.temp_frame_format, job.trim_start, job.trim_end, geometry.decode_size, geometry.decode_fps,
				job.routes.decoder.decoder_arguments
			)
		frame_paths = temp_frames.list_temp_frames(directory, config.temp_frame_format)

		def process_file(index: int, frame_path: Path) -> None:
			with STAGE_TIMER.measure('decode'):
				pixels = vision.read_image(str(frame_path))
			frame = steps.process(steps.analyse(Frame(index, pixels)))
			with STAGE_TIMER.measure('encode'):
				vision.write_image(str(frame_path), frame.pixels, 100)

		with ThreadPoolExecutor(max_workers=config.execution_thread_count) as executor, frame_progress(len(frame_paths), 'processing') as progress:
			futures = [executor.submit(process_file, job.trim_start + position, frame_path) for position, frame_path in enumerate(frame_paths)]
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
				directory, config.temp_frame_format, geometry.frame_size, geometry.frame_fps, job.paths.output_path,
				job.routes.encoder.encoder, config.output_video_quality, config.output_video_preset, geometry.output_size,
				job.color_matrix, geometry.output_fps, expected_frames=frame_count, source_pix_fmt=target_pixel_format(job)
			)
	finally:
		temp_frames.clear_temp_directory(directory, config.keep_temp)
	return silent_path, frame_count / job.fps


# ---- reporting ---------------------------------------------------------------------------------------------------

def frame_progress(total: int, description: str) -> 'tqdm':
	from tqdm import tqdm
	return tqdm(total=total, desc=description, unit='frame', disable=None, smoothing=0.1, dynamic_ncols=True)


def log_tracker_stats(tracker: 'FaceTracker', export_path: Optional[str]) -> None:
	stats = tracker.stats
	logger.get_logger().debug(f'face tracker: {stats.detector_runs} detector runs, {stats.keyframes} keyframes, reasons {dict(stats.reasons)}, {len(stats.scene_cuts)} scene cuts')
	if export_path:
		logger.get_logger().info(f'landmarks written to {export_path}')


def log_stage_timings() -> None:
	from facefusion.stage_timer import STAGE_TIMER
	totals = STAGE_TIMER.snapshot()
	if totals:
		logger.get_logger().debug('stage times: ' + ', '.join(f'{stage} {total.seconds:.2f}s/{total.calls}' for stage, total in sorted(totals.items())))
