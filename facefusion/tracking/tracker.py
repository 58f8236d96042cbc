"""Faces in a video as tracks: full analysis on keyframes, optical flow in between, smoothing per track.

Per frame the caller hands in the frame and gets back the faces of that frame, each with a stable ``track_token``:

- **Keyframes** run the full analysis (detector, 68/5, landmarker when asked for): the first frame, every
  ``detect_interval`` frames, the first frame of a new shot (scene cut), and any frame where a track's optical flow
  lost the face or became unreliable. Detections are matched to the tracks (box overlap with where the flow says
  each track is now); unmatched detections start new tracks, so a face that enters between keyframes is picked up
  at the next keyframe at the latest.
- **Between keyframes** each track's landmarks are carried by pyramidal Lucas-Kanade flow: feature points found
  inside the face are followed forward and backward, points whose forward-backward error is too large are dropped,
  and a similarity transform (RANSAC) fitted to the rest moves all four landmark sets and the box. Dozens of points
  spread over the face give a steadier motion estimate than following the five landmarks themselves.
- **Identity hangs off the track**: embedding (a running mean over keyframes), gender / age / race, and the
  reference-match decision (with hysteresis) are kept per track, so a face does not flicker between swapped and
  unswapped when its similarity wobbles around the threshold, and the recognizer runs on keyframes only.
- **Smoothing** (``temporal_smoother``): One-Euro per track, motion-compensated with the flow similarity, reset on
  scene cuts and when a re-detection lands far from where the track was expected.

``--face-tracker none`` is 3.5.0's behaviour (full analysis on every frame); the faces still get track tokens (by
box overlap with the previous frame) so smoothing and export work the same way. Images never go through here.
"""
from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Deque, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from facefusion.face_analyser import needs_classification
from facefusion.face_helper import bounding_box_iou
from facefusion.face_selector import calculate_face_distance, select_faces as select_faces_per_frame, sort_and_filter_faces
from facefusion.tracking.landmark_export import ExportedFace, ExportedFrame, LandmarkExporter
from facefusion.tracking.smoother import (
	DEFAULT_BETA,
	DEFAULT_DERIVATIVE_CUTOFF,
	DEFAULT_FPS,
	DEFAULT_MIN_CUTOFF,
	AffineSmoother,
	LandmarkSmoother,
	SceneCutDetector,
	apply_affine,
	face_scale
)
from facefusion.types import BoundingBox, Embedding, Face, FaceLandmarkSet, FaceScoreSet, Matrix, Points, VisionFrame

NO_FLOW_IMAGE = np.zeros((1, 1), np.uint8)
TRACKER_KINDS: Tuple[str, ...] = ('none', 'optical-flow')
KEYFRAME_REASONS: Tuple[str, ...] = ('first', 'every-frame', 'interval', 'scene-cut', 'track-lost', 'flow-error')

# Lucas-Kanade: a 21 px window over 4 pyramid levels (0-3) follows about 80 px of motion per frame at the flow resolution
FLOW_WINDOW = (21, 21)
FLOW_LEVELS = 3
FLOW_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01)
# room around the faces in the cropped flow images (flow resolution pixels): the coarsest pyramid level must see the
# face's surroundings, and a face may have moved this far since the last frame
FLOW_MARGIN = 64
# flow runs on a copy no larger than this: more pixels add cost, not precision, for faces that large
FLOW_MAX_SIDE = 1280
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
# a lost track is taken up again by a detection whose box centre is within this many face sizes of where it was
LOST_MATCH_DISTANCE = 0.75
# while a face is lost, keyframes come every this many frames (instead of the interval) until it is found again
RECOVERY_STEP = 2
# faces handed out per track that are looked at for what later stages filled in
RECENT_FACES = 8
# a new embedding enters the track's running mean with at least this weight (the mean follows slow changes)
EMBEDDING_MEMORY = 8
# reference decisions flip only when the distance crosses the threshold by this much
REFERENCE_HYSTERESIS = 0.03


