"""The image workflow: one target image through the processors into one output image.

Every file is decoded before any model is loaded, so a corrupt file fails in a second, not after a download. Then,
step by step on one ImageRun: content check → reference faces and processors → the target's faces analysed once and
every processor in order → processors released → the output written atomically (temporary name, then rename).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, List, Optional, Tuple

from facefusion import logger
from facefusion.config import RunConfig
from facefusion.errors import InputError, ProcessingError
from facefusion.workflows.engine import Engine, build_processors, engine_for, needs_target_embeddings, preload_sessions, release_processors, select_reference_faces
from facefusion.workflows.job import JobPaths

if TYPE_CHECKING:
	import numpy as np

	from facefusion.processors.base import Processor
	from facefusion.types import Face, VisionFrame
	from facefusion.vision import ImageOriginal

CONTENT_REFUSED_MESSAGE = 'the target was refused by the content analyser (it appears to show adult content); nothing was written'


@dataclass
class ImageRun:
	"""One image target on its way through the steps: what is read up front, and what each step leaves."""
	config: RunConfig
	paths: JobPaths
	engine: Engine
	source_frames: List['VisionFrame']
	target_frame: 'VisionFrame'
	target_alpha: Optional['np.ndarray']
	# the target's 16-bit pixels and EXIF, put back into the output where its format holds them
	target_original: Optional['ImageOriginal'] = None
	reference_faces: List['Face'] = field(default_factory=list)
	processors: List['Processor'] = field(default_factory=list)
	output_frame: Optional['VisionFrame'] = None


ImageStep = Callable[[ImageRun], None]


def run_image(config: RunConfig, paths: JobPaths, engine: Optional[Engine] = None) -> int:
	from facefusion import vision

	start_time = time.perf_counter()
	if paths.target_kind != 'image':
		raise InputError(f'target is not an image: {paths.target_path}')
	source_frames = [vision.read_image(source_path) for source_path in paths.source_paths]
	target_frame, target_alpha, target_original = read_target_image(paths.target_path, paths.output_path, config.output_image_scale)
	logger.get_logger().info(f'processing image {paths.target_path} -> {paths.output_path}')
	# one model call at a time: each gets every core
	with engine_for(config, engine, concurrent_calls=1) as run_engine:
		# the processors' sessions load while the content check and the source face run here
		preload_sessions(config, run_engine)
		run = ImageRun(config, paths, run_engine, source_frames, target_frame, target_alpha, target_original)
		for step in IMAGE_STEPS:
			step(run)
	logger.get_logger().info(f'processing image succeeded in {time.perf_counter() - start_time:.2f} seconds')
	return 0


def read_target_image(target_path: str, output_path: str, scale: float) -> Tuple['VisionFrame', Optional['np.ndarray'], 'ImageOriginal']:
	"""The target at output size. Alpha is kept (with the file's own colours) when the output format can hold it;
	otherwise transparent pixels are composited on black. The original (16-bit pixels, EXIF) is at output size too."""
	from facefusion import vision
	frame, alpha, original = vision.read_image_with_original(target_path)
	if alpha is not None and not vision.supports_alpha(output_path):
		frame, alpha = vision.composite_on_black(frame, alpha), None
		# no 16-bit format drops alpha, so the deep pixels would never be written
		original.deep_frame = original.deep_alpha = None
	output_size = vision.scale_resolution((frame.shape[1], frame.shape[0]), scale)
	vision.check_image_size(output_size[0], output_size[1], f'{output_path} (the output at scale {scale:g})')
	frame = vision.resize_frame(frame, output_size)
	if alpha is not None:
		alpha = vision.resize_frame(alpha, output_size)
	original.frame, original.alpha = frame, alpha
	if original.deep_frame is not None:
		original.deep_frame = vision.resize_frame(original.deep_frame, output_size)
	if original.deep_alpha is not None:
		original.deep_alpha = vision.resize_frame(original.deep_alpha, output_size)
	return frame, alpha, original


def refuse_adult_content(run: ImageRun) -> None:
	if run.engine.content_analyser.analyse_frame(run.target_frame):
		raise ProcessingError(CONTENT_REFUSED_MESSAGE)


def prepare_processors(run: ImageRun) -> None:
	# for an image the reference frame is the target itself
	run.reference_faces = select_reference_faces(run.target_frame, run.engine, run.config)
	run.processors = build_processors(run.config, run.engine, run.reference_faces, run.source_frames)


def process_image(run: ImageRun) -> None:
	from facefusion import face_selector
	faces = face_selector.select_faces(run.target_frame, run.engine.analyser, run.config, run.reference_faces)
	if faces and needs_target_embeddings(run.processors):
		run.engine.analyser.ensure_embeddings(run.target_frame, faces)
	output_frame = run.target_frame.copy()
	if faces:
		for processor in run.processors:
			output_frame = processor.process_frame(run.target_frame, faces, output_frame)
	else:
		logger.get_logger().warning(f'no face found in the target (or none matched the face selector); the output is the unchanged target: {run.paths.target_path}')
	run.output_frame = output_frame


def release(run: ImageRun) -> None:
	release_processors(run.config, run.engine, run.processors)


def write_output(run: ImageRun) -> None:
	from facefusion import vision
	vision.write_image(run.paths.output_path, run.output_frame, run.config.output_image_quality, run.target_alpha, run.target_original)


IMAGE_STEPS: Tuple[ImageStep, ...] = (refuse_adult_content, prepare_processors, process_image, release, write_output)
