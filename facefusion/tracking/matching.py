"""Which detection continues which track on a keyframe: live tracks by box overlap with where their flow says they
are now, lost tracks by position (a face coming back after an occlusion keeps its token)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Set

import numpy as np

from facefusion.face_helper import bounding_box_iou
from facefusion.tracking.flow import FlowResult
from facefusion.tracking.smoother import face_scale
from facefusion.tracking.track import Track, box_centre, move_box, move_landmarks
from facefusion.types import BoundingBox, Face, FaceLandmarkSet

# a lost track is taken up again by a detection whose box centre is within this many face sizes of where it was
LOST_MATCH_DISTANCE = 0.75
# and whose size is within this ratio of the track's
LOST_SIZE_RATIO = (0.5, 2.0)


@dataclass
class Prediction:
	"""Where a track's raw geometry is expected in the current frame."""
	landmarks: FaceLandmarkSet
	box: BoundingBox


def predict(track: Track, flow: Optional[FlowResult]) -> Prediction:
	"""Moved by the track's flow when that worked, else where it was."""
	if flow is not None and flow.ok and flow.motion is not None:
		return Prediction(move_landmarks(track.raw_landmarks, flow.motion), move_box(track.raw_box, flow.motion))
	return Prediction(track.raw_landmarks, track.raw_box)


def associate(predictions: Dict[int, Prediction], detections: Sequence[Face], min_iou: float) -> Dict[int, int]:
	"""Greedy one-to-one matching of tracks to detections by box overlap, best overlap first: token -> detection
	index, in the order the pairs were made."""
	candidates = []
	for token, prediction in predictions.items():
		for index, detection in enumerate(detections):
			overlap = bounding_box_iou(prediction.box, detection.bounding_box)
			if overlap >= min_iou:
				candidates.append((overlap, token, index))
	candidates.sort(key=lambda item: -item[0])
	used_detections: Set[int] = set()
	pairs: Dict[int, int] = {}
	for _, token, index in candidates:
		if token in pairs or index in used_detections:
			continue
		used_detections.add(index)
		pairs[token] = index
	return pairs


def overlaps_any(box: BoundingBox, detections: Sequence[Face], indices: Set[int], min_iou: float) -> bool:
	"""Does one of these detections sit where the box is (more than min_iou overlap)?"""
	return any(bounding_box_iou(box, detections[index].bounding_box) > min_iou for index in indices)


def match_lost_tracks(lost_tracks: Sequence[Track], detections: Sequence[Face], free: Sequence[int]) -> Dict[int, Track]:
	"""Detections no live track claimed, found near where a recently lost track was last seen (an occlusion, a
	blurred frame, a turn the flow could not follow): detection index -> the track it continues, closest first."""
	candidates = []
	for track in lost_tracks:
		last_centre = box_centre(track.raw_box)
		size = face_scale(track.raw_box)
		for index in free:
			box = detections[index].bounding_box
			ratio = face_scale(box) / size
			distance = float(np.linalg.norm(box_centre(box) - last_centre)) / size
			if distance <= LOST_MATCH_DISTANCE and LOST_SIZE_RATIO[0] <= ratio <= LOST_SIZE_RATIO[1]:
				candidates.append((distance, track.token, index, track))
	candidates.sort(key=lambda item: item[0])
	matches: Dict[int, Track] = {}
	used_tokens: Set[int] = set()
	for _, token, index, track in candidates:
		if token in used_tokens or index in matches:
			continue
		used_tokens.add(token)
		matches[index] = track
	return matches


def recent_lost_tracks(lost_tracks: Sequence[Track], frame_index: int, memory: float) -> List[Track]:
	"""The lost tracks lost at most memory frames ago; older ones are forgotten for good."""
	return [track for track in lost_tracks if track.lost_since is not None and frame_index - track.lost_since <= memory]
