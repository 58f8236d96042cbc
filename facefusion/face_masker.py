"""Crop masks: box, occlusion (xseg), area (68 landmarks) and region (bisenet face parser), as FaceFusion 3.5.0.

Every mask is a float32 H x W array in [0, 1] for one face crop. The swapper needs them in two groups because 3.5.0
computes them on different pictures: box and occlusion on the target crop before the swap (the occluder must see the
hand or hair in front of the original face), area and region on the swapped crop after it (the parser must see the new
face's features). The final crop mask is the element-wise minimum of the requested masks
(`gpu.array_ops.combine_masks`).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from facefusion import choices
from facefusion.config import RunConfig
from facefusion.inference.manager import InferenceManager
from facefusion.inference.session import ModelSession
from facefusion.types import Mask, Padding, Points, Size, VisionFrame

OCCLUDER_MODELS: List[str] = ['xseg_1', 'xseg_2', 'xseg_3']
# the masks that 3.5.0 computes on the target crop before the swap, and the ones it computes on the swapped crop
PRE_SWAP_MASK_TYPES: Tuple[str, ...] = ('box', 'occlusion')
POST_SWAP_MASK_TYPES: Tuple[str, ...] = ('area', 'region')
MODEL_MASK_TYPES: Tuple[str, ...] = ('occlusion', 'region')

# sizes used when a model declares a dynamic spatial size (the distributed files declare these)
OCCLUDER_SIZE: Size = (256, 256)
PARSER_SIZE: Size = (512, 512)
PARSER_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
PARSER_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
PARSER_CLASS_COUNT = 19
# the Gaussian sigma every model-based mask is softened with before the confident half is kept
MODEL_MASK_SIGMA = 5


def expand_padding(padding: Sequence[int]) -> Padding:
	"""CSS-style expansion of 1 to 4 values into (top, right, bottom, left), so callers may pass what the CLI got."""
	values = [int(value) for value in padding]
	if len(values) == 1:
		return values[0], values[0], values[0], values[0]
	if len(values) == 2:
		return values[0], values[1], values[0], values[1]
	if len(values) == 3:
		return values[0], values[1], values[2], values[1]
	if len(values) == 4:
		return values[0], values[1], values[2], values[3]
	raise ValueError('face mask padding takes 1 to 4 values, got ' + str(len(values)))


def create_box_mask(crop_size: Size, face_mask_blur: float, face_mask_padding: Sequence[int]) -> Mask:
	"""Ones with a zeroed border, feathered: the border is at least half the blur width so the feather fades to zero
	inside the crop instead of being cut at its edge."""
	width, height = crop_size
	top, right, bottom, left = expand_padding(face_mask_padding)
	blur_amount = int(width * 0.5 * face_mask_blur)
	blur_area = max(blur_amount // 2, 1)
	box_mask = np.ones((height, width), dtype=np.float32)
	# top and bottom padding are percentages of the height, left and right of the width
	top_border = max(blur_area, int(height * top / 100))
	bottom_border = max(blur_area, int(height * bottom / 100))
	left_border = max(blur_area, int(width * left / 100))
	right_border = max(blur_area, int(width * right / 100))
	box_mask[:top_border, :] = 0
	box_mask[max(height - bottom_border, 0):, :] = 0
	box_mask[:, :left_border] = 0
	box_mask[:, max(width - right_border, 0):] = 0
	if blur_amount > 0:
		box_mask = cv2.GaussianBlur(box_mask, (0, 0), blur_amount * 0.25)
	return box_mask


def refine_model_mask(mask: Mask) -> Mask:
	"""Soften a raw 0..1 model mask, then keep only its confident half: values at or below 0.5 become 0 and the
	rest is stretched back to 0..1, which pulls the edge inward and hides the models' ragged borders."""
	blurred = cv2.GaussianBlur(np.clip(mask, 0, 1).astype(np.float32), (0, 0), MODEL_MASK_SIGMA)
	return ((np.clip(blurred, 0.5, 1) - 0.5) * 2).astype(np.float32)


