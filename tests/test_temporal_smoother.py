"""The One-Euro filter, the landmark and transform smoothers, the scene-cut test and the tracking metrics, on
signals and clips whose truth is known exactly (no detector involved)."""
from __future__ import annotations

import math
from typing import List

import cv2
import numpy as np
import pytest

from facefusion.testing.camera_path import MemoryClip, Sprite, make_memory_clip
from facefusion.tracking.metrics import aligned_crop_tpsnr, landmark_error, landmark_jitter, match_faces_to_truth, pooled_jitter, psnr, relative_motion, temporal_psnr
from facefusion.tracking.smoother import LandmarkSmoother, OneEuroFilter, SceneCutDetector, scene_cut_score
from facefusion.types import FaceLandmarkSet

FPS = 30.0


def run_filter(one_filter: OneEuroFilter, values: np.ndarray) -> np.ndarray:
	return np.array([one_filter(np.atleast_1d(value), index / FPS) for index, value in enumerate(values)])


# ---------------------------------------------------------------- One-Euro


def test_one_euro_reduces_jitter_on_noisy_constant() -> None:
	random = np.random.default_rng(3)
	values = 100.0 + random.normal(0.0, 1.0, 300)
	smoothed = run_filter(OneEuroFilter(min_cutoff=1.0, beta=0.05, speed_mode='element'), values)[:, 0]
	raw_jitter = landmark_jitter([np.array([[value, 0.0]]) for value in values])
	smoothed_jitter = landmark_jitter([np.array([[value, 0.0]]) for value in smoothed])
	print(f'\nnoisy constant: jitter raw {raw_jitter:.3f} px -> One-Euro {smoothed_jitter:.3f} px')
	assert smoothed_jitter < 0.2 * raw_jitter
	# smoothing must not move the level
	assert abs(float(np.mean(smoothed[30:])) - 100.0) < 0.3


def test_one_euro_lags_little_on_fast_ramp() -> None:
	# 10 px per frame (300 px/s): a fixed 1 Hz low-pass trails it by ~48 px; the speed term must remove most of that
	values = np.arange(120) * 10.0
	adaptive = run_filter(OneEuroFilter(min_cutoff=1.0, beta=0.05, speed_mode='element'), values)[:, 0]
	fixed = run_filter(OneEuroFilter(min_cutoff=1.0, beta=0.0, speed_mode='element'), values)[:, 0]
	adaptive_lag = float(np.mean(values[60:] - adaptive[60:]))
	fixed_lag = float(np.mean(values[60:] - fixed[60:]))
	print(f'\nramp 10 px/frame: lag with speed adaptation {adaptive_lag:.2f} px, without {fixed_lag:.2f} px')
	assert adaptive_lag < 4.0
	assert adaptive_lag < 0.1 * fixed_lag


def test_one_euro_first_sample_passes_and_reset_forgets() -> None:
	one_filter = OneEuroFilter()
	first = one_filter(np.array([5.0, 7.0]), 0.0)
	np.testing.assert_allclose(first, [5.0, 7.0])
	one_filter(np.array([6.0, 8.0]), 1 / FPS)
	one_filter.reset()
	assert not one_filter.started
	np.testing.assert_allclose(one_filter(np.array([50.0, 70.0]), 2 / FPS), [50.0, 70.0])
	# a repeated timestamp must not divide by zero
	assert np.all(np.isfinite(one_filter(np.array([51.0, 71.0]), 2 / FPS)))


def test_shared_speed_keeps_the_shape() -> None:
	# two points, one still and one moving: with one shared cutoff both are filtered alike, so their offset (the
	# shape) only lags as a whole, never stretches more for the slow point than for the fast one
	shared = OneEuroFilter(min_cutoff=1.0, beta=0.05, speed_mode='shared')
	shape = np.array([[0.0, 0.0], [10.0, 0.0]])
	for index in range(60):
		offset = np.array([index * 5.0, 0.0])
		output = shared(shape + offset, index / FPS)
	np.testing.assert_allclose(output[1] - output[0], shape[1] - shape[0], atol=1e-6)


# ---------------------------------------------------------------- landmark and transform smoothers


def make_landmarks(points: np.ndarray) -> FaceLandmarkSet:
	five = points.astype(np.float32)
	sixty_eight = np.repeat(five, 14, axis=0)[:68]
	return FaceLandmarkSet(five=five, five_68=five.copy(), sixty_eight=sixty_eight, sixty_eight_5=sixty_eight.copy())


def similarity(angle_degrees: float, scale: float, shift: np.ndarray, centre: np.ndarray) -> np.ndarray:
	matrix = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), angle_degrees, scale)
	matrix[:, 2] += shift
	return matrix


