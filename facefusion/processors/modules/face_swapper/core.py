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

import threading
import weakref
from dataclasses import dataclass, field, replace
from functools import partial
from types import ModuleType
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from facefusion.config import RunConfig
from facefusion.face_helper import estimate_matrix_by_face_landmark_5, paste_box, transform_points
from facefusion.face_masker import create_box_mask
from facefusion.face_recognizer import RECOGNIZER_MODEL
from facefusion.gpu.array_ops import normalize_outputs, prepare_crops
from facefusion.gpu.blending import BlendSettings, ColorStatistics, TrackColors, color_statistics
from facefusion.gpu.compositor import Compositor, PasteJob
from facefusion.gpu.device import Array, array_module_of, get_array_module, to_device, to_host
from facefusion.inference.io_binding import BoundRunner
from facefusion.inference.session import ELEMENT_TYPES, ModelSession
from facefusion.models.registry import ModelSpec, get_model
from facefusion.processors.base import ProcessingContext, Processor
from facefusion.processors.batch_processor import BatchProcessor, estimate_per_item_bytes
from facefusion.processors.modules.face_swapper.identity import balance_source_embedding, identity_weight, uses_source_image
from facefusion.processors.modules.face_swapper.pixel_boost import boost_factor, explode_batch, implode_batch, parse_size
from facefusion.processors.modules.face_swapper.source import SOURCE_EMBEDDING, SOURCE_FRAME, build_source_identity, clear_emap_cache
from facefusion.stage_timer import STAGE_TIMER
from facefusion.types import Embedding, Face, Mask, Matrix, SourceIdentity, VisionFrame

# sub-images per model call on the CPU provider (the batch processor may lower it on a device short of memory)
MAX_BATCH_ITEMS = 64
# warpAffine's bilinear taps reach one pixel past a paste box; two keeps neighbouring faces strictly apart
BOX_MARGIN = 2
# outputs that come back in the input's (x - mean) / std space; the others are already 0..1
DENORMALISED_OUTPUT_TYPES = frozenset({'ghost', 'hififace', 'hyperswap', 'uniface'})

# the side of the small aligned crop the analyse stage takes a tracked face's colour from (statistics need no detail)
STATISTICS_SIZE = 96

Box = Tuple[int, int, int, int]