def create_area_mask(crop_size: Size, landmark_68: Points, face_mask_areas: Sequence[str]) -> Mask:
	"""The filled convex hull of the landmarks of the chosen areas, refined like the model masks."""
	width, height = crop_size
	indices = sorted({index for area in face_mask_areas for index in choices.face_mask_area_set[area]})
	area_mask = np.zeros((height, width), dtype=np.float32)
	if not indices:
		return area_mask
	# integer vertices as 3.5.0 draws them (truncation), so the hull edge sits on the same pixels
	points = np.asarray(landmark_68, dtype=np.float32)[indices].astype(np.int32)
	convex_hull = cv2.convexHull(points)
	cv2.fillConvexPoly(area_mask, convex_hull, 1.0)
	return refine_model_mask(area_mask)


def occluder_model_names(face_occluder_model: str) -> List[str]:
	return list(OCCLUDER_MODELS) if face_occluder_model == 'many' else [face_occluder_model]


def model_spatial_size(model_session: ModelSession, layout: str, fallback: Size) -> Size:
	"""(width, height) the model's first input declares; the fallback when those dims are dynamic."""
	shape = model_session.input_shapes[0] if model_session.input_shapes else []
	if len(shape) != 4:
		return fallback
	height, width = (shape[1], shape[2]) if layout == 'NHWC' else (shape[2], shape[3])
	if isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0:
		return width, height
	return fallback


def crop_size_of(crop: VisionFrame) -> Size:
	return crop.shape[1], crop.shape[0]


def to_plane(output: np.ndarray) -> np.ndarray:
	"""One item's single-channel output (H x W x 1 or 1 x H x W) as H x W."""
	plane = np.squeeze(output)
	if plane.ndim != 2:
		raise ValueError('expected a single-channel mask output, got shape ' + str(output.shape))
	return plane


