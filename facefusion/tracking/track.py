"""The tracker's records -- one face over time (Track) with its identity, the settings, the counters, the last frame's
report -- and the pure geometry that moves a face's landmarks and box by a frame-to-frame similarity."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from facefusion.config import RunConfig
from facefusion.tracking.smoother import DEFAULT_BETA, DEFAULT_DERIVATIVE_CUTOFF, DEFAULT_FPS, DEFAULT_MIN_CUTOFF, LandmarkSmoother, apply_affine
from facefusion.types import BoundingBox, Embedding, FaceLandmarkSet, FaceScoreSet, Matrix, Points

TRACKER_KINDS: Tuple[str, ...] = ('none', 'optical-flow')
# what tells apart the alignment transforms smoothed for one face: the template's name and the crop size


@dataclass(frozen=True)
class TrackerOptions:
	"""The tracker's and smoother's settings; from_config reads them from a RunConfig by their option names."""
	tracker: str = 'optical-flow'
	detect_interval: int = 6
	# forward-backward error limit per flow point, in frame pixels
	flow_error: float = 1.0
	# share of a track's points that must pass the forward-backward test, or the frame becomes a keyframe
	flow_min_ratio: float = 0.5
	smoothing: str = 'one-euro'
	min_cutoff: float = DEFAULT_MIN_CUTOFF
	beta: float = DEFAULT_BETA
	derivative_cutoff: float = DEFAULT_DERIVATIVE_CUTOFF
	# a re-detection further than this many face widths from the track's prediction restarts its smoothing
	reset_distance: float = 0.2
	# optical-flow mode: a keyframe's detection is blended into the flow-carried geometry with the gain
	# 1 / (detections blended + 1), never below detection_gain_floor, so independent detector noise averages out
	# over keyframes instead of being snapped to
	detection_gain_floor: float = 0.25
	# the part of a detection's offset from the prediction (face widths) taken as detector noise, not followed
	detection_dead_band: float = 0.01
	# a detection further than this (face widths) from the prediction is a change the flow missed: taken as it is,
	# and the smoothed output closes the gap to it in snap_catch_up_frames equal steps
	snap_distance: float = 0.05
	snap_catch_up_frames: int = 3
	# box overlap (IoU) a detection needs with a track's predicted box to continue that track
	match_iou: float = 0.3
	# keyframes a flow-carried track may go undetected before it is dropped (bridges one missed detection)
	max_missed_keyframes: int = 1
	# seconds a lost track is remembered, so that its face coming back (after an occlusion) keeps its token
	lost_memory: float = 1.0
	export_path: Optional[str] = None
	fps: float = DEFAULT_FPS

	@classmethod
	def from_config(cls, config: RunConfig, fps: Optional[float] = None) -> 'TrackerOptions':
		return cls(
			tracker=config.face_tracker,
			detect_interval=max(1, int(config.face_tracker_detect_interval)),
			flow_error=float(config.face_tracker_flow_error),
			smoothing=config.temporal_smoothing,
			min_cutoff=float(config.temporal_smoothing_min_cutoff),
			beta=float(config.temporal_smoothing_beta),
			export_path=config.face_landmarks_export or None,
			fps=float(fps or config.output_video_fps or DEFAULT_FPS)
		)

	def uses_flow(self) -> bool:
		"""Flow carries the tracks between keyframes, and it tells the smoother how each face moved: with per-frame
		detection and smoothing on, it is still followed, so that smoothing does not lag behind a moving face."""
		return self.tracker == 'optical-flow' or self.smoothing == 'one-euro'


@dataclass
class TrackIdentity:
	"""Running mean embedding (raw and normalised) over keyframes, classes from the first analysis, and the
	reference-match decision with whether a newer embedding arrived since it was made."""
	embedding: Optional[Embedding] = None
	embedding_norm: Optional[Embedding] = None
	embedding_count: int = 0
	gender: Optional[str] = None
	age: Optional[range] = None
	race: Optional[str] = None
	reference_match: Optional[bool] = None
	reference_stale: bool = True

	def doubt(self) -> None:
		"""The face is probably the same one, but that has to be shown again: the next embedding replaces the running
		mean instead of joining it, and the reference decision is made afresh."""
		self.embedding_count = 0
		self.reference_match = None
		self.reference_stale = True


@dataclass
class Track:
	"""One face over time. Raw geometry is what detection / flow gave; landmarks and box are what was handed out."""
	token: int
	raw_landmarks: FaceLandmarkSet
	raw_box: BoundingBox
	landmarks: FaceLandmarkSet
	box: BoundingBox
	score_set: FaceScoreSet
	angle: int
	born_frame: int
	last_detected_frame: int
	# flow feature points in the last frame (frame pixels), and how many there were when they were seeded
	points: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))
	seeded_points: int = 0
	missed_keyframes: int = 0
	# detections blended into the geometry since it last snapped to one (optical-flow mode)
	blended_detections: int = 0
	# the frame this track was lost at (None while it is live)
	lost_since: Optional[int] = None
	identity: TrackIdentity = field(default_factory=TrackIdentity)
	smoother: Optional[LandmarkSmoother] = None


@dataclass
class TrackerStats:
	frames: int = 0
	keyframes: int = 0
	detector_runs: int = 0
	reasons: Counter[str] = field(default_factory=Counter)
	keyframe_indices: List[int] = field(default_factory=list)
	scene_cuts: List[int] = field(default_factory=list)
	tracks_started: int = 0
	tracks_revived: int = 0
	smoother_resets: int = 0
	flow_failures: int = 0


@dataclass
class FrameReport:
	"""What happened on the last processed frame (for logs, tests and the export)."""
	frame_index: int
	keyframe: bool
	reason: Optional[str]
	scene_cut: bool
	tokens: List[int]
	# previous -> current frame similarity per track token, where the flow followed the track (read-only copies,
	# for the quality monitor, which undoes the camera motion with them)
	motions: Dict[int, Matrix] = field(default_factory=dict)


# ---------------------------------------------------------------- geometry


def copy_landmarks(landmark_set: FaceLandmarkSet) -> FaceLandmarkSet:
	return FaceLandmarkSet(
		five=np.array(landmark_set.five, copy=True),
		five_68=np.array(landmark_set.five_68, copy=True),
		sixty_eight=np.array(landmark_set.sixty_eight, copy=True),
		sixty_eight_5=np.array(landmark_set.sixty_eight_5, copy=True)
	)


def copy_box(box: BoundingBox) -> BoundingBox:
	return np.asarray(box, dtype=np.float32).copy()


def blend_points(first: Points, second: Points, gain: float) -> Points:
	"""first + gain * (second - first), in first's float type."""
	array = np.asarray(first)
	dtype = array.dtype if array.dtype in (np.float32, np.float64) else np.float32
	return (array.astype(np.float64) + gain * (np.asarray(second, np.float64) - array.astype(np.float64))).astype(dtype)


