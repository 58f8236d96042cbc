"""The quality monitor on clips where the truth is known: a constant face pasted through the true landmarks of a
clip with a known camera path, one frame deliberately left unswapped; and the CLI writing its report and plot."""
from __future__ import annotations

import csv
import math
import subprocess
from pathlib import Path
from typing import Callable, List, Optional, Tuple

import cv2
import numpy as np
import pytest

from facefusion.face_helper import estimate_matrix_by_face_landmark_5, paste_box
from facefusion.quality.quality_monitor import QualityMonitor, QualitySettings
from facefusion.quality.records import CSV_COLUMNS, FrameObservation
from facefusion.testing.camera_path import MemoryClip, make_memory_clip
from facefusion.testing.synthetic_video import make_synthetic_video
from facefusion.tracking.metrics import paste_constant_face, relative_motion
from facefusion.types import Face, FaceLandmarkSet, FaceScoreSet

PROJECT_DIR = Path(__file__).resolve().parents[1]
FRAMES = 16
UNSWAPPED = 8
# obama.jpg's five points, roughly (photo pixels): the truth only has to be the same on every frame
PHOTO_POINTS = np.array([[410.0, 330.0], [530.0, 330.0], [470.0, 400.0], [420.0, 460.0], [520.0, 460.0]])


@pytest.fixture(scope='module')
def clip() -> MemoryClip:
	memory_clip = make_memory_clip(photos=('obama.jpg',), cut_at=None, sprites=(), frame_count=FRAMES)
	layer = memory_clip.layers[0]
	layer.face_points = [PHOTO_POINTS]
	layer.face_boxes = [np.array([360.0, 250.0, 580.0, 520.0])]
	return memory_clip


def true_face(clip: MemoryClip, index: int) -> Face:
	points = clip.true_points('shot1:0', index).astype(np.float32)
	landmarks = FaceLandmarkSet(five=points, five_68=points, sixty_eight=np.zeros((68, 2), np.float32), sixty_eight_5=np.zeros((68, 2), np.float32))
	return Face(bounding_box=clip.true_box('shot1:0', index).astype(np.float32), score_set=FaceScoreSet(0.9), landmark_set=landmarks, track_token=1)


def observe_clip(clip: MemoryClip, settings: QualitySettings, unswapped: Optional[int] = None, spoil: Optional[Tuple[int, str]] = None) -> Tuple[QualityMonitor, List[list]]:
	"""The constant face pasted through the true landmarks of every frame but `unswapped`; the true camera motion
	and the paste boxes handed to the monitor as the workflow hands the tracker's flow and the swapper's boxes."""
	points = [clip.true_points('shot1:0', index) for index in range(clip.frame_count)]
	pasted = paste_constant_face(clip.frames, points)
	transforms = clip.background_transforms()
	monitor = QualityMonitor(settings)
	rows = []
	for index in range(clip.frame_count):
		target = clip.frames[index]
		swapped = index != unswapped
		output = pasted[index] if swapped else target
		if spoil is not None and spoil[0] == index:
			output = output.copy()
			if spoil[1] == 'outside':
				output[2:6, 2:6] = 255 - output[2:6, 2:6]
			else:
				face = true_face(clip, index)
				x1, y1, x2, y2 = face.bounding_box.astype(int)
				output[y1:y2, x1:x2] = np.random.default_rng(0).integers(0, 256, (y2 - y1, x2 - x1, 3), dtype=np.uint8)
		affine = estimate_matrix_by_face_landmark_5(points[index], 'arcface_128', (128, 128))
		x1, y1, x2, y2 = paste_box(target.shape, (128, 128), affine)
		motions = {1: relative_motion(transforms[index - 1], transforms[index])} if index else {}
		observation = FrameObservation(
			index, target, output, [true_face(clip, index)], [1] if swapped else [], keyframe=index % 6 == 0, motions=motions,
			paste_boxes=[(x1 - 2, y1 - 2, x2 + 2, y2 + 2)] if swapped else []
		)
		rows.extend(monitor.observe(observation))
	monitor.close()
	return monitor, rows


def test_truth_known_clip_is_lossless_outside_and_steady(clip: MemoryClip, tmp_path: Path) -> None:
	report = tmp_path / 'q.csv'
	monitor, rows = observe_clip(clip, QualitySettings(report_path=str(report)))
	summary = monitor.summary
	# an untouched background: bit-exact outside the paste boxes on every frame
	assert summary.outside_checked == FRAMES and summary.outside_lossless == FRAMES
	assert all(math.isinf(row.outside_psnr) and row.outside_ssim == 1.0 for row in rows)
	# the swap (a mirrored face) changed the face region, and the monitor saw it on every frame
	assert all(5.0 < row.face_psnr < 30.0 and 0.2 < row.face_ssim < 0.9 for row in rows)
	# a face pasted through the true landmarks on the true camera path is as steady as the input (sensor noise)
	pairs = [row for row in rows if math.isfinite(row.tpsnr_in)]
	assert len(pairs) == FRAMES - 1 and all(row.motion == 'tracker' for row in pairs)
	# the input's tPSNR is its sensor noise; the pasted face (the same picture on every frame, on the true path) is
	# steadier than that
	assert all(row.tpsnr_in > 30.0 and row.tpsnr_out > row.tpsnr_in for row in pairs)
	assert sum(math.isfinite(row.jitter) for row in rows) == FRAMES - 2
	assert sum(summary.alerts.values()) == 0
	with open(report, newline='') as file:
		lines = list(csv.reader(file))
	assert tuple(lines[0]) == CSV_COLUMNS
	assert len(lines) == FRAMES + 1 and lines[1][CSV_COLUMNS.index('outside_psnr')] == 'inf'


