"""Temporal smoothing of face geometry: the One-Euro filter for arrays, a per-track landmark smoother, a smoother for
2x3 alignment transforms, and the scene-cut test that tells all of them when to forget the past.

Why One-Euro: a fixed low-pass filter either leaves detector jitter on a still face or lags behind a moving one. The
One-Euro filter (Casiez, Roussel, Vogel, CHI 2012) raises its cutoff with the signal's speed, so it smooths hard when
the face is still and follows closely when it moves.

Why motion compensation: between frames the tracker knows how the face moved (a similarity fitted to optical flow).
The landmark smoother moves its own state by that motion before filtering, so the filter only ever sees what the
flow did not explain (detector noise, expression). Rigid motion of the face or the camera then causes no lag at
all, and the filter can smooth hard without smearing a pan.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from facefusion.types import BoundingBox, FaceLandmarkSet, Matrix, VisionFrame

SMOOTHING_KINDS: Tuple[str, ...] = ('none', 'one-euro')
# cutoffs in Hz; beta in (face widths per second) ^ -1 Hz, see LandmarkSmoother
DEFAULT_MIN_CUTOFF = 0.5
DEFAULT_BETA = 1.0
DEFAULT_DERIVATIVE_CUTOFF = 1.0
DEFAULT_FPS = 30.0

# the scene-cut signature: a small frame is enough to compare colour distributions and coarse structure
SIGNATURE_SIZE = (64, 36)
# frame pixels per thumbnail pixel and side that the area average keeps at least (frames below 1024×576 keep all)
SIGNATURE_SAMPLES = 8
HUE_BINS = 16
SATURATION_BINS = 4
VALUE_BINS = 8
# a cut is called when the colour histograms (Bhattacharyya distance, 0..1) and the blurred thumbnails (mean absolute
# difference, grey levels) changed by this much together: score = distance / CUT_HISTOGRAM_DISTANCE + difference /
# CUT_FRAME_DIFFERENCE >= 1. Either change alone at its full value is a cut; a pan moves the thumbnail a little and
# keeps the colours, a cut between two similar-looking shots changes both a fair amount
CUT_HISTOGRAM_DISTANCE = 0.45
CUT_FRAME_DIFFERENCE = 60.0


def smoothing_alpha(elapsed: float, cutoff: float) -> float:
	"""The exponential smoothing factor of a first-order low-pass at this cutoff (Hz) for this time step (s)."""
	tau = 1.0 / (2.0 * math.pi * max(cutoff, 1e-6))
	return 1.0 / (1.0 + tau / max(elapsed, 1e-6))


class OneEuroFilter:
	"""One-Euro filter over a float array of any fixed shape.

	speed_mode 'shared' drives every element with one speed (the RMS of the filtered derivative, or for arrays of
	points, the mean point speed): a landmark set is then filtered with one cutoff and keeps its shape, where
	per-element speeds ('element') would let slow points lag behind fast ones. speed_scale divides the speed, so beta
	can be given in scale units per second (e.g. face widths) instead of pixels.
	"""

	def __init__(
		self,
		min_cutoff: float = DEFAULT_MIN_CUTOFF,
		beta: float = DEFAULT_BETA,
		derivative_cutoff: float = DEFAULT_DERIVATIVE_CUTOFF,
		speed_mode: str = 'shared',
		speed_scale: float = 1.0
	) -> None:
		if speed_mode not in ('shared', 'element'):
			raise ValueError('unknown speed mode ' + repr(speed_mode))
		self.min_cutoff = float(min_cutoff)
		self.beta = float(beta)
		self.derivative_cutoff = float(derivative_cutoff)
		self.speed_mode = speed_mode
		self.speed_scale = float(speed_scale)
		self.value: Optional[np.ndarray] = None
		self.derivative: Optional[np.ndarray] = None
		self.timestamp: Optional[float] = None

	def reset(self) -> None:
		self.value = None
		self.derivative = None
		self.timestamp = None

	@property
	def started(self) -> bool:
		return self.value is not None

	def speed(self, derivative: np.ndarray) -> np.ndarray:
		if self.speed_mode == 'element':
			return np.abs(derivative) / self.speed_scale
		if derivative.ndim >= 2 and derivative.shape[-1] == 2:
			return np.asarray(np.linalg.norm(derivative, axis=-1).mean() / self.speed_scale)
		return np.asarray(np.sqrt(np.mean(derivative ** 2)) / self.speed_scale)

	def __call__(self, value: np.ndarray, timestamp: float) -> np.ndarray:
		current = np.asarray(value, dtype=np.float64)
		if self.value is None or self.timestamp is None or self.value.shape != current.shape:
			# the first sample passes through unchanged: there is nothing to smooth it against
			self.value = current.copy()
			self.derivative = np.zeros_like(current)
			self.timestamp = float(timestamp)
			return current.copy()
		elapsed = float(timestamp) - self.timestamp
		if elapsed <= 0:
			# a repeated or out-of-order timestamp: assume one frame at the default rate rather than divide by zero
			elapsed = 1.0 / DEFAULT_FPS
		raw_derivative = (current - self.value) / elapsed
		derivative_alpha = smoothing_alpha(elapsed, self.derivative_cutoff)
		self.derivative = derivative_alpha * raw_derivative + (1.0 - derivative_alpha) * self.derivative
		cutoff = self.min_cutoff + self.beta * self.speed(self.derivative)
		tau = 1.0 / (2.0 * math.pi * np.maximum(cutoff, 1e-6))
		alpha = 1.0 / (1.0 + tau / elapsed)
		self.value = alpha * current + (1.0 - alpha) * self.value
		self.timestamp = float(timestamp)
		return self.value.copy()


def linear_part(matrix: Matrix) -> np.ndarray:
	return np.asarray(matrix, dtype=np.float64)[:, :2]


def apply_affine(points: np.ndarray, matrix: Matrix) -> np.ndarray:
	array = np.asarray(points, dtype=np.float64).reshape(-1, 2)
	matrix = np.asarray(matrix, dtype=np.float64)
	return array @ matrix[:, :2].T + matrix[:, 2]


# order in which a landmark set and its box are packed into one array for the filter
PACKED_PARTS: Tuple[str, ...] = ('box', 'five', 'five_68', 'sixty_eight', 'sixty_eight_5')


def pack_landmarks(landmark_set: FaceLandmarkSet, bounding_box: BoundingBox) -> Tuple[np.ndarray, List[int]]:
	"""Box corners and the four landmark sets as one (N, 2) array, with the point count of each part."""
	parts = [np.asarray(bounding_box, dtype=np.float64).reshape(2, 2)]
	parts += [np.asarray(getattr(landmark_set, name), dtype=np.float64).reshape(-1, 2) for name in PACKED_PARTS[1:]]
	return np.concatenate(parts, axis=0), [len(part) for part in parts]


def unpack_landmarks(packed: np.ndarray, counts: Sequence[int], template: FaceLandmarkSet) -> Tuple[FaceLandmarkSet, BoundingBox]:
	"""Inverse of pack_landmarks; each set keeps the dtype of the template's set."""
	offsets = np.cumsum([0] + list(counts))
	parts = [packed[offsets[index]:offsets[index + 1]] for index in range(len(counts))]
	box = np.concatenate([parts[0].min(axis=0), parts[0].max(axis=0)]).astype(np.float32)
	sets = {}
	for name, part in zip(PACKED_PARTS[1:], parts[1:]):
		dtype = np.asarray(getattr(template, name)).dtype
		sets[name] = part.astype(dtype if dtype in (np.float32, np.float64) else np.float32)
	return FaceLandmarkSet(**sets), box