@dataclass(frozen = True)
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
	# box overlap (IoU) a detection needs with a track's predicted box to continue that track
	match_iou: float = 0.3
	# keyframes a flow-carried track may go undetected before it is dropped (bridges one missed detection)
	max_missed_keyframes: int = 1
	# seconds a lost track is remembered, so that its face coming back (after an occlusion) keeps its token
	lost_memory: float = 1.0
	export_path: Optional[str] = None
	fps: float = DEFAULT_FPS

	@classmethod
	def from_config(cls, config: Any, fps: Optional[float] = None) -> 'TrackerOptions':
		defaults = cls()
		return cls(
			tracker = getattr(config, 'face_tracker', defaults.tracker),
			detect_interval = max(1, int(getattr(config, 'face_tracker_detect_interval', defaults.detect_interval))),
			flow_error = float(getattr(config, 'face_tracker_flow_error', defaults.flow_error)),
			flow_min_ratio = defaults.flow_min_ratio,
			smoothing = getattr(config, 'temporal_smoothing', defaults.smoothing),
			min_cutoff = float(getattr(config, 'temporal_smoothing_min_cutoff', defaults.min_cutoff)),
			beta = float(getattr(config, 'temporal_smoothing_beta', defaults.beta)),
			export_path = getattr(config, 'face_landmarks_export', defaults.export_path) or None,
			fps = float(fps or getattr(config, 'output_video_fps', None) or defaults.fps)
		)


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
	points: np.ndarray = field(default_factory = lambda: np.zeros((0, 2), np.float32))
	seeded_points: int = 0
	missed_keyframes: int = 0
	# the frame this track was lost at (None while it is live)
	lost_since: Optional[int] = None
	# identity cache: running mean embedding (raw and normalised) over keyframes, classes from the first analysis
	embedding: Optional[Embedding] = None
	embedding_norm: Optional[Embedding] = None
	embedding_count: int = 0
	gender: Optional[str] = None
	age: Optional[range] = None
	race: Optional[str] = None
	# reference-match decision and whether a newer embedding arrived since it was made
	reference_match: Optional[bool] = None
	reference_stale: bool = True
	smoother: Optional[LandmarkSmoother] = None
	affine_smoothers: Dict[Any, AffineSmoother] = field(default_factory = dict)
	# the Faces handed out lately: stages downstream may fill an embedding / classes in, which the track then keeps;
	# several, because a pipelined caller may work on a frame after the tracker has moved on to the next ones
	recent_faces: Deque[Face] = field(default_factory = lambda: deque(maxlen = RECENT_FACES))


@dataclass
class FlowResult:
	ok: bool
	motion: Optional[Matrix] = None
	points: Optional[np.ndarray] = None
	reason: Optional[str] = None
	# median forward-backward error of the followed points (frame pixels)
	error: float = 0.0


@dataclass
class TrackerStats:
	frames: int = 0
	keyframes: int = 0
	detector_runs: int = 0
	reasons: Counter = field(default_factory = Counter)
	keyframe_indices: List[int] = field(default_factory = list)
	scene_cuts: List[int] = field(default_factory = list)
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