class FaceMasker:
	"""Model-backed masks for face crops. Every model call goes through `ModelSession.run_batch`, so several
	crops (the faces of a frame, or of a window of frames) cost one call per model."""

	def __init__(self, config: RunConfig, inference: InferenceManager) -> None:
		self.config = config
		self.inference = inference
		self.box_masks: Dict[Size, Mask] = {}

	@staticmethod
	def required_models(config: RunConfig) -> List[str]:
		"""Model keys the configured mask types need (box and area need none)."""
		model_names: List[str] = []
		if 'occlusion' in config.face_mask_types:
			model_names.extend(occluder_model_names(config.face_occluder_model))
		if 'region' in config.face_mask_types:
			model_names.append(config.face_parser_model)
		return model_names

	def box_mask(self, crop_size: Size) -> Mask:
		"""The configured box mask; it depends on the crop size only, so it is built once per size (a Gaussian blur
		of a 1024 crop per face per frame would otherwise add up). Read-only: callers combine, never edit."""
		crop_size = (int(crop_size[0]), int(crop_size[1]))
		box_mask = self.box_masks.get(crop_size)
		if box_mask is None:
			box_mask = create_box_mask(crop_size, self.config.face_mask_blur, self.config.face_mask_padding)
			box_mask.flags.writeable = False
			self.box_masks[crop_size] = box_mask
		return box_mask

	def occlusion_masks(self, crops: Sequence[VisionFrame]) -> List[Mask]:
		"""xseg on each crop: NHWC, BGR, /255; with `many` the three models' raw masks meet at their minimum before
		the shared refinement."""
		if not crops:
			return []
		raw_masks: List[Optional[np.ndarray]] = [None] * len(crops)
		for model_name in occluder_model_names(self.config.face_occluder_model):
			model_session = self.inference.get(model_name)
			model_size = model_spatial_size(model_session, 'NHWC', OCCLUDER_SIZE)
			batch = np.stack([cv2.resize(crop, model_size).astype(np.float32) / 255 for crop in crops])
			outputs = model_session.run_batch({model_session.input_names[0]: batch})[0]
			for index, crop in enumerate(crops):
				plane = np.clip(to_plane(outputs[index]), 0, 1).astype(np.float32)
				plane = cv2.resize(plane, crop_size_of(crop))
				raw_masks[index] = plane if raw_masks[index] is None else np.minimum(raw_masks[index], plane)
		return [refine_model_mask(raw_mask) for raw_mask in raw_masks]

	def region_masks(self, crops: Sequence[VisionFrame], face_mask_regions: Optional[Sequence[str]] = None) -> List[Mask]:
		"""bisenet on each crop: RGB, /255, ImageNet mean/std, NCHW; a pixel belongs to the mask when its most likely
		class is one of the chosen regions."""
		if not crops:
			return []
		regions = self.config.face_mask_regions if face_mask_regions is None else face_mask_regions
		class_ids = [choices.face_mask_region_set[region] for region in regions]
		model_session = self.inference.get(self.config.face_parser_model)
		model_size = model_spatial_size(model_session, 'NCHW', PARSER_SIZE)
		batch = np.stack([prepare_parser_crop(crop, model_size) for crop in crops])
		outputs = model_session.run_batch({model_session.input_names[0]: batch})[0]
		region_masks: List[Mask] = []
		for index, crop in enumerate(crops):
			labels = np.argmax(outputs[index], axis=0)
			plane = np.isin(labels, class_ids).astype(np.float32)
			plane = cv2.resize(plane, crop_size_of(crop))
			region_masks.append(refine_model_mask(plane))
		return region_masks

	def area_mask(self, crop_size: Size, landmark_68_in_crop: Points, face_mask_areas: Optional[Sequence[str]] = None) -> Mask:
		areas = self.config.face_mask_areas if face_mask_areas is None else face_mask_areas
		return create_area_mask(crop_size, landmark_68_in_crop, areas)

	def pre_swap_masks_batch(
		self,
		crops: Sequence[VisionFrame],
		face_mask_types: Optional[Sequence[str]] = None
	) -> List[List[Mask]]:
		"""Box and occlusion masks of target crops, taken before the swap changes them."""
		mask_types = self.config.face_mask_types if face_mask_types is None else face_mask_types
		mask_lists: List[List[Mask]] = [[] for _ in crops]
		if 'box' in mask_types:
			for mask_list, crop in zip(mask_lists, crops):
				mask_list.append(self.box_mask(crop_size_of(crop)))
		if 'occlusion' in mask_types:
			for mask_list, occlusion_mask in zip(mask_lists, self.occlusion_masks(crops)):
				mask_list.append(occlusion_mask)
		return mask_lists

	def post_swap_masks_batch(
		self,
		swapped_crops: Sequence[VisionFrame],
		landmarks_68_in_crop: Sequence[Optional[Points]],
		face_mask_types: Optional[Sequence[str]] = None
	) -> List[List[Mask]]:
		"""Area and region masks of swapped crops: the area hull follows the target's 68 landmarks (mapped into the
		crop), the parser reads the swapped face."""
		mask_types = self.config.face_mask_types if face_mask_types is None else face_mask_types
		mask_lists: List[List[Mask]] = [[] for _ in swapped_crops]
		if 'area' in mask_types:
			for mask_list, crop, landmark_68 in zip(mask_lists, swapped_crops, landmarks_68_in_crop):
				if landmark_68 is None:
					raise ValueError('the area mask needs the 68 landmarks of the face')
				mask_list.append(self.area_mask(crop_size_of(crop), landmark_68))
		if 'region' in mask_types:
			for mask_list, region_mask in zip(mask_lists, self.region_masks(swapped_crops)):
				mask_list.append(region_mask)
		return mask_lists


def prepare_parser_crop(crop: VisionFrame, model_size: Size) -> np.ndarray:
	"""BGR crop to the parser's 3 x H x W float32 input."""
	resized = cv2.resize(crop, model_size)
	rgb = resized[:, :, ::-1].astype(np.float32) / 255
	normalised = (rgb - PARSER_MEAN) / PARSER_STD
	return np.ascontiguousarray(normalised.transpose(2, 0, 1), dtype=np.float32)