def blend_landmarks(first: FaceLandmarkSet, second: FaceLandmarkSet, gain: float) -> FaceLandmarkSet:
	return FaceLandmarkSet(
		five=blend_points(first.five, second.five, gain),
		five_68=blend_points(first.five_68, second.five_68, gain),
		sixty_eight=blend_points(first.sixty_eight, second.sixty_eight, gain),
		sixty_eight_5=blend_points(first.sixty_eight_5, second.sixty_eight_5, gain)
	)


def blend_box(first: BoundingBox, second: BoundingBox, gain: float) -> BoundingBox:
	return blend_points(np.asarray(first, np.float32), second, gain).astype(np.float32)


def move_points(points: Points, motion: Matrix) -> Points:
	array = np.asarray(points)
	dtype = array.dtype if array.dtype in (np.float32, np.float64) else np.float32
	return apply_affine(array, motion).reshape(array.shape).astype(dtype)


def move_landmarks(landmark_set: FaceLandmarkSet, motion: Matrix) -> FaceLandmarkSet:
	return FaceLandmarkSet(
		five=move_points(landmark_set.five, motion),
		five_68=move_points(landmark_set.five_68, motion),
		sixty_eight=move_points(landmark_set.sixty_eight, motion),
		sixty_eight_5=move_points(landmark_set.sixty_eight_5, motion)
	)


def move_box(box: BoundingBox, motion: Matrix) -> BoundingBox:
	"""The box moved by a similarity: its centre is moved and its sides scaled, and it stays axis-aligned (moving the
	corners and boxing them would grow the box a little with every rotated frame)."""
	x1, y1, x2, y2 = np.asarray(box, dtype=np.float64)[:4]
	centre = apply_affine(np.array([[(x1 + x2) * 0.5, (y1 + y2) * 0.5]]), motion)[0]
	scale = float(np.sqrt(abs(np.linalg.det(np.asarray(motion, dtype=np.float64)[:, :2]))))
	half = np.array([(x2 - x1) * 0.5, (y2 - y1) * 0.5]) * scale
	return np.concatenate([centre - half, centre + half]).astype(np.float32)


def box_centre(box: BoundingBox) -> np.ndarray:
	x1, y1, x2, y2 = np.asarray(box, dtype=np.float64)[:4]
	return np.array([(x1 + x2) * 0.5, (y1 + y2) * 0.5])


def inside_share(box: BoundingBox, frame_shape: Tuple[int, ...]) -> float:
	"""How much of the box lies inside the frame (0..1)."""
	x1, y1, x2, y2 = np.asarray(box, dtype=np.float64)[:4]
	area = max((x2 - x1) * (y2 - y1), 1e-6)
	height, width = frame_shape[:2]
	inside_w = max(0.0, min(x2, width) - max(x1, 0.0))
	inside_h = max(0.0, min(y2, height) - max(y1, 0.0))
	return float(inside_w * inside_h / area)