class FaceTracker:
	def __init__(self, config: Any, analyser: Any, fps: Optional[float] = None, options: Optional[TrackerOptions] = None) -> None:
		self.config = config
		self.analyser = analyser
		self.options = options or TrackerOptions.from_config(config, fps)
		if self.options.tracker not in TRACKER_KINDS:
			raise ValueError('unknown face tracker ' + repr(self.options.tracker))
		self.exporter: Optional[LandmarkExporter] = LandmarkExporter(self.options.export_path, self.options.fps) if self.options.export_path else None
		self.next_token = 1
		self.reset()

	def reset(self) -> None:
		"""Forget every track and all history (a new video); statistics start again too. Tokens are never reused."""
		self.forget()
		self.stats = TrackerStats()
		self.last_report: Optional[FrameReport] = None

	def forget(self) -> None:
		"""Drop tracks and frame history but keep the statistics (the stream jumped: a seek, a new frame size)."""
		self.tracks: List[Track] = []
		# tracks whose face was not found on a keyframe, kept for a while (not handed out) so the face can come back
		# under its own token
		self.lost_tracks: List[Track] = []
		self.previous_gray: Optional[np.ndarray] = None
		self.flow_scale = 1.0
		self.frame_shape: Optional[Tuple[int, ...]] = None
		self.last_keyframe_index: Optional[int] = None
		self.cut_detector = SceneCutDetector()
		self.last_frame_index: Optional[int] = None
		self.selected_token: Optional[int] = None
		self.reference_signature: Optional[Tuple[int, ...]] = None

	def close(self, success: bool = True) -> Optional[str]:
		"""Finish the landmarks export (when asked for) and return its path; after a failed run (success False) the
		partial export is removed instead."""
		if self.exporter is None:
			return None
		if not success:
			self.exporter.abort()
			return None
		return str(self.exporter.close())

	# ------------------------------------------------------------ per frame

	def process(self, frame_index: int, frame: VisionFrame) -> List[Face]:
		"""The faces of this frame, each with its track token; frames must come in order."""
		self.harvest()
		options = self.options
		timestamp = frame_index / max(options.fps, 1e-6)
		jumped = self.last_frame_index is not None and frame_index <= self.last_frame_index
		if jumped or (self.frame_shape is not None and self.frame_shape != frame.shape):
			# frames out of order (a seek) or of another size: nothing can be carried across the jump
			self.forget()
		scene_cut = self.cut_detector.update(frame)
		# without flow there is no use for the grey copy; a placeholder still marks that a frame came before
		gray = self.flow_image(frame) if self.uses_flow() else NO_FLOW_IMAGE
		reason: Optional[str] = None
		if self.previous_gray is None:
			reason = 'first'
		elif scene_cut:
			reason = 'scene-cut'
			self.stats.scene_cuts.append(frame_index)
			# a new shot: nothing of the old one may carry over, not positions, not smoothing, not identities
			self.tracks = []
			self.lost_tracks = []
			self.selected_token = None
		elif options.tracker == 'none':
			reason = 'every-frame'
		flows: Dict[int, FlowResult] = {}
		if self.uses_flow() and self.previous_gray is not None and not scene_cut and self.tracks:
			flows = self.follow_tracks(self.previous_gray, gray, frame.shape)
		memory = max(options.lost_memory * options.fps, options.detect_interval)
		self.lost_tracks = [track for track in self.lost_tracks if track.lost_since is not None and frame_index - track.lost_since <= memory]
		if reason is None:
			since_keyframe = frame_index - self.last_keyframe_index if self.last_keyframe_index is not None else None
			recovering = options.tracker == 'optical-flow' and any(frame_index - track.lost_since < options.detect_interval for track in self.lost_tracks)
			if since_keyframe is None or since_keyframe >= options.detect_interval:
				reason = 'interval'
			elif recovering and since_keyframe >= RECOVERY_STEP:
				# a face was lost a moment ago: look for it more often than the interval until it is back
				reason = 'track-lost'
			else:
				failed = [flow for flow in flows.values() if not flow.ok]
				if failed:
					self.stats.flow_failures += len(failed)
					reason = 'track-lost' if any(flow.reason == 'track-lost' for flow in failed) else 'flow-error'
		if reason is not None:
			self.run_keyframe(frame_index, frame, gray, flows, timestamp)
			self.last_keyframe_index = frame_index
			self.stats.keyframes += 1
			self.stats.reasons[reason] += 1
			self.stats.keyframe_indices.append(frame_index)
		else:
			self.carry_tracks(gray, flows, timestamp)
		self.previous_gray = gray
		self.frame_shape = frame.shape
		self.last_frame_index = frame_index
		self.stats.frames += 1
		faces = [self.make_face(track) for track in self.tracks]
		self.last_report = FrameReport(frame_index, reason is not None, reason, scene_cut, [track.token for track in self.tracks])
		if self.exporter is not None:
			self.export_frame(frame_index, reason)
		return faces

	def uses_flow(self) -> bool:
		"""Flow carries the tracks between keyframes, and it tells the smoother how each face moved: with per-frame
		detection and smoothing on, it is still followed, so that smoothing does not lag behind a moving face."""
		return self.options.tracker == 'optical-flow' or self.options.smoothing == 'one-euro'

	def flow_image(self, frame: VisionFrame) -> np.ndarray:
		gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
		longest = max(gray.shape[:2])
		self.flow_scale = min(1.0, FLOW_MAX_SIDE / float(longest))
		if self.flow_scale < 1.0:
			gray = cv2.resize(gray, None, fx = self.flow_scale, fy = self.flow_scale, interpolation = cv2.INTER_AREA)
		return gray

	# ------------------------------------------------------------ keyframes

	def run_keyframe(self, frame_index: int, frame: VisionFrame, gray: np.ndarray, flows: Dict[int, FlowResult], timestamp: float) -> None:
		detections = self.analyser.get_many_faces(frame)
		self.stats.detector_runs += 1
		predictions = {track.token: self.predict(track, flows.get(track.token)) for track in self.tracks}
		pairs = self.associate(predictions, detections)
		matched_tokens = {token for token, _ in pairs}
		matched_detections = {index for _, index in pairs}
		kept: List[Track] = []
		lost_now: List[Track] = []
		for track in self.tracks:
			flow = flows.get(track.token)
			if track.token in matched_tokens:
				detection = detections[next(index for token, index in pairs if token == track.token)]
				self.update_from_detection(track, detection, predictions[track.token], flow, frame_index, timestamp)
				kept.append(track)
				continue
			# undetected: bridge a missed detection with the flow (tracking mode only: per-frame mode hands out what
			# the detector found, as 3.5.0), unless the flow failed too or a detection that went to another track
			# now sits where this one is (two tracks on one face, one of them is dropped for good)
			predicted_box = predictions[track.token][1]
			overlaps = any(bounding_box_iou(predicted_box, detections[index].bounding_box) > self.options.match_iou for index in matched_detections)
			bridge = self.options.tracker == 'optical-flow' and flow is not None and flow.ok and track.missed_keyframes < self.options.max_missed_keyframes
			if bridge and not overlaps:
				track.missed_keyframes += 1
				self.update_from_flow(track, flow, timestamp)
				kept.append(track)
			elif not overlaps:
				track.lost_since = frame_index
				lost_now.append(track)
		free = [index for index in range(len(detections)) if index not in matched_detections]
		revived = self.revive_lost_tracks(self.lost_tracks + lost_now, detections, free, frame_index, timestamp)
		for index in free:
			kept.append(revived[index] if index in revived else self.start_track(detections[index], frame_index, timestamp))
		revived_tokens = {track.token for track in revived.values()}
		self.lost_tracks = [track for track in self.lost_tracks + lost_now if track.token not in revived_tokens]
		# best detector score first, as the analyser orders faces
		kept.sort(key = lambda track: -track.score_set.detector)
		self.tracks = kept
		if self.uses_flow():
			# keyframes re-seed every track's flow points on the fresh geometry
			for track in kept:
				self.seed_points(track, gray)
		if self.options.tracker == 'optical-flow':
			self.refresh_embeddings(frame, [track for track in kept if track.last_detected_frame == frame_index])

	def revive_lost_tracks(self, lost_tracks: Sequence[Track], detections: Sequence[Face], free: Sequence[int], frame_index: int, timestamp: float) -> Dict[int, Track]:
		"""Detections no live track claimed, found near where a recently lost track was last seen (an occlusion, a
		blurred frame, a turn the flow could not follow): they continue that track under its token, with smoothing
		restarted (the face may have moved meanwhile) and identity checked again (position alone cannot prove it is
		the same person)."""
		candidates = []
		for track in lost_tracks:
			last_centre = box_centre(track.raw_box)
			size = face_scale(track.raw_box)
			for index in free:
				box = detections[index].bounding_box
				ratio = face_scale(box) / size
				distance = float(np.linalg.norm(box_centre(box) - last_centre)) / size
				if distance <= LOST_MATCH_DISTANCE and 0.5 <= ratio <= 2.0:
					candidates.append((distance, track.token, index, track))
		candidates.sort(key = lambda item: item[0])
		revived: Dict[int, Track] = {}
		used_tokens = set()
		for _, token, index, track in candidates:
			if token in used_tokens or index in revived:
				continue
			used_tokens.add(token)
			if track.smoother is not None and track.smoother.started:
				track.smoother.reset()
				self.stats.smoother_resets += 1
			track.affine_smoothers.clear()
			track.lost_since = None
			# the face is probably the same one, but that has to be shown again: the next embedding replaces the
			# running mean instead of joining it, and the reference decision is made afresh
			track.embedding_count = 0
			track.reference_match = None
			track.reference_stale = True
			detection = detections[index]
			self.update_from_detection(track, detection, (detection.landmark_set, detection.bounding_box), None, frame_index, timestamp)
			self.stats.tracks_revived += 1
			revived[index] = track
		return revived

	def predict(self, track: Track, flow: Optional[FlowResult]) -> Tuple[FaceLandmarkSet, BoundingBox]:
		"""Where the track's raw geometry is in this frame: moved by its flow when that worked, else where it was."""
		if flow is not None and flow.ok and flow.motion is not None:
			return move_landmarks(track.raw_landmarks, flow.motion), move_box(track.raw_box, flow.motion)
		return track.raw_landmarks, track.raw_box

	def associate(self, predictions: Dict[int, Tuple[FaceLandmarkSet, BoundingBox]], detections: Sequence[Face]) -> List[Tuple[int, int]]:
		"""Greedy one-to-one matching of tracks to detections by box overlap, best overlap first."""
		candidates = []
		for token, (_, box) in predictions.items():
			for index, detection in enumerate(detections):
				overlap = bounding_box_iou(box, detection.bounding_box)
				if overlap >= self.options.match_iou:
					candidates.append((overlap, token, index))
		candidates.sort(key = lambda item: -item[0])
		used_tokens, used_detections, pairs = set(), set(), []
		for _, token, index in candidates:
			if token in used_tokens or index in used_detections:
				continue
			used_tokens.add(token)
			used_detections.add(index)
			pairs.append((token, index))
		return pairs

	def start_track(self, detection: Face, frame_index: int, timestamp: float) -> Track:
		track = Track(
			token = self.next_token,
			raw_landmarks = copy_landmarks(detection.landmark_set),
			raw_box = np.asarray(detection.bounding_box, dtype = np.float32).copy(),
			landmarks = copy_landmarks(detection.landmark_set),
			box = np.asarray(detection.bounding_box, dtype = np.float32).copy(),
			score_set = detection.score_set,
			angle = detection.angle,
			born_frame = frame_index,
			last_detected_frame = frame_index,
			smoother = self.create_smoother()
		)
		self.next_token += 1
		self.stats.tracks_started += 1
		self.smooth(track, timestamp, None)
		return track

	def update_from_detection(
		self,
		track: Track,
		detection: Face,
		prediction: Tuple[FaceLandmarkSet, BoundingBox],
		flow: Optional[FlowResult],
		frame_index: int,
		timestamp: float
	) -> None:
		predicted_landmarks, predicted_box = prediction
		offset = float(np.mean(np.linalg.norm(np.asarray(detection.landmark_set.five_68, np.float64) - np.asarray(predicted_landmarks.five_68, np.float64), axis = 1)))
		if track.smoother is not None and track.smoother.started and offset > self.options.reset_distance * face_scale(predicted_box):
			# the face is not where the track expected it (a jump the flow missed): smoothing towards the old
			# position would drag the landmarks across the gap, so start over from the detection
			track.smoother.reset()
			track.affine_smoothers.clear()
			self.stats.smoother_resets += 1
		track.raw_landmarks = copy_landmarks(detection.landmark_set)
		track.raw_box = np.asarray(detection.bounding_box, dtype = np.float32).copy()
		track.score_set = detection.score_set
		track.angle = detection.angle
		track.last_detected_frame = frame_index
		track.missed_keyframes = 0
		motion = flow.motion if flow is not None and flow.ok else None
		self.smooth(track, timestamp, motion)

	def refresh_embeddings(self, frame: VisionFrame, tracks: Sequence[Track]) -> None:
		"""On a keyframe, tracks whose identity is in use (they have an embedding) get a fresh one folded into their
		running mean, in one batched recognizer call; tracks nobody asked about cost nothing."""
		wanted = [track for track in tracks if track.embedding is not None]
		if not wanted:
			return
		probes = [Face(track.raw_box, track.score_set, track.raw_landmarks, track.angle) for track in wanted]
		self.analyser.ensure_embeddings(frame, probes)
		for track, probe in zip(wanted, probes):
			fold_embedding(track, probe.embedding, probe.embedding_norm)

	# ------------------------------------------------------------ between keyframes

	def carry_tracks(self, gray: np.ndarray, flows: Dict[int, FlowResult], timestamp: float) -> None:
		for track in self.tracks:
			flow = flows.get(track.token)
			if flow is None or not flow.ok:
				# only reachable without flow (no previous frame): keep the geometry, as a still face would
				self.smooth(track, timestamp, None)
				continue
			self.update_from_flow(track, flow, timestamp)
			if len(track.points) < FEATURE_REFRESH_RATIO * max(track.seeded_points, 1):
				self.seed_points(track, gray)

	def update_from_flow(self, track: Track, flow: FlowResult, timestamp: float) -> None:
		track.raw_landmarks = move_landmarks(track.raw_landmarks, flow.motion)
		track.raw_box = move_box(track.raw_box, flow.motion)
		track.points = flow.points
		self.smooth(track, timestamp, flow.motion)

	def follow_tracks(self, previous_gray: np.ndarray, gray: np.ndarray, frame_shape: Tuple[int, ...]) -> Dict[int, FlowResult]:
		"""Lucas-Kanade forward and backward for the points of all tracks at once, then one similarity per track."""
		scale = self.flow_scale
		owners = [(track, len(track.points)) for track in self.tracks]
		all_points = np.concatenate([track.points for track in self.tracks], axis = 0).astype(np.float32) if self.tracks else np.zeros((0, 2), np.float32)
		results: Dict[int, FlowResult] = {}
		if len(all_points) == 0:
			return {track.token: FlowResult(False, reason = 'track-lost') for track in self.tracks}
		# only the part of the frame around the faces is needed: the pyramids LK builds for each pass (most of its
		# cost on large frames) are built for that crop only
		left, top, right, bottom = flow_region([track.raw_box for track in self.tracks], scale, gray.shape)
		origin = np.array([left, top], np.float32)
		previous_crop = np.ascontiguousarray(previous_gray[top:bottom, left:right])
		current_crop = np.ascontiguousarray(gray[top:bottom, left:right])
		start = (all_points * scale - origin).reshape(-1, 1, 2).astype(np.float32)
		forward, status_forward, _ = cv2.calcOpticalFlowPyrLK(previous_crop, current_crop, start, None, winSize = FLOW_WINDOW, maxLevel = FLOW_LEVELS, criteria = FLOW_CRITERIA)
		backward, status_backward, _ = cv2.calcOpticalFlowPyrLK(current_crop, previous_crop, forward, None, winSize = FLOW_WINDOW, maxLevel = FLOW_LEVELS, criteria = FLOW_CRITERIA)
		followed = (status_forward.ravel() == 1) & (status_backward.ravel() == 1) & np.all(np.isfinite(forward.reshape(-1, 2)), axis = 1)
		error = np.linalg.norm((backward - start).reshape(-1, 2), axis = 1) / scale
		moved = (forward.reshape(-1, 2) + origin) / scale
		offset = 0
		for track, count in owners:
			span = slice(offset, offset + count)
			offset += count
			results[track.token] = self.fit_track_motion(track, all_points[span], moved[span], followed[span], error[span], frame_shape)
		return results

	def fit_track_motion(self, track: Track, before: np.ndarray, after: np.ndarray, followed: np.ndarray, error: np.ndarray, frame_shape: Tuple[int, ...]) -> FlowResult:
		"""Judge one track's flow and fit its similarity. 'track-lost': too few points could be followed at all, or
		the face left the frame; 'flow-error': points were followed but too many disagree going back (the
		forward-backward error is over the limit), i.e. the flow is not to be trusted on this frame."""
		options = self.options
		count = len(before)
		median_error = float(np.median(error[followed])) if followed.any() else float('inf')
		if followed.sum() < max(MIN_FLOW_POINTS, options.flow_min_ratio * count):
			return FlowResult(False, reason = 'track-lost', error = median_error)
		good = followed & (error <= options.flow_error)
		if good.sum() < max(MIN_FLOW_POINTS, options.flow_min_ratio * count):
			return FlowResult(False, reason = 'flow-error', error = median_error)
		threshold = max(RANSAC_PIXELS, RANSAC_FACE_SHARE * face_scale(track.raw_box))
		motion, inliers = cv2.estimateAffinePartial2D(
			before[good].astype(np.float64), after[good].astype(np.float64), method = cv2.RANSAC, ransacReprojThreshold = threshold, maxIters = 500, confidence = 0.995
		)
		if motion is None or inliers is None or int(inliers.sum()) < max(MIN_FLOW_POINTS, options.flow_min_ratio * good.sum()):
			return FlowResult(False, reason = 'flow-error', error = median_error)
		moved_box = move_box(track.raw_box, motion)
		if inside_share(moved_box, frame_shape) < MIN_INSIDE_SHARE:
			return FlowResult(False, reason = 'track-lost', error = median_error)
		kept_points = after[good][inliers.ravel() == 1].astype(np.float32)
		return FlowResult(True, motion = motion, points = kept_points, error = median_error)

	def seed_points(self, track: Track, gray: np.ndarray) -> None:
		"""Corner features inside an ellipse over the face (not the box corners, which hold background that moves
		differently from the face), found on the flow image and stored in frame pixels."""
		scale = self.flow_scale
		height, width = gray.shape[:2]
		x1, y1, x2, y2 = (np.asarray(track.raw_box, dtype = np.float64) * scale).tolist()
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
			corners = cv2.goodFeaturesToTrack(region, MAX_FEATURES, FEATURE_QUALITY, distance, mask = mask, blockSize = 5)
			if corners is not None:
				points = (corners.reshape(-1, 2) + np.array([left, top], np.float32)) / scale
		if len(points) < MIN_FEATURES:
			# a face with little texture (blur, low light): follow the landmarks themselves and a grid over the face;
			# the forward-backward test still throws out the points that cannot be followed
			points = np.concatenate([points, fallback_points(track.raw_landmarks, track.raw_box)], axis = 0)
		track.points = points.astype(np.float32)
		track.seeded_points = len(track.points)

	# ------------------------------------------------------------ smoothing and output

	def create_smoother(self) -> Optional[LandmarkSmoother]:
		if self.options.smoothing != 'one-euro':
			return None
		return LandmarkSmoother(self.options.min_cutoff, self.options.beta, self.options.derivative_cutoff)

	def smooth(self, track: Track, timestamp: float, motion: Optional[Matrix]) -> None:
		if track.smoother is None:
			track.landmarks, track.box = track.raw_landmarks, track.raw_box
			return
		track.landmarks, track.box = track.smoother.smooth(track.raw_landmarks, track.raw_box, timestamp, motion)

	def smooth_affine(self, track_token: Optional[int], key: Any, matrix: Matrix, crop_size: Tuple[int, int], timestamp: float) -> Matrix:
		"""Smooth an alignment transform a caller built for a tracked face (e.g. from its box rather than from the
		already smoothed landmarks); key tells apart the transforms of one face (template, size). Unsmoothed when
		smoothing is off or the face is not tracked; reset with the track's landmark smoothing."""
		track = self.find_track(track_token)
		if track is None or self.options.smoothing != 'one-euro':
			return matrix
		smoother = track.affine_smoothers.get(key)
		if smoother is None:
			smoother = track.affine_smoothers[key] = AffineSmoother(crop_size, self.options.min_cutoff, self.options.beta, self.options.derivative_cutoff)
		return smoother.smooth(matrix, timestamp)

	def make_face(self, track: Track) -> Face:
		face = Face(
			bounding_box = np.asarray(track.box, dtype = np.float32).copy(),
			score_set = FaceScoreSet(track.score_set.detector, track.score_set.landmarker),
			landmark_set = copy_landmarks(track.landmarks),
			angle = track.angle,
			track_token = track.token
		)
		if self.options.tracker == 'optical-flow':
			# per-frame mode (none) analyses identity on every frame as 3.5.0 does; only tracking carries it over
			face.embedding, face.embedding_norm = track.embedding, track.embedding_norm
			face.gender, face.age, face.race = track.gender, track.age, track.race
			track.recent_faces.append(face)
		return face

	def harvest(self) -> None:
		"""Keep what stages downstream computed on last frame's faces (an embedding, classes) on their tracks, so it is
		computed once per track instead of once per frame."""
		for track in self.tracks:
			for face in track.recent_faces:
				if track.embedding is None and face.embedding is not None and face.embedding_norm is not None:
					fold_embedding(track, face.embedding, face.embedding_norm)
				if track.gender is None and face.gender is not None:
					track.gender, track.age, track.race = face.gender, face.age, face.race

	def find_track(self, track_token: Optional[int]) -> Optional[Track]:
		if track_token is None:
			return None
		return next((track for track in self.tracks if track.token == track_token), None)

	def export_frame(self, frame_index: int, reason: Optional[str]) -> None:
		faces = [ExportedFace(track.token, track.raw_landmarks.five_68, track.landmarks.five_68) for track in self.tracks]
		self.exporter.add_frame(ExportedFrame(frame_index, reason is not None, reason, faces))

	# ------------------------------------------------------------ selection through the tracks

	def select_faces(self, frame: VisionFrame, faces: Sequence[Face], reference_faces: Optional[Sequence[Face]] = None) -> List[Face]:
		"""--face-selector-mode applied to this frame's tracked faces, with the per-track caches: the reference
		decision is made per track (again on keyframes, with hysteresis) and 'one' stays on the same track while it
		lives. With --face-tracker none it is exactly the per-frame selector (3.5.0)."""
		config = self.config
		if self.options.tracker == 'none':
			return select_faces_per_frame(frame, self.analyser, config, reference_faces, faces = faces)
		mode = config.face_selector_mode
		if mode == 'reference':
			return self.select_by_reference(frame, faces, reference_faces)
		if needs_classification(config):
			missing = [face for face in faces if face.gender is None or face.age is None or face.race is None]
			if missing:
				self.analyser.ensure_classification(frame, missing)
				for face in missing:
					track = self.find_track(face.track_token)
					if track is not None:
						track.gender, track.age, track.race = face.gender, face.age, face.race
		selected = sort_and_filter_faces(faces, config)
		if mode == 'one':
			chosen = next((face for face in selected if face.track_token == self.selected_token), None) if self.selected_token is not None else None
			chosen = chosen or (selected[0] if selected else None)
			self.selected_token = chosen.track_token if chosen is not None else None
			return [chosen] if chosen is not None else []
		return selected

	def select_by_reference(self, frame: VisionFrame, faces: Sequence[Face], reference_faces: Optional[Sequence[Face]]) -> List[Face]:
		if not reference_faces or not faces:
			return []
		signature = tuple(id(face) for face in reference_faces)
		if signature != self.reference_signature:
			# other reference faces: every decision made so far is about the wrong question
			self.reference_signature = signature
			for track in self.tracks:
				track.reference_match = None
				track.reference_stale = True
		missing = [face for face in faces if face.embedding is None or face.embedding_norm is None]
		if missing:
			self.analyser.ensure_embeddings(frame, missing)
			for face in missing:
				track = self.find_track(face.track_token)
				if track is not None and track.embedding is None:
					fold_embedding(track, face.embedding, face.embedding_norm)
		selected = []
		for face in faces:
			track = self.find_track(face.track_token)
			if track is None:
				# not from this tracker: decide on the spot, as 3.5.0 does
				if any(calculate_face_distance(face, reference) < self.config.reference_face_distance for reference in reference_faces):
					selected.append(face)
				continue
			if track.reference_match is None or track.reference_stale:
				track.reference_match = self.decide_reference(track, reference_faces)
				track.reference_stale = False
			if track.reference_match:
				selected.append(face)
		return selected

	def decide_reference(self, track: Track, reference_faces: Sequence[Face]) -> bool:
		probe = Face(track.raw_box, track.score_set, track.raw_landmarks, track.angle, embedding = track.embedding, embedding_norm = track.embedding_norm)
		distance = min(calculate_face_distance(probe, reference) for reference in reference_faces)
		threshold = self.config.reference_face_distance
		if track.reference_match is None:
			return distance < threshold
		# hysteresis: a match must drift clearly out to be dropped, a non-match clearly in to be taken
		if track.reference_match:
			return distance < threshold + REFERENCE_HYSTERESIS
		return distance < threshold - REFERENCE_HYSTERESIS


