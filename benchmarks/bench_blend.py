"""The looks of the paste, measured: feather (3.5.0) against multi-band blending, colour matching and linear light.

	python benchmarks/bench_blend.py [--output-dir benchmarks/results] [--repeats 5] [--skip-video]

On the real test photos with the real YuNet and a stand-in swapper (nothing is downloaded): one swap per photo is
recorded and composited again under each setting (facefusion/testing/blend_metrics.py says what each metric is),
once as the stand-in returns it and once tinted on purpose. It also times the paste per face at 128 / 256 / 512
crops, sweeps the pyramid levels, times a short video through the whole pipeline (the paste's share of the stage
times), and writes looks_side_by_side.png (feather | multi-band | multi-band + colour match), looks.md and looks.json.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np

PROJECT_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_DIR))

from facefusion import face_selector  # noqa: E402
from facefusion.cli.program import build_config  # noqa: E402
from facefusion.face_masker import create_box_mask  # noqa: E402
from facefusion.gpu.blending import BlendSettings, color_statistics, levels_for_box  # noqa: E402
from facefusion.gpu.compositor import Compositor, PasteJob  # noqa: E402
from facefusion.testing import blend_metrics  # noqa: E402
from facefusion.testing.blend_metrics import RecordingCompositor, composite, frame_mask, tint  # noqa: E402
from facefusion.workflows.engine import build_processors, start_engine  # noqa: E402

DATA = PROJECT_DIR / 'tests' / 'data'
SETTINGS: Dict[str, BlendSettings] = {
	'feather (3.5.0)': BlendSettings(),
	'feather + linear light': BlendSettings(linear_light=True),
	'multi-band': BlendSettings('multi-band'),
	'feather + mean-std': BlendSettings(color_match='mean-std'),
	'multi-band + mean-std': BlendSettings('multi-band', color_match='mean-std'),
	'multi-band + histogram': BlendSettings('multi-band', color_match='histogram'),
	'multi-band + mean-std + linear light': BlendSettings('multi-band', color_match='mean-std', linear_light=True),
}
# (target photo, source photo)
PHOTOS: Tuple[Tuple[str, str], ...] = (('obama.jpg', 'biden.jpg'), ('biden.jpg', 'obama.jpg'), ('obama_and_biden.jpg', 'biden.jpg'))
TINT = ((1.3, 1.0, 0.75), 10.0)
MODEL = 'hyperswap_1a_256'
# the side-by-side picture's panels are scaled down to this width (the repository keeps the file small)
PANEL_WIDTH = 360


def standin_models(directory: Path, variant: str = 'small') -> Path:
	import shutil

	from facefusion.testing.standin_models import write_standin_models
	if not (directory / (MODEL + '.onnx')).exists():
		write_standin_models(directory, variant=variant)
		for suffix in ('.onnx', '.hash'):
			shutil.copyfile(DATA / ('yunet_2023_mar' + suffix), directory / ('yunet_2023_mar' + suffix))
	return directory


def swap_arguments(models_dir: Path, target: Path, source: Path, output: Path) -> List[str]:
	return [
		'headless-run', '-s', str(source), '-t', str(target), '-o', str(output), '--models-path', str(models_dir),
		'--face-detector-model', 'yunet', '--face-selector-mode', 'many', '--face-swapper-model', MODEL
	]


def record(models_dir: Path, target: str, source: str) -> Tuple[np.ndarray, List[PasteJob]]:
	config = build_config(swap_arguments(models_dir, DATA / target, DATA / source, Path(tempfile.gettempdir()) / 'unused.png'))
	engine = start_engine(config)
	try:
		frame = cv2.imread(str(DATA / target))
		processor = build_processors(config, engine, [], [cv2.imread(str(DATA / source))])[0]
		recorder = RecordingCompositor()
		processor.frame_compositor = recorder
		processor.process_frame(frame, face_selector.select_faces(frame, engine.analyser, config, []), frame.copy())
		return frame, recorder.recorded
	finally:
		engine.close()


def measure_looks(swaps: Sequence[Tuple[str, np.ndarray, List[PasteJob]]]) -> List[Dict[str, object]]:
	rows: List[Dict[str, object]] = []
	for variant in ('stand-in swap', 'tinted swap'):
		totals: Dict[str, List[blend_metrics.LooksReport]] = {name: [] for name in SETTINGS}
		floors: List[float] = []
		for _, frame, jobs in swaps:
			if variant == 'tinted swap':
				jobs = [replace(job, crop=tint(job.crop, *TINT)) for job in jobs]
			mask = frame_mask(frame.shape, jobs)
			floors.append(blend_metrics.seam_step(frame, mask))
			for name, settings in SETTINGS.items():
				totals[name].append(blend_metrics.measure(frame, composite(frame, jobs, settings), mask))
		floor = float(np.mean(floors))
		feather = totals['feather (3.5.0)']
		for name, reports in totals.items():
			step = float(np.mean([report.seam_step for report in reports]))
			feather_step = float(np.mean([report.seam_step for report in feather]))
			rows.append({
				'swap': variant, 'setting': name, 'seam_step': step, 'photo_step': floor, 'seam_excess': step - floor,
				'excess_vs_feather': (step - floor) / max(feather_step - floor, 1e-6),
				'gradient_energy': float(np.mean([report.gradient_energy for report in reports])),
				'color_fidelity': float(np.mean([report.color_fidelity for report in reports])),
				'detail_ratio': float(np.mean([report.detail_energy / base.detail_energy for report, base in zip(reports, feather)])),
			})
	return rows


def sweep_levels(swaps: Sequence[Tuple[str, np.ndarray, List[PasteJob]]]) -> List[Dict[str, object]]:
	rows = []
	for levels in (2, 3, 4, 5, 6, 7):
		steps, fidelities = [], []
		for _, frame, jobs in swaps:
			jobs = [replace(job, crop=tint(job.crop, *TINT)) for job in jobs]
			mask = frame_mask(frame.shape, jobs)
			result = composite(frame, jobs, BlendSettings('multi-band', levels, 'mean-std'))
			steps.append(blend_metrics.seam_step(result, mask) - blend_metrics.seam_step(frame, mask))
			fidelities.append(blend_metrics.color_fidelity(frame, result, mask))
		rows.append({'levels': levels, 'seam_excess': float(np.mean(steps)), 'color_fidelity': float(np.mean(fidelities))})
	return rows


def time_paste(repeats: int, on_gpu: bool = False) -> List[Dict[str, object]]:
	"""Milliseconds per face: one crop pasted at its own scale into a 1080p frame (the crop's box about its size);
	on_gpu: frame, crop and mask on the device (CuPy), synchronised around the timed calls."""
	from facefusion.gpu.blending import statistics_on
	from facefusion.gpu.device import synchronize
	frame = cv2.resize(cv2.imread(str(DATA / 'obama_and_biden.jpg')), (1920, 1080))
	random = np.random.default_rng(0)
	rows = []
	for size in (128, 256, 512):
		crop = cv2.GaussianBlur(random.uniform(0, 255, (size, size, 3)).astype(np.float32), (0, 0), 2)
		mask = create_box_mask((size, size), 0.3, (0, 0, 0, 0))
		affine = np.array([[1.0, 0.05, -700.0], [-0.05, 1.0, -200.0]])
		target = color_statistics(cv2.warpAffine(frame, affine, (size, size)).astype(np.float32), mask, True)
		row: Dict[str, object] = {'crop': size, 'levels': levels_for_box(size, size)}
		for name, settings in SETTINGS.items():
			compositor = Compositor(prefer_gpu=on_gpu, settings=settings)
			device_frame = compositor.upload(frame)
			statistics = statistics_on(target, compositor.xp) if settings.matches_color else None
			jobs = [PasteJob(compositor.upload(crop), [compositor.upload(mask)], affine, statistics)]
			compositor.paste_all(device_frame, jobs)
			synchronize()
			start = time.perf_counter()
			for _ in range(repeats):
				compositor.paste_all(device_frame, jobs, in_place=True)
			synchronize()
			row[name] = (time.perf_counter() - start) / repeats * 1000
		rows.append(row)
	return rows


def time_video(models_dir: Path, work_dir: Path) -> List[Dict[str, object]]:
	"""A 48-frame 480×270 clip through the whole pipeline, feather against multi-band + mean-std: wall time and the
	stage seconds the engine logs (paste is the compositor, swap the model)."""
	from facefusion.testing.synthetic_video import make_synthetic_video
	clip = work_dir / 'looks_clip.mp4'
	make_synthetic_video(clip, photos=('obama.jpg', 'obama_and_biden.jpg'), width=480, height=270, frame_count=48, cut_at=30, audio=False)
	rows = []
	environment = dict(os.environ, FACEFUSION_MODELS_PATH=str(models_dir), FACEFUSION_DOWNLOAD_BASE_URL='http://127.0.0.1:9')
	for name, extra in (('feather (3.5.0)', []), ('multi-band + mean-std', ['--face-swapper-blend-mode', 'multi-band', '--face-swapper-color-match', 'mean-std'])):
		command = [sys.executable, str(PROJECT_DIR / 'facefusion.py')] + swap_arguments(models_dir, clip, DATA / 'biden.jpg', work_dir / 'looks_out.mp4')
		command += ['--face-swapper-model', 'inswapper_128', '--log-level', 'debug'] + extra
		start = time.perf_counter()
		result = subprocess.run(command, capture_output=True, text=True, env=environment)
		wall = time.perf_counter() - start
		if result.returncode != 0:
			raise RuntimeError(result.stderr[-2000:])
		stages = {stage: float(seconds) for stage, seconds in re.findall(r'(\w+) ([0-9.]+)s/\d+', result.stderr)}
		busy = sum(stages.values()) or 1.0
		rows.append({'setting': name, 'wall_s': wall, 'stages': stages, 'paste_share': stages.get('paste', 0.0) / busy})
	return rows


def label(image: np.ndarray, text: str) -> np.ndarray:
	labelled = image.copy()
	cv2.rectangle(labelled, (0, 0), (labelled.shape[1], 34), (0, 0, 0), -1)
	cv2.putText(labelled, text, (8, 23), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
	return labelled


def side_by_side(frame: np.ndarray, jobs: List[PasteJob], path: Path) -> None:
	"""Two rows (top: the stand-in swap as it comes; bottom: tinted on purpose), three columns (feather | multi-band |
	multi-band + colour match), cut around the face."""
	mask = frame_mask(frame.shape, jobs)
	ys, xs = np.nonzero(mask > 0)
	margin = 40
	y1, y2 = max(int(ys.min()) - margin, 0), min(int(ys.max()) + margin, frame.shape[0])
	x1, x2 = max(int(xs.min()) - margin, 0), min(int(xs.max()) + margin, frame.shape[1])
	rows = []
	for variant, variant_jobs in (('stand-in swap', jobs), ('tinted swap', [replace(job, crop=tint(job.crop, *TINT)) for job in jobs])):
		panels = []
		for name, settings in (('feather (3.5.0)', BlendSettings()), ('multi-band', BlendSettings('multi-band')), ('multi-band + colour match', BlendSettings('multi-band', color_match='mean-std'))):
			panel = composite(frame, variant_jobs, settings)[y1:y2, x1:x2]
			scale = min(1.0, PANEL_WIDTH / panel.shape[1])
			panel = cv2.resize(panel, (round(panel.shape[1] * scale), round(panel.shape[0] * scale)), interpolation=cv2.INTER_AREA)
			panels.append(label(panel, name))
		rows.append(np.concatenate(panels, axis=1))
	cv2.imwrite(str(path), np.concatenate(rows, axis=0), [cv2.IMWRITE_PNG_COMPRESSION, 9])


def cost_table(costs: List[Dict[str, object]], device_name: str) -> str:
	lines = ['| paste per face, ' + device_name + ' | auto levels | ' + ' | '.join(SETTINGS) + ' |', '|---|---|' + '---|' * len(SETTINGS)]
	for row in costs:
		lines.append('| {0}² crop | {1} | '.format(row['crop'], row['levels']) + ' | '.join(format(row[name], '.1f') + ' ms' for name in SETTINGS) + ' |')
	return '\n'.join(lines) + '\n'


def markdown(looks: List[Dict[str, object]], levels: List[Dict[str, object]], costs: List[Dict[str, object]], video: List[Dict[str, object]]) -> str:
	lines = ['## Looks of the paste (' + MODEL + ' stand-in, real YuNet, ' + ', '.join(target for target, _ in PHOTOS) + ')', '']
	lines += ['| swap | setting | seam step ΔE | excess over the photo | vs feather | gradient energy | colour fidelity ΔE | detail kept |', '|---|---|---|---|---|---|---|---|']
	for row in looks:
		lines.append('| {swap} | {setting} | {seam_step:.2f} | {seam_excess:+.2f} | {excess_vs_feather:.0%} | {gradient_energy:.2f} | {color_fidelity:.2f} | {detail_ratio:.1%} |'.format(**row))
	lines += ['', "The photo's own step across the same contour (no paste): " + ', '.join(sorted({'{swap}: {photo_step:.2f}'.format(**row) for row in looks})) + '.', '']
	lines += ['| levels (multi-band + mean-std, tinted) | seam excess ΔE | colour fidelity ΔE |', '|---|---|---|']
	for row in levels:
		lines.append('| {levels} | {seam_excess:+.2f} | {color_fidelity:.2f} |'.format(**row))
	lines += [''] + cost_table(costs, 'CPU').splitlines()
	if video:
		lines += ['', '| video (48 frames 480×270, inswapper_128 stand-in) | wall | swap | paste | paste share of the stage time |', '|---|---|---|---|---|']
		for row in video:
			stages = row['stages']
			lines.append('| {0} | {1:.1f} s | {2:.2f} s | {3:.2f} s | {4:.1%} |'.format(row['setting'], row['wall_s'], stages.get('swap', 0.0), stages.get('paste', 0.0), row['paste_share']))
	return '\n'.join(lines) + '\n'


def main() -> None:
	parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
	parser.add_argument('--output-dir', default=str(PROJECT_DIR / 'benchmarks' / 'results'))
	parser.add_argument('--models-dir', default=str(Path(tempfile.gettempdir()) / 'facefusion-bench-standins'))
	parser.add_argument('--repeats', type=int, default=5)
	parser.add_argument('--skip-video', action='store_true')
	parser.add_argument('--gpu', action='store_true', help='time the paste on the GPU (CuPy) as well')
	parser.add_argument('--heavy', action='store_true', help='the video run uses the heavy stand-ins (a swapper that costs like the real one)')
	arguments = parser.parse_args()
	output_dir = Path(arguments.output_dir)
	output_dir.mkdir(parents=True, exist_ok=True)
	models_dir = standin_models(Path(arguments.models_dir))
	models_dir.mkdir(parents=True, exist_ok=True)
	swaps = [(target,) + record(models_dir, target, source) for target, source in PHOTOS]
	looks = measure_looks(swaps)
	levels = sweep_levels(swaps)
	costs = time_paste(arguments.repeats)
	from facefusion.gpu.device import detect_device
	device = detect_device()
	# a compositor asked for the GPU where there is none pastes with NumPy: those times must not be labelled GPU
	gpu_costs = time_paste(arguments.repeats, on_gpu=True) if arguments.gpu and device.available else []
	video_models = standin_models(Path(arguments.models_dir + '-heavy'), 'heavy') if arguments.heavy else models_dir
	with tempfile.TemporaryDirectory() as work_dir:
		video = [] if arguments.skip_video else time_video(video_models, Path(work_dir))
	side_by_side(swaps[0][1], swaps[0][2], output_dir / 'looks_side_by_side.png')
	report = markdown(looks, levels, costs, video)
	if gpu_costs:
		report += '\n' + cost_table(gpu_costs, 'GPU (CuPy)')
	elif arguments.gpu:
		report += '\nThe paste on the GPU (CuPy) was not timed: ' + device.describe() + '.\n'
	(output_dir / 'looks.md').write_text(report, encoding='utf-8')
	(output_dir / 'looks.json').write_text(json.dumps({'looks': looks, 'levels': levels, 'costs': costs, 'gpu_costs': gpu_costs, 'video': video, 'settings': {name: asdict(settings) for name, settings in SETTINGS.items()}}, indent=1), encoding='utf-8')
	print(report)


if __name__ == '__main__':
	main()