def test_landmark_smoother_with_motion_follows_rigid_motion_without_lag() -> None:
	# a face moving fast (8 px/frame, turning and growing) with 1.5 px detector noise: given the frame-to-frame
	# motion, the smoother removes noise and does not trail the motion
	random = np.random.default_rng(5)
	true_points = np.array([[100.0, 100.0], [140.0, 100.0], [120.0, 125.0], [105.0, 145.0], [135.0, 145.0]])
	smoother = LandmarkSmoother(min_cutoff=0.5, beta=1.0)
	plain = LandmarkSmoother(min_cutoff=0.5, beta=1.0)
	raw_errors, smoothed_errors, plain_errors = [], [], []
	current = true_points.copy()
	motion = similarity(0.5, 1.004, np.array([8.0, 3.0]), true_points.mean(axis=0))
	for index in range(90):
		if index:
			current = cv2.transform(current.reshape(-1, 1, 2), motion).reshape(-1, 2)
		noisy = current + random.normal(0.0, 1.5, current.shape)
		box = np.concatenate([current.min(axis=0) - 30, current.max(axis=0) + 30])
		landmarks, _ = smoother.smooth(make_landmarks(noisy), box, index / FPS, motion if index else None)
		plain_landmarks, _ = plain.smooth(make_landmarks(noisy), box, index / FPS)
		if index >= 15:
			raw_errors.append(np.linalg.norm(noisy - current, axis=1).mean())
			smoothed_errors.append(np.linalg.norm(landmarks.five_68 - current, axis=1).mean())
			plain_errors.append(np.linalg.norm(plain_landmarks.five_68 - current, axis=1).mean())
	print(f'\nmoving face: error raw {np.mean(raw_errors):.2f} px, motion-compensated {np.mean(smoothed_errors):.2f} px, plain One-Euro {np.mean(plain_errors):.2f} px')
	assert np.mean(smoothed_errors) < 0.6 * np.mean(raw_errors)
	assert np.mean(smoothed_errors) < np.mean(plain_errors)


def test_landmark_smoother_reset_and_dtypes() -> None:
	smoother = LandmarkSmoother()
	points = np.array([[10.0, 10.0], [30.0, 10.0], [20.0, 20.0], [12.0, 30.0], [28.0, 30.0]])
	box = np.array([0.0, 0.0, 40.0, 40.0], np.float32)
	landmarks, smoothed_box = smoother.smooth(make_landmarks(points), box, 0.0)
	assert landmarks.five_68.dtype == np.float32 and landmarks.sixty_eight.shape == (68, 2)
	np.testing.assert_allclose(smoothed_box, box)
	smoother.smooth(make_landmarks(points + 1.0), box + 1.0, 1 / FPS)
	smoother.reset()
	assert not smoother.started and smoother.resets == 1
	jumped, _ = smoother.smooth(make_landmarks(points + 100.0), box + 100.0, 2 / FPS)
	np.testing.assert_allclose(jumped.five_68, points + 100.0, atol=1e-4)


# ---------------------------------------------------------------- scene cuts


@pytest.fixture(scope='module')
def cut_clip() -> MemoryClip:
	return make_memory_clip(width=320, height=240, frame_count=40, cut_at=22, sprites=(Sprite(enter_frame=5, slide_frames=10, centre_start=(375.0, 140.0), centre_end=(270.0, 140.0), scale=0.16),))


def test_scene_cut_fires_on_the_cut_frame_only(cut_clip: MemoryClip) -> None:
	detector = SceneCutDetector()
	fired = [index for index, frame in enumerate(cut_clip.frames) if detector.update(frame)]
	assert fired == cut_clip.cut_frames == [22]