def face_scale(bounding_box: BoundingBox) -> float:
	"""A face's size in pixels (box width and height averaged), used to express speeds in face widths."""
	box = np.asarray(bounding_box, dtype=np.float64)
	return max(float((box[2] - box[0]) + (box[3] - box[1])) * 0.5, 1.0)


class LandmarkSmoother:
	"""One-Euro smoothing of one track's landmarks: each of the four landmark sets and the box has its own filter,
	driven by the mean speed of its own points, so a set keeps its shape (all its points share one cutoff) and a
	large set (68 points) does not dilute the speed of a small one (the 5 points the aligner uses).

	Speeds are measured in face widths per second, so the same beta suits a 60 px face in 360p and a 600 px face in
	4K. smooth() takes the frame-to-frame motion of the face when it is known (the tracker's flow similarity): the
	filters' state is carried along by it first, so only the unexplained part is filtered.
	"""

	def __init__(self, min_cutoff: float = DEFAULT_MIN_CUTOFF, beta: float = DEFAULT_BETA, derivative_cutoff: float = DEFAULT_DERIVATIVE_CUTOFF) -> None:
		self.filters = [OneEuroFilter(min_cutoff, beta, derivative_cutoff, speed_mode='shared') for _ in PACKED_PARTS]
		self.resets = 0
		# frames left in which the output closes the rest of its gap to the input in equal steps (see catch_up)
		self.catch_up_left = 0

	def reset(self) -> None:
		for one_filter in self.filters:
			one_filter.reset()
		self.resets += 1
		self.catch_up_left = 0

	def catch_up(self, frames: int) -> None:
		"""Close the gap between the smoothed state and the input over the next `frames` frames in equal steps, then
		smooth as before. For a correction too large to be noise (a face the flow lost track of, a face first seen
		half outside the frame): the One-Euro filter would drift towards it over many frames, a reset would jump in
		one; a few equal steps cost a few moderate pairs instead of many poor ones or one very bad one."""
		if self.started:
			self.catch_up_left = max(int(frames), 0)

	@property
	def started(self) -> bool:
		return self.filters[0].started

	def carry(self, motion: Matrix) -> None:
		"""Move the filters' state by a frame-to-frame affine (positions fully, velocities by the linear part)."""
		for one_filter in self.filters:
			carry_filter(one_filter, motion)

	def smooth_parts(self, parts: Sequence[np.ndarray], timestamp: float, scale: float, motion: Optional[Matrix] = None) -> List[np.ndarray]:
		if motion is not None:
			self.carry(motion)
		results = []
		for one_filter, part in zip(self.filters, parts):
			one_filter.speed_scale = max(float(scale), 1.0)
			value = np.asarray(part, dtype=np.float64)
			before = one_filter.value.copy() if self.catch_up_left > 0 and one_filter.value is not None and one_filter.value.shape == value.shape else None
			result = one_filter(value, timestamp)
			if before is not None:
				one_filter.value = before + (value - before) / self.catch_up_left
				result = one_filter.value.copy()
			results.append(result)
		self.catch_up_left = max(self.catch_up_left - 1, 0)
		return results

	def smooth(
		self,
		landmark_set: FaceLandmarkSet,
		bounding_box: BoundingBox,
		timestamp: float,
		motion: Optional[Matrix] = None
	) -> Tuple[FaceLandmarkSet, BoundingBox]:
		packed, counts = pack_landmarks(landmark_set, bounding_box)
		offsets = np.cumsum([0] + counts)
		parts = [packed[offsets[index]:offsets[index + 1]] for index in range(len(counts))]
		smoothed = self.smooth_parts(parts, timestamp, face_scale(bounding_box), motion)
		return unpack_landmarks(np.concatenate(smoothed, axis=0), counts, landmark_set)


