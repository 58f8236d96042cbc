"""In-memory test clips from real photos with a known camera path, for scoring face tracking and smoothing.

``facefusion.testing.synthetic_video`` writes such clips to files through ffmpeg; this module reuses its camera
model (``CameraPath``, ``camera_transform``, the per-photo views) and keeps the frames in memory instead, which is
what tracker tests need: no encoder in the loop, exact pixels, and one more thing the file clips do not have -- a
second face (a scaled crop of another photo, a "sprite") that slides in from the frame edge at a known frame.

Every layer (a shot's photo, or the sprite) has a 2x3 photo -> frame transform per frame (None where it is not
shown). The true landmarks of a face in a frame are its landmarks on the photo moved by that frame's transform.
The photo landmarks are YuNet's own, found by ``locate_faces`` on clean renders of each layer at the clip's
scales (median over several renders with sub-pixel offsets, mapped back to photo pixels), so "truth" means "where
the detector puts the points, without its frame-to-frame noise".
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from facefusion.testing.synthetic_video import CameraPath, camera_transform, load_photo, resolve_photo
from facefusion.types import BoundingBox, Matrix, Points, VisionFrame

NOISE_FIELDS = 6
NOISE_MARGIN = 32
# a detector for locate_faces: frame -> list of (box (4,), five points (5, 2))
Detect = Callable[[VisionFrame], List[Tuple[np.ndarray, np.ndarray]]]

# the camera for the first shot of the default clip: zoomed out from the photo's standard view so the face (about
# 120-145 px wide at 480x360) leaves room on the right for the sprite; pan, zoom and roll all change
DEFAULT_FIRST_CAMERA = CameraPath(pan_start=(0.08, -0.04), pan_end=(-0.06, 0.04), zoom_start=0.7, zoom_end=0.85, angle_start=-4.0, angle_end=4.0)
# the group photo after the cut: two faces of about 80-95 px
DEFAULT_SECOND_CAMERA = CameraPath(pan_start=(0.03, 0.0), pan_end=(-0.03, 0.02), zoom_start=1.0, zoom_end=1.12, angle_start=2.0, angle_end=-2.0)


@dataclass(frozen=True)
class Sprite:
	"""A crop of a photo pasted over the frame, sliding in from outside the frame edge.

	crop is (x1, y1, x2, y2) in photo pixels; centre_start / centre_end are where the crop's centre is in the frame
	when it enters and when it stops (it eases between them over slide_frames, then stays); it is shown from
	enter_frame until exit_frame (exclusive; None = until the next cut or the end of the clip).
	"""
	photo: str = 'biden.jpg'
	crop: Tuple[int, int, int, int] = (360, 110, 790, 660)
	scale: float = 0.24
	enter_frame: int = 18
	slide_frames: int = 14
	centre_start: Tuple[float, float] = (535.0, 210.0)
	centre_end: Tuple[float, float] = (414.0, 214.0)
	angle: float = 0.0
	exit_frame: Optional[int] = None


@dataclass
class Layer:
	"""One picture source of the clip. image is the photo (or the sprite's crop, in crop pixels)."""
	name: str
	image: VisionFrame
	# per frame: image pixel -> frame pixel, None where the layer is not shown
	transforms: List[Optional[Matrix]]
	# a sprite is pasted with an alpha mask over what is below; a shot fills the whole frame
	is_sprite: bool = False
	# filled by locate_faces: five points and a box per face, in image pixels
	face_points: List[Points] = field(default_factory=list)
	face_boxes: List[BoundingBox] = field(default_factory=list)
	# the image shrunk for rendering and the shrink factors (x, y), made on first use
	source: Optional[Tuple[VisionFrame, float, float]] = field(default=None, repr=False)

	def shown_frames(self) -> List[int]:
		return [index for index, matrix in enumerate(self.transforms) if matrix is not None]


@dataclass
class MemoryClip:
	width: int
	height: int
	fps: float
	frames: List[VisionFrame]
	# bottom to top: shots first (one per shot), then sprites
	layers: List[Layer]
	# first frame of every shot after the first
	cut_frames: List[int]

	@property
	def frame_count(self) -> int:
		return len(self.frames)

	def layer(self, name: str) -> Layer:
		return next(layer for layer in self.layers if layer.name == name)

	def face_keys(self) -> List[str]:
		return [layer.name + ':' + str(index) for layer in self.layers for index in range(len(layer.face_points))]

	def split_key(self, key: str) -> Tuple[Layer, int]:
		name, index = key.rsplit(':', 1)
		return self.layer(name), int(index)

	def true_points(self, key: str, frame_index: int) -> Optional[Points]:
		"""Where the face's five points are in this frame (None when its layer is not shown)."""
		layer, index = self.split_key(key)
		matrix = layer.transforms[frame_index]
		if matrix is None:
			return None
		return transform(layer.face_points[index], matrix)

	def true_box(self, key: str, frame_index: int) -> Optional[BoundingBox]:
		layer, index = self.split_key(key)
		matrix = layer.transforms[frame_index]
		if matrix is None:
			return None
		x1, y1, x2, y2 = layer.face_boxes[index]
		corners = transform(np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]]), matrix)
		return np.concatenate([corners.min(axis=0), corners.max(axis=0)])

	def is_fully_visible(self, key: str, frame_index: int) -> bool:
		"""The face's whole box is inside the frame and no layer above covers any of its five points."""
		box = self.true_box(key, frame_index)
		if box is None or box[0] < 0 or box[1] < 0 or box[2] > self.width or box[3] > self.height:
			return False
		layer, _ = self.split_key(key)
		points = self.true_points(key, frame_index)
		for upper in self.layers[self.layers.index(layer) + 1:]:
			quad = layer_quad(upper, frame_index)
			if quad is not None and any(cv2.pointPolygonTest(quad, (float(x), float(y)), False) >= 0 for x, y in points):
				return False
		return True

	def truth(self, frame_index: int, fully_visible: bool = True) -> Dict[str, Points]:
		"""Every face shown in this frame (only the fully visible ones unless told otherwise) -> its five points."""
		result = {}
		for key in self.face_keys():
			points = self.true_points(key, frame_index)
			if points is None or (fully_visible and not self.is_fully_visible(key, frame_index)):
				continue
			result[key] = points
		return result

	def first_fully_visible(self, key: str) -> Optional[int]:
		return next((index for index in range(self.frame_count) if self.is_fully_visible(key, index)), None)

	def background_transforms(self) -> List[Matrix]:
		"""The shot's photo -> frame transform of every frame (the camera path)."""
		shots = [layer for layer in self.layers if not layer.is_sprite]
		return [next(layer.transforms[index] for layer in shots if layer.transforms[index] is not None) for index in range(self.frame_count)]


