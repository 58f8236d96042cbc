"""Which target faces get processed: --face-selector-mode one / many / reference, orders, filters."""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from facefusion.config import RunConfig
from facefusion.face_analyser import FaceAnalyser, needs_classification, pick_face
from facefusion.face_helper import bounding_box_area
from facefusion.types import Face, VisionFrame

# order -> (sort key, descending); Python's sort is stable, so ties keep the detector's order as in 3.5.0
SORT_KEYS: Dict[str, Tuple[Callable[[Face], float], bool]] = {
	'left-right': (lambda face: float(face.bounding_box[0]), False),
	'right-left': (lambda face: float(face.bounding_box[0]), True),
	'top-bottom': (lambda face: float(face.bounding_box[1]), False),
	'bottom-top': (lambda face: float(face.bounding_box[1]), True),
	'small-large': (lambda face: bounding_box_area(face.bounding_box), False),
	'large-small': (lambda face: bounding_box_area(face.bounding_box), True),
	'best-worst': (lambda face: float(face.score_set.detector), True),
	'worst-best': (lambda face: float(face.score_set.detector), False),
}


def sort_faces(faces: Sequence[Face], order: Optional[str]) -> List[Face]:
	if not order:
		return list(faces)
	if order not in SORT_KEYS:
		raise ValueError('unknown face selector order ' + repr(order))
	key, descending = SORT_KEYS[order]
	return sorted(faces, key=key, reverse=descending)


def age_filter_range(config: RunConfig) -> Optional[range]:
	"""range(start, end) when an age filter is set; a missing bound is 0 or 100."""
	start, end = config.face_selector_age_start, config.face_selector_age_end
	if not (start or end):
		return None
	return range(start or 0, 100 if end is None else end)


def ranges_intersect(first: range, second: range) -> bool:
	"""Do two step-1 ranges share a value (3.5.0 intersects them as sets)."""
	return len(first) > 0 and len(second) > 0 and first.start < second.stop and second.start < first.stop


def filter_faces(faces: Sequence[Face], config: RunConfig) -> List[Face]:
	"""Gender, race and age filters; faces need their classes (FaceAnalyser.ensure_classification)."""
	kept = list(faces)
	if config.face_selector_gender:
		kept = [face for face in kept if face.gender == config.face_selector_gender]
	if config.face_selector_race:
		kept = [face for face in kept if face.race == config.face_selector_race]
	age_range = age_filter_range(config)
	if age_range is not None:
		kept = [face for face in kept if face.age is not None and ranges_intersect(face.age, age_range)]
	return kept


def sort_and_filter_faces(faces: Sequence[Face], config: RunConfig) -> List[Face]:
	return filter_faces(sort_faces(faces, config.face_selector_order), config)


def calculate_face_distance(face: Face, reference_face: Face) -> float:
	"""(1 - cosine similarity) mapped [0, 2] -> [0, 1]; both faces need embedding_norm."""
	if face.embedding_norm is None or reference_face.embedding_norm is None:
		raise ValueError('face distance needs the embeddings of both faces')
	distance = 1.0 - float(np.dot(face.embedding_norm, reference_face.embedding_norm))
	return float(np.interp(distance, [0, 2], [0, 1]))


def compare_faces(face: Face, reference_face: Face, face_distance: float) -> bool:
	return calculate_face_distance(face, reference_face) < face_distance


def find_match_faces(reference_faces: Sequence[Face], target_faces: Sequence[Face], face_distance: float) -> List[Face]:
	"""Target faces within the distance of any reference face, in target order, each once."""
	matches: List[Face] = []
	for target_face in target_faces:
		if any(compare_faces(target_face, reference_face, face_distance) for reference_face in reference_faces):
			matches.append(target_face)
	return matches


def get_reference_faces(reference_frame: Optional[VisionFrame], analyser: FaceAnalyser, config: RunConfig) -> List[Face]:
	"""The reference face (sorted and filtered faces of the reference frame, --reference-face-position clamped), with
	its embedding; an empty list when the frame holds none."""
	if reference_frame is None:
		return []
	faces = analyser.get_many_faces(reference_frame, with_classification=needs_classification(config))
	reference_face = pick_face(sort_and_filter_faces(faces, config), config.reference_face_position)
	if reference_face is None:
		return []
	analyser.ensure_embeddings(reference_frame, [reference_face])
	return [reference_face]


def select_faces(
	frame: VisionFrame,
	analyser: FaceAnalyser,
	config: RunConfig,
	reference_faces: Optional[Sequence[Face]] = None,
	faces: Optional[Sequence[Face]] = None
) -> List[Face]:
	"""The target faces to process. Embeddings and classes are computed only when the mode or a filter needs them.
	``faces`` may carry the frame's faces when the caller already has them (e.g. from a tracker)."""
	mode = config.face_selector_mode
	if faces is None:
		faces = analyser.get_many_faces(frame)
	if mode == 'reference':
		# every unsorted, unfiltered target face close enough to a reference face
		if not reference_faces or not faces:
			return []
		analyser.ensure_embeddings(frame, faces)
		return find_match_faces(reference_faces, faces, config.reference_face_distance)
	if needs_classification(config):
		analyser.ensure_classification(frame, faces)
	selected = sort_and_filter_faces(faces, config)
	if mode == 'one':
		return selected[:1]
	return selected