# ---------------------------------------------------------------- geometry helpers


def copy_landmarks(landmark_set: FaceLandmarkSet) -> FaceLandmarkSet:
	return FaceLandmarkSet(
		five = np.array(landmark_set.five, copy = True),
		five_68 = np.array(landmark_set.five_68, copy = True),
		sixty_eight = np.array(landmark_set.sixty_eight, copy = True),
		sixty_eight_5 = np.array(landmark_set.sixty_eight_5, copy = True)
	)


def move_points(points: Points, motion: Matrix) -> Points:
	array = np.asarray(points)
	dtype = array.dtype if array.dtype in (np.float32, np.float64) else np.float32
	return apply_affine(array, motion).reshape(array.shape).astype(dtype)


def move_landmarks(landmark_set: FaceLandmarkSet, motion: Matrix) -> FaceLandmarkSet:
	return FaceLandmarkSet(
		five = move_points(landmark_set.five, motion),
		five_68 = move_points(landmark_set.five_68, motion),
		sixty_eight = move_points(landmark_set.sixty_eight, motion),
		sixty_eight_5 = move_points(landmark_set.sixty_eight_5, motion)
	)


def move_box(box: BoundingBox, motion: Matrix) -> BoundingBox:
	"""The box moved by a similarity: its centre is moved and its sides scaled, and it stays axis-aligned (moving the
	corners and boxing them would grow the box a little with every rotated frame)."""
	x1, y1, x2, y2 = np.asarray(box, dtype = np.float64)[:4]
	centre = apply_affine(np.array([[(x1 + x2) * 0.5, (y1 + y2) * 0.5]]), motion)[0]
	scale = float(np.sqrt(abs(np.linalg.det(np.asarray(motion, dtype = np.float64)[:, :2]))))
	half = np.array([(x2 - x1) * 0.5, (y2 - y1) * 0.5]) * scale
	return np.concatenate([centre - half, centre + half]).astype(np.float32)


