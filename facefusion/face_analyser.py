"""From a frame to Face records: detect, NMS, landmarks, angle, and on demand embeddings and classes.

Unlike 3.5.0, embeddings and classes are not computed for every face: callers ask for them (``with_embedding``,
``with_classification``, ``ensure_*``), and every model call covers all faces of a frame in one batch. The optional
cache is keyed by an explicit key the caller gives (e.g. a frame index); 3.5.0 hashes every frame's bytes instead.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Hashable, List, Optional, Sequence

import numpy as np

from facefusion.config import RunConfig
from facefusion.errors import ProcessingError
from facefusion.face_classifier import CLASSIFIER_MODEL, classify_faces
from facefusion.face_detector import detect_faces, detector_models
from facefusion.face_helper import apply_nms, bounding_box_area, convert_to_face_landmark_5, estimate_face_angle, get_nms_threshold
from facefusion.face_landmarker import detect_face_landmarks_68, estimate_face_landmarks_68_5, landmarker_models
from facefusion.face_recognizer import RECOGNIZER_MODEL, calculate_face_embeddings
from facefusion.inference.manager import InferenceManager
from facefusion.logger import get_logger
from facefusion.types import Face, FaceLandmarkSet, FaceScoreSet, VisionFrame

CACHE_SIZE = 16


def needs_classification(config: RunConfig) -> bool:
	"""A gender, race or age filter is set (3.5.0 treats an age start of 0 without an end as no filter)."""
	return bool(config.face_selector_gender or config.face_selector_race or config.face_selector_age_start or config.face_selector_age_end)


class FaceAnalyser:
	def __init__(self, config: RunConfig, inference: InferenceManager) -> None:
		self.config = config
		self.inference = inference
		self.cache: 'OrderedDict[Hashable, List[Face]]' = OrderedDict()
		self.lock = threading.Lock()

	@staticmethod
	def required_models(config: RunConfig) -> List[str]:
		"""Model keys the analysis needs under this config: the recognizer in reference mode (a processor that needs
		embeddings, such as the swapper for its source, names it itself), the classifier when a filter is set."""
		names = detector_models(config.face_detector_model) + ['fan_68_5']
		if config.face_landmarker_score > 0:
			names += landmarker_models(config.face_landmarker_model)
		if config.face_selector_mode == 'reference':
			names.append(RECOGNIZER_MODEL)
		if needs_classification(config):
			names.append(CLASSIFIER_MODEL)
		return list(dict.fromkeys(names))

	def get_many_faces(
		self,
		frame: VisionFrame,
		with_embedding: bool = False,
		with_classification: bool = False,
		cache_key: Optional[Hashable] = None
	) -> List[Face]:
		"""Every face of the frame, best detector score first. With a cache_key the faces are kept (a few keys, most
		recent first) and reused, and missing embeddings / classes are filled in on the cached records."""
		faces = self.cached_faces(cache_key)
		if faces is None:
			faces = self.create_faces(frame)
			self.store_faces(cache_key, faces)
		if with_embedding:
			self.ensure_embeddings(frame, faces)
		if with_classification:
			self.ensure_classification(frame, faces)
		return list(faces)

	def cached_faces(self, cache_key: Optional[Hashable]) -> Optional[List[Face]]:
		if cache_key is None:
			return None
		with self.lock:
			faces = self.cache.get(cache_key)
			if faces is not None:
				self.cache.move_to_end(cache_key)
			return faces

	def store_faces(self, cache_key: Optional[Hashable], faces: List[Face]) -> None:
		if cache_key is None:
			return
		with self.lock:
			self.cache[cache_key] = faces
			self.cache.move_to_end(cache_key)
			while len(self.cache) > CACHE_SIZE:
				self.cache.popitem(last=False)

	def create_faces(self, frame: VisionFrame) -> List[Face]:
		"""detect -> NMS -> 68/5 -> angle -> 68 (when asked for) -> 5/68, batched across the kept faces."""
		config = self.config
		# a score of 0 means no faces in 3.5.0; a blank frame cannot hold one either
		if config.face_detector_score <= 0 or not np.any(frame):
			return []
		boxes, scores, landmarks_5 = detect_faces(frame, config, self.inference)
		if not len(scores):
			return []
		nms_threshold = get_nms_threshold(config.face_detector_model, config.face_detector_angles)
		keep = apply_nms(boxes, scores, config.face_detector_score, nms_threshold)
		if not keep:
			return []
		boxes, scores, landmarks_5 = boxes[keep], scores[keep], landmarks_5[keep]
		landmarks_68_5 = estimate_face_landmarks_68_5(list(landmarks_5), self.inference)
		angles = [estimate_face_angle(points) for points in landmarks_68_5]
		landmarks_68 = list(landmarks_68_5)
		landmark_scores = [0.0] * len(keep)
		if config.face_landmarker_score > 0:
			landmarks_68, landmark_scores = detect_face_landmarks_68(frame, list(boxes), angles, config, self.inference)
		faces = []
		for index in range(len(keep)):
			# a copy, so that smoothing one set in place can never move the other
			landmark_5_68 = landmarks_5[index].copy()
			if landmark_scores[index] > config.face_landmarker_score:
				landmark_5_68 = convert_to_face_landmark_5(landmarks_68[index]).astype(np.float32)
			faces.append(Face(
				bounding_box=boxes[index],
				score_set=FaceScoreSet(detector=float(scores[index]), landmarker=float(landmark_scores[index])),
				landmark_set=FaceLandmarkSet(
					five=landmarks_5[index],
					five_68=landmark_5_68,
					sixty_eight=landmarks_68[index],
					sixty_eight_5=landmarks_68_5[index]
				),
				angle=angles[index]
			))
		return faces

	def ensure_embeddings(self, frame: VisionFrame, faces: Sequence[Face]) -> Sequence[Face]:
		"""Fill embedding / embedding_norm where missing (one batched call for all of them); returns the faces."""
		missing = [face for face in faces if face.embedding is None or face.embedding_norm is None]
		if missing:
			embeddings, norms = calculate_face_embeddings([frame] * len(missing), [face.landmark_set.five_68 for face in missing], self.inference)
			for face, embedding, norm in zip(missing, embeddings, norms):
				face.embedding = embedding
				face.embedding_norm = norm
		return faces

	def ensure_classification(self, frame: VisionFrame, faces: Sequence[Face]) -> Sequence[Face]:
		"""Fill gender / age / race where missing (one batched call); returns the faces."""
		missing = [face for face in faces if face.gender is None or face.age is None or face.race is None]
		if missing:
			results = classify_faces([frame] * len(missing), [face.landmark_set.five_68 for face in missing], self.inference)
			for face, (gender, age, race) in zip(missing, results):
				face.gender = gender
				face.age = age
				face.race = race
		return faces

	def get_average_face(self, frames: Sequence[VisionFrame]) -> Face:
		"""The source identity: the largest face of each source image, embeddings (raw and normed) averaged; every
		other field from the first. Raises ProcessingError when no source image holds a face."""
		chosen_frames = []
		chosen_faces = []
		for index, frame in enumerate(frames):
			faces = self.get_many_faces(frame)
			if not faces:
				get_logger().warning('no face detected in source image %d, it is left out', index + 1)
				continue
			# sorted() is stable, so equal areas keep the detector's order, as 3.5.0's large-small sort does
			chosen_faces.append(sorted(faces, key=lambda face: bounding_box_area(face.bounding_box), reverse=True)[0])
			chosen_frames.append(frame)
		if not chosen_faces:
			raise ProcessingError('no face detected in source ' + ('image' if len(frames) == 1 else 'images'))
		# one batched recognizer call across all source images, for the faces that have no embedding yet
		missing = [index for index, face in enumerate(chosen_faces) if face.embedding is None or face.embedding_norm is None]
		if missing:
			embeddings, norms = calculate_face_embeddings(
				[chosen_frames[index] for index in missing],
				[chosen_faces[index].landmark_set.five_68 for index in missing],
				self.inference
			)
			for index, embedding, norm in zip(missing, embeddings, norms):
				chosen_faces[index].embedding = embedding
				chosen_faces[index].embedding_norm = norm
		first = chosen_faces[0]
		return Face(
			bounding_box=first.bounding_box,
			score_set=first.score_set,
			landmark_set=first.landmark_set,
			angle=first.angle,
			embedding=np.mean([face.embedding for face in chosen_faces], axis=0),
			embedding_norm=np.mean([face.embedding_norm for face in chosen_faces], axis=0),
			gender=first.gender,
			age=first.age,
			race=first.race
		)


def pick_face(faces: Sequence[Face], position: int = 0) -> Optional[Face]:
	"""The face at position, clamped to the last one; None when there are none."""
	if not faces:
		return None
	return faces[min(max(position, 0), len(faces) - 1)]
