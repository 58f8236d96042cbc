"""A video split into segments across workers (one per device, or cluster workers), joined in order, audio once.

The driver (this process) probes the target and decodes the sources itself, so bad input fails here in a second.
Then, on the workers:
  1. the content check (once, over the whole trim range, as a one-device run does) and the scene-cut scan (in
     chunks, one per worker) — skipped when the run carries no state across frames: then any frame may start a part;
  2. the segments (workflows/segments.py: they start at scene cuts, where tracker, smoother and colour statistics
     start anew, so each part's frames are the one-device run's frames), longest first so no worker is left with a
     long part at the end; each is encoded on its own with the output's settings, so it starts on a keyframe.
The parts are joined without re-encoding (concat demuxer) and the target's audio is muxed once onto the whole.
Every part is a hidden partial file until the output is complete; a failure or Ctrl-C removes them all.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Dict, Iterable, List

from facefusion import logger
from facefusion.config import RunConfig
from facefusion.errors import ProcessingError
from facefusion.workflows.image import CONTENT_REFUSED_MESSAGE
from facefusion.workflows.job import JobPaths, VideoJob, plan_video_job
from facefusion.workflows.segments import Segment, carries_state, plan_scan_chunks, plan_segments, why_not_split
from facefusion.workflows.worker_tasks import SegmentOutput, WorkerBackend, WorkerTask, raise_task_error


def run_video_split(config: RunConfig, paths: JobPaths, backend: WorkerBackend) -> int:
	from facefusion import vision
	from facefusion.workflows.video import finish_with_audio

	start_time = time.perf_counter()
	job = plan_video_job(config, paths)
	for source_path in paths.source_paths:
		vision.read_image(source_path)
	segments = plan_video_segments(job, backend)
	logger.get_logger().info(f'processing video {paths.target_path} -> {paths.output_path} ({job.frame_count} frames) in {len(segments)} segments on {backend.describe()}')
	outputs = render_segments(job, segments, backend)
	try:
		silent_path = join_segments(job, [outputs[segment.index] for segment in segments])
	finally:
		remove_segment_files(outputs.values())
	note = finish_with_audio(job, silent_path, sum(output.duration for output in outputs.values()))
	seconds = time.perf_counter() - start_time
	if note:
		logger.get_logger().warning(f'processing video succeeded in {seconds:.2f} seconds, but {note}')
	else:
		logger.get_logger().info(f'processing video succeeded in {seconds:.2f} seconds')
	return 0


def plan_video_segments(job: VideoJob, backend: WorkerBackend) -> List[Segment]:
	"""The content check and the scene-cut scan on the workers, then the parts."""
	config = job.config
	reason = why_not_split(config, job.geometry.decode_fps, job.geometry.output_fps)
	if reason is not None and backend.worker_count > 1:
		logger.get_logger().warning(f'the video is processed as one segment on one worker: {reason}')
	scanning = reason is None and backend.worker_count > 1 and carries_state(config)
	tasks = [WorkerTask('content', config, label='content check')]
	if scanning:
		for chunk in plan_scan_chunks(job.trim_start, job.trim_end, backend.worker_count):
			tasks.append(WorkerTask('scan-cuts', config, chunk.start, chunk.end, label=f'scene-cut scan of frames {chunk.start}..{chunk.end}'))
	cuts: List[int] = []
	for index, result in backend.run(tasks):
		if not result.ok:
			raise_task_error(result)
		if tasks[index].kind == 'content' and result.value:
			raise ProcessingError(CONTENT_REFUSED_MESSAGE)
		if tasks[index].kind == 'scan-cuts':
			cuts.extend(result.value)
	if reason is not None:
		return [Segment(0, job.trim_start, job.trim_end)]
	segments = plan_segments(job.trim_start, job.trim_end, sorted(cuts) if scanning else None, backend.worker_count)
	if scanning:
		logger.get_logger().debug(f'scene cuts at {sorted(cuts)}; segments start at {[segment.start for segment in segments]}')
	return segments


def segment_output_name(output_path: str, index: int) -> str:
	"""The name a segment's encoded file is derived from (never written itself: the encoder writes a hidden partial
	name of it, which carries the writer's pid)."""
	output = Path(output_path)
	return str(output.with_name(f'{output.stem}.segment-{index:03d}{output.suffix}'))


def render_segments(job: VideoJob, segments: List[Segment], backend: WorkerBackend) -> Dict[int, SegmentOutput]:
	from facefusion.workflows.video import frame_progress

	tasks = [
		WorkerTask('segment', job.config.with_changes(output_path=segment_output_name(job.paths.output_path, segment.index)), segment.start, segment.end, label=f'segment {segment.index + 1} of {len(segments)} (frames {segment.start}..{segment.end})')
		for segment in segments
	]
	longest_first = sorted(range(len(segments)), key=lambda index: -segments[index].frame_count)
	outputs: Dict[int, SegmentOutput] = {}
	try:
		with frame_progress(job.frame_count, 'processing') as progress:
			for index, result in backend.run(tasks, on_frames=progress.update, order=longest_first):
				if not result.ok:
					raise_task_error(result)
				outputs[segments[index].index] = result.value
	except BaseException:
		remove_segment_files(outputs.values())
		raise
	return outputs


def join_segments(job: VideoJob, parts: List[SegmentOutput]) -> Path:
	"""The parts as one silent video under a hidden partial name (the audio step moves it into the final name)."""
	from facefusion.partial_files import partial_media_name
	from facefusion.video.concat import concat_copy

	joined = partial_media_name(job.paths.output_path, 'partial')
	if len(parts) == 1:
		os.replace(parts[0].path, joined)
		return joined
	frames = sum(part.frames for part in parts)
	if frames != job.frame_count:
		raise ProcessingError(f'the segments hold {frames} frames instead of {job.frame_count}; nothing was written')
	concat_copy([part.path for part in parts], joined, f'Joining {len(parts)} segments into {job.paths.output_path}')
	return joined


def remove_segment_files(outputs: Iterable[SegmentOutput]) -> None:
	for output in outputs:
		if os.path.exists(output.path):
			os.remove(output.path)