def transform(points: np.ndarray, matrix: Matrix) -> np.ndarray:
	array = np.asarray(points, dtype=np.float64).reshape(-1, 2)
	matrix = np.asarray(matrix, dtype=np.float64)
	return array @ matrix[:, :2].T + matrix[:, 2]


def layer_quad(layer: Layer, frame_index: int) -> Optional[np.ndarray]:
	"""The frame quadrilateral a sprite covers (None for shots, which are below everything, or when not shown)."""
	matrix = layer.transforms[frame_index]
	if matrix is None or not layer.is_sprite:
		return None
	height, width = layer.image.shape[:2]
	corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float64)
	return transform(corners, matrix).astype(np.float32).reshape(-1, 1, 2)


def smoothstep(value: float) -> float:
	value = min(max(value, 0.0), 1.0)
	return value * value * (3.0 - 2.0 * value)


def sprite_transform(sprite: Sprite, frame_index: int) -> Matrix:
	"""Crop pixel -> frame pixel for a sprite at this frame: scaled about the crop centre, placed on its slide."""
	progress = smoothstep((frame_index - sprite.enter_frame) / max(sprite.slide_frames, 1))
	centre = np.array(sprite.centre_start) + (np.array(sprite.centre_end) - np.array(sprite.centre_start)) * progress
	x1, y1, x2, y2 = sprite.crop
	crop_centre = np.array([(x2 - x1) / 2.0, (y2 - y1) / 2.0])
	angle = math.radians(sprite.angle)
	linear = np.array([[math.cos(angle), math.sin(angle)], [-math.sin(angle), math.cos(angle)]]) * sprite.scale
	return np.hstack([linear, (centre - linear @ crop_centre)[:, None]])


