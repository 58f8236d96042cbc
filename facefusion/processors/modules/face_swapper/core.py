"""The face swapper processor (`--processors face_swapper`), 3.5.0's swap_face with batched model calls.

Per face, in 3.5.0's order: warp the target crop at pixel-boost size with the model's template from the 5/68
landmarks, box and occlusion masks on that crop, implode into k² sub-images, prepare, one model call for all
sub-images, normalise, explode, area and region masks on the swapped crop, minimum of the masks, paste back.

Faces are swapped in order on the progressively updated frame, as in 3.5.0. Faces whose paste boxes are apart
cannot see each other's pixels, so they share one model call; a face that overlaps an earlier one waits until that
one is pasted. The result equals the face-by-face result either way. `--face-swapper-batching never` falls back to
3.5.0's call pattern: one face at a time, one call per sub-image.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from facefusion.config import RunConfig
from facefusion.face_helper import (
	estimate_matrix_by_face_landmark_5,
	paste_box,
	transform_points,
	warp_face_by_face_landmark_5
)
from facefusion.face_recognizer import RECOGNIZER_MODEL
from facefusion.gpu.compositor import Compositor, PasteJob
from facefusion.gpu.device import array_module_of, get_array_module, to_device, to_host
from facefusion.inference.io_binding import BoundRunner
from facefusion.inference.session import ModelSession
from facefusion.models.registry import ModelSpec, get_model
from facefusion.processors.base import ProcessingContext, Processor
from facefusion.processors.batch_processor import BatchProcessor, estimate_per_item_bytes
from facefusion.stage_timer import STAGE_TIMER
from facefusion.processors.modules.face_swapper.model_types import (
	balance_source_embedding,
	identity_weight,
	normalize_output,
	prepare_target,
	uses_source_image
)
from facefusion.processors.modules.face_swapper.pixel_boost import boost_factor, explode_batch, implode, implode_batch, parse_size
from facefusion.processors.modules.face_swapper.source import (
	SOURCE_EMBEDDING,
	SOURCE_FRAME,
	build_source_identity,
	clear_emap_cache
)
from facefusion.types import Embedding, Face, Mask, Matrix, SourceIdentity, VisionFrame

# sub-images per model call on the CPU provider (the batch processor may lower it on a device short of memory)
MAX_BATCH_ITEMS = 64
# warpAffine's bilinear taps reach one pixel past a paste box; two keeps neighbouring faces strictly apart
BOX_MARGIN = 2
ONNX_TYPES: Dict[str, type] = {'tensor(float)': np.float32, 'tensor(float16)': np.float16, 'tensor(double)': np.float64}

Box = Tuple[int, int, int, int]


@dataclass
class FaceJob:
	"""One face on its way through the swap: its target crop, where it goes back, and its masks so far."""
	face: Face
	crop: VisionFrame
	affine: Matrix
	box: Box
	target_embedding: Optional[Embedding]
	masks: List[Mask] = field(default_factory=list)
	swapped: Optional[np.ndarray] = None


class FaceSwapper(Processor):
	name = 'face_swapper'

	@staticmethod
	def required_models(config: RunConfig) -> List[str]:
		"""The swapper, its embedding converter, and the recognizer for the source embedding (the masker's models
		are collected by core)."""
		spec = get_model(config.face_swapper_model)
		model_names = [spec.name]
		if spec.converter:
			model_names.append(spec.converter)
		model_names.append(RECOGNIZER_MODEL)
		return model_names

	def __init__(self, context: ProcessingContext) -> None:
		super().__init__(context)
		self.spec: ModelSpec = get_model(self.config.face_swapper_model)
		self.swapper_type: str = self.spec.swapper_type
		self.model_size = self.spec.size
		self.boost_size = parse_size(self.config.swapper_pixel_boost())
		# the CLI refuses such sizes already; a library caller gets the same clear message here
		self.boost_factor = boost_factor(self.boost_size, self.model_size)
		self.source_identity: Optional[SourceIdentity] = None
		self.batcher: Optional[BatchProcessor] = None
		self.batcher_session: Optional[ModelSession] = None
		self.frame_compositor: Optional[Compositor] = None
		# keep frames and crops on the GPU even when the model session itself runs on the CPU (GPU checks)
		self.prefer_device_arrays = False

	def prepare(self) -> None:
		self.source_identity = build_source_identity(self.context, self.spec)

	def release(self) -> None:
		"""Forget the run's source; like 3.5.0, the strict and moderate memory strategies also drop the cached
		inswapper matrix (sessions belong to the inference manager)."""
		self.source_identity = None
		if self.batcher is not None:
			self.batcher.log_stats()
		self.batcher = None
		self.batcher_session = None
		if self.config.video_memory_strategy in ('strict', 'moderate'):
			clear_emap_cache()

	@property
	def session(self) -> ModelSession:
		return self.context.inference.get(self.spec.name)

	@property
	def sequential(self) -> bool:
		return self.config.face_swapper_batching == 'never'

	def process_frame(self, target_frame: VisionFrame, faces: Sequence[Face], output_frame: VisionFrame) -> VisionFrame:
		return self.process_frames([(target_frame, list(faces), output_frame)])[0]

	def process_frames(self, items: Sequence[Tuple[VisionFrame, List[Face], VisionFrame]]) -> List[VisionFrame]:
		"""Swap every face of a window of frames in as few model calls as the batch limit allows.

		Each frame's faces are split into rounds of faces whose paste boxes are apart; round r of every frame goes
		through the model together, then each frame gets its faces pasted before its next round is cropped. So a
		face that overlaps an earlier one still sees it pasted, and every frame ends as if swapped face by face.

		Warp, swap and paste run on the compositor's device: with the swapper on CUDA (and CuPy) each frame goes up
		once and comes down once, and crops, model inputs and outputs stay on the device in between."""
		compositor = self.compositor()
		outputs = [compositor.upload(output_frame) for _, _, output_frame in items]
		rounds = [self.plan_rounds(output_frame.shape, faces) for _, faces, output_frame in items]
		for round_index in range(max((len(frame_rounds) for frame_rounds in rounds), default=0)):
			slots = [slot for slot, frame_rounds in enumerate(rounds) if round_index < len(frame_rounds)]
			jobs = [self.start_jobs(items[slot][0], rounds[slot][round_index], outputs[slot]) for slot in slots]
			for slot, output_frame in zip(slots, self.finish_job_groups(jobs, [outputs[slot] for slot in slots])):
				outputs[slot] = output_frame
		return [compositor.download(output_frame) for output_frame in outputs]

	def compositor(self) -> Compositor:
		on_gpu = self.array_module() is not np
		if self.frame_compositor is None or self.frame_compositor.on_gpu != on_gpu:
			self.frame_compositor = Compositor(prefer_gpu=on_gpu)
		return self.frame_compositor

	def start_jobs(self, target_frame: VisionFrame, faces: Sequence[Face], output_frame: Any) -> List[FaceJob]:
		"""The crops of faces that do not overlap, warped in one go from the frame as it is now."""
		affines = [estimate_matrix_by_face_landmark_5(face.landmark_set.five_68, self.spec.template, self.boost_size) for face in faces]
		crops = self.compositor().warp_crops(output_frame, affines, self.boost_size)
		return [
			FaceJob(face, crop, affine, expand_box(paste_box(output_frame.shape, self.boost_size, affine), BOX_MARGIN), self.target_embedding(target_frame, face))
			for face, crop, affine in zip(faces, crops, affines)
		]

	def plan_rounds(self, frame_shape: Tuple[int, ...], faces: Sequence[Face]) -> List[List[Face]]:
		"""Faces in 3.5.0's order, cut into consecutive runs whose paste boxes do not overlap (one face per run
		with --face-swapper-batching never)."""
		rounds: List[List[Face]] = []
		boxes: List[Box] = []
		for face in faces:
			box = self.predict_box(frame_shape, face)
			if not rounds or self.sequential or any(boxes_overlap(box, other) for other in boxes):
				rounds.append([])
				boxes = []
			rounds[-1].append(face)
			boxes.append(box)
		return rounds

	def swap_face(self, target_frame: VisionFrame, face: Face, output_frame: VisionFrame) -> VisionFrame:
		"""One face, 3.5.0's swap_face."""
		return self.finish_jobs([self.start_job(target_frame, face, output_frame)], output_frame)

	def predict_box(self, frame_shape: Tuple[int, ...], face: Face) -> Box:
		affine = estimate_matrix_by_face_landmark_5(face.landmark_set.five_68, self.spec.template, self.boost_size)
		return expand_box(paste_box(frame_shape, self.boost_size, affine), BOX_MARGIN)

	def start_job(self, target_frame: VisionFrame, face: Face, output_frame: VisionFrame) -> FaceJob:
		"""Warp the crop from the frame as it is now (earlier faces already pasted) and note what the swap needs."""
		crop, affine = warp_face_by_face_landmark_5(
			output_frame, face.landmark_set.five_68, self.spec.template, self.boost_size, face.track_token
		)
		box = expand_box(paste_box(output_frame.shape, self.boost_size, affine), BOX_MARGIN)
		return FaceJob(face, crop, affine, box, self.target_embedding(target_frame, face))

	def finish_jobs(self, jobs: List[FaceJob], output_frame: VisionFrame) -> VisionFrame:
		"""Swap independent faces of one frame together and paste each back."""
		return self.finish_job_groups([jobs], [output_frame])[0]

	def finish_job_groups(self, job_groups: List[List[FaceJob]], output_frames: List[Any]) -> List[Any]:
		"""Swap the faces of several frames in one batch (masks too), then paste each group into its own frame."""
		masker = self.context.masker
		compositor = self.compositor()
		jobs = [job for group in job_groups for job in group]
		# the masks come from host-side models and OpenCV: crops go down for them (a no-op on the CPU)
		for job, masks in zip(jobs, masker.pre_swap_masks_batch([to_host(job.crop) for job in jobs])):
			job.masks = masks
		swapped_crops = self.swap_crops_on_device([job.crop for job in jobs], [job.target_embedding for job in jobs])
		for job, swapped in zip(jobs, swapped_crops):
			job.swapped = swapped
		if any(mask_type in self.config.face_mask_types for mask_type in ('area', 'region')):
			landmarks = [self.landmark_68_in_crop(job) for job in jobs]
			for job, masks in zip(jobs, masker.post_swap_masks_batch([to_host(job.swapped) for job in jobs], landmarks)):
				job.masks = job.masks + masks
		results = []
		for group, output_frame in zip(job_groups, output_frames):
			with STAGE_TIMER.measure('paste'):
				pastes = [PasteJob(job.swapped, [compositor.upload(mask) for mask in job.masks], job.affine) for job in group]
				results.append(compositor.paste_all(output_frame, pastes, in_place=True))
		return results

	def landmark_68_in_crop(self, job: FaceJob) -> Optional[np.ndarray]:
		if 'area' not in self.config.face_mask_types:
			return None
		return transform_points(job.face.landmark_set.sixty_eight, job.affine)

	def target_embedding(self, target_frame: VisionFrame, face: Face) -> Optional[Embedding]:
		"""The target identity the weight mixes in; not needed (and not computed) when w = 0 or for image sources."""
		if uses_source_image(self.swapper_type) or identity_weight(self.config.face_swapper_weight) == 0:
			return None
		if face.embedding is None:
			# from the untouched input frame, as 3.5.0 analyses it
			self.context.analyser.ensure_embeddings(target_frame, [face])
		return face.embedding

	def source_input(self, target_embedding: Optional[Embedding] = None) -> np.ndarray:
		"""The model's `source` for one face (batch of 1): the source crop, or the embedding after the weight."""
		if self.source_identity is None:
			raise RuntimeError('FaceSwapper.prepare() must run before frames are processed')
		extras = self.source_identity.extras
		if uses_source_image(self.swapper_type):
			return extras[SOURCE_FRAME]
		source_embedding = extras[SOURCE_EMBEDDING]
		if target_embedding is None:
			return source_embedding
		return balance_source_embedding(self.swapper_type, source_embedding, target_embedding, self.config.face_swapper_weight)

	def model_inputs(self, crop: VisionFrame, target_embedding: Optional[Embedding] = None) -> Dict[str, np.ndarray]:
		"""The batch fed to the model for one face: k² prepared sub-images and as many copies of its source."""
		sub_images = implode(crop, self.model_size)
		target = prepare_target(sub_images, self.spec.mean, self.spec.std)
		source = np.repeat(self.source_input(target_embedding), len(sub_images), axis=0)
		return {'source': source, 'target': target}

	def swap_crops(self, crops: Sequence[VisionFrame], target_embeddings: Sequence[Optional[Embedding]]) -> List[np.ndarray]:
		"""Target crops at pixel-boost size -> swapped crops (float32 BGR, 0..255, on the host)."""
		return [to_host(swapped) for swapped in self.swap_crops_on_device(crops, target_embeddings)]

	def swap_crops_on_device(self, crops: Sequence[Any], target_embeddings: Sequence[Optional[Embedding]]) -> Any:
		"""Every sub-image of every crop in one batch; the per-pixel steps are the array-module functions of
		facefusion/gpu/array_ops.py: NumPy here, CuPy on the device when the swapper runs on CUDA."""
		xp = self.array_module()
		count = self.boost_factor ** 2
		stacked = xp.stack([to_device(crop, xp) for crop in crops])
		target = prepare_target(implode_batch(stacked, self.model_size), self.spec.mean, self.spec.std)
		source = xp.concatenate([xp.repeat(to_device(self.source_input(embedding), xp), count, axis=0) for embedding in target_embeddings])
		tiles = normalize_output(self.forward({'source': source, 'target': target}), self.swapper_type, self.spec.mean, self.spec.std)
		return explode_batch(tiles, self.boost_size)

	def array_module(self) -> Any:
		"""CuPy when the swapper session runs on a GPU provider and CuPy has a device, else NumPy."""
		if self.prefer_device_arrays or session_on_gpu(self.session):
			return get_array_module(prefer_gpu=True)
		return np

	def swap_crop(self, crop: VisionFrame, target_embedding: Optional[Embedding] = None) -> np.ndarray:
		return self.swap_crops([crop], [target_embedding])[0]

	def forward(self, feed: Dict[str, Any]) -> Any:
		"""Run the swapper on a batch; the first output only (hyperswap's second output, a mask, is unused). The
		result is in the feed's array module (CuPy stays on the device)."""
		session = self.session
		xp = array_module_of(feed['target'])
		if not session_on_gpu(session):
			# a CPU session reads host memory (CuPy pre/post-processing with a CPU onnxruntime: copy around the call)
			feed = {name: to_host(value) for name, value in feed.items()}
		feed = self.cast_feed(session, feed)
		if self.sequential:
			# 3.5.0's pattern: one call per sub-image
			outputs = [session.run_batch({name: to_host(value[start:start + 1]) for name, value in feed.items()})[0] for start in range(len(feed['target']))]
			return to_device(np.concatenate(outputs), xp)
		return to_device(self.batcher_for(session).process_feed(feed)[0], xp)

	def batcher_for(self, session: ModelSession) -> BatchProcessor:
		"""The batch processor of the current session (sessions are made again after a memory-strategy release).
		On CUDA the calls go through IO binding into preallocated device buffers."""
		if self.batcher is None or self.batcher_session is not session:
			on_gpu = session_on_gpu(session)
			run_function = session.run_batch
			per_item_bytes = None
			if on_gpu:
				runner = BoundRunner(session)
				# the runner's output buffers are reused by its next call, which another worker thread may make
				# before this one has read them: hand out copies (device to device, cheap)
				run_function = partial(runner.run_batch, copy=True)
				per_item_bytes = estimate_per_item_bytes(session.input_shapes, [output.shape for output in session.session.get_outputs()])
			max_batch = self.config.face_swapper_trt_max_batch if self.config.face_swapper_use_trt else MAX_BATCH_ITEMS
			self.batcher = BatchProcessor(run_function, per_item_bytes, max_batch=max_batch, name='face_swapper')
			self.batcher_session = session
		return self.batcher

	@staticmethod
	def cast_feed(session: ModelSession, feed: Dict[str, Any]) -> Dict[str, Any]:
		"""Feed by input name (`source`, `target`) in each input's declared type (ORT refuses a mismatch)."""
		cast: Dict[str, Any] = {}
		for model_input in session.session.get_inputs():
			if model_input.name in feed:
				value = feed[model_input.name]
				xp = array_module_of(value)
				cast[model_input.name] = xp.ascontiguousarray(value, dtype=ONNX_TYPES.get(model_input.type, np.float32))
		return cast


def session_on_gpu(session: ModelSession) -> bool:
	return any(provider in session.active_providers for provider in ('CUDAExecutionProvider', 'TensorrtExecutionProvider'))


def expand_box(box: Sequence[int], margin: int) -> Box:
	x1, y1, x2, y2 = (int(value) for value in box)
	return x1 - margin, y1 - margin, x2 + margin, y2 + margin


def boxes_overlap(first: Box, second: Box) -> bool:
	return first[0] < second[2] and second[0] < first[2] and first[1] < second[3] and second[1] < first[3]


def overlaps_any(box: Box, jobs: Sequence[FaceJob]) -> bool:
	return any(boxes_overlap(box, job.box) for job in jobs)
