"""The face debugger: draws what the engine sees of each selected face (box, landmarks, crop mask, scores).

Items and their meaning follow FaceFusion 3.5.0's `--face-debugger-items`. Colours (BGR) are chosen so each landmark
kind can be told apart at a glance; landmarks that are fallbacks (the 68 landmarker scored too low, so `5/68` is the
detector's 5 and `68` is the estimate from them) are drawn in the estimate's colour, as a warning.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from facefusion import face_helper
from facefusion.config import RunConfig
from facefusion.face_masker import POST_SWAP_MASK_TYPES, FaceMasker
from facefusion.gpu.array_ops import combine_masks
from facefusion.processors.base import ProcessingContext, Processor
from facefusion.types import Face, Points, Size, VisionFrame

Color = Tuple[int, int, int]

BOX_COLOR: Color = (0, 0, 255)
BOX_TOP_COLOR: Color = (100, 100, 255)
MASK_COLOR: Color = (0, 255, 255)
TEXT_COLOR: Color = (255, 255, 255)
TEXT_SHADOW_COLOR: Color = (0, 0, 0)
LANDMARK_COLORS = {
	'5': (0, 0, 255),
	'5/68': (0, 255, 0),
	'68': (128, 255, 128),
	'68/5': (255, 255, 0),
}
LANDMARK_ITEMS = {
	'face-landmark-5': '5',
	'face-landmark-5/68': '5/68',
	'face-landmark-68': '68',
	'face-landmark-68/5': '68/5',
}
# a neutral crop for showing the mask: the whole face with some margin, large enough for a smooth outline
MASK_TEMPLATE = 'arcface_128'
MASK_CROP_SIZE: Size = (512, 512)
# the outline follows the level where the pasted face is at least half-blended
MASK_OUTLINE_LEVEL = 0.5


def line_thickness(frame_shape: Sequence[int]) -> int:
	"""2 px up to about 1080p (3.5.0's fixed width), growing with the frame so 4K drawings stay visible."""
	return max(2, int(round(min(frame_shape[0], frame_shape[1]) / 540)))


def landmark_color(face: Face, kind: str, face_landmarker_score: float) -> Color:
	if kind in ('5/68', '68') and face.score_set.landmarker <= face_landmarker_score:
		return LANDMARK_COLORS['68/5']
	return LANDMARK_COLORS[kind]


def face_label_lines(face: Face) -> List[str]:
	"""Text for a face whose classification is known: scores and angle, then gender, age and race."""
	lines = ['score ' + format(face.score_set.detector, '.2f') + ' angle ' + str(face.angle)]
	details: List[str] = []
	if face.gender:
		details.append(face.gender)
	if face.age is not None:
		details.append(str(face.age.start) + '-' + str(face.age.stop - 1))
	if face.race:
		details.append(face.race)
	if details:
		lines.append(' '.join(details))
	return lines


class FaceDebugger(Processor):
	name = 'face_debugger'

	@staticmethod
	def required_models(config: RunConfig) -> List[str]:
		if 'face-mask' in config.face_debugger_items:
			return FaceMasker.required_models(config)
		return []

	def __init__(self, context: ProcessingContext) -> None:
		super().__init__(context)
		self.masker: Optional[FaceMasker] = context.masker

	def prepare(self) -> None:
		# nothing to validate: the debugger needs no source
		if 'face-mask' in self.config.face_debugger_items and self.masker is None:
			self.masker = FaceMasker(self.config, self.context.inference)

	def process_frame(self, target_frame: VisionFrame, faces: List[Face], output_frame: VisionFrame) -> VisionFrame:
		debug_frame = output_frame.copy()
		thickness = line_thickness(debug_frame.shape)
		items = self.config.face_debugger_items
		for face in faces:
			if 'bounding-box' in items:
				draw_bounding_box(debug_frame, face, thickness)
			if 'face-mask' in items:
				self.draw_face_mask(target_frame, output_frame, debug_frame, face, thickness)
			for item, kind in LANDMARK_ITEMS.items():
				if item in items:
					color = landmark_color(face, kind, self.config.face_landmarker_score)
					draw_points(debug_frame, face.landmark_set.get(kind), color, thickness)
			if face.gender is not None or face.age is not None:
				draw_label(debug_frame, face, thickness)
		return debug_frame

	def draw_face_mask(
		self,
		target_frame: VisionFrame,
		output_frame: VisionFrame,
		debug_frame: VisionFrame,
		face: Face,
		thickness: int
	) -> None:
		"""Outline of the crop mask the configured mask types give this face, in frame coordinates. Like the swapper,
		box and occlusion look at the untouched target, area and region at the picture so far."""
		if self.masker is None:
			self.masker = FaceMasker(self.config, self.context.inference)
		mask_types = self.config.face_mask_types
		target_crop, affine = face_helper.warp_face_by_face_landmark_5(
			target_frame, face.landmark_set.get('5/68'), MASK_TEMPLATE, MASK_CROP_SIZE
		)
		masks = self.masker.pre_swap_masks_batch([target_crop], mask_types)[0]
		if any(mask_type in mask_types for mask_type in POST_SWAP_MASK_TYPES):
			output_crop = target_crop
			if output_frame is not target_frame:
				output_crop = cv2.warpAffine(output_frame, affine, MASK_CROP_SIZE, borderMode=cv2.BORDER_REPLICATE)
			landmark_68 = face_helper.transform_points(face.landmark_set.get('68'), affine)
			masks.extend(self.masker.post_swap_masks_batch([output_crop], [landmark_68], mask_types)[0])
		crop_mask = combine_masks(masks) if masks else np.ones(MASK_CROP_SIZE[::-1], dtype=np.float32)
		draw_mask_outline(debug_frame, crop_mask, affine, thickness)


def draw_bounding_box(frame: VisionFrame, face: Face, thickness: int) -> None:
	"""The box, with the edge on the face's top (per its angle) drawn lighter and thicker."""
	x1, y1, x2, y2 = [int(round(float(value))) for value in face.bounding_box]
	cv2.rectangle(frame, (x1, y1), (x2, y2), BOX_COLOR, thickness)
	top_edges = {
		0: ((x1, y1), (x2, y1)),
		90: ((x2, y1), (x2, y2)),
		180: ((x1, y2), (x2, y2)),
		270: ((x1, y1), (x1, y2)),
	}
	edge = top_edges.get(int(face.angle) % 360)
	if edge:
		cv2.line(frame, edge[0], edge[1], BOX_TOP_COLOR, thickness + 1)


def draw_points(frame: VisionFrame, points: Optional[Points], color: Color, thickness: int) -> None:
	if points is None:
		return
	radius = thickness + 1
	for x, y in np.asarray(points, dtype=np.float32).reshape(-1, 2):
		cv2.circle(frame, (int(round(float(x))), int(round(float(y)))), radius, color, -1)


def draw_mask_outline(frame: VisionFrame, crop_mask: np.ndarray, affine: np.ndarray, thickness: int) -> None:
	"""Warp the crop mask back into the paste box only (not the whole frame) and trace its outer contour there."""
	crop_size = (crop_mask.shape[1], crop_mask.shape[0])
	x1, y1, x2, y2 = [int(value) for value in face_helper.paste_box(frame.shape, crop_size, affine)]
	if x2 <= x1 or y2 <= y1:
		return
	inverse = cv2.invertAffineTransform(np.asarray(affine, dtype=np.float64))
	inverse[:, 2] -= (x1, y1)
	box_mask = cv2.warpAffine(crop_mask, inverse, (x2 - x1, y2 - y1), flags=cv2.INTER_LINEAR, borderValue=0)
	binary = (box_mask > MASK_OUTLINE_LEVEL).astype(np.uint8)
	contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE, offset=(x1, y1))
	cv2.drawContours(frame, contours, -1, MASK_COLOR, thickness)