@dataclass
class FaceJob:
	"""One face on its way through the swap: its target crop, where it goes back, and its masks so far."""
	face: Face
	# on the compositor's device, like swapped
	crop: Array
	affine: Matrix
	box: Box
	target_embedding: Optional[Embedding]
	masks: List[Mask] = field(default_factory=list)
	swapped: Optional[Array] = None


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
		self.blend_settings = blend_settings_of(self.config)
		# colour matching in video: the target statistics of each tracked face, smoothed per track in frame order
		self.track_colors = TrackColors()
		self.observed_colors: 'weakref.WeakKeyDictionary[Face, ColorStatistics]' = weakref.WeakKeyDictionary()
		# written by the analyse thread, read by the process workers
		self.observed_lock = threading.Lock()

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

	def needs_target_embeddings(self) -> bool:
		"""The identity weight mixes in the target face's embedding: only for embedding-fed types, and not at
		w = 0 (--face-swapper-weight 0.5)."""
		return not uses_source_image(self.swapper_type) and identity_weight(self.config.face_swapper_weight) != 0

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
			self.frame_compositor = Compositor(prefer_gpu=on_gpu, device_id=self.session.device_id, settings=self.blend_settings)
		return self.frame_compositor

	def observe(self, target_frame: VisionFrame, faces: Sequence[Face]) -> None:
		"""Colour matching on video: the target statistics of every tracked face, smoothed over its track so that the
		colour does not flicker. Called by the analyse stage, which sees the frames in order; a scene cut gives every
		face a new track token, which starts its statistics afresh."""
		if not self.blend_settings.matches_color:
			return
		for face in faces:
			if face.track_token is None:
				continue
			current = self.target_statistics(target_frame, face)
			if current is not None:
				smoothed = self.track_colors.update(face.track_token, current)
				with self.observed_lock:
					self.observed_colors[face] = smoothed

	def target_statistics(self, target_frame: VisionFrame, face: Face, crop: Optional[Array] = None, weights: Optional[Array] = None) -> Optional[ColorStatistics]:
		"""The target face's colour in L*a*b*: over the given crop and mask (the swap's own, for a single frame), or
		over a small aligned crop and the box mask (the analyse stage, before any swap mask exists)."""
		with_histogram = self.blend_settings.color_match == 'histogram'
		if crop is not None and weights is not None:
			return color_statistics(crop, weights, with_histogram)
		size = (STATISTICS_SIZE, STATISTICS_SIZE)
		affine = estimate_matrix_by_face_landmark_5(face.landmark_set.five_68, self.spec.template, size)
		small = cv2.warpAffine(target_frame, affine, size, borderMode=cv2.BORDER_REPLICATE)
		box_mask = create_box_mask(size, self.config.face_mask_blur, self.config.face_mask_padding)
		return color_statistics(small.astype(np.float32), box_mask, with_histogram)

	def start_jobs(self, target_frame: VisionFrame, faces: Sequence[Face], output_frame: Array) -> List[FaceJob]:
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

	def predict_box(self, frame_shape: Tuple[int, ...], face: Face) -> Box:
		affine = estimate_matrix_by_face_landmark_5(face.landmark_set.five_68, self.spec.template, self.boost_size)
		return expand_box(paste_box(frame_shape, self.boost_size, affine), BOX_MARGIN)

	def finish_job_groups(self, job_groups: List[List[FaceJob]], output_frames: List[Array]) -> List[Array]:
		"""Swap the faces of several frames in one batch (masks too), then paste each group into its own frame."""
		masker = self.context.masker
		compositor = self.compositor()
		jobs = [job for group in job_groups for job in group]
		# the masks come from host-side models and OpenCV: crops go down for them (a no-op on the CPU)
		for job, masks in zip(jobs, masker.pre_swap_masks_batch([to_host(job.crop) for job in jobs])):
			job.masks = masks
		swapped_crops = self.swap_crops([job.crop for job in jobs], [job.target_embedding for job in jobs])
		for job, swapped in zip(jobs, swapped_crops):
			job.swapped = swapped
		if any(mask_type in self.config.face_mask_types for mask_type in ('area', 'region')):
			landmarks = [self.landmark_68_in_crop(job) for job in jobs]
			for job, masks in zip(jobs, masker.post_swap_masks_batch([to_host(job.swapped) for job in jobs], landmarks)):
				job.masks = job.masks + masks
		results = []
		for group, output_frame in zip(job_groups, output_frames):
			with STAGE_TIMER.measure('paste'):
				pastes = [PasteJob(job.swapped, [compositor.upload(mask) for mask in job.masks], job.affine, self.paste_target(job)) for job in group]
				results.append(compositor.paste_all(output_frame, pastes, in_place=True))
		return results

	def paste_target(self, job: FaceJob) -> Optional[ColorStatistics]:
		"""The colour the swap is matched to: the track's smoothed statistics, or this frame's over the swap's mask."""
		if not self.blend_settings.matches_color:
			return None
		with self.observed_lock:
			observed = self.observed_colors.get(job.face)
		if observed is not None:
			return observed
		weights = PasteJob(job.swapped, [self.compositor().upload(mask) for mask in job.masks], job.affine).combined_mask()
		return self.target_statistics(job.crop, job.face, job.crop.astype(np.float32), weights)

	def landmark_68_in_crop(self, job: FaceJob) -> Optional[np.ndarray]:
		if 'area' not in self.config.face_mask_types:
			return None
		return transform_points(job.face.landmark_set.sixty_eight, job.affine)

	def target_embedding(self, target_frame: VisionFrame, face: Face) -> Optional[Embedding]:
		"""The target identity the weight mixes in; not needed (and not computed) when w = 0 or for image sources.

		The workflow fills face.embedding before the frame gets here; a library caller that did not is served from a
		copy of the face, because the faces belong to the analyse stage and other workers may be reading them."""
		if not self.needs_target_embeddings():
			return None
		if face.embedding is not None:
			return face.embedding
		# from the untouched input frame, as 3.5.0 analyses it
		analysed = replace(face)
		self.context.analyser.ensure_embeddings(target_frame, [analysed])
		return analysed.embedding

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

	def swap_crops(self, crops: Sequence[Array], target_embeddings: Sequence[Optional[Embedding]]) -> Array:
		"""Target crops at pixel-boost size -> N×P×P×3 swapped crops (float32 BGR, 0..255, not rounded), every
		sub-image of every crop in one batch, in the swapper's array module (CuPy on the device when it runs on CUDA)."""
		tiles = self.forward(self.model_feed(crops, target_embeddings))
		tiles = normalize_outputs(tiles, self.swapper_type in DENORMALISED_OUTPUT_TYPES, self.spec.mean, self.spec.std)
		return explode_batch(tiles, self.boost_size)

	def model_feed(self, crops: Sequence[Array], target_embeddings: Sequence[Optional[Embedding]]) -> Dict[str, Array]:
		"""What the model is fed for these crops: the k² prepared sub-images of each crop, face-major, and as many
		copies of that face's source."""
		xp = self.array_module()
		count = self.boost_factor ** 2
		stacked = xp.stack([to_device(crop, xp) for crop in crops])
		target = prepare_crops(implode_batch(stacked, self.model_size), self.spec.mean, self.spec.std)
		source = xp.concatenate([xp.repeat(to_device(self.source_input(embedding), xp), count, axis=0) for embedding in target_embeddings])
		return {'source': source, 'target': target}

	def array_module(self) -> ModuleType:
		"""CuPy when the swapper session runs on a GPU provider and CuPy has a device, else NumPy."""
		if self.prefer_device_arrays or session_on_gpu(self.session):
			return get_array_module(prefer_gpu=True, device_id=self.session.device_id)
		return np

	def forward(self, feed: Dict[str, Array]) -> Array:
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
			# a model whose batch stayed fixed runs item by item inside run_function: the statistics must say so
			self.batcher = BatchProcessor(run_function, per_item_bytes, max_batch=max_batch, name='face_swapper', model_batch=1 if session.fixed_batch else None)
			self.batcher_session = session
		return self.batcher

	@staticmethod
	def cast_feed(session: ModelSession, feed: Dict[str, Array]) -> Dict[str, Array]:
		"""Feed by input name (`source`, `target`) in each input's declared type (ORT refuses a mismatch)."""
		cast: Dict[str, Array] = {}
		for model_input in session.session.get_inputs():
			if model_input.name in feed:
				value = feed[model_input.name]
				xp = array_module_of(value)
				cast[model_input.name] = xp.ascontiguousarray(value, dtype=ELEMENT_TYPES.get(model_input.type, np.float32))
		return cast


def blend_settings_of(config: RunConfig) -> BlendSettings:
	return BlendSettings(
		config.face_swapper_blend_mode, config.face_swapper_blend_levels, config.face_swapper_color_match,
		config.face_swapper_color_match_strength, config.face_swapper_linear_light
	)


def session_on_gpu(session: ModelSession) -> bool:
	return any(provider in session.active_providers for provider in ('CUDAExecutionProvider', 'TensorrtExecutionProvider'))


def expand_box(box: Sequence[int], margin: int) -> Box:
	x1, y1, x2, y2 = (int(value) for value in box)
	return x1 - margin, y1 - margin, x2 + margin, y2 + margin


def boxes_overlap(first: Box, second: Box) -> bool:
	return first[0] < second[2] and second[0] < first[2] and first[1] < second[3] and second[1] < first[3]