def carry_filter(one_filter: OneEuroFilter, motion: Matrix) -> None:
	"""Move a point filter's state by an affine: positions fully, velocities by its linear part only."""
	if one_filter.value is None:
		return
	one_filter.value = apply_affine(one_filter.value, motion).reshape(one_filter.value.shape)
	if one_filter.derivative is not None:
		one_filter.derivative = (one_filter.derivative.reshape(-1, 2) @ linear_part(motion).T).reshape(one_filter.derivative.shape)


# ---------------------------------------------------------------- scene cuts


@dataclass
class FrameSignature:
	"""What the scene-cut test keeps of a frame: a normalised colour histogram and a small grey picture."""
	histogram: np.ndarray
	thumbnail: np.ndarray


def frame_signature(frame: VisionFrame) -> FrameSignature:
	# a thumbnail pixel needs no more than SIGNATURE_SAMPLES² of the frame's: a large frame is subsampled before the
	# area average (1080p: every third pixel, 1.7 ms instead of 5.5 here, scores within 0.02 of the full average's)
	step = max(1, min(frame.shape[1] // (SIGNATURE_SIZE[0] * SIGNATURE_SAMPLES), frame.shape[0] // (SIGNATURE_SIZE[1] * SIGNATURE_SAMPLES)))
	source = np.ascontiguousarray(frame[::step, ::step]) if step > 1 else frame
	small = cv2.resize(source, SIGNATURE_SIZE, interpolation=cv2.INTER_AREA)
	hsv = cv2.cvtColor(small, cv2.COLOR_BGR2HSV)
	# hue and saturation together say "which colours", value on its own says "how bright": a cut changes either
	colour = cv2.calcHist([hsv], [0, 1], None, [HUE_BINS, SATURATION_BINS], [0, 180, 0, 256]).ravel()
	brightness = cv2.calcHist([hsv], [2], None, [VALUE_BINS], [0, 256]).ravel()
	histogram = np.concatenate([colour / max(colour.sum(), 1.0), brightness / max(brightness.sum(), 1.0)]).astype(np.float32)
	thumbnail = cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), (5, 5), 0).astype(np.float32)
	return FrameSignature(histogram, thumbnail)