def draw_label(frame: VisionFrame, face: Face, thickness: int) -> None:
	"""Text just above the box (below it when there is no room), scaled to the box width so it stays with the face."""
	x1, y1, x2, y2 = [int(round(float(value))) for value in face.bounding_box]
	lines = face_label_lines(face)
	font = cv2.FONT_HERSHEY_SIMPLEX
	text_thickness = max(1, thickness // 2)
	widest = max(cv2.getTextSize(line, font, 1.0, text_thickness)[0][0] for line in lines)
	font_scale = float(np.clip(max(x2 - x1, 1) / max(widest, 1), 0.4, 0.4 * thickness + 0.6))
	line_height = int(cv2.getTextSize('Ag', font, font_scale, text_thickness)[0][1] * 1.6) + 1
	block_height = line_height * len(lines)
	top = y1 - thickness - block_height
	if top < 0:
		top = y2 + thickness
	for index, line in enumerate(lines):
		baseline_y = top + line_height * (index + 1) - line_height // 4
		# a dark rim under the white text keeps it readable on light backgrounds
		cv2.putText(frame, line, (x1, baseline_y), font, font_scale, TEXT_SHADOW_COLOR, text_thickness + 2, cv2.LINE_AA)
		cv2.putText(frame, line, (x1, baseline_y), font, font_scale, TEXT_COLOR, text_thickness, cv2.LINE_AA)