def layer_source(layer: Layer) -> Tuple[VisionFrame, float, float]:
	"""The layer's image shrunk once (area filter) to about 1.5x the smallest scale the clip shows it at, so a far-out
	camera does not alias; with the factors from image pixels to shrunk pixels. Cached on the layer: shrinking a
	large photo for every frame would cost more than everything else the clip does."""
	if layer.source is None:
		scales = [math.sqrt(abs(float(np.linalg.det(np.asarray(matrix)[:, :2])))) for matrix in layer.transforms if matrix is not None]
		factor = min(1.0, 1.5 * min(scales)) if scales else 1.0
		image = layer.image
		if factor < 1.0:
			image = cv2.resize(layer.image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
		layer.source = (image, image.shape[1] / layer.image.shape[1], image.shape[0] / layer.image.shape[0])
	return layer.source


def render_layer(layer: Layer, matrix: Matrix, width: int, height: int) -> Tuple[VisionFrame, Optional[np.ndarray]]:
	"""Warp a layer into the frame; sprites come with their alpha (1 inside the crop, 0 outside)."""
	source, factor_x, factor_y = layer_source(layer)
	local = np.asarray(matrix, dtype=np.float64).copy()
	local[:, 0] /= factor_x
	local[:, 1] /= factor_y
	if not layer.is_sprite:
		# the same border rule as the file clips, so both kinds of clip look alike
		return cv2.warpAffine(source, local, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101), None
	picture = cv2.warpAffine(source, local, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
	alpha = cv2.warpAffine(np.ones(source.shape[:2], np.float32), local, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
	return picture, alpha


def compose_frame(layers: Sequence[Layer], frame_index: int, width: int, height: int) -> VisionFrame:
	canvas = np.zeros((height, width, 3), np.float32)
	for layer in layers:
		matrix = layer.transforms[frame_index]
		if matrix is None:
			continue
		picture, alpha = render_layer(layer, matrix, width, height)
		if alpha is None:
			canvas = picture.astype(np.float32)
		else:
			canvas = canvas * (1.0 - alpha[:, :, None]) + picture.astype(np.float32) * alpha[:, :, None]
	return canvas


def make_memory_clip(
	photos: Sequence[str] = ('obama.jpg', 'obama_and_biden.jpg'),
	cameras: Sequence[CameraPath] = (DEFAULT_FIRST_CAMERA, DEFAULT_SECOND_CAMERA),
	width: int = 480,
	height: int = 360,
	frame_count: int = 90,
	cut_at: Optional[int] = 51,
	sprites: Sequence[Sprite] = (Sprite(),),
	noise: float = 2.0,
	seed: int = 0,
	fps: float = 30.0
) -> MemoryClip:
	"""Render the clip: shot 1 on photos[0] until cut_at, shot 2 on photos[1] after it (each on its own camera path,
	which restarts at the cut), sprites on top, then Gaussian sensor noise (sigma in grey levels, fixed seed) so that
	flow and detector see a realistic picture and not a perfectly clean resampling."""
	shot_starts = [0] if cut_at is None else [0, cut_at]
	if len(photos) < len(shot_starts):
		raise ValueError('a cut needs two photos')
	layers: List[Layer] = []
	for shot, start in enumerate(shot_starts):
		end = shot_starts[shot + 1] if shot + 1 < len(shot_starts) else frame_count
		path = resolve_photo(photos[shot])
		photo = load_photo(path)
		camera = cameras[min(shot, len(cameras) - 1)]
		transforms: List[Optional[Matrix]] = [None] * frame_count
		for index in range(start, end):
			progress = (index - start) / max(end - 1 - start, 1)
			transforms[index] = camera_transform((photo.shape[1], photo.shape[0]), path, (width, height), camera, progress)
		layers.append(Layer('shot' + str(shot + 1), photo, transforms))
	for number, sprite in enumerate(sprites):
		photo = load_photo(resolve_photo(sprite.photo))
		x1, y1, x2, y2 = sprite.crop
		# shown until it exits, or until the next cut after it entered (a cut replaces the whole picture)
		exit_frame = sprite.exit_frame
		if exit_frame is None:
			exit_frame = next((cut for cut in shot_starts[1:] if cut > sprite.enter_frame), frame_count)
		transforms = [sprite_transform(sprite, index) if sprite.enter_frame <= index < exit_frame else None for index in range(frame_count)]
		layers.append(Layer('sprite' + str(number + 1), np.ascontiguousarray(photo[y1:y2, x1:x2]), transforms, is_sprite=True))
	random = np.random.default_rng(seed)
	# drawing fresh Gaussian noise for every frame costs more than rendering the clip; a few larger fields read at a
	# random offset per frame give noise that is just as independent from frame to frame for flow and detector
	noise_fields = [random.standard_normal((height + NOISE_MARGIN, width + NOISE_MARGIN, 3), dtype=np.float32) * np.float32(noise) for _ in range(NOISE_FIELDS)] if noise > 0 else []
	frames = []
	for index in range(frame_count):
		canvas = compose_frame(layers, index, width, height)
		if noise_fields:
			field_index, offset_y, offset_x = int(random.integers(NOISE_FIELDS)), int(random.integers(NOISE_MARGIN)), int(random.integers(NOISE_MARGIN))
			canvas += noise_fields[field_index][offset_y:offset_y + height, offset_x:offset_x + width]
		frames.append(np.clip(np.round(canvas), 0, 255).astype(np.uint8))
	return MemoryClip(width, height, fps, frames, layers, shot_starts[1:])


def locate_faces(clip: MemoryClip, detect: Detect, samples: int = 6, seed: int = 1) -> MemoryClip:
	"""Fill every layer's face_points / face_boxes with the detector's landmarks in photo pixels.

	Each layer is rendered alone and without noise at `samples` of its frames (sprites only where wholly inside the
	frame), each with a random sub-pixel shift so the renders differ from the clip's own; detections are mapped back
	to photo pixels and grouped by position; a face found in at least half the renders is kept with the median of
	its points (the median drops the odd bad detection)."""
	random = np.random.default_rng(seed)
	for layer in clip.layers:
		frames = layer.shown_frames()
		if layer.is_sprite:
			frames = [index for index in frames if quad_inside(layer_quad(layer, index), clip.width, clip.height)]
		if not frames:
			continue
		picks = [frames[int(round(position))] for position in np.linspace(0, len(frames) - 1, min(samples, len(frames)))]
		groups: List[List[Tuple[np.ndarray, np.ndarray]]] = []
		for index in picks:
			matrix = np.asarray(layer.transforms[index], dtype=np.float64).copy()
			matrix[:, 2] += random.uniform(-0.5, 0.5, 2)
			picture, alpha = render_layer(layer, matrix, clip.width, clip.height)
			if alpha is not None:
				picture = (picture.astype(np.float32) * alpha[:, :, None])
			picture = np.clip(np.round(picture), 0, 255).astype(np.uint8)
			inverse = cv2.invertAffineTransform(matrix)
			for box, points in detect(picture):
				photo_points = transform(points, inverse)
				x1, y1, x2, y2 = np.asarray(box, dtype=np.float64)[:4]
				corners = transform(np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]]), inverse)
				photo_box = np.concatenate([corners.min(axis=0), corners.max(axis=0)])
				add_to_group(groups, photo_points, photo_box)
		kept = [group for group in groups if len(group) * 2 >= len(picks)]
		# left to right in the photo, so keys are stable from run to run
		kept.sort(key=lambda group: float(np.median([points[:, 0].mean() for points, _ in group])))
		layer.face_points = [np.median(np.stack([points for points, _ in group]), axis=0) for group in kept]
		layer.face_boxes = [np.median(np.stack([box for _, box in group]), axis=0) for group in kept]
	return clip


def add_to_group(groups: List[List[Tuple[np.ndarray, np.ndarray]]], points: np.ndarray, box: np.ndarray) -> None:
	"""Put a detection with the group whose mean points are within half an eye distance, or start a new group."""
	eye_distance = max(float(np.linalg.norm(points[1] - points[0])), 1.0)
	for group in groups:
		centre = np.mean([member[0] for member in group], axis=0)
		if float(np.linalg.norm(centre.mean(axis=0) - points.mean(axis=0))) < 0.5 * eye_distance:
			group.append((points, box))
			return
	groups.append([(points, box)])


def quad_inside(quad: Optional[np.ndarray], width: int, height: int) -> bool:
	if quad is None:
		return False
	points = quad.reshape(-1, 2)
	return bool(np.all(points[:, 0] >= 0) and np.all(points[:, 1] >= 0) and np.all(points[:, 0] <= width) and np.all(points[:, 1] <= height))
