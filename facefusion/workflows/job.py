"""What a job is, checked once: the paths of one target (JobPaths) and, for a video, everything known about it
before the first frame is decoded (VideoJob). Every path problem is a clear InputError raised here, before anything
is downloaded, loaded or written."""
from __future__ import annotations

import concurrent.futures
import os
import stat
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Optional, Tuple

from facefusion import choices, logger
from facefusion.config import RunConfig
from facefusion.errors import InputError
from facefusion.filesystem import get_file_extension, media_status, parent_directory, same_file
from facefusion.partial_files import remove_stale_partial_files

if TYPE_CHECKING:
	from facefusion.video.io import VideoGeometry
	from facefusion.video.probe import VideoInfo
	from facefusion.video.routes import VideoRoutes


@dataclass(frozen=True)
class JobPaths:
	"""The checked paths of one target: image sources only (an audio source is the video workflow's business), the
	target's kind ('image' or 'video') and the output path (a folder given as output is resolved to a file)."""
	source_paths: Tuple[str, ...]
	target_path: str
	target_kind: str
	output_path: str


@dataclass(frozen=True)
class VideoJob:
	"""One video target, planned: the run's options, its checked paths, what the probe found, the sizes and rates
	of decode / pipeline / encode, the decode and encode routes, and the frames [trim_start, trim_end) to process."""
	config: RunConfig
	paths: JobPaths
	info: 'VideoInfo'
	geometry: 'VideoGeometry'
	routes: 'VideoRoutes'
	trim_start: int
	trim_end: int
	# worker threads of the process stage (the analysis stays in one thread, in frame order)
	process_workers: int = 1
	# ffmpeg's decoding threads (0: ffmpeg's default), from the thread plan
	decoder_threads: int = 0
	# threads making the tracker's per-frame cues ahead of the analysis (0: the analysis makes them), from the plan
	cue_workers: int = 0
	# ffmpeg's encoding threads (0: ffmpeg's default), from the plan and the encoded frame size
	encoder_threads: int = 0

	@property
	def frame_count(self) -> int:
		return self.trim_end - self.trim_start

	@property
	def fps(self) -> float:
		"""Frames per second of what travels through the pipeline (the tracker's and smoother's clock)."""
		return float(Fraction(self.geometry.frame_fps))

	@property
	def color_matrix(self) -> str:
		return self.info.effective_color_matrix()


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
	check_output_writable(output_path)
	return output_path


def check_output_writable(output_path: str) -> None:
	"""An existing output is replaced by renaming the finished file over it, which needs only the folder to be
	writable: a write-protected file (mode 444) would be replaced where a plain write would be refused. Refuse it
	the same way. The mode bits are checked as well as os.access, since root may write any file."""
	try:
		status = os.stat(output_path)
	except OSError:
		return
	if not stat.S_ISREG(status.st_mode):
		raise InputError(f'output path exists and is not a regular file: {output_path}')
	if not status.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) or not os.access(output_path, os.W_OK):
		raise InputError(f'output file is write-protected (mode {stat.S_IMODE(status.st_mode):03o}) and is not replaced: {output_path} (make it writable or remove it first)')


def check_job_paths(config: RunConfig) -> JobPaths:
	source_paths = []
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
	# what a killed run (SIGKILL, a power cut) left beside its output: hidden partial files whose writer is gone
	remove_stale_partial_files(parent_directory(output_path))
	return JobPaths(tuple(source_paths), config.target_path, target_kind, output_path)


def plan_video_job(config: RunConfig, paths: JobPaths, info: Optional['VideoInfo'] = None) -> VideoJob:
	"""Probe the target (unless its probe is given: a segment worker probes a target once for all its segments) and
	decide sizes, rates, routes and the trim range; a range holding no frame is an error."""
	# the probe before video.io: its first ffmpeg starts without waiting for numpy, which video.io loads
	from facefusion.video.probe import probe_video

	if paths.target_kind != 'video':
		raise InputError(f'target is not a video: {paths.target_path}')
	# the routes need ffmpeg's capability lists (two more ffmpeg runs), not the probe: both at once; a probe error
	# still comes first
	with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
		routes_future = pool.submit(select_routes, config, paths)
		info = info or probe_video(paths.target_path)
		from facefusion.video.io import plan_video_geometry, restrict_trim
		trim_start, trim_end = restrict_trim(info, config.trim_frame_start, config.trim_frame_end)
		if trim_end <= trim_start:
			raise InputError(f'the trim range {trim_start}..{trim_end} holds no frame of {paths.target_path} ({info.frame_count} frames)')
		geometry = plan_video_geometry(info, config.output_video_scale, config.output_video_fps)
		routes = routes_future.result()
	from facefusion.inference.thread_plan import encoder_threads, plan_threads
	thread_plan = plan_threads(config)
	encoded_width, encoded_height = geometry.output_size or geometry.frame_size
	return VideoJob(
		config, paths, info, geometry, routes, trim_start, trim_end, thread_plan.process_workers, thread_plan.decoder_threads, thread_plan.cue_workers,
		encoder_threads(thread_plan, encoded_width, encoded_height)
	)


def select_routes(config: RunConfig, paths: JobPaths) -> 'VideoRoutes':
	from facefusion.video import ffmpeg
	from facefusion.video.routes import select_video_routes

	# the routes read ffmpeg's capability lists (the hwaccels unless decoding is forced onto the CPU): listed side by
	# side, one ffmpeg start's time for the two
	listings = [ffmpeg.available_encoders] + ([ffmpeg.available_hwaccels] if config.video_decoder != 'cpu' else [])
	with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
		for listing in [pool.submit(listing) for listing in listings]:
			listing.result()
	return select_video_routes(config.video_decoder, config.video_encoder_route, config.output_video_encoder, paths.output_path, first_device_id(config))


def first_device_id(config: RunConfig) -> int:
	"""The device the video routes use: the first of --execution-device-ids (0 when it is not a number)."""
	device_ids = config.execution_device_ids
	if device_ids and str(device_ids[0]).isdigit():
		return int(device_ids[0])
	return 0
