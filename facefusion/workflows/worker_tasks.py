"""What a worker does for its driver: a worker process bound to one device (workflows/device_pool.py) or a Ray actor
(cluster/ray_backend.py) takes WorkerTasks, runs each on its local files with the engine it keeps between tasks,
and answers with a TaskResult. Everything here is picklable, and no task needs the driver's process.

Kinds of task:
  content     3.5.0's NSFW refusal over the whole trim range (asked once, as a one-device run does)
  segment     one part of a split video (segments.Part: chunk [start, end), its bounds moved to scene cuts when
              search_start / search_end) processed and encoded, without audio; the result is the encoded file
  target      one whole target (a batch-run item, a job step), written to its output path as a one-process run
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Dict, Iterator, List, Optional, Protocol, Sequence, Tuple

from facefusion.config import RunConfig
from facefusion.errors import FaceFusionError
from facefusion.workflows.engine import EngineCache

if TYPE_CHECKING:
	from facefusion.video.probe import VideoInfo

@dataclass(frozen=True)
class WorkerTask:
	"""One unit of work. config carries the paths (sources, target, and for segment / target the output path, which a
	segment uses only to name its encoded file); start / end / search_start / search_end: a segment's Part."""
	kind: str
	config: RunConfig
	start: int = 0
	end: int = 0
	search_start: bool = False
	search_end: bool = False
	# for progress and messages: 'segment 3', 'item 2: clip.mp4'
	label: str = ''

	def input_paths(self) -> List[str]:
		return [path for path in list(self.config.source_paths) + [self.config.target_path] if path]


@dataclass(frozen=True)
class SegmentOutput:
	"""An encoded part: the file (a hidden partial name beside the segment's output name; '' for an empty part), the
	target frame it starts at, its frames and seconds."""
	path: str
	start: int
	frames: int
	duration: float


@dataclass
class TaskResult:
	# content: bool; segment: SegmentOutput; target: the output path
	value: object = None
	# a FaceFusionError's one line, and its class name so that the driver raises the same kind
	error: Optional[str] = None
	error_kind: Optional[str] = None
	# frames this task processed (segments and video targets), for the driver's progress
	frames: int = 0

	@property
	def ok(self) -> bool:
		return self.error is None


FrameCallback = Callable[[int], None]


class TaskRunner:
	"""The worker's side: one engine kept across tasks (models load once per worker), released at close()."""

	def __init__(self) -> None:
		self.engines = EngineCache()
		# target path → (size, mtime, VideoInfo): a video's segments share one probe (a third of a segment's fixed cost)
		self.probes: Dict[str, Tuple[int, float, 'VideoInfo']] = {}

	def probe(self, path: str) -> 'VideoInfo':
		from facefusion.video.probe import probe_video
		status = os.stat(path)
		known = self.probes.get(path)
		if known is None or known[:2] != (status.st_size, status.st_mtime):
			known = (status.st_size, status.st_mtime, probe_video(path))
			self.probes[path] = known
		return known[2]

	def run(self, task: WorkerTask, on_frames: Optional[FrameCallback] = None) -> TaskResult:
		try:
			if task.kind == 'content':
				return TaskResult(self.check_content(task.config))
			if task.kind == 'segment':
				output = self.render_segment(task, on_frames)
				return TaskResult(output, frames=output.frames)
			if task.kind == 'target':
				return TaskResult(self.render_target(task.config))
		except FaceFusionError as error:
			return TaskResult(error=error.message, error_kind=type(error).__name__)
		raise ValueError('unknown worker task kind ' + repr(task.kind))

	def check_content(self, config: RunConfig) -> bool:
		from facefusion.workflows.job import check_job_paths, plan_video_job
		paths = check_job_paths(config)
		job = plan_video_job(config, paths, self.probe(paths.target_path))
		engine = self.engines.get(config)
		return engine.content_analyser.analyse_video(job.paths.target_path, job.trim_start, job.trim_end, job.info.fps)

	def render_segment(self, task: WorkerTask, on_frames: Optional[FrameCallback]) -> SegmentOutput:
		from facefusion import vision
		from facefusion.video.io import restrict_trim
		from facefusion.workflows.job import check_job_paths, plan_video_job
		from facefusion.workflows.segments import CutBoundedFrames, Part
		from facefusion.workflows.video import SEGMENT_STEPS, VideoRun

		part = Part(0, task.start, task.end, task.search_start, task.search_end)
		info = self.probe(str(task.config.target_path))
		range_end = restrict_trim(info, task.config.trim_frame_start, task.config.trim_frame_end)[1]
		# decoded from the frame before the chunk (the cut test compares a frame with the one before) and, when the
		# part ends at a cut, on to the end of the range (the reader is closed at that cut)
		config = task.config.with_changes(trim_frame_start=part.start - 1 if part.search_start else part.start, trim_frame_end=range_end if part.search_end else part.end)
		paths = check_job_paths(config)
		job = plan_video_job(config, paths, info)
		source_frames = [vision.read_image(source_path) for source_path in paths.source_paths]
		frames = CutBoundedFrames(part)
		run = VideoRun(job, self.engines.get(config), source_frames, on_frames=on_frames, frame_filter=frames)
		try:
			for step in SEGMENT_STEPS:
				step(run)
		except BaseException:
			if run.silent_path is not None and os.path.exists(run.silent_path):
				os.remove(run.silent_path)
			raise
		if run.silent_path is None:
			return SegmentOutput('', part.start, 0, 0.0)
		return SegmentOutput(str(run.silent_path), int(frames.first if frames.first is not None else part.start), frames.count, run.duration)

	def render_target(self, config: RunConfig) -> str:
		"""A whole target in this worker (never split further: the worker has one device and no cluster)."""
		from facefusion.workflows.image import run_image
		from facefusion.workflows.job import check_job_paths
		from facefusion.workflows.video import run_video
		paths = check_job_paths(config)
		run = run_video if paths.target_kind == 'video' else run_image
		run(config, paths, self.engines.get(config))
		return paths.output_path

	def close(self) -> None:
		self.engines.close()


class WorkerBackend(Protocol):
	"""Where the tasks run: workflows/device_pool.DevicePool (a process per device) or cluster.ray_backend.RayBackend.
	run() hands every task to some worker and yields (index in tasks, result) as each finishes; on_frames hears of
	frames done (as they are done where the backend can tell, else when a task finishes). runs_concurrently: whether
	run() may be called from several threads at once."""

	runs_concurrently: bool

	@property
	def worker_count(self) -> int:
		...

	def describe(self) -> str:
		...

	def run(self, tasks: Sequence[WorkerTask], on_frames: Optional[FrameCallback] = None, order: Optional[Sequence[int]] = None) -> Iterator[Tuple[int, TaskResult]]:
		...

	def close(self) -> None:
		...

	def __enter__(self) -> 'WorkerBackend':
		...

	def __exit__(self, *exception: object) -> None:
		...


def raise_task_error(result: TaskResult) -> None:
	"""A worker's FaceFusionError raised again in the driver, of the same kind."""
	from facefusion import errors
	error_class = getattr(errors, str(result.error_kind), None)
	if not isinstance(error_class, type) or not issubclass(error_class, FaceFusionError):
		error_class = errors.ProcessingError
	raise error_class(str(result.error))