def flow_region(boxes: Sequence[BoundingBox], scale: float, shape: Tuple[int, ...]) -> Tuple[int, int, int, int]:
	"""The flow image region (left, top, right, bottom) holding every face with room around it for the motion
	the pyramid can follow (FLOW_MARGIN at the flow resolution, or half a face, whichever is more)."""
	height, width = shape[:2]
	array = np.asarray(boxes, dtype = np.float64).reshape(-1, 4) * scale
	sizes = np.maximum(array[:, 2] - array[:, 0], array[:, 3] - array[:, 1])
	margins = np.maximum(sizes * 0.5, FLOW_MARGIN)
	left = int(max(np.floor(np.min(array[:, 0] - margins)), 0))
	top = int(max(np.floor(np.min(array[:, 1] - margins)), 0))
	right = int(min(np.ceil(np.max(array[:, 2] + margins)), width))
	bottom = int(min(np.ceil(np.max(array[:, 3] + margins)), height))
	if right - left < 8 or bottom - top < 8:
		return 0, 0, width, height
	return left, top, right, bottom


def box_centre(box: BoundingBox) -> np.ndarray:
	x1, y1, x2, y2 = np.asarray(box, dtype = np.float64)[:4]
	return np.array([(x1 + x2) * 0.5, (y1 + y2) * 0.5])


