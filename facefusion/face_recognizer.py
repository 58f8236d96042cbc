"""Face embeddings with arcface_w600k_r50: arcface_112_v2 crop, RGB, x / 127.5 - 1, raw and L2-normalised."""
from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np

from facefusion.face_helper import warp_face_by_face_landmark_5
from facefusion.inference.manager import InferenceManager
from facefusion.types import Embedding, Points, VisionFrame

RECOGNIZER_MODEL = 'arcface_w600k_r50'
RECOGNIZER_TEMPLATE = 'arcface_112_v2'
RECOGNIZER_SIZE = (112, 112)


def prepare_recognizer_crop(frame: VisionFrame, landmark_5: Points) -> np.ndarray:
	"""CHW float32 in [-1, 1], RGB."""
	crop, _ = warp_face_by_face_landmark_5(frame, landmark_5, RECOGNIZER_TEMPLATE, RECOGNIZER_SIZE)
	crop = crop.astype(np.float32) / 127.5 - 1
	return np.ascontiguousarray(crop[:, :, ::-1].transpose(2, 0, 1))


def normalize_embedding(embedding: Embedding) -> Embedding:
	norm = float(np.linalg.norm(embedding))
	# a zero vector has no direction; keep it zero instead of producing NaNs
	return embedding / norm if norm > 0 else np.zeros_like(embedding)


def calculate_face_embeddings(
	frame_list: Sequence[VisionFrame],
	landmark_5_list: Sequence[Points],
	inference: InferenceManager
) -> Tuple[np.ndarray, np.ndarray]:
	"""Embeddings of N faces (face i in frame_list[i]) in one batched call: (N, 512) raw and (N, 512) normalised."""
	if not len(landmark_5_list):
		return np.zeros((0, 512), np.float32), np.zeros((0, 512), np.float32)
	batch = np.stack([prepare_recognizer_crop(frame, points) for frame, points in zip(frame_list, landmark_5_list)])
	session = inference.get(RECOGNIZER_MODEL)
	embeddings = session.run_batch({session.input_names[0]: batch})[0]
	embeddings = embeddings.reshape(len(landmark_5_list), -1)
	norms = np.stack([normalize_embedding(embedding) for embedding in embeddings])
	return embeddings, norms
