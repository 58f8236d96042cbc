"""Following faces from one frame to the next with pyramidal Lucas-Kanade optical flow.

Feature points found inside each face are followed forward and backward on a grey copy of the frame; points whose
forward-backward error is too large are dropped, and a similarity transform (RANSAC) fitted to the rest says how the
face moved. Dozens of points spread over the face give a steadier motion estimate than following the five landmarks
themselves.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import cv2
import numpy as np

from facefusion.tracking.smoother import face_scale
from facefusion.tracking.track import Track, inside_share, move_box
from facefusion.types import BoundingBox, FaceLandmarkSet, Matrix, VisionFrame

# Lucas-Kanade: a 21 px window over 4 pyramid levels (0-3) follows about 80 px of motion per frame at the flow resolution
FLOW_WINDOW = (21, 21)
FLOW_LEVELS = 3
FLOW_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01)
# room around the faces in the cropped flow images (flow resolution pixels): the coarsest pyramid level must see the
# face's surroundings, and a face may have moved this far since the last frame
FLOW_MARGIN = 64
# flow runs on a copy no larger than this: more pixels add cost, not precision, for faces that large
FLOW_MAX_SIDE = 1280
# the smallest scale the flow copy is made at by a bilinear resize (below it, by an area average)
FLOW_LINEAR_MIN_SCALE = 0.5
# feature points per face: enough for a robust similarity, few enough that flow stays cheap
MAX_FEATURES = 48
MIN_FEATURES = 8
FEATURE_QUALITY = 0.01
# a track re-seeds its feature points when fewer than this share of them survived since the last seeding
FEATURE_REFRESH_RATIO = 0.6
# the smallest number of agreeing points a similarity is fitted to
MIN_FLOW_POINTS = 6
# RANSAC inlier distance in pixels, and as a share of the face size for large faces
RANSAC_PIXELS = 1.5
RANSAC_FACE_SHARE = 0.015
# a flow-carried face whose box is less than this share inside the frame has left it
MIN_INSIDE_SHARE = 0.5


@dataclass
class FlowResult:
	"""One track's flow on one frame: the similarity it moved by and its surviving points (frame pixels), or why the
	flow failed ('track-lost' or 'flow-error')."""
	ok: bool
	motion: Optional[Matrix] = None
	points: Optional[np.ndarray] = None
	reason: Optional[str] = None
	# median forward-backward error of the followed points (frame pixels)
	error: float = 0.0


def plain_median(values: np.ndarray) -> float:
	"""np.median of a non-empty 1-D float array, the same number, without np.median's NaN test: that test imports
	numpy.ma on first use, 10-50 ms holding the GIL on the analysis thread in the middle of a video."""
	ordered = np.sort(values)
	if np.isnan(ordered[-1]):
		# NaN sorts last; np.median's answer is NaN then
		return float('nan')
	middle = len(ordered) // 2
	if len(ordered) % 2:
		return float(ordered[middle])
	# the mean of the middle two in the array's own type, as np.median takes it
	return float(ordered[middle - 1:middle + 1].mean())


def flow_image(frame: VisionFrame) -> Tuple[np.ndarray, float]:
	"""The grey copy flow runs on, no larger than FLOW_MAX_SIDE, and its size relative to the frame. It depends on the
	frame alone, so it can be made ahead of the tracker (tracker.frame_cues)."""
	gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
	scale = min(1.0, FLOW_MAX_SIDE / float(max(gray.shape[:2])))
	if scale < 1.0:
		# down to half size a bilinear resize keeps what the flow follows (1080p: the same tPSNR as an area average,
		# 0.5 ms instead of 3.2); smaller than that, it would skip pixels, and the area average is worth its cost
		interpolation = cv2.INTER_LINEAR if scale >= FLOW_LINEAR_MIN_SCALE else cv2.INTER_AREA
		gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=interpolation)
	return gray, scale


class FlowFollower:
	"""Flow images, feature seeding and the per-frame flow of all tracks. ``scale`` is the flow image's size relative
	to the frame, set by image() for the frame at hand; points are kept in frame pixels."""

	def __init__(self, flow_error: float, min_ratio: float) -> None:
		self.flow_error = flow_error
		self.min_ratio = min_ratio
		self.scale = 1.0

	def image(self, frame: VisionFrame) -> np.ndarray:
		"""The grey copy flow runs on, no larger than FLOW_MAX_SIDE."""
		gray, self.scale = flow_image(frame)
		return gray

	def follow(self, tracks: Sequence[Track], previous_gray: np.ndarray, gray: np.ndarray, frame_shape: Tuple[int, ...]) -> Dict[int, FlowResult]:
		"""Lucas-Kanade forward and backward for the points of all tracks at once, then one similarity per track."""
		scale = self.scale
		owners = [(track, len(track.points)) for track in tracks]
		all_points = np.concatenate([track.points for track in tracks], axis=0).astype(np.float32) if tracks else np.zeros((0, 2), np.float32)
		results: Dict[int, FlowResult] = {}
		if len(all_points) == 0:
			return {track.token: FlowResult(False, reason='track-lost') for track in tracks}
		# only the part of the frame around the faces is needed: the pyramids LK builds for each pass (most of its
		# cost on large frames) are built for that crop only
		left, top, right, bottom = flow_region([track.raw_box for track in tracks], scale, gray.shape)
		origin = np.array([left, top], np.float32)
		previous_crop = np.ascontiguousarray(previous_gray[top:bottom, left:right])
		current_crop = np.ascontiguousarray(gray[top:bottom, left:right])
		start = (all_points * scale - origin).reshape(-1, 1, 2).astype(np.float32)
		forward, status_forward, _ = cv2.calcOpticalFlowPyrLK(previous_crop, current_crop, start, None, winSize=FLOW_WINDOW, maxLevel=FLOW_LEVELS, criteria=FLOW_CRITERIA)
		backward, status_backward, _ = cv2.calcOpticalFlowPyrLK(current_crop, previous_crop, forward, None, winSize=FLOW_WINDOW, maxLevel=FLOW_LEVELS, criteria=FLOW_CRITERIA)
		followed = (status_forward.ravel() == 1) & (status_backward.ravel() == 1) & np.all(np.isfinite(forward.reshape(-1, 2)), axis=1)
		error = np.linalg.norm((backward - start).reshape(-1, 2), axis=1) / scale
		moved = (forward.reshape(-1, 2) + origin) / scale
		offset = 0
		for track, count in owners:
			span = slice(offset, offset + count)
			offset += count
			results[track.token] = self.fit_motion(track.raw_box, all_points[span], moved[span], followed[span], error[span], frame_shape)
		return results

	def fit_motion(self, box: BoundingBox, before: np.ndarray, after: np.ndarray, followed: np.ndarray, error: np.ndarray, frame_shape: Tuple[int, ...]) -> FlowResult:
		"""Judge one track's flow and fit its similarity. 'track-lost': too few points could be followed at all, or
		the face left the frame; 'flow-error': points were followed but too many disagree going back (the
		forward-backward error is over the limit), i.e. the flow is not to be trusted on this frame."""
		count = len(before)
		median_error = plain_median(error[followed]) if followed.any() else float('inf')
		if followed.sum() < max(MIN_FLOW_POINTS, self.min_ratio * count):
			return FlowResult(False, reason='track-lost', error=median_error)
		good = followed & (error <= self.flow_error)
		if good.sum() < max(MIN_FLOW_POINTS, self.min_ratio * count):
			return FlowResult(False, reason='flow-error', error=median_error)
		threshold = max(RANSAC_PIXELS, RANSAC_FACE_SHARE * face_scale(box))
		motion, inliers = cv2.estimateAffinePartial2D(
			before[good].astype(np.float64), after[good].astype(np.float64), method=cv2.RANSAC, ransacReprojThreshold=threshold, maxIters=500, confidence=0.995
		)
		if motion is None or inliers is None or int(inliers.sum()) < max(MIN_FLOW_POINTS, self.min_ratio * good.sum()):
			return FlowResult(False, reason='flow-error', error=median_error)
		if inside_share(move_box(box, motion), frame_shape) < MIN_INSIDE_SHARE:
			return FlowResult(False, reason='track-lost', error=median_error)
		kept_points = after[good][inliers.ravel() == 1].astype(np.float32)
		return FlowResult(True, motion=motion, points=kept_points, error=median_error)

	def seed(self, track: Track, gray: np.ndarray) -> None:
		"""Corner features inside an ellipse over the face (not the box corners, which hold background that moves
		differently from the face), found on the flow image and stored in frame pixels."""
		scale = self.scale
		height, width = gray.shape[:2]
		x1, y1, x2, y2 = (np.asarray(track.raw_box, dtype=np.float64) * scale).tolist()
		left, top = int(max(np.floor(x1), 0)), int(max(np.floor(y1), 0))
		right, bottom = int(min(np.ceil(x2), width)), int(min(np.ceil(y2), height))
		points = np.zeros((0, 2), np.float32)
		if right - left >= 4 and bottom - top >= 4:
			region = gray[top:bottom, left:right]
			mask = np.zeros(region.shape, np.uint8)
			centre = ((x1 + x2) * 0.5 - left, (y1 + y2) * 0.5 - top)
			axes = (max(int((x2 - x1) * 0.42), 1), max(int((y2 - y1) * 0.48), 1))
			cv2.ellipse(mask, (int(round(centre[0])), int(round(centre[1]))), axes, 0, 0, 360, 255, -1)
			distance = max(2.0, (x2 - x1) / 14.0)
			corners = cv2.goodFeaturesToTrack(region, MAX_FEATURES, FEATURE_QUALITY, distance, mask=mask, blockSize=5)
			if corners is not None:
				points = (corners.reshape(-1, 2) + np.array([left, top], np.float32)) / scale
		if len(points) < MIN_FEATURES:
			# a face with little texture (blur, low light): follow the landmarks themselves and a grid over the face;
			# the forward-backward test still throws out the points that cannot be followed
			points = np.concatenate([points, fallback_points(track.raw_landmarks, track.raw_box)], axis=0)
		track.points = points.astype(np.float32)
		track.seeded_points = len(track.points)

	def needs_seeding(self, track: Track) -> bool:
		"""Too few of the track's points survived since they were seeded."""
		return len(track.points) < FEATURE_REFRESH_RATIO * max(track.seeded_points, 1)


