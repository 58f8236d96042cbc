"""A video split into segments across workers (one per device, or cluster workers), joined in order, audio once.

The driver (this process) probes the target and decodes the sources itself, so bad input fails here in a second.
Then, side by side on the workers: the content check (once, over the whole trim range, as a one-device run does)
and the parts (workflows/segments.py: equal chunks whose bounds each worker moves to the next scene cut, where
tracker, smoother and colour statistics start anew, so each part's frames are the one-device run's frames). Each
part is encoded on its own with the output's settings, so it starts on a keyframe. The parts are joined without
re-encoding (concat demuxer) once they are checked to meet frame for frame, and the target's audio is muxed once
onto the whole. Every part is a hidden partial file until the output is complete; a failure, a refused content
check or Ctrl-C removes them all.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Iterable, Iterator, List, Optional, Tuple

from facefusion import logger
from facefusion.config import RunConfig
from facefusion.errors import ProcessingError
from facefusion.workflows.image import CONTENT_REFUSED_MESSAGE
from facefusion.workflows.job import JobPaths, VideoJob, plan_video_job
from facefusion.workflows.segments import Part, carries_state, plan_parts, why_not_split
from facefusion.workflows.worker_tasks import SegmentOutput, TaskResult, WorkerBackend, WorkerTask, raise_task_error


def run_video_split(config: RunConfig, paths: JobPaths, backend: WorkerBackend) -> int:
	from facefusion import vision
	from facefusion.workflows.video import finish_with_audio, log_video_success, start_job_audio_ahead

	start_time = time.perf_counter()
	job = plan_video_job(config, paths)
	for source_path in paths.source_paths:
		vision.read_image(source_path)
	parts = plan_video_parts(job, backend)
	logger.get_logger().info(f'processing video {paths.target_path} -> {paths.output_path} ({job.frame_count} frames) in {len(parts)} parts on {backend.describe()}')
	# the audio is encoded while the workers render the parts, so the mux after the join only copies it
	ahead = start_job_audio_ahead(job)
	try:
		outputs = render_parts(job, parts, backend)
		try:
			silent_path = join_segments(job, outputs)
		finally:
			remove_segment_files(outputs)
		note = finish_with_audio(job, silent_path, sum(output.duration for output in outputs), ahead)
	finally:
		if ahead is not None:
			ahead.discard()
	log_video_success(start_time, note)
	return 0


def plan_video_parts(job: VideoJob, backend: WorkerBackend) -> List[Part]:
	reason = why_not_split(job.config, job.geometry.decode_fps, job.geometry.output_fps)
	if reason is not None and backend.worker_count > 1:
		logger.get_logger().warning(f'the video is processed as one segment on one worker: {reason}')
	workers = backend.worker_count if reason is None else 1
	return plan_parts(job.trim_start, job.trim_end, workers, carries_state(job.config))


def segment_output_name(output_path: str, index: int) -> str:
	"""The name a segment's encoded file is derived from (never written itself: the encoder writes a hidden partial
	name of it, which carries the writer's pid)."""
	output = Path(output_path)
	return str(output.with_name(f'{output.stem}.segment-{index:03d}{output.suffix}'))


def render_parts(job: VideoJob, parts: List[Part], backend: WorkerBackend) -> List[SegmentOutput]:
	"""The content check and every part on the workers; the parts that hold frames, in order."""
	from facefusion.workflows.video import frame_progress

	tasks = [WorkerTask('content', job.config, label='content check')] + [
		WorkerTask('segment', job.config.with_changes(output_path=segment_output_name(job.paths.output_path, part.index)), part.start, part.end, part.search_start, part.search_end, label=f'part {part.index + 1} of {len(parts)} (frames {part.start}..{part.end})')
		for part in parts
	]
	outputs: List[SegmentOutput] = []
	# a part's failure is reported once the content check has answered: a refused target is told so first
	failure: Optional[TaskResult] = None
	checked = False
	runs: Optional[Iterator[Tuple[int, TaskResult]]] = None
	try:
		with frame_progress(job.frame_count, 'processing') as progress:
			runs = backend.run(tasks, on_frames=progress.update)
			for index, result in runs:
				if tasks[index].kind == 'content':
					checked = True
					if not result.ok:
						raise_task_error(result)
					if result.value:
						raise ProcessingError(CONTENT_REFUSED_MESSAGE)
				elif not result.ok:
					failure = failure or result
				else:
					outputs.append(result.value)
				if failure is not None and checked:
					raise_task_error(failure)
	except BaseException:
		if runs is not None:
			# the busy workers stop (and clean up after themselves) before anything here is removed
			runs.close()
		remove_segment_files(outputs)
		# a part a worker finished while the run was stopping was never handed over: its file carries the pid of a
		# worker that is gone now
		from facefusion.partial_files import remove_stale_partial_files
		remove_stale_partial_files(Path(job.paths.output_path).parent)
		raise
	filled = sorted((output for output in outputs if output.frames), key=lambda output: output.start)
	remove_segment_files(output for output in outputs if not output.frames)
	logger.get_logger().debug(f'segments start at {[output.start for output in filled]} ({len(parts)} parts)')
	return filled


def join_segments(job: VideoJob, parts: List[SegmentOutput]) -> Path:
	"""The parts as one silent video under a hidden partial name (the audio step moves it into the final name), once
	they are checked to cover the range exactly: each starts where the one before ended."""
	from facefusion.partial_files import partial_media_name
	from facefusion.video.concat import concat_copy

	expected_start = job.trim_start
	for part in parts:
		if part.start != expected_start:
			raise ProcessingError(f'the segments do not meet: one starts at frame {part.start} instead of {expected_start}; nothing was written')
		expected_start += part.frames
	if expected_start != job.trim_end:
		raise ProcessingError(f'the segments end at frame {expected_start} instead of {job.trim_end}; nothing was written')
	joined = partial_media_name(job.paths.output_path, 'partial')
	if len(parts) == 1:
		os.replace(parts[0].path, joined)
		return joined
	concat_copy([part.path for part in parts], joined, f'Joining {len(parts)} segments into {job.paths.output_path}')
	return joined


def remove_segment_files(outputs: Iterable[SegmentOutput]) -> None:
	for output in outputs:
		if output.path and os.path.exists(output.path):
			os.remove(output.path)
