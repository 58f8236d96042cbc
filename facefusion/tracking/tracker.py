"""Faces in a video as tracks: full analysis on keyframes, optical flow in between, smoothing per track.

Per frame the caller hands in the frame and gets back the faces of that frame, each with a stable ``track_token``:

- **Keyframes** (``keyframes``) run the full analysis (detector, 68/5, landmarker when asked for). Detections are
  matched to the tracks (``matching``: box overlap with where the flow says each track is now); unmatched detections
  start new tracks, so a face that enters between keyframes is picked up at the next keyframe at the latest.
- **Between keyframes** each track's landmarks and box are carried by pyramidal Lucas-Kanade flow (``flow``).
- **Identity hangs off the track** (``identity``): embedding (a running mean over keyframes), gender / age / race,
  and the reference-match decision (with hysteresis) are kept per track, so a face does not flicker between swapped
  and unswapped when its similarity wobbles around the threshold, and the recognizer runs once per track and then
  on keyframes only.
- **Smoothing** (``smoother``): One-Euro per track, motion-compensated with the flow similarity, reset on scene cuts
  and when a re-detection lands far from where the track was expected.

``--face-tracker none`` is 3.5.0's behaviour (full analysis on every frame); the faces still get track tokens (by
box overlap with the previous frame) so smoothing and export work the same way. Images never go through here.

The tracker is stateful and not thread-safe: process, select_faces and provide_embeddings run in one thread, frame
by frame in order. The faces it hands out are complete when they leave that thread; what later stages do with them
never flows back.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Set, Tuple

import numpy as np

from facefusion.config import RunConfig
from facefusion.face_analyser import FaceAnalyser
from facefusion.face_selector import select_faces as select_faces_per_frame
from facefusion.tracking.flow import FlowFollower, FlowResult, flow_image
from facefusion.tracking.identity import TrackIdentities
from facefusion.tracking.keyframes import KeyframePolicy
from facefusion.tracking.landmark_export import ExportedFace, ExportedFrame, LandmarkExporter
from facefusion.tracking.matching import Prediction, associate, match_lost_tracks, overlaps_any, predict, recent_lost_tracks
from facefusion.tracking.smoother import FrameSignature, LandmarkSmoother, SceneCutDetector, face_scale, frame_signature
from facefusion.tracking.track import TRACKER_KINDS, FrameReport, Track, TrackerOptions, TrackerStats, blend_box, blend_landmarks, copy_box, copy_landmarks, move_box, move_landmarks
from facefusion.types import BoundingBox, Face, FaceLandmarkSet, FaceScoreSet, Matrix, VisionFrame


@dataclass(frozen=True)
class FrameCues:
	"""What the tracker makes of a frame by itself, before any state comes in: its scene-cut signature and its flow
	image. Being stateless, they can be made for the next frames while the tracker works on this one."""
	signature: FrameSignature
	gray: Optional[np.ndarray]
	scale: float


def frame_cues(frame: VisionFrame, options: TrackerOptions) -> FrameCues:
	gray, scale = flow_image(frame) if options.uses_flow() else (None, 1.0)
	return FrameCues(frame_signature(frame), gray, scale)


class FaceTracker:
	def __init__(self, config: RunConfig, analyser: FaceAnalyser, fps: Optional[float] = None, options: Optional[TrackerOptions] = None) -> None:
		self.config = config
		self.analyser = analyser
		self.options = options or TrackerOptions.from_config(config, fps)
		if self.options.tracker not in TRACKER_KINDS:
			raise ValueError('unknown face tracker ' + repr(self.options.tracker))
		self.exporter: Optional[LandmarkExporter] = LandmarkExporter(self.options.export_path, self.options.fps) if self.options.export_path else None
		self.keyframes = KeyframePolicy(self.options.tracker, self.options.detect_interval)
		self.flow = FlowFollower(self.options.flow_error, self.options.flow_min_ratio)
		self.identities = TrackIdentities(config, analyser)
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
		# the last frame's flow image (None before the first frame, and when flow is not used)
		self.previous_gray: Optional[np.ndarray] = None
		self.frame_shape: Optional[Tuple[int, ...]] = None
		self.last_frame_index: Optional[int] = None
		self.cut_detector = SceneCutDetector()
		self.keyframes.reset()
		self.identities.reset()

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

	def process(self, frame_index: int, frame: VisionFrame, cues: Optional['FrameCues'] = None) -> List[Face]:
		"""The faces of this frame, each with its track token; frames must come in order. cues: what frame_cues makes
		of this frame, when it was made ahead (in a thread of its own); the result is the same either way."""
		options = self.options
		timestamp = frame_index / max(options.fps, 1e-6)
		jumped = self.last_frame_index is not None and frame_index <= self.last_frame_index
		if jumped or (self.frame_shape is not None and self.frame_shape != frame.shape):
			# frames out of order (a seek) or of another size: nothing can be carried across the jump
			self.forget()
		first = self.last_frame_index is None
		scene_cut = self.cut_detector.update(frame, cues.signature if cues is not None else None)
		if cues is not None and cues.gray is not None and options.uses_flow():
			gray, self.flow.scale = cues.gray, cues.scale
		else:
			gray = self.flow.image(frame) if options.uses_flow() else None
		if scene_cut and not first:
			self.stats.scene_cuts.append(frame_index)
			# a new shot: nothing of the old one may carry over, not positions, not smoothing, not identities
			self.tracks = []
			self.lost_tracks = []
			self.identities.reset()
		flows: Dict[int, FlowResult] = {}
		if gray is not None and self.previous_gray is not None and not scene_cut and self.tracks:
			flows = self.flow.follow(self.tracks, self.previous_gray, gray, frame.shape)
		self.lost_tracks = recent_lost_tracks(self.lost_tracks, frame_index, max(options.lost_memory * options.fps, options.detect_interval))
		decision = self.keyframes.decide(frame_index, first, scene_cut, [track.lost_since for track in self.lost_tracks], flows)
		self.stats.flow_failures += decision.flow_failures
		if decision.keyframe:
			self.run_keyframe(frame_index, frame, gray, flows, timestamp)
			self.stats.keyframes += 1
			self.stats.reasons[decision.reason] += 1
			self.stats.keyframe_indices.append(frame_index)
		else:
			self.carry_tracks(gray, flows, timestamp)
		self.previous_gray = gray
		self.frame_shape = frame.shape
		self.last_frame_index = frame_index
		self.stats.frames += 1
		faces = [self.make_face(track) for track in self.tracks]
		motions = {token: np.array(flow.motion, copy=True) for token, flow in flows.items() if flow.ok and flow.motion is not None}
		self.last_report = FrameReport(frame_index, decision.keyframe, decision.reason, scene_cut, [track.token for track in self.tracks], motions)
		if self.exporter is not None:
			self.export_frame(frame_index, decision.reason)
		return faces

	def select_faces(self, frame: VisionFrame, faces: Sequence[Face], reference_faces: Optional[Sequence[Face]] = None) -> List[Face]:
		"""--face-selector-mode applied to this frame's tracked faces, with the per-track identities; with
		--face-tracker none it is exactly the per-frame selector (3.5.0)."""
		if self.options.tracker == 'none':
			return select_faces_per_frame(frame, self.analyser, self.config, reference_faces, faces=faces)
		return self.identities.select(frame, faces, self.tracks_by_token(), reference_faces)

	def provide_embeddings(self, frame: VisionFrame, faces: Sequence[Face]) -> None:
		"""Fill in the target embeddings of faces this tracker handed out for this frame, before they go downstream
		(for processors that need them). Tracked: computed once per track, on the first frame it is asked for, and
		from then on the track's running mean. With --face-tracker none: computed on this frame, as 3.5.0 does."""
		if self.options.tracker == 'none':
			self.analyser.ensure_embeddings(frame, faces)
			return
		self.identities.provide_embeddings(frame, faces, self.tracks_by_token())

	def find_track(self, track_token: Optional[int]) -> Optional[Track]:
		if track_token is None:
			return None
		return next((track for track in self.tracks if track.token == track_token), None)

	def tracks_by_token(self) -> Dict[int, Track]:
		return {track.token: track for track in self.tracks}

	# ------------------------------------------------------------ keyframes

	def run_keyframe(self, frame_index: int, frame: VisionFrame, gray: Optional[np.ndarray], flows: Dict[int, FlowResult], timestamp: float) -> None:
		detections = self.analyser.get_many_faces(frame)
		self.stats.detector_runs += 1
		kept, lost_now, claimed = self.continue_tracks(detections, flows, frame_index, timestamp)
		free = [index for index in range(len(detections)) if index not in claimed]
		revived = self.revive_lost_tracks(self.lost_tracks + lost_now, detections, free, frame_index, timestamp)
		for index in free:
			kept.append(revived[index] if index in revived else self.start_track(detections[index], frame_index, timestamp))
		revived_tokens = {track.token for track in revived.values()}
		self.lost_tracks = [track for track in self.lost_tracks + lost_now if track.token not in revived_tokens]
		# best detector score first, as the analyser orders faces
		kept.sort(key=lambda track: -track.score_set.detector)
		self.tracks = kept
		if gray is not None:
			# keyframes re-seed every track's flow points on the fresh geometry
			for track in kept:
				self.flow.seed(track, gray)
		if self.options.tracker == 'optical-flow':
			self.identities.refresh_embeddings(frame, [track for track in kept if track.last_detected_frame == frame_index])

	def continue_tracks(self, detections: Sequence[Face], flows: Dict[int, FlowResult], frame_index: int, timestamp: float) -> Tuple[List[Track], List[Track], Set[int]]:
		"""The live tracks that go on (matched to a detection, or bridged by their flow), the ones lost on this
		keyframe, and the detections claimed."""
		options = self.options
		predictions = {track.token: predict(track, flows.get(track.token)) for track in self.tracks}
		pairs = associate(predictions, detections, options.match_iou)
		claimed = set(pairs.values())
		kept: List[Track] = []
		lost_now: List[Track] = []
		for track in self.tracks:
			flow = flows.get(track.token)
			if track.token in pairs:
				self.update_from_detection(track, detections[pairs[track.token]], predictions[track.token], flow, frame_index, timestamp)
				kept.append(track)
				continue
			# undetected: bridge a missed detection with the flow (tracking mode only: per-frame mode hands out what
			# the detector found, as 3.5.0), unless the flow failed too or a detection that went to another track
			# now sits where this one is (two tracks on one face, one of them is dropped for good)
			overlaps = overlaps_any(predictions[track.token].box, detections, claimed, options.match_iou)
			bridge = options.tracker == 'optical-flow' and flow is not None and flow.ok and track.missed_keyframes < options.max_missed_keyframes
			if bridge and not overlaps:
				track.missed_keyframes += 1
				self.update_from_flow(track, flow, timestamp)
				kept.append(track)
			elif not overlaps:
				track.lost_since = frame_index
				lost_now.append(track)
		return kept, lost_now, claimed

	def revive_lost_tracks(self, lost_tracks: Sequence[Track], detections: Sequence[Face], free: Sequence[int], frame_index: int, timestamp: float) -> Dict[int, Track]:
		"""Free detections near where a lost track was last seen continue that track under its token, with smoothing
		restarted (the face may have moved meanwhile) and identity checked again (position alone cannot prove it is
		the same person). Detection index -> revived track."""
		revived = match_lost_tracks(lost_tracks, detections, free)
		for index, track in revived.items():
			if track.smoother is not None and track.smoother.started:
				track.smoother.reset()
				self.stats.smoother_resets += 1
			track.lost_since = None
			track.identity.doubt()
			detection = detections[index]
			self.update_from_detection(track, detection, Prediction(detection.landmark_set, detection.bounding_box), None, frame_index, timestamp)
			self.stats.tracks_revived += 1
		return revived

	def start_track(self, detection: Face, frame_index: int, timestamp: float) -> Track:
		track = Track(
			token=self.next_token,
			raw_landmarks=copy_landmarks(detection.landmark_set),
			raw_box=copy_box(detection.bounding_box),
			landmarks=copy_landmarks(detection.landmark_set),
			box=copy_box(detection.bounding_box),
			score_set=detection.score_set,
			angle=detection.angle,
			born_frame=frame_index,
			last_detected_frame=frame_index,
			smoother=self.create_smoother()
		)
		self.next_token += 1
		self.stats.tracks_started += 1
		self.smooth(track, timestamp, None)
		return track

	def update_from_detection(self, track: Track, detection: Face, prediction: Prediction, flow: Optional[FlowResult], frame_index: int, timestamp: float) -> None:
		offset = float(np.mean(np.linalg.norm(np.asarray(detection.landmark_set.five_68, np.float64) - np.asarray(prediction.landmarks.five_68, np.float64), axis=1)))
		if track.smoother is not None and track.smoother.started and offset > self.options.reset_distance * face_scale(prediction.box):
			# the face is not where the track expected it (a jump the flow missed): smoothing towards the old
			# position would drag the landmarks across the gap, so start over from the detection
			track.smoother.reset()
			self.stats.smoother_resets += 1
		elif track.smoother is not None and self.options.tracker == 'optical-flow' and offset > self.options.snap_distance * face_scale(prediction.box):
			track.smoother.catch_up(self.options.snap_catch_up_frames)
		track.raw_landmarks, track.raw_box = self.fuse_detection(track, detection, prediction, flow, offset)
		track.score_set = detection.score_set
		track.angle = detection.angle
		track.last_detected_frame = frame_index
		track.missed_keyframes = 0
		motion = flow.motion if flow is not None and flow.ok else None
		self.smooth(track, timestamp, motion)

	def fuse_detection(self, track: Track, detection: Face, prediction: Prediction, flow: Optional[FlowResult], offset: float) -> Tuple[FaceLandmarkSet, BoundingBox]:
		"""The track's new raw geometry on a keyframe. Snapping to each detection turns the detector's noise (a
		pixel or two, independent from keyframe to keyframe) into a step every keyframe that the smoother then
		spreads into a drift over the next frames; the flow already carries the face between keyframes, so in
		optical-flow mode the detection is blended into the flow's prediction instead: a running mean of the
		detections in the flow-compensated frame (gain 1/(n+1)), with a floor so slow non-rigid changes are still
		followed, applied only to the part of the offset beyond the dead band (within it the offset is noise, and
		following it would move a still face for nothing). Per-frame mode (none), a track without flow and a
		detection far from the prediction snap."""
		options = self.options
		flowing = flow is not None and flow.ok and flow.motion is not None
		if options.tracker != 'optical-flow' or not flowing or offset > options.snap_distance * face_scale(prediction.box):
			track.blended_detections = 1
			return copy_landmarks(detection.landmark_set), copy_box(detection.bounding_box)
		gain = max(1.0 / (track.blended_detections + 1), options.detection_gain_floor)
		band = options.detection_dead_band * face_scale(prediction.box)
		gain *= max(0.0, 1.0 - band / offset) if offset > 0 else 0.0
		track.blended_detections += 1
		return blend_landmarks(prediction.landmarks, detection.landmark_set, gain), blend_box(prediction.box, detection.bounding_box, gain)

	# ------------------------------------------------------------ between keyframes

	def carry_tracks(self, gray: Optional[np.ndarray], flows: Dict[int, FlowResult], timestamp: float) -> None:
		for track in self.tracks:
			flow = flows.get(track.token)
			if gray is None or flow is None or not flow.ok:
				# only reachable without flow (no previous frame): keep the geometry, as a still face would
				self.smooth(track, timestamp, None)
				continue
			self.update_from_flow(track, flow, timestamp)
			if self.flow.needs_seeding(track):
				self.flow.seed(track, gray)

	def update_from_flow(self, track: Track, flow: FlowResult, timestamp: float) -> None:
		track.raw_landmarks = move_landmarks(track.raw_landmarks, flow.motion)
		track.raw_box = move_box(track.raw_box, flow.motion)
		track.points = flow.points
		self.smooth(track, timestamp, flow.motion)

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

	def make_face(self, track: Track) -> Face:
		face = Face(
			bounding_box=copy_box(track.box),
			score_set=FaceScoreSet(track.score_set.detector, track.score_set.landmarker),
			landmark_set=copy_landmarks(track.landmarks),
			angle=track.angle,
			track_token=track.token
		)
		if self.options.tracker == 'optical-flow':
			# per-frame mode (none) analyses identity on every frame as 3.5.0 does; only tracking carries it over
			identity = track.identity
			face.embedding, face.embedding_norm = identity.embedding, identity.embedding_norm
			face.gender, face.age, face.race = identity.gender, identity.age, identity.race
		return face

	def export_frame(self, frame_index: int, reason: Optional[str]) -> None:
		faces = [ExportedFace(track.token, track.raw_landmarks.five_68, track.landmarks.five_68) for track in self.tracks]
		self.exporter.add_frame(ExportedFrame(frame_index, reason is not None, reason, faces))