def test_strong_pan_is_not_a_cut(cut_clip: MemoryClip) -> None:
	# a strong pan (a quarter of the frame in one step) within one photo is still not a cut
	frame = cut_clip.frames[10]
	detector = SceneCutDetector()
	assert not detector.update(frame)
	assert not detector.update(np.roll(frame, frame.shape[1] // 4, axis=1))


def test_scene_cut_score_margins(cut_clip: MemoryClip) -> None:
	detector = SceneCutDetector()
	scores = []
	for frame in cut_clip.frames:
		detector.update(frame)
		scores.append(scene_cut_score(*detector.last_scores))
	pan_scores = scores[1:22] + scores[23:]
	print(f'\nscene-cut score: cut {scores[22]:.2f}, largest within a shot {max(pan_scores):.2f} (threshold 1)')
	assert scores[22] > 1.3 and max(pan_scores) < 0.5


def test_a_large_frame_is_judged_as_from_its_whole_area(monkeypatch: pytest.MonkeyPatch) -> None:
	"""1080p frames are subsampled before the thumbnail's area average: the cut still fires on its frame only, and
	every score stays within 0.05 of what the average over every pixel gives (a cut needs 1)."""
	from facefusion.tracking import smoother
	clip = make_memory_clip(width=1920, height=1080, frame_count=24, cut_at=14, sprites=(Sprite(enter_frame=3, slide_frames=8, centre_start=(375.0, 140.0), centre_end=(270.0, 140.0), scale=0.16),))

	def scores_of(frames: List[np.ndarray]) -> List[float]:
		detector = SceneCutDetector()
		scores = []
		for frame in frames:
			detector.update(frame)
			scores.append(scene_cut_score(*detector.last_scores))
		return scores
	subsampled = scores_of(clip.frames)
	monkeypatch.setattr(smoother, 'SIGNATURE_SAMPLES', 10 ** 6)
	whole = scores_of(clip.frames)
	assert [index for index, score in enumerate(subsampled) if score >= 1.0] == clip.cut_frames == [14]
	assert max(abs(first - second) for first, second in zip(subsampled, whole)) < 0.05


# ---------------------------------------------------------------- metrics and the clip's ground truth


def test_jitter_and_error_definitions() -> None:
	# steady motion has no jitter; alternating +-1 px has second differences of 4 px (bar the ends)
	ramp = [np.array([[index * 3.0, index * 2.0]]) for index in range(10)]
	assert landmark_jitter(ramp) == pytest.approx(0.0)
	zigzag = [np.array([[(-1.0) ** index, 0.0]]) for index in range(10)]
	assert landmark_jitter(zigzag) == pytest.approx(4.0)
	# gaps break runs instead of bridging them
	assert math.isnan(landmark_jitter([ramp[0], None, ramp[2], None]))
	assert pooled_jitter([ramp, zigzag]) == pytest.approx(math.sqrt(16.0 * 8 / 16))
	truth = [np.zeros((5, 2)) for _ in range(4)]
	shifted = [np.full((5, 2), 3.0 / math.sqrt(2.0)) for _ in range(4)]
	assert landmark_error(shifted, truth) == pytest.approx(3.0)


def test_psnr_and_temporal_psnr(cut_clip: MemoryClip) -> None:
	frame = cut_clip.frames[5]
	assert psnr(frame, frame) == math.inf
	transforms = cut_clip.background_transforms()
	motion = relative_motion(transforms[4], transforms[5])
	box = np.array([100.0, 60.0, 220.0, 200.0])
	compensated = temporal_psnr(cut_clip.frames[4], frame, box, motion)
	plain = temporal_psnr(cut_clip.frames[4], frame, box)
	# warping by the known camera motion leaves mostly the sensor noise (sigma 2 per frame, about 39 dB)
	assert compensated > plain and compensated > 33.0


def test_clip_truth_follows_the_transforms(cut_clip: MemoryClip) -> None:
	layer = cut_clip.layer('shot1')
	layer.face_points = [np.array([[400.0, 200.0], [500.0, 200.0], [450.0, 260.0], [410.0, 300.0], [490.0, 300.0]])]
	layer.face_boxes = [np.array([350.0, 100.0, 550.0, 350.0])]
	try:
		truth = cut_clip.truth(3, fully_visible=False)
		matrix = layer.transforms[3]
		expected = layer.face_points[0] @ matrix[:, :2].T + matrix[:, 2]
		np.testing.assert_allclose(truth['shot1:0'], expected)
		# the first shot's face is gone after the cut
		assert 'shot1:0' not in cut_clip.truth(30, fully_visible=False)
		matches = match_faces_to_truth({'shot1:0': expected}, [expected + 50.0, expected + 0.5])
		assert matches == {'shot1:0': 1}
	finally:
		layer.face_points, layer.face_boxes = [], []


def test_clip_is_deterministic_and_sprite_slides_in() -> None:
	sprite = Sprite(enter_frame=2, slide_frames=6, centre_start=(375.0, 140.0), centre_end=(270.0, 140.0), scale=0.16)
	first = make_memory_clip(width=320, height=240, frame_count=12, cut_at=None, sprites=(sprite,))
	second = make_memory_clip(width=320, height=240, frame_count=12, cut_at=None, sprites=(sprite,))
	assert all(np.array_equal(a, b) for a, b in zip(first.frames, second.frames))
	layer = first.layer('sprite1')
	assert layer.transforms[1] is None and layer.transforms[2] is not None
	centres = [layer.transforms[index][0, 2] for index in range(2, 12)]
	assert all(later <= earlier for earlier, later in zip(centres, centres[1:]))
	# the sprite changes the picture where it is and nowhere else (same seed, so the same noise)
	without = make_memory_clip(width=320, height=240, frame_count=12, cut_at=None, sprites=())
	assert np.array_equal(first.frames[1], without.frames[1])
	changed = np.any(first.frames[11] != without.frames[11], axis=2)
	assert changed[140, 270] and not changed[:, :200].any()


def test_aligned_crop_tpsnr_prefers_steady_landmarks(cut_clip: MemoryClip) -> None:
	transforms = cut_clip.background_transforms()
	photo_points = np.array([[430.0, 210.0], [550.0, 210.0], [490.0, 270.0], [440.0, 320.0], [545.0, 320.0]])
	steady = [photo_points @ matrix[:, :2].T + matrix[:, 2] for matrix in transforms[:20]]
	random = np.random.default_rng(11)
	shaky = [points + random.normal(0.0, 2.0, points.shape) for points in steady]
	assert aligned_crop_tpsnr(cut_clip.frames[:20], steady) > aligned_crop_tpsnr(cut_clip.frames[:20], shaky) + 3.0