def inside_share(box: BoundingBox, frame_shape: Tuple[int, ...]) -> float:
	x1, y1, x2, y2 = np.asarray(box, dtype = np.float64)[:4]
	area = max((x2 - x1) * (y2 - y1), 1e-6)
	height, width = frame_shape[:2]
	inside_w = max(0.0, min(x2, width) - max(x1, 0.0))
	inside_h = max(0.0, min(y2, height) - max(y1, 0.0))
	return float(inside_w * inside_h / area)


def fallback_points(landmark_set: FaceLandmarkSet, box: BoundingBox) -> np.ndarray:
	x1, y1, x2, y2 = np.asarray(box, dtype = np.float64)[:4]
	grid = np.array([[x1 + (x2 - x1) * u, y1 + (y2 - y1) * v] for u in (0.3, 0.5, 0.7) for v in (0.3, 0.5, 0.7)])
	return np.concatenate([np.asarray(landmark_set.five, dtype = np.float64).reshape(-1, 2), grid], axis = 0).astype(np.float32)


def fold_embedding(track: Track, embedding: Optional[Embedding], embedding_norm: Optional[Embedding]) -> None:
	"""Add an embedding to the track's running mean (equal weights for the first EMBEDDING_MEMORY, then a moving
	mean); the normalised one is renormalised so it stays a unit vector as the recognizer gives it."""
	if embedding is None or embedding_norm is None:
		return
	weight = 1.0 / min(track.embedding_count + 1, EMBEDDING_MEMORY)
	if track.embedding is None or track.embedding_norm is None:
		mean, mean_norm = np.asarray(embedding, np.float64), np.asarray(embedding_norm, np.float64)
	else:
		mean = (1.0 - weight) * np.asarray(track.embedding, np.float64) + weight * np.asarray(embedding, np.float64)
		mean_norm = (1.0 - weight) * np.asarray(track.embedding_norm, np.float64) + weight * np.asarray(embedding_norm, np.float64)
	mean_norm = mean_norm / max(float(np.linalg.norm(mean_norm)), 1e-12)
	track.embedding = mean.astype(np.float32)
	track.embedding_norm = mean_norm.astype(np.float32)
	track.embedding_count += 1
	track.reference_stale = True
