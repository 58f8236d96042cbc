"""The patch set for upstream FaceFusion 3.5.0 (patches/apply.py), on upstream's own source.

Upstream's tarball (`shared/upstream/` beside the project) is unpacked into a temporary folder and run with this
project's installed packages (numpy, onnxruntime, OpenCV, tqdm, scipy: upstream's headless path works with them; its
UI packages are not needed), stand-in models and the real YuNet on the real test photos. Upstream's own
`headless-run` writes the reference before the patch; after it, `--face-swapper-batching never` must give the same
pixels, `auto` (the engine's batched swapper) the same within one level, and the video workflow must stream with
`--workflow-strategy memory`. All upstream runs happen once, in order, in one fixture shared across xdist workers
(upstream names its job and temp folders after the clock and the target, so runs in one checkout must not overlap).
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

import cv2
import numpy as np
import pytest

from facefusion.testing.standin_models import write_standin_models
from facefusion.video.ffmpeg import find_ffmpeg

from conftest import DATA_DIR, PROJECT_DIR

UPSTREAM_TARBALL = PROJECT_DIR.parent / 'shared' / 'upstream' / 'facefusion-3.5.0.tar.gz'
APPLY = PROJECT_DIR / 'patches' / 'apply.py'
# what upstream 3.5.0 loads or hash-checks on this path (yunet replaces yolo_face as the detector)
STANDIN_KEYS = ['yunet', '2dfan4', 'fan_68_5', 'arcface_w600k_r50', 'fairface', 'xseg_1', 'bisenet_resnet_34', 'nsfw_1', 'nsfw_2', 'nsfw_3', 'hyperswap_1a_256']
NEW_OPTIONS = [
	'--face-swapper-batching', '--face-swapper-use-trt', '--face-swapper-trt-max-batch', '--workflow-strategy', '--face-tracker',
	'--face-tracker-detect-interval', '--face-tracker-flow-error', '--temporal-smoothing', '--temporal-smoothing-min-cutoff', '--temporal-smoothing-beta'
]
CLIP_FRAMES = 10
RUN_TIMEOUT = 240

pytestmark = pytest.mark.skipif(
	not UPSTREAM_TARBALL.is_file(), reason='upstream 3.5.0 source is not at ' + str(UPSTREAM_TARBALL) + ' (it sits next to the project in CI)'
)


@dataclass
class Run:
	returncode: int
	output: str


@dataclass
class Workspace:
	checkout: Path
	inputs: Path
	runs: Dict[str, Run]


def unpack(destination: Path) -> Path:
	"""Upstream's tarball into destination; returns the checkout root (the folder holding facefusion.py)."""
	with tarfile.open(UPSTREAM_TARBALL) as archive:
		archive.extractall(destination, filter='data')
	return next(path.parent for path in destination.glob('*/facefusion.py'))


def tarball_files() -> Dict[str, str]:
	"""Relative path -> sha256 of every regular file in the tarball."""
	files: Dict[str, str] = {}
	with tarfile.open(UPSTREAM_TARBALL) as archive:
		for member in archive.getmembers():
			if member.isfile():
				relative = member.name.split('/', 1)[1]
				files[relative] = hashlib.sha256(archive.extractfile(member).read()).hexdigest()
	return files


def tree_files(root: Path) -> Dict[str, str]:
	return {
		str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
		for path in root.rglob('*') if path.is_file() and '__pycache__' not in path.parts
	}


def run_apply(checkout: Path, *options: str) -> subprocess.CompletedProcess:
	return subprocess.run([sys.executable, str(APPLY), str(checkout), *options], capture_output=True, text=True, timeout=120)


def run_upstream(workspace: Path, checkout: Path, arguments: List[str]) -> Run:
	"""Upstream's own entry point, from its root (it resolves its models and processors from there), offline."""
	command = [sys.executable, 'facefusion.py', *arguments]
	if arguments[0] == 'headless-run' and '--help' not in arguments:
		command += ['--temp-path', str(workspace / 'temp'), '--jobs-path', str(workspace / 'jobs'), '--face-detector-model', 'yunet', '--execution-thread-count', '2']
	environment = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONDONTWRITEBYTECODE': '1'}
	completed = subprocess.run(command, cwd=checkout, capture_output=True, text=True, timeout=RUN_TIMEOUT, env=environment)
	return Run(completed.returncode, completed.stdout + completed.stderr)


def write_models(models_dir: Path) -> None:
	write_standin_models(models_dir, STANDIN_KEYS)
	# the voice extractor is only hash-checked on this path: any bytes with their CRC32 pass
	dummy = b'stand-in voice extractor, never loaded without an audio source'
	(models_dir / 'kim_vocal_2.onnx').write_bytes(dummy)
	(models_dir / 'kim_vocal_2.hash').write_text(format(zlib.crc32(dummy), '08x'))


