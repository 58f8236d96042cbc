"""Gender, age and race with fairface: arcface_112_v2 crop at 224, RGB, ImageNet mean / std."""
from __future__ import annotations

from typing import List, Sequence, Tuple

import numpy as np

from facefusion.face_helper import warp_face_by_face_landmark_5
from facefusion.inference.manager import InferenceManager
from facefusion.types import Points, VisionFrame

CLASSIFIER_MODEL = 'fairface'
CLASSIFIER_TEMPLATE = 'arcface_112_v2'
CLASSIFIER_SIZE = (224, 224)
CLASSIFIER_MEAN = np.array([0.485, 0.456, 0.406])
CLASSIFIER_STD = np.array([0.229, 0.224, 0.225])
RACES = {0: 'white', 1: 'black', 2: 'latino', 3: 'asian', 4: 'asian', 5: 'indian', 6: 'arabic'}
# age class id -> the very ranges 3.5.0 stores (exclusive end, so range(0, 2) holds 0 and 1); any other id is 70-100.
# Kept verbatim because the --face-selector-age filter intersects them.
AGE_RANGES = {
	0: range(0, 2), 1: range(3, 9), 2: range(10, 19), 3: range(20, 29), 4: range(30, 39), 5: range(40, 49),
	6: range(50, 59), 7: range(60, 69)
}
Classification = Tuple[str, range, str]


def categorize_gender(gender_id: int) -> str:
	return 'female' if gender_id == 1 else 'male'


def categorize_age(age_id: int) -> range:
	return AGE_RANGES.get(age_id, range(70, 100))


def categorize_race(race_id: int) -> str:
	return RACES.get(race_id, 'white')


def prepare_classifier_crop(frame: VisionFrame, landmark_5: Points) -> np.ndarray:
	"""CHW float32, RGB, (x / 255 - mean) / std."""
	crop, _ = warp_face_by_face_landmark_5(frame, landmark_5, CLASSIFIER_TEMPLATE, CLASSIFIER_SIZE)
	crop = crop.astype(np.float32)[:, :, ::-1] / 255.0
	# in place on float32, so each step rounds to float32 exactly as 3.5.0's does
	crop -= CLASSIFIER_MEAN
	crop /= CLASSIFIER_STD
	return np.ascontiguousarray(crop.transpose(2, 0, 1))


def classify_faces(frame_list: Sequence[VisionFrame], landmark_5_list: Sequence[Points], inference: InferenceManager) -> List[Classification]:
	"""(gender, age, race) of N faces in one batched call; the model outputs class ids race, gender, age."""
	if not len(landmark_5_list):
		return []
	batch = np.stack([prepare_classifier_crop(frame, points) for frame, points in zip(frame_list, landmark_5_list)])
	session = inference.get(CLASSIFIER_MODEL)
	race_ids, gender_ids, age_ids = (np.asarray(output).reshape(len(landmark_5_list), -1)[:, 0] for output in session.run_batch({session.input_names[0]: batch})[:3])
	return [
		(categorize_gender(int(gender_id)), categorize_age(int(age_id)), categorize_race(int(race_id)))
		for race_id, gender_id, age_id in zip(race_ids, gender_ids, age_ids)
	]