def histogram_distance(first: np.ndarray, second: np.ndarray) -> float:
	"""Bhattacharyya distance (0 same, 1 disjoint) of two histograms that each sum to one per part."""
	return float(cv2.compareHist(first.astype(np.float32), second.astype(np.float32), cv2.HISTCMP_BHATTACHARYYA))


def scene_change_scores(previous: FrameSignature, current: FrameSignature) -> Tuple[float, float]:
	"""(histogram distance, mean absolute difference of the blurred thumbnails in grey levels)."""
	distance = histogram_distance(previous.histogram, current.histogram)
	difference = float(np.mean(np.abs(previous.thumbnail - current.thumbnail)))
	return distance, difference


def scene_cut_score(distance: float, difference: float) -> float:
	"""How strongly two frames look like different shots; 1 or more is a cut."""
	return distance / CUT_HISTOGRAM_DISTANCE + difference / CUT_FRAME_DIFFERENCE


def is_cut_by_scores(distance: float, difference: float) -> bool:
	return scene_cut_score(distance, difference) >= 1.0


def is_scene_cut_signature(previous: FrameSignature, current: FrameSignature) -> bool:
	return is_cut_by_scores(*scene_change_scores(previous, current))


class SceneCutDetector:
	"""Scene cuts in a stream of frames (colour histogram and coarse frame difference): keeps the previous frame's signature so each frame is summarised once."""

	def __init__(self) -> None:
		self.previous: Optional[FrameSignature] = None
		self.last_scores: Tuple[float, float] = (0.0, 0.0)

	def reset(self) -> None:
		self.previous = None
		self.last_scores = (0.0, 0.0)

	def update(self, frame: VisionFrame, signature: Optional[FrameSignature] = None) -> bool:
		"""True when frame starts a new shot; the first frame of a stream is not a cut (nothing came before). The
		frame's signature may come ready (made ahead of the tracker)."""
		current = signature if signature is not None else frame_signature(frame)
		previous, self.previous = self.previous, current
		if previous is None:
			return False
		self.last_scores = scene_change_scores(previous, current)
		return is_cut_by_scores(*self.last_scores)