def flow_region(boxes: Sequence[BoundingBox], scale: float, shape: Tuple[int, ...]) -> Tuple[int, int, int, int]:
	"""The flow image region (left, top, right, bottom) holding every face with room around it for the motion
	the pyramid can follow (FLOW_MARGIN at the flow resolution, or half a face, whichever is more)."""
	height, width = shape[:2]
	array = np.asarray(boxes, dtype=np.float64).reshape(-1, 4) * scale
	sizes = np.maximum(array[:, 2] - array[:, 0], array[:, 3] - array[:, 1])
	margins = np.maximum(sizes * 0.5, FLOW_MARGIN)
	left = int(max(np.floor(np.min(array[:, 0] - margins)), 0))
	top = int(max(np.floor(np.min(array[:, 1] - margins)), 0))
	right = int(min(np.ceil(np.max(array[:, 2] + margins)), width))
	bottom = int(min(np.ceil(np.max(array[:, 3] + margins)), height))
	if right - left < 8 or bottom - top < 8:
		return 0, 0, width, height
	return left, top, right, bottom


def fallback_points(landmark_set: FaceLandmarkSet, box: BoundingBox) -> np.ndarray:
	"""The five landmarks and a 3x3 grid over the box, for a face too plain for corner features."""
	x1, y1, x2, y2 = np.asarray(box, dtype=np.float64)[:4]
	grid = np.array([[x1 + (x2 - x1) * u, y1 + (y2 - y1) * v] for u in (0.3, 0.5, 0.7) for v in (0.3, 0.5, 0.7)])
	return np.concatenate([np.asarray(landmark_set.five, dtype=np.float64).reshape(-1, 2), grid], axis=0).astype(np.float32)
