"""The face tracker end to end: the real YuNet detector on an in-memory clip made from the real photos with a known
camera path (pan, zoom, small roll, a second face sliding in, a hard cut to a group photo), scored against the
true landmarks. Stand-ins fill the other model slots; with face_landmarker_score=0 the aligner's 5/68 points are
YuNet's own five, so the detector drives everything.

Run with -s to see the measured numbers (docs/tracking.md holds a copy of them).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import cv2
import numpy as np
import pytest

from facefusion.config import RunConfig
from facefusion.face_analyser import FaceAnalyser
from facefusion.face_recognizer import RECOGNIZER_MODEL
from facefusion.face_selector import calculate_face_distance
from facefusion.inference.manager import InferenceManager
from facefusion.inference.session import ModelSession
from facefusion.testing.camera_path import MemoryClip, locate_faces, make_memory_clip
from facefusion.tracking.identity import REFERENCE_HYSTERESIS, fold_embedding
from facefusion.tracking.landmark_export import export_as_arrays, read_landmark_export
from facefusion.tracking.metrics import aligned_crop_tpsnr, landmark_error, match_faces_to_truth, motion_compensated_tpsnr, paste_constant_face, pooled_error, pooled_jitter, relative_motion
from facefusion.tracking.track import Track, TrackerOptions
from facefusion.tracking.tracker import FaceTracker
from facefusion.types import Face, FaceLandmarkSet, FaceScoreSet

CUT = 51
SPRITE_KEY = 'sprite1:0'


@pytest.fixture(scope='module')
def config(standin_models_dir: Path) -> RunConfig:
	return RunConfig(models_path=str(standin_models_dir), face_detector_model='yunet', face_landmarker_score=0, face_selector_mode='many')


@pytest.fixture(scope='module')
def analyser(config: RunConfig) -> FaceAnalyser:
	return FaceAnalyser(config, InferenceManager(config))


@pytest.fixture(scope='module')
def clip(analyser: FaceAnalyser) -> MemoryClip:
	memory_clip = make_memory_clip(cut_at=CUT)
	return locate_faces(memory_clip, lambda frame: [(face.bounding_box, face.landmark_set.five) for face in analyser.get_many_faces(frame)])


@dataclass
class Run:
	tracker: FaceTracker
	# per frame: (token, aligner landmarks handed out, raw landmarks on the track)
	outputs: List[List[Tuple[int, np.ndarray, np.ndarray]]]
	seconds: float
	# per truth key: the handed-out landmarks / tokens matched to that face in each frame (None where unmatched)
	series: Dict[str, List[Optional[np.ndarray]]] = field(default_factory=dict)
	tokens: Dict[str, List[Optional[int]]] = field(default_factory=dict)


def run_tracker(clip: MemoryClip, config: RunConfig, analyser: FaceAnalyser, options: TrackerOptions, frame_count: Optional[int] = None) -> Run:
	tracker = FaceTracker(config, analyser, options=options)
	outputs = []
	start = time.perf_counter()
	for index, frame in enumerate(clip.frames[:frame_count or clip.frame_count]):
		faces = tracker.process(index, frame)
		raw = {track.token: track.raw_landmarks.five_68.copy() for track in tracker.tracks}
		outputs.append([(face.track_token, face.landmark_set.five_68.copy(), raw[face.track_token]) for face in faces])
	run = Run(tracker, outputs, time.perf_counter() - start)
	for key in clip.face_keys():
		run.series[key] = [None] * len(outputs)
		run.tokens[key] = [None] * len(outputs)
	for index, faces in enumerate(outputs):
		truth = clip.truth(index)
		matches = match_faces_to_truth(truth, [points for _, points, _ in faces])
		for key, face_index in matches.items():
			run.tokens[key][index] = faces[face_index][0]
			run.series[key][index] = faces[face_index][1]
	return run


def truth_series(clip: MemoryClip) -> Dict[str, List[Optional[np.ndarray]]]:
	series = {key: [None] * clip.frame_count for key in clip.face_keys()}
	for index in range(clip.frame_count):
		for key, points in clip.truth(index).items():
			series[key][index] = points
	return series


def swap_tpsnr(clip: MemoryClip, series: List[Optional[np.ndarray]]) -> float:
	"""tPSNR inside the true face box of a constant face pasted through each frame's landmarks, with the earlier
	frame warped by the known camera motion (first shot only: the motion is not defined across the cut)."""
	transforms = clip.background_transforms()
	frames = paste_constant_face(clip.frames[:CUT], series[:CUT])
	boxes = [clip.true_box('shot1:0', index) for index in range(CUT)]
	motions = [None] + [relative_motion(transforms[index - 1], transforms[index]) for index in range(1, CUT)]
	return motion_compensated_tpsnr(frames, boxes, motions)


MODES = {
	'per-frame (3.5.0)': TrackerOptions(tracker='none', smoothing='none'),
	'per-frame + one-euro': TrackerOptions(tracker='none', smoothing='one-euro'),
	'optical-flow': TrackerOptions(tracker='optical-flow', smoothing='none'),
	'optical-flow + one-euro (default)': TrackerOptions()
}
BASELINE = 'per-frame (3.5.0)'
DEFAULT = 'optical-flow + one-euro (default)'


@pytest.fixture(scope='module')
def runs(clip: MemoryClip, config: RunConfig, analyser: FaceAnalyser) -> Dict[str, Run]:
	return {name: run_tracker(clip, config, analyser, options) for name, options in MODES.items()}


@pytest.fixture(scope='module')
def measured(clip: MemoryClip, runs: Dict[str, Run]) -> Dict[str, Dict[str, float]]:
	truth = truth_series(clip)
	keys = clip.face_keys()
	table = {}
	for name, run in runs.items():
		table[name] = {
			'detector_runs': run.tracker.stats.detector_runs,
			'jitter': pooled_jitter(run.series.values()),
			'error': pooled_error([(run.series[key], truth[key]) for key in keys]),
			'crop_tpsnr': aligned_crop_tpsnr(clip.frames, run.series['shot1:0']),
			'swap_tpsnr': swap_tpsnr(clip, run.series['shot1:0']),
			'ms_per_frame': 1000.0 * run.seconds / clip.frame_count
		}
	print(f'\nclip: {clip.frame_count} frames {clip.width}x{clip.height}, cut at {CUT}, faces {keys}; truth jitter {pooled_jitter(truth.values()):.3f} px')
	print('| mode | detector runs | jitter (px) | error (px) | crop tPSNR (dB) | pasted-face tPSNR (dB) | ms/frame |')
	for name, row in table.items():
		cells = [str(row['detector_runs']), format(row['jitter'], '.3f'), format(row['error'], '.3f'), format(row['crop_tpsnr'], '.2f'), format(row['swap_tpsnr'], '.2f'), format(row['ms_per_frame'], '.1f')]
		print('| ' + name + ' | ' + ' | '.join(cells) + ' |')
	return table


# ---------------------------------------------------------------- the measurements a-e


def test_a_detector_runs_at_most_a_fifth_of_frames(clip: MemoryClip, runs: Dict[str, Run], measured: Dict[str, Dict[str, float]]) -> None:
	stats = runs[DEFAULT].tracker.stats
	print(f'\n(a) detector runs {stats.detector_runs} of {clip.frame_count} frames; keyframes {stats.keyframe_indices}; reasons {dict(stats.reasons)}')
	assert stats.detector_runs <= clip.frame_count / 5
	assert stats.detector_runs == stats.keyframes
	assert stats.reasons['first'] == 1 and stats.reasons['scene-cut'] == 1
	gaps = np.diff(stats.keyframe_indices)
	assert gaps.max() <= TrackerOptions().detect_interval


def test_tracking_steadies_the_pasted_face(measured: Dict[str, Dict[str, float]]) -> None:
	baseline, tracked = measured[BASELINE]['swap_tpsnr'], measured[DEFAULT]['swap_tpsnr']
	print(f'\ntPSNR of a constant face pasted through the landmarks: off {baseline:.2f} dB, on {tracked:.2f} dB')
	assert tracked > baseline + 3.0
	assert measured[DEFAULT]['crop_tpsnr'] > measured[BASELINE]['crop_tpsnr'] + 3.0


def test_per_frame_mode_runs_the_detector_every_frame(clip: MemoryClip, runs: Dict[str, Run]) -> None:
	for name in (BASELINE, 'per-frame + one-euro'):
		stats = runs[name].tracker.stats
		assert stats.detector_runs == clip.frame_count
		assert stats.keyframe_indices == list(range(clip.frame_count))


def test_b_jitter_at_least_halved(measured: Dict[str, Dict[str, float]]) -> None:
	baseline, tracked = measured[BASELINE]['jitter'], measured[DEFAULT]['jitter']
	print(f'\n(b) jitter per-frame {baseline:.3f} px -> tracked + smoothed {tracked:.3f} px ({100 * (1 - tracked / baseline):.0f}% lower)')
	assert tracked <= 0.5 * baseline


def test_c_error_no_worse_than_per_frame_detection(measured: Dict[str, Dict[str, float]]) -> None:
	baseline, tracked = measured[BASELINE]['error'], measured[DEFAULT]['error']
	print(f'\n(c) mean error vs truth: per-frame {baseline:.3f} px, tracked + smoothed {tracked:.3f} px')
	assert tracked <= baseline


def test_d_smoother_resets_at_the_cut(clip: MemoryClip, runs: Dict[str, Run]) -> None:
	run = runs[DEFAULT]
	assert run.tracker.stats.scene_cuts == clip.cut_frames == [CUT]
	before = {token for faces in run.outputs[:CUT] for token, _, _ in faces}
	at_cut = {token for token, _, _ in run.outputs[CUT]}
	assert at_cut and not at_cut & before
	# the first frame of a new track is the detection itself: nothing of the old shot is blended in
	for _, handed_out, raw in run.outputs[CUT]:
		np.testing.assert_allclose(handed_out, raw, atol=1e-4)
	truth = truth_series(clip)
	baseline = runs[BASELINE]
	after_keys = [key for key in clip.face_keys() if key.startswith('shot2')]
	window = slice(CUT, CUT + 4)
	tracked_error = pooled_error([(run.series[key][window], truth[key][window]) for key in after_keys])
	baseline_error = pooled_error([(baseline.series[key][window], truth[key][window]) for key in after_keys])
	print(f'\n(d) cut at {CUT}: new tokens {sorted(at_cut)}; error in the 4 frames after the cut {tracked_error:.3f} px (per-frame {baseline_error:.3f} px)')
	# a smear would drag the landmarks by the distance between the shots' faces, tens of pixels
	assert tracked_error <= baseline_error + 1.0


def test_e_entering_face_picked_up_at_first_keyframe(clip: MemoryClip, runs: Dict[str, Run]) -> None:
	run = runs[DEFAULT]
	appears = clip.first_fully_visible(SPRITE_KEY)
	assert appears is not None
	first_keyframe = min(index for index in run.tracker.stats.keyframe_indices if index >= appears)
	# when it was first tracked at all (it may be found while still partly outside the frame)
	entered = clip.layer(SPRITE_KEY.split(':')[0]).shown_frames()[0]
	first_tracked = next(index for index in range(entered, CUT) if match_faces_to_truth(
		{SPRITE_KEY: clip.true_points(SPRITE_KEY, index)}, [points for _, points, _ in run.outputs[index]]
	))
	print(f'\n(e) second face enters at frame {entered}, fully in view at {appears}; first keyframe after that {first_keyframe}; tracked from frame {first_tracked}')
	assert first_tracked <= first_keyframe
	assert run.tokens[SPRITE_KEY][first_keyframe] is not None
	# and from then on it stays tracked, under one token, until the cut takes it away
	tokens = run.tokens[SPRITE_KEY][first_keyframe:CUT]
	assert None not in tokens and len(set(tokens)) == 1


# ---------------------------------------------------------------- tracks and identity


def test_track_tokens_stable_through_the_pan(clip: MemoryClip, runs: Dict[str, Run]) -> None:
	for name in (DEFAULT, BASELINE):
		run = runs[name]
		for key in clip.face_keys():
			tokens = [token for token in run.tokens[key] if token is not None]
			assert len(set(tokens)) == 1, (name, key, sorted(set(tokens)))
		# every fully visible face is handed out in every frame
		for key in ('shot1:0', 'shot2:0', 'shot2:1'):
			visible = [index for index in range(clip.frame_count) if clip.is_fully_visible(key, index)]
			assert all(run.tokens[key][index] is not None for index in visible)


def test_flow_carries_landmarks_between_keyframes(clip: MemoryClip, runs: Dict[str, Run]) -> None:
	# without smoothing, the frames between keyframes are pure flow: they stay as close to the truth as detection
	truth = truth_series(clip)
	run, baseline = runs['optical-flow'], runs[BASELINE]
	keyframes = set(run.tracker.stats.keyframe_indices)
	between = [index for index in range(clip.frame_count) if index not in keyframes]
	key = 'shot1:0'
	flow_error = landmark_error([run.series[key][index] for index in between], [truth[key][index] for index in between])
	detect_error = landmark_error([baseline.series[key][index] for index in between], [truth[key][index] for index in between])
	print(f'\nbetween keyframes: flow-carried error {flow_error:.3f} px, per-frame detection {detect_error:.3f} px')
	assert flow_error <= detect_error * 1.25


def test_flow_on_a_large_frame_carries_as_well_from_its_bilinear_copy(config: RunConfig, analyser: FaceAnalyser, monkeypatch: pytest.MonkeyPatch) -> None:
	"""A 1080p frame's flow copy (1280 wide) is made by a bilinear resize: the flow carries the landmarks between
	keyframes as close to the truth as from the area-averaged copy it replaced."""
	from facefusion.tracking import flow
	large = make_memory_clip(width=1920, height=1080, frame_count=18, cut_at=None)
	large = locate_faces(large, lambda frame: [(face.bounding_box, face.landmark_set.five) for face in analyser.get_many_faces(frame)])
	gray, scale = flow.flow_image(large.frames[0])
	assert scale == pytest.approx(2 / 3) and np.array_equal(gray, cv2.resize(cv2.cvtColor(large.frames[0], cv2.COLOR_BGR2GRAY), None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR))
	truth = truth_series(large)

	def motion_error() -> float:
		# how far each step into a frame the flow carries moves the landmarks off the true step: the detector's own
		# offset from the truth cancels out
		run = run_tracker(large, config, analyser, MODES['optical-flow'])
		keyframes = set(run.tracker.stats.keyframe_indices)
		carried = [index for index in range(1, large.frame_count) if index not in keyframes]
		assert carried
		series = run.series['shot1:0']
		return landmark_error([series[index] - series[index - 1] for index in carried], [truth['shot1:0'][index] - truth['shot1:0'][index - 1] for index in carried])
	bilinear = motion_error()
	monkeypatch.setattr(flow, 'FLOW_LINEAR_MIN_SCALE', 2.0)
	area = motion_error()
	print(f'\n1080p, error of each flow step against the true motion: bilinear copy {bilinear:.3f} px, area copy {area:.3f} px')
	assert bilinear <= area * 1.15 + 0.05


def test_none_tracker_hands_out_the_analysers_faces(clip: MemoryClip, config: RunConfig, analyser: FaceAnalyser) -> None:
	tracker = FaceTracker(config, analyser, options=TrackerOptions(tracker='none', smoothing='none'))
	for index in (0, 1, 2):
		faces = tracker.process(index, clip.frames[index])
		expected = analyser.get_many_faces(clip.frames[index])
		assert len(faces) == len(expected)
		for face, reference in zip(faces, expected):
			np.testing.assert_array_equal(face.landmark_set.five_68, reference.landmark_set.five_68)
			np.testing.assert_array_equal(face.bounding_box, reference.bounding_box)
			assert face.track_token is not None and face.embedding is None


def test_reset_starts_over(clip: MemoryClip, config: RunConfig, analyser: FaceAnalyser) -> None:
	tracker = FaceTracker(config, analyser)
	first_tokens = [face.track_token for face in tracker.process(0, clip.frames[0])]
	tracker.process(1, clip.frames[1])
	assert tracker.last_report.keyframe is False
	tracker.reset()
	again = tracker.process(2, clip.frames[2])
	assert tracker.last_report.reason == 'first' and tracker.stats.frames == 1
	# tokens are never reused, so faces of two videos can never be confused
	assert not set(first_tokens) & {face.track_token for face in again}


class CountingAnalyser:
	"""The real analyser, counting the faces it computes embeddings for."""

	def __init__(self, analyser: FaceAnalyser) -> None:
		self.analyser = analyser
		self.embedded = 0

	def get_many_faces(self, frame: np.ndarray, with_embedding: bool = False, with_classification: bool = False) -> List[Face]:
		return self.analyser.get_many_faces(frame, with_embedding, with_classification)

	def ensure_embeddings(self, frame: np.ndarray, faces: List[Face]) -> List[Face]:
		self.embedded += sum(1 for face in faces if face.embedding is None)
		return self.analyser.ensure_embeddings(frame, faces)

	def ensure_classification(self, frame: np.ndarray, faces: List[Face]) -> List[Face]:
		return self.analyser.ensure_classification(frame, faces)


def test_reference_decision_kept_per_track_without_flicker(clip: MemoryClip, config: RunConfig, analyser: FaceAnalyser) -> None:
	reference = analyser.get_many_faces(clip.frames[0], with_embedding=True)[0]
	# per-frame distances of the group photo's closest face wobble from frame to frame; put the threshold in the
	# middle of that wobble, where per-frame decisions (3.5.0) flip
	distances = []
	for index in range(CUT, clip.frame_count):
		faces = analyser.get_many_faces(clip.frames[index], with_embedding=True)
		distances.append(min(calculate_face_distance(face, reference) for face in faces))
	threshold = float(np.median(distances))
	reference_config = config.with_changes(face_selector_mode='reference', reference_face_distance=threshold)
	flips: Dict[str, int] = {}
	embedded: Dict[str, int] = {}
	for mode in ('none', 'optical-flow'):
		counting = CountingAnalyser(analyser)
		# per-frame is 3.5.0 exactly: no tracking, no smoothing
		options = TrackerOptions(tracker='none', smoothing='none') if mode == 'none' else TrackerOptions()
		tracker = FaceTracker(reference_config, counting, options=options)
		chosen = []
		for index, frame in enumerate(clip.frames):
			faces = tracker.process(index, frame)
			selected = tracker.select_faces(frame, faces, [reference])
			chosen.append(len(selected))
		after_cut = chosen[CUT:]
		flips[mode] = int(np.sum(np.diff(after_cut) != 0))
		embedded[mode] = counting.embedded
		if mode == 'optical-flow':
			# the recognizer ran on keyframes only (at most two faces are in view), and the obama face was selected
			# in every frame before the cut
			assert counting.embedded <= 2 * tracker.stats.keyframes
			assert all(count == 1 for count in chosen[:CUT])
	print(f'\nreference threshold {threshold:.3f}: selection flips after the cut per-frame ' + str(flips['none']) + ', tracked ' + str(flips['optical-flow']) + '; embeddings computed per-frame ' + str(embedded['none']) + ', tracked ' + str(embedded['optical-flow']))
	assert embedded['none'] >= clip.frame_count
	assert flips['none'] >= 2
	assert flips['optical-flow'] == 0


class CountingRecognizer(ModelSession):
	"""The real recognizer session, noting the batch size of every call that reaches it (no mock: the calls run)."""
	batch_sizes: List[int]

	def run_batch(self, feed: Dict[str, Any]) -> List[np.ndarray]:
		self.batch_sizes.append(len(next(iter(feed.values()))))
		return super().run_batch(feed)


def counted_analyser(config: RunConfig) -> Tuple[FaceAnalyser, CountingRecognizer]:
	"""A fresh analyser (its own sessions) whose recognizer calls are counted."""
	analyser = FaceAnalyser(config, InferenceManager(config))
	original = analyser.inference.get(RECOGNIZER_MODEL)
	counting = CountingRecognizer(original.name, original.path, original.session, original.requested_providers, original.stage)
	counting.batch_sizes = []
	analyser.inference.sessions[RECOGNIZER_MODEL] = counting
	return analyser, counting


def test_provide_embeddings_once_per_track(clip: MemoryClip, config: RunConfig) -> None:
	# the workflow asks for target embeddings in the analyse thread, after selection: a track gets its embedding on
	# the first frame it is asked for (all new tracks of a frame in one call), and keyframes refresh it; the frames
	# in between cost no recognizer call at all
	analyser, recognizer = counted_analyser(config)
	tracker = FaceTracker(config, analyser)
	seen: set = set()
	faces_handed_out = 0
	for index, frame in enumerate(clip.frames[:CUT]):
		before_process = len(recognizer.batch_sizes)
		faces = tracker.select_faces(frame, tracker.process(index, frame))
		before_provide = len(recognizer.batch_sizes)
		tracker.provide_embeddings(frame, faces)
		new = [face.track_token for face in faces if face.track_token not in seen]
		seen.update(new)
		faces_handed_out += len(faces)
		assert recognizer.batch_sizes[before_provide:] == ([len(new)] if new else []), index
		if not tracker.last_report.keyframe:
			assert len(recognizer.batch_sizes) == before_process, index
		for face in faces:
			identity = tracker.find_track(face.track_token).identity
			assert face.embedding is identity.embedding and face.embedding_norm is identity.embedding_norm
	assert len(seen) >= 2
	refreshes = sum(recognizer.batch_sizes) - len(seen)
	print(f'\nprovide_embeddings: {faces_handed_out} faces handed out, {len(seen)} tracks, recognizer calls {recognizer.batch_sizes} ({refreshes} keyframe refreshes)')
	assert sum(recognizer.batch_sizes) < faces_handed_out / 3
	# the first track's embedding: its first frame, then the keyframes 6 and 12 (running mean, still a unit vector)
	first_track = min(seen)
	assert recognizer.batch_sizes[:3] == [1, 1, 1]
	np.testing.assert_allclose(np.linalg.norm(tracker.find_track(first_track).identity.embedding_norm), 1.0, atol=1e-5)


def test_provide_embeddings_is_repeatable(clip: MemoryClip, config: RunConfig, analyser: FaceAnalyser) -> None:
	# two runs over the same frames hand out the same embeddings, whatever a later stage writes on the faces it got
	# (as the swapper may, in its own threads): nothing flows back from a handed-out face into its track
	runs = []
	for scribble in (False, True):
		tracker = FaceTracker(config, analyser)
		embeddings = []
		for index, frame in enumerate(clip.frames[:14]):
			faces = tracker.select_faces(frame, tracker.process(index, frame))
			if index >= 3:
				tracker.provide_embeddings(frame, faces)
			embeddings.append([None if face.embedding is None else face.embedding.copy() for face in faces])
			if scribble:
				for face in faces:
					face.embedding = face.embedding_norm = np.full(512, 0.1, np.float32)
		runs.append(embeddings)
	plain, scribbled = runs
	assert all(embedding is None for faces in plain[:3] for embedding in faces)
	for first, second in zip(plain, scribbled):
		assert len(first) == len(second)
		for a, b in zip(first, second):
			assert (a is None and b is None) or np.array_equal(a, b)


def test_provide_embeddings_per_frame_without_tracking(clip: MemoryClip, config: RunConfig) -> None:
	# --face-tracker none: 3.5.0's per-frame analysis, one recognizer call per frame for that frame's faces
	analyser, recognizer = counted_analyser(config)
	tracker = FaceTracker(config, analyser, options=TrackerOptions(tracker='none', smoothing='none'))
	counts = []
	for index, frame in enumerate(clip.frames[:4]):
		faces = tracker.select_faces(frame, tracker.process(index, frame))
		tracker.provide_embeddings(frame, faces)
		counts.append(len(faces))
		expected = analyser.ensure_embeddings(frame, [Face(face.bounding_box, face.score_set, face.landmark_set, face.angle) for face in faces])
		for face, reference in zip(faces, expected):
			np.testing.assert_array_equal(face.embedding, reference.embedding)
	assert recognizer.batch_sizes == [count for count in counts for _ in (0, 1)] and all(counts)


def make_track(token: int) -> Track:
	points = np.zeros((5, 2), np.float32)
	landmarks = FaceLandmarkSet(points, points, np.zeros((68, 2), np.float32), np.zeros((68, 2), np.float32))
	box = np.array([0, 0, 10, 10], np.float32)
	return Track(token, landmarks, box, landmarks, box, FaceScoreSet(0.9), 0, 0, 0)


def unit(vector: np.ndarray) -> np.ndarray:
	return (vector / np.linalg.norm(vector)).astype(np.float32)


def test_reference_hysteresis(config: RunConfig, analyser: FaceAnalyser) -> None:
	tracker = FaceTracker(config.with_changes(reference_face_distance=0.3), analyser)
	base = unit(np.eye(512, dtype=np.float32)[0])
	reference = Face(np.zeros(4, np.float32), FaceScoreSet(0.9), make_track(0).raw_landmarks, embedding=base, embedding_norm=base)

	def at_distance(distance: float) -> np.ndarray:
		# calculate_face_distance maps 1 - cos from [0, 2] to [0, 1]: cos = 1 - 2 * distance
		cosine = 1.0 - 2.0 * distance
		return unit(cosine * np.eye(512, dtype=np.float32)[0] + np.sqrt(1 - cosine ** 2) * np.eye(512, dtype=np.float32)[1])

	track = make_track(1)
	identities = tracker.identities
	track.identity.embedding = track.identity.embedding_norm = at_distance(0.29)
	assert identities.decide_reference(track, [reference]) is True
	track.identity.reference_match = True
	# wobbling above the threshold, but within the hysteresis: still a match
	track.identity.embedding_norm = at_distance(0.3 + REFERENCE_HYSTERESIS * 0.5)
	assert identities.decide_reference(track, [reference]) is True
	track.identity.embedding_norm = at_distance(0.3 + REFERENCE_HYSTERESIS * 1.5)
	assert identities.decide_reference(track, [reference]) is False
	track.identity.reference_match = False
	track.identity.embedding_norm = at_distance(0.3 - REFERENCE_HYSTERESIS * 0.5)
	assert identities.decide_reference(track, [reference]) is False


def test_embedding_running_mean() -> None:
	identity = make_track(1).identity
	first, second = unit(np.ones(512, np.float32)), unit(np.arange(512, dtype=np.float32))
	fold_embedding(identity, first, first)
	np.testing.assert_allclose(identity.embedding_norm, first, atol=1e-6)
	fold_embedding(identity, second, second)
	np.testing.assert_allclose(identity.embedding_norm, unit(first + second), atol=1e-5)
	assert identity.embedding_count == 2 and identity.reference_stale


def test_one_mode_stays_on_its_track(clip: MemoryClip, config: RunConfig, analyser: FaceAnalyser) -> None:
	# 'one' with left-right order picks the leftmost face; the choice stays on that track while it lives
	one_config = config.with_changes(face_selector_mode='one', face_selector_order='left-right')
	tracker = FaceTracker(one_config, analyser)
	chosen = []
	for index, frame in enumerate(clip.frames[:CUT]):
		faces = tracker.process(index, frame)
		selected = tracker.select_faces(frame, faces)
		chosen.append(selected[0].track_token if selected else None)
	assert len(set(chosen)) == 1 and chosen[0] is not None


def test_options_from_config(config: RunConfig, analyser: FaceAnalyser) -> None:
	defaults = TrackerOptions.from_config(RunConfig())
	assert defaults == TrackerOptions()
	custom = TrackerOptions.from_config(RunConfig(
		face_tracker='none',
		face_tracker_detect_interval=3,
		temporal_smoothing='none',
		temporal_smoothing_min_cutoff=2.0,
		temporal_smoothing_beta=0.5,
		face_landmarks_export='x.json',
		output_video_fps=None
	), fps=25.0)
	assert (custom.tracker, custom.detect_interval, custom.smoothing, custom.min_cutoff, custom.beta, custom.export_path, custom.fps) == ('none', 3, 'none', 2.0, 0.5, 'x.json', 25.0)
	with pytest.raises(ValueError):
		FaceTracker(config, analyser, options=TrackerOptions(tracker='kalman'))


# ---------------------------------------------------------------- export


@pytest.mark.parametrize('extension', ['.json', '.csv'])
def test_landmarks_export(extension: str, tmp_path: Path, clip: MemoryClip, config: RunConfig, analyser: FaceAnalyser) -> None:
	path = tmp_path / ('landmarks' + extension)
	frame_count = 32
	run = run_tracker(clip, config, analyser, TrackerOptions(export_path=str(path)), frame_count)
	assert not path.exists()
	assert run.tracker.close() == str(path)
	assert path.exists() and not (tmp_path / ('landmarks' + extension + '.partial')).exists()
	frames = read_landmark_export(path)
	assert [frame.frame for frame in frames] == list(range(frame_count))
	keyframes = [frame.frame for frame in frames if frame.keyframe]
	assert keyframes == run.tracker.stats.keyframe_indices
	for frame, outputs in zip(frames, run.outputs):
		assert [face.track for face in frame.faces] == [token for token, _, _ in outputs]
		for face, (_, handed_out, raw) in zip(frame.faces, outputs):
			np.testing.assert_allclose(face.smoothed, handed_out, atol=1e-3)
			np.testing.assert_allclose(face.raw, raw, atol=1e-3)
	series = export_as_arrays(frames)
	assert all(entry['raw'].shape[1:] == (5, 2) for entry in series.values())
	# raw and smoothed differ somewhere (smoothing is on) and agree on each track's first frame
	assert any(not np.allclose(entry['raw'], entry['smoothed']) for entry in series.values())
	assert all(np.allclose(entry['raw'][0], entry['smoothed'][0], atol=1e-3) for entry in series.values())


def test_export_rejects_unknown_extension(tmp_path: Path, config: RunConfig, analyser: FaceAnalyser) -> None:
	from facefusion.errors import InputError
	with pytest.raises(InputError):
		FaceTracker(config, analyser, options=TrackerOptions(export_path=str(tmp_path / 'landmarks.txt')))


# ---------------------------------------------------------------- keyframes forced by the flow


def test_track_comes_back_after_an_occlusion(clip: MemoryClip, config: RunConfig, analyser: FaceAnalyser) -> None:
	# frames 9 and 10: the face is covered by noise; the flow fails, the face is lost, and it is looked for more
	# often than the interval until it is found again -- under its own token, with its smoothing restarted
	random = np.random.default_rng(0)
	frames = [frame.copy() for frame in clip.frames[:16]]
	x1, y1, x2, y2 = clip.true_box('shot1:0', 9).astype(int)
	for index in (9, 10):
		frames[index][y1:y2, x1:x2] = random.integers(0, 255, (y2 - y1, x2 - x1, 3), dtype=np.uint8)
	tracker = FaceTracker(config, analyser)
	tokens = []
	for index, frame in enumerate(frames):
		tokens.append([face.track_token for face in tracker.process(index, frame)])
	stats = tracker.stats
	print(f'\nocclusion at 9-10: keyframes {stats.keyframe_indices}, reasons {dict(stats.reasons)}, tokens {tokens}')
	assert stats.reasons['flow-error'] + stats.reasons['track-lost'] >= 2
	assert 9 in stats.keyframe_indices
	assert tokens[9] == [] and tokens[10] == []
	back = next(index for index in range(11, 16) if tokens[index])
	assert back <= 12 and tokens[back] == tokens[8]
	assert stats.tracks_revived == 1 and stats.smoother_resets >= 1 and stats.tracks_started == 1


def test_flow_loses_the_track_at_an_undetected_cut(clip: MemoryClip, config: RunConfig, analyser: FaceAnalyser, monkeypatch: pytest.MonkeyPatch) -> None:
	# with the scene-cut test switched off, the flow itself notices the cut (its points cannot be followed): the cut
	# frame becomes a keyframe and what is handed out there is the new detections, nothing smeared from before. A
	# new face where an old one was may continue the old track by position, but with smoothing and identity
	# (embedding, reference decision) started afresh
	import facefusion.tracking.smoother as temporal_smoother
	monkeypatch.setattr(temporal_smoother, 'CUT_HISTOGRAM_DISTANCE', 1e9)
	monkeypatch.setattr(temporal_smoother, 'CUT_FRAME_DIFFERENCE', 1e9)
	tracker = FaceTracker(config, analyser)
	for index in range(44, CUT + 1):
		faces = tracker.process(index, clip.frames[index])
	stats = tracker.stats
	assert stats.scene_cuts == [] and stats.keyframe_indices[-1] == CUT
	assert tracker.last_report.reason in ('track-lost', 'flow-error')
	assert len(faces) == 2
	detected = analyser.get_many_faces(clip.frames[CUT])
	for face in faces:
		track = tracker.find_track(face.track_token)
		np.testing.assert_allclose(face.landmark_set.five_68, track.raw_landmarks.five_68, atol=1e-4)
		assert any(np.allclose(face.landmark_set.five_68, other.landmark_set.five_68, atol=1e-4) for other in detected)
		assert track.identity.reference_match is None


def test_plain_median_is_numpys_median_without_importing_numpy_ma() -> None:
	import subprocess
	import sys

	from facefusion.tracking.flow import plain_median
	generator = np.random.default_rng(7)
	for count in (1, 2, 3, 4, 17, 64, 301):
		for dtype in (np.float32, np.float64):
			values = (generator.random(count) * 40).astype(dtype)
			# ties as well: forward-backward errors of points that did not move are all zero
			for each in (values, np.round(values), np.zeros(count, dtype)):
				assert plain_median(each) == float(np.median(each))
	assert np.isnan(plain_median(np.array([1.0, np.nan, 2.0], np.float32)))
	# in a fresh interpreter: the tracker's modules and a median leave numpy.ma unimported, np.median imports it
	probe = 'import sys, numpy as np; from facefusion.tracking import tracker, flow; flow.plain_median(np.arange(5.0)); print("numpy.ma" in sys.modules); np.median(np.arange(5.0)); print("numpy.ma" in sys.modules)'
	result = subprocess.run([sys.executable, '-c', probe], capture_output=True, text=True, check=True, cwd=str(Path(__file__).resolve().parents[1]))
	assert result.stdout.split() == ['False', 'True']