def test_face_not_swapped_on_one_frame_raises_flicker(clip: MemoryClip) -> None:
	monitor, rows = observe_clip(clip, QualitySettings(report_path=None, plot_path=None), unswapped=UNSWAPPED)
	assert monitor.summary.alerts['flicker'] == 2
	flagged = [row.frame for row in rows if 'flicker' in row.alerts]
	assert flagged == [UNSWAPPED, UNSWAPPED + 1]
	# leaving a face unswapped is still lossless outside (there are no paste boxes then, and nothing changed)
	assert monitor.summary.outside_lossless == FRAMES


def test_changed_background_and_broken_face_raise_alerts(clip: MemoryClip) -> None:
	monitor, rows = observe_clip(clip, QualitySettings(), spoil=(5, 'outside'))
	assert monitor.summary.alerts['outside-changed'] == 1 and monitor.summary.outside_lossless == FRAMES - 1
	row = next(row for row in rows if row.frame == 5)
	assert row.outside_changed_pixels == 16 and math.isfinite(row.outside_psnr)
	monitor, rows = observe_clip(clip, QualitySettings(tpsnr_drop=16.0, face_ssim=0.2), spoil=(5, 'face'))
	alerts = monitor.summary.alerts
	assert alerts['low-face-ssim'] == 1
	# the noise face breaks both pairs it is in, against a steady input
	assert alerts['tpsnr-drop'] == 2 and monitor.summary.largest_tpsnr_drop.frame in (5, 6)


def test_cli_writes_report_and_plot(standin_models_dir: Path, run_cli: Callable[..., subprocess.CompletedProcess], tmp_path: Path) -> None:
	target = make_synthetic_video(tmp_path / 'clip.mp4', photos=('obama.jpg',), width=320, height=240, frame_count=20, audio=False)
	report, plot = tmp_path / 'q.csv', tmp_path / 'q.png'
	completed = run_cli(
		'headless-run', '-s', PROJECT_DIR / 'tests' / 'data' / 'biden.jpg', '-t', target.path, '-o', tmp_path / 'out.mp4',
		'--face-detector-model', 'yunet', '--face-selector-mode', 'one', '--quality-report', report, '--quality-plot', plot,
		models_path=standin_models_dir
	)
	assert completed.returncode == 0, completed.stderr
	with open(report, newline='') as file:
		rows = list(csv.DictReader(file))
	assert tuple(rows[0].keys()) == CSV_COLUMNS and len(rows) == 20
	assert all(row['outside_psnr'] == 'inf' and row['swapped'] == '1' for row in rows)
	assert all(row['motion'] == 'tracker' and float(row['tpsnr_in']) > 25.0 for row in rows[1:])
	assert not any(row['alerts'] for row in rows)
	picture = cv2.imread(str(plot))
	assert picture is not None and picture.shape[0] > 300
	assert 'quality: alerts: tpsnr-drop 0, flicker 0, outside-changed 0, low-face-ssim 0' in completed.stdout + completed.stderr


def test_readme_documents_the_csv_header() -> None:
	readme = (PROJECT_DIR / 'README.md').read_text(encoding='utf-8')
	assert ','.join(CSV_COLUMNS) in readme
	for column in CSV_COLUMNS:
		assert '`' + column + '`' in readme




def test_steadiness_reaches_the_ceiling(standin_models_dir: Path) -> None:
	from facefusion.config import RunConfig
	from facefusion.face_analyser import FaceAnalyser
	from facefusion.inference.manager import InferenceManager
	from facefusion.quality.steadiness import measure_steadiness
	config = RunConfig(models_path=str(standin_models_dir), face_detector_model='yunet', face_landmarker_score=0, face_selector_mode='many')
	ceiling, per_frame, default = measure_steadiness(config, FaceAnalyser(config, InferenceManager(config)))
	# the default options against the true-landmark ceiling: mean within 3 dB, still pairs within 2.5 dB, no pair
	# below 16 dB; and far above per-frame detection
	assert ceiling.mean - default.mean <= 3.0
	assert ceiling.still_mean - default.still_mean <= 2.5
	assert default.lowest >= 16.0
	assert default.mean > per_frame.mean + 10.0