def write_inputs(inputs: Path) -> None:
	inputs.mkdir()
	shutil.copy(DATA_DIR / 'obama.jpg', inputs / 'source.jpg')
	# two faces: the batched swapper takes both faces' pixel-boost tiles in one call
	target = cv2.imread(str(DATA_DIR / 'obama_and_biden.jpg'))
	target = cv2.resize(target, (640, round(target.shape[0] * 640 / target.shape[1]) // 2 * 2), interpolation=cv2.INTER_AREA)
	cv2.imwrite(str(inputs / 'target.png'), target)
	subprocess.run([
		find_ffmpeg(), '-v', 'error', '-y', '-loop', '1', '-i', str(DATA_DIR / 'biden.jpg'), '-vf', 'scale=240:-2,format=yuv420p',
		'-frames:v', str(CLIP_FRAMES), '-r', '10', '-c:v', 'libx264', str(inputs / 'clip.mp4')
	], check=True, timeout=60)


def build_workspace(root: Path) -> Dict[str, Run]:
	checkout = unpack(root)
	write_models(checkout / '.assets' / 'models')
	inputs = root / 'inputs'
	write_inputs(inputs)
	(root / 'out').mkdir()
	image = ['headless-run', '-s', str(inputs / 'source.jpg'), '-t', str(inputs / 'target.png'), '--face-selector-mode', 'many', '--face-swapper-pixel-boost', '512x512']
	runs = {'unpatched': run_upstream(root, checkout, [*image, '-o', str(root / 'out' / 'unpatched.png')])}
	applied = run_apply(checkout)
	runs['apply'] = Run(applied.returncode, applied.stdout + applied.stderr)
	runs['never'] = run_upstream(root, checkout, [*image, '-o', str(root / 'out' / 'never.png'), '--face-swapper-batching', 'never', '--log-level', 'debug'])
	runs['auto'] = run_upstream(root, checkout, [*image, '-o', str(root / 'out' / 'auto.png'), '--face-swapper-batching', 'auto', '--log-level', 'debug'])
	runs['help'] = run_upstream(root, checkout, ['headless-run', '--help'])
	video = ['headless-run', '-s', str(inputs / 'source.jpg'), '-t', str(inputs / 'clip.mp4'), '--output-video-encoder', 'libx264']
	runs['memory'] = run_upstream(root, checkout, [
		*video, '-o', str(root / 'out' / 'memory.mp4'), '--workflow-strategy', 'memory', '--face-tracker', 'optical-flow',
		'--face-tracker-detect-interval', '4', '--temporal-smoothing', 'one-euro'
	])
	runs['disk'] = run_upstream(root, checkout, [*video, '-o', str(root / 'out' / 'disk.mp4'), '--log-level', 'debug'])
	return runs


@pytest.fixture(scope='module')
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
	"""Built by the first xdist worker that asks (under a file lock), read by the others."""
	base = tmp_path_factory.getbasetemp()
	# xdist workers' temp folders sit in one folder per session; a plain run has its own session folder
	shared = (base.parent if os.environ.get('PYTEST_XDIST_WORKER') else base) / 'upstream-patch'
	shared.mkdir(exist_ok=True)
	results = shared / 'runs.json'
	with open(shared / 'lock', 'w') as lock:
		fcntl.flock(lock, fcntl.LOCK_EX)
		if not results.is_file():
			runs = build_workspace(shared)
			results.write_text(json.dumps({name: [run.returncode, run.output] for name, run in runs.items()}))
	loaded = {name: Run(*values) for name, values in json.loads(results.read_text()).items()}
	checkout = next(path.parent for path in shared.glob('*/facefusion.py'))
	return Workspace(checkout, shared / 'inputs', loaded)


def read_output(workspace: Workspace, name: str) -> np.ndarray:
	run = workspace.runs[name]
	assert run.returncode == 0, run.output[-3000:]
	pixels = cv2.imread(str(workspace.checkout.parent / 'out' / (name + '.png')))
	assert pixels is not None, run.output[-3000:]
	return pixels


def test_patch_applies_to_upstream(workspace: Workspace) -> None:
	assert workspace.runs['apply'].returncode == 0, workspace.runs['apply'].output
	assert 'vendored the engine as facefusion_engine/' in workspace.runs['apply'].output
	patched = (workspace.checkout / 'facefusion' / 'processors' / 'modules' / 'face_swapper' / 'core.py').read_text()
	assert patched.count('# facefusion-engine-patch') == 10
	# the vendored engine imports itself under its new name only
	vendored = (workspace.checkout / 'facefusion_engine' / 'processors' / 'modules' / 'face_swapper' / 'core.py').read_text()
	assert 'from facefusion_engine.config import RunConfig' in vendored
	assert 'from facefusion.' not in vendored and 'import facefusion.' not in vendored


def test_batching_never_equals_unpatched_upstream(workspace: Workspace) -> None:
	unpatched = read_output(workspace, 'unpatched')
	target = cv2.imread(str(workspace.inputs / 'target.png'))
	# the stand-in swap really changed the face, so equality below says something
	assert np.count_nonzero(unpatched != target) > 10000
	assert np.array_equal(read_output(workspace, 'never'), unpatched)
	assert 'batched swapper ready' not in workspace.runs['never'].output


def test_batching_auto_is_within_one_level_of_upstream(workspace: Workspace) -> None:
	unpatched = read_output(workspace, 'unpatched').astype(np.int16)
	auto = read_output(workspace, 'auto').astype(np.int16)
	assert np.abs(auto - unpatched).max() <= 1
	# and it went through the engine's batched swapper, not upstream's own code
	assert 'batched swapper ready: hyperswap_1a_256 at 512px, batching auto' in workspace.runs['auto'].output


def test_new_options_are_in_upstream_help(workspace: Workspace) -> None:
	run = workspace.runs['help']
	assert run.returncode == 0, run.output[-3000:]
	for option in NEW_OPTIONS:
		assert option in run.output
	# upstream's own options are all still there
	for option in ('--face-swapper-model', '--face-swapper-pixel-boost', '--face-swapper-weight', '--face-enhancer-model', '--lip-syncer-model'):
		assert option in run.output


def frame_count(path: Path) -> int:
	capture = cv2.VideoCapture(str(path))
	count = 0
	while capture.read()[0]:
		count += 1
	capture.release()
	return count


def test_memory_workflow_streams_the_video(workspace: Workspace) -> None:
	run = workspace.runs['memory']
	assert run.returncode == 0, run.output[-3000:]
	assert 'memory workflow: video written' in run.output
	# upstream's own workflow extracts and merges temporary frames; the engine's streams instead
	assert 'extracting' not in run.output and 'merging' not in run.output
	assert frame_count(workspace.checkout.parent / 'out' / 'memory.mp4') == CLIP_FRAMES


def test_disk_workflow_stays_upstreams_with_the_batched_swapper(workspace: Workspace) -> None:
	run = workspace.runs['disk']
	assert run.returncode == 0, run.output[-3000:]
	assert 'merging' in run.output and 'memory workflow' not in run.output
	assert 'batched swapper ready' in run.output
	assert frame_count(workspace.checkout.parent / 'out' / 'disk.mp4') == CLIP_FRAMES


def test_apply_twice_changes_nothing(workspace: Workspace) -> None:
	# brings the vendored copy up to date first, should the engine's source have changed since the fixture's apply
	assert run_apply(workspace.checkout).returncode == 0
	before = tree_files(workspace.checkout / 'facefusion') | tree_files(workspace.checkout / 'facefusion_engine')
	again = run_apply(workspace.checkout)
	assert again.returncode == 0 and 'already applied: nothing to do' in again.stdout
	checked = run_apply(workspace.checkout, '--check')
	assert checked.returncode == 0 and 'already applied: nothing to do' in checked.stdout
	assert tree_files(workspace.checkout / 'facefusion') | tree_files(workspace.checkout / 'facefusion_engine') == before


def test_check_then_revert_give_back_the_original_files(tmp_path: Path) -> None:
	checkout = unpack(tmp_path)
	original = tarball_files()
	checked = run_apply(checkout, '--check')
	assert checked.returncode == 0 and 'would hook facefusion/workflows/image_to_video.py: process()' in checked.stdout
	assert tree_files(checkout) == original
	assert run_apply(checkout).returncode == 0
	assert tree_files(checkout) != original
	reverted = run_apply(checkout, '--revert')
	assert reverted.returncode == 0, reverted.stderr
	assert tree_files(checkout) == original
	assert not (checkout / 'facefusion_engine').exists() and not (checkout / '.facefusion-engine-patch').exists()


def test_other_versions_are_refused(tmp_path: Path) -> None:
	checkout = unpack(tmp_path)
	metadata = checkout / 'facefusion' / 'metadata.py'
	metadata.write_text(metadata.read_text().replace("'3.5.0'", "'3.4.0'"))
	before = tree_files(checkout)
	refused = run_apply(checkout)
	assert refused.returncode == 1
	assert 'for FaceFusion 3.5.0 only' in refused.stderr and 'is FaceFusion 3.4.0' in refused.stderr
	assert tree_files(checkout) == before
