"""The source identity, computed once per run: the averaged source face and what the chosen model is fed as
`source` before the per-face identity weight (an embedding in the model's identity space, or a cropped image).
"""
from __future__ import annotations

import os
from functools import lru_cache
from typing import TYPE_CHECKING, Dict, List

import numpy as np

from facefusion.errors import InputError, ProcessingError
from facefusion.face_helper import warp_face_by_face_landmark_5
from facefusion.gpu.array_ops import prepare_source_image
from facefusion.models.registry import ModelSpec
from facefusion.processors.modules.face_swapper.identity import prepare_source_embedding, uses_converter, uses_source_image
from facefusion.types import Embedding, Face, SourceIdentity, VisionFrame

if TYPE_CHECKING:
	from facefusion.inference.manager import InferenceManager
	from facefusion.processors.base import ProcessingContext

# SourceIdentity.extras keys
SOURCE_EMBEDDING = 'embedding'
SOURCE_FRAME = 'frame'


def read_emap(model_path: str) -> np.ndarray:
	"""inswapper's 512×512 identity projection: the last initializer of its graph (also in the fp16 file)."""
	stat = os.stat(model_path)
	# keyed by size and mtime too, so a replaced file is read again instead of serving a stale matrix
	return _read_emap(os.path.abspath(model_path), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=4)
def _read_emap(model_path: str, size: int, mtime_ns: int) -> np.ndarray:
	# onnx is imported here: only inswapper runs need it, and it adds to every start-up otherwise
	import onnx
	from onnx import numpy_helper
	model = onnx.load(model_path)
	if not model.graph.initializer:
		raise ProcessingError('model ' + model_path + ' has no initializer to read the inswapper emap from')
	emap = numpy_helper.to_array(model.graph.initializer[-1])
	if emap.shape != (512, 512):
		raise ProcessingError('model ' + model_path + ' has a last initializer of shape ' + str(emap.shape) + ', not 512x512')
	emap.setflags(write=False)
	return emap


def clear_emap_cache() -> None:
	"""Drop the cached matrices (3.5.0 clears its initializer cache with the strict and moderate memory strategies)."""
	_read_emap.cache_clear()


def convert_embedding(inference: 'InferenceManager', converter_name: str, embedding: Embedding) -> np.ndarray:
	"""Raw arcface embedding -> the crossface_* converter's output (1×512)."""
	session = inference.get(converter_name)
	input_name = 'input' if 'input' in session.input_names else session.input_names[0]
	return session.run({input_name: embedding.reshape(1, -1).astype(np.float32)})[0]


def build_source_identity(context: 'ProcessingContext', spec: ModelSpec) -> SourceIdentity:
	"""Average the largest face of every source image (as 3.5.0) and prepare the model's `source` input from it."""
	frames = list(context.source_frames)
	if not frames:
		raise InputError('face_swapper needs a source image (--source-paths)')
	face = context.analyser.get_average_face(frames)
	if face is None:
		raise ProcessingError('no face detected in source ' + describe_sources(context))
	extras: Dict[str, np.ndarray] = {}
	if uses_source_image(spec.swapper_type):
		extras[SOURCE_FRAME] = source_frame_input(first_frame_with_face(context, frames), face, spec)
	else:
		extras[SOURCE_EMBEDDING] = source_embedding_input(context.inference, face, spec)
	return SourceIdentity(face=face, frames=frames, extras=extras)


def first_frame_with_face(context: 'ProcessingContext', frames: List[VisionFrame]) -> VisionFrame:
	"""The source image the averaged face's landmarks belong to: the first one holding a face.

	3.5.0 always crops the first source path, which is the same image unless that one holds no face (then it crops
	an image with another image's landmarks); looking again costs a detection only when there are several sources.
	"""
	if len(frames) == 1:
		return frames[0]
	for frame in frames:
		if context.analyser.get_many_faces(frame):
			return frame
	return frames[0]


def source_frame_input(frame: VisionFrame, face: Face, spec: ModelSpec) -> np.ndarray:
	"""blendswap / uniface: the source face cropped with the model's source template (1×3×H×W, RGB, / 255), using
	the averaged face's 5/68 landmarks (those of the first source face found)."""
	crop, _ = warp_face_by_face_landmark_5(frame, face.landmark_set.five_68, spec.source_template, spec.source_size)
	return prepare_source_image(crop)


def source_embedding_input(inference: 'InferenceManager', face: Face, spec: ModelSpec) -> np.ndarray:
	if face.embedding is None or face.embedding_norm is None:
		raise ProcessingError('the source face has no embedding')
	converted = None
	emap = None
	if uses_converter(spec.swapper_type):
		converted = convert_embedding(inference, spec.converter, face.embedding)
	if spec.swapper_type == 'inswapper':
		emap = read_emap(str(inference.get(spec.name).path))
	return prepare_source_embedding(spec.swapper_type, face.embedding, face.embedding_norm, converted, emap)


def describe_sources(context: 'ProcessingContext') -> str:
	paths = list(context.config.source_paths)
	return ', '.join(paths) if paths else '(' + str(len(context.source_frames)) + ' image(s))'
