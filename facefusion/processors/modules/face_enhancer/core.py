"""The face enhancer processor (`--processors face_enhancer`), 3.5.0's enhance_face with batched model calls.

Per face, in 3.5.0's order, on the frame as the processors before it left it: warp the crop at the model's size with
its template from the 5/68 landmarks, a box mask (--face-mask-blur, no padding) and, with `occlusion` in
--face-mask-types, the occlusion mask; prepare, run the model, normalise to uint8; paste back through the minimum of
the masks; then blend the pasted frame over the frame before at --face-enhancer-blend.

The blend of the whole frame only changes the paste box (outside it the two frames are equal, and
cv2.addWeighted(x, 1 - b, x, b) is x for every uint8 x and every blend step), so it is done on the box alone. Faces
whose paste boxes are apart therefore cannot see each other's pixels and share one model call, with the faces of the
other frames of the window; a face that overlaps an earlier one waits until that one is pasted and blended, so the
result equals the face-by-face result.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from types import ModuleType
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from facefusion.config import RunConfig
from facefusion.face_helper import estimate_matrix_by_face_landmark_5, paste_box
from facefusion.face_masker import create_box_mask
from facefusion.gpu.compositor import Compositor, PasteJob
from facefusion.gpu.device import Array, array_module_of, get_array_module, to_device, to_host
from facefusion.inference.io_binding import BoundRunner
from facefusion.inference.session import ELEMENT_TYPES, ModelSession
from facefusion.models.registry import ModelSpec, get_model
from facefusion.processors.base import ProcessingContext, Processor
from facefusion.processors.batch_processor import BatchProcessor, estimate_per_item_bytes
from facefusion.processors.modules.face_enhancer.tensors import blend_regions, enhancer_weight_input, normalize_enhancer_output, prepare_enhancer_input
from facefusion.processors.modules.face_swapper.core import BOX_MARGIN, boxes_overlap, expand_box, session_on_gpu
from facefusion.stage_timer import STAGE_TIMER
from facefusion.types import Face, Mask, Matrix, VisionFrame

# faces per model call on the CPU provider (the batch processor may lower it on a device short of memory)
MAX_BATCH_ITEMS = 16
IMAGE_INPUT = 'input'
WEIGHT_INPUT = 'weight'

Box = Tuple[int, int, int, int]
Item = Tuple[VisionFrame, List[Face], VisionFrame]


@dataclass
class EnhanceJob:
	"""One face on its way through the enhancer: its crop, where it goes back and its masks."""
	crop: Array
	affine: Matrix
	box: Box
	masks: List[Mask]


class FaceEnhancer(Processor):
	name = 'face_enhancer'

	@staticmethod
	def required_models(config: RunConfig) -> List[str]:
		"""The enhancer model (the occluder for `occlusion` is the masker's and collected by core)."""
		return [config.face_enhancer_model]

	def __init__(self, context: ProcessingContext) -> None:
		super().__init__(context)
		self.spec: ModelSpec = get_model(self.config.face_enhancer_model)
		self.model_size: Tuple[int, int] = self.spec.size
		self.batcher: Optional[BatchProcessor] = None
		self.batcher_session: Optional[ModelSession] = None
		self.frame_compositor: Optional[Compositor] = None
		self.box_mask: Mask = create_box_mask(self.model_size, self.config.face_mask_blur, (0, 0, 0, 0))
		self.box_mask.flags.writeable = False
		# keep frames and crops on the GPU even when the model session itself runs on the CPU (GPU checks)
		self.prefer_device_arrays = False

	def release(self) -> None:
		if self.batcher is not None:
			self.batcher.log_stats()
		self.batcher = None
		self.batcher_session = None

	@property
	def session(self) -> ModelSession:
		return self.context.inference.get(self.spec.name)

	def has_weight_input(self) -> bool:
		return WEIGHT_INPUT in self.session.input_names

	def process_frame(self, target_frame: VisionFrame, faces: Sequence[Face], output_frame: VisionFrame) -> VisionFrame:
		return self.process_frames([(target_frame, list(faces), output_frame)])[0]

	def process_frames(self, items: Sequence[Item]) -> List[VisionFrame]:
		"""Enhance every face of a window of frames in as few model calls as the batch limit allows: round r of
		every frame (faces whose paste boxes are apart) goes through the model together, then each frame gets those
		faces pasted and blended before its next round is cropped."""
		compositor = self.compositor()
		outputs = [compositor.upload(output_frame) for _, _, output_frame in items]
		rounds = [self.plan_rounds(output_frame.shape, faces) for _, faces, output_frame in items]
		for round_index in range(max((len(frame_rounds) for frame_rounds in rounds), default=0)):
			slots = [slot for slot, frame_rounds in enumerate(rounds) if round_index < len(frame_rounds)]
			job_groups = [self.start_jobs(rounds[slot][round_index], outputs[slot]) for slot in slots]
			for slot, output_frame in zip(slots, self.finish_job_groups(job_groups, [outputs[slot] for slot in slots])):
				outputs[slot] = output_frame
		return [compositor.download(output_frame) for output_frame in outputs]

	def compositor(self) -> Compositor:
		on_gpu = self.array_module() is not np
		if self.frame_compositor is None or self.frame_compositor.on_gpu != on_gpu:
			self.frame_compositor = Compositor(prefer_gpu=on_gpu)
		return self.frame_compositor

	def affine_of(self, face: Face) -> Matrix:
		return estimate_matrix_by_face_landmark_5(face.landmark_set.five_68, self.spec.template, self.model_size)

	def plan_rounds(self, frame_shape: Tuple[int, ...], faces: Sequence[Face]) -> List[List[Face]]:
		"""Faces in order, cut into consecutive runs whose (margin-expanded) paste boxes do not overlap."""
		rounds: List[List[Face]] = []
		boxes: List[Box] = []
		for face in faces:
			box = expand_box(paste_box(frame_shape, self.model_size, self.affine_of(face)), BOX_MARGIN)
			if not rounds or any(boxes_overlap(box, other) for other in boxes):
				rounds.append([])
				boxes = []
			rounds[-1].append(face)
			boxes.append(box)
		return rounds

	def start_jobs(self, faces: Sequence[Face], output_frame: Array) -> List[EnhanceJob]:
		"""The crops of faces that do not overlap, warped in one go from the frame as it is now."""
		affines = [self.affine_of(face) for face in faces]
		crops = self.compositor().warp_crops(output_frame, affines, self.model_size)
		return [EnhanceJob(crop, affine, paste_box(output_frame.shape, self.model_size, affine), []) for crop, affine in zip(crops, affines)]

	def finish_job_groups(self, job_groups: List[List[EnhanceJob]], output_frames: List[Array]) -> List[Array]:
		"""Masks and one batched model pass for the jobs of several frames, then paste and blend per frame."""
		compositor = self.compositor()
		jobs = [job for group in job_groups for job in group]
		occlusion_masks: List[Optional[Mask]] = [None] * len(jobs)
		if 'occlusion' in self.config.face_mask_types and jobs:
			# the occluder is a host-side model: crops go down for it (a no-op on the CPU)
			occlusion_masks = list(self.context.masker.occlusion_masks([to_host(job.crop) for job in jobs]))
		for job, occlusion_mask in zip(jobs, occlusion_masks):
			job.masks = [self.box_mask] if occlusion_mask is None else [self.box_mask, occlusion_mask]
		enhanced_crops = self.enhance_crops([job.crop for job in jobs]) if jobs else []
		offsets = np.cumsum([0] + [len(group) for group in job_groups])
		results = []
		for group_index, (group, output_frame) in enumerate(zip(job_groups, output_frames)):
			with STAGE_TIMER.measure('paste'):
				befores = [output_frame[y1:y2, x1:x2].copy() for x1, y1, x2, y2 in (job.box for job in group)]
				pastes = [
					PasteJob(enhanced_crops[offsets[group_index] + index], [compositor.upload(mask) for mask in job.masks], job.affine)
					for index, job in enumerate(group)
				]
				output_frame = compositor.paste_all(output_frame, pastes, in_place=True)
				for job, before in zip(group, befores):
					x1, y1, x2, y2 = job.box
					if x2 > x1 and y2 > y1:
						output_frame[y1:y2, x1:x2] = blend_regions(before, output_frame[y1:y2, x1:x2], self.config.face_enhancer_blend)
			results.append(output_frame)
		return results

	def enhance_crops(self, crops: Sequence[Array]) -> Array:
		"""N×S×S×3 uint8 crops -> N×S×S×3 uint8 enhanced crops, all in one batch, in the enhancer's array module."""
		xp = self.array_module()
		stacked = xp.stack([to_device(crop, xp) for crop in crops])
		return normalize_enhancer_output(self.forward(prepare_enhancer_input(stacked)))

	def array_module(self) -> ModuleType:
		"""CuPy when the enhancer session runs on a GPU provider and CuPy has a device, else NumPy."""
		if self.prefer_device_arrays or session_on_gpu(self.session):
			return get_array_module(prefer_gpu=True)
		return np

	def forward(self, batch: Array) -> Array:
		"""The first output of the model over a batch of prepared crops, in the batch's array module."""
		session = self.session
		xp = array_module_of(batch)
		if not session_on_gpu(session):
			batch = to_host(batch)
		return to_device(self.batcher_for(session).process_feed({IMAGE_INPUT: batch})[0], xp)

	def batcher_for(self, session: ModelSession) -> BatchProcessor:
		"""The batch processor of the current session; the calls go through IO binding on CUDA. Only the image
		input is split into batches: the weight is the same one-element tensor for every call."""
		if self.batcher is None or self.batcher_session is not session:
			per_item_bytes = None
			if session_on_gpu(session):
				runner = BoundRunner(session)
				# the runner reuses its output buffers on its next call, which another worker may make first
				run_one: Callable[[Dict[str, Array]], List[Array]] = partial(runner.run, copy=True)
				per_item_bytes = estimate_per_item_bytes(session.input_shapes, [output.shape for output in session.session.get_outputs()])
			else:
				run_one = session.run
			max_batch = self.config.face_enhancer_trt_max_batch if self.config.face_enhancer_use_trt else MAX_BATCH_ITEMS
			self.batcher = BatchProcessor(self.feed_runner(session, run_one), per_item_bytes, max_batch=max_batch, name='face_enhancer')
			self.batcher_session = session
		return self.batcher

	def feed_runner(self, session: ModelSession, run_one: Callable[[Dict[str, Array]], List[Array]]) -> Callable[[Dict[str, Array]], List[Array]]:
		"""A batch-first run function: adds the weight where the model has one, casts to the declared types, and
		runs a model whose batch stays fixed at 1 one face at a time."""
		declared = {model_input.name: ELEMENT_TYPES.get(model_input.type, np.float32) for model_input in session.session.get_inputs()}
		weight = enhancer_weight_input(self.config.face_enhancer_weight) if WEIGHT_INPUT in declared else None
		fixed_batch = any(shape and shape[0] == 1 for shape in session.input_shapes if len(shape) == 4)

		def call(images: Array) -> List[Array]:
			xp = array_module_of(images)
			feed: Dict[str, Array] = {IMAGE_INPUT: xp.ascontiguousarray(images, dtype=declared[IMAGE_INPUT])}
			if weight is not None:
				feed[WEIGHT_INPUT] = to_device(weight.astype(declared[WEIGHT_INPUT]), xp)
			return run_one(feed)

		def run_batch(feed: Dict[str, Array]) -> List[Array]:
			images = feed[IMAGE_INPUT]
			if not fixed_batch or len(images) == 1:
				return call(images)[:1]
			per_face = [call(images[index:index + 1])[0] for index in range(len(images))]
			return [array_module_of(per_face[0]).concatenate(per_face)]

		return run_batch
