"""benchmarks/gpu_check.sh must not report success over GPU tests that did not run on the machine."""
from __future__ import annotations

import lzma
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from facefusion.gpu.device import gpu_available

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(gpu_available(), reason='on a GPU machine the GPU tests run; the verdict is checked where they skip')
def test_gpu_check_fails_and_lists_skips_when_gpu_tests_did_not_run(tmp_path: Path) -> None:
	environment = dict(os.environ, GPU_CHECK_STEPS='gpu-tests')
	environment.pop('GPU_CHECK_ALLOW_SKIPS', None)
	result = subprocess.run(['bash', str(ROOT / 'benchmarks' / 'gpu_check.sh'), str(tmp_path)], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=240)
	assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
	assert '| pytest -m gpu | INCOMPLETE |' in result.stdout
	assert 'gpu tests that did not run on this machine' in result.stdout
	assert 'SKIPPED' in result.stdout
	assert '| pytest -m gpu | passed |' not in result.stdout


def test_gpu_check_unpacks_the_carried_ffmpeg_when_none_is_found(tmp_path: Path) -> None:
	"""A lent machine without ffmpeg gets the one pack_gpu_carry.sh packed: unpacked outside the output folder (which
	goes back), used for every later step, and named in the table. Here a real ffmpeg is packed, and the engine's own
	search is made to find none (FACEFUSION_FFMPEG naming a file that does not exist)."""
	from facefusion.video.ffmpeg import find_ffmpeg
	carry = tmp_path / 'carry'
	carry.mkdir()
	with open(find_ffmpeg(), 'rb') as binary, lzma.open(carry / 'ffmpeg.xz', 'wb', preset=0) as packed:
		shutil.copyfileobj(binary, packed)
	output = tmp_path / 'out'
	environment = dict(os.environ, GPU_CHECK_STEPS='machine', GPU_CARRY_DIR=str(carry), TMPDIR=str(tmp_path), FACEFUSION_FFMPEG=str(tmp_path / 'no-ffmpeg'))
	result = subprocess.run(['bash', str(ROOT / 'benchmarks' / 'gpu_check.sh'), str(output)], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120)
	unpacked = tmp_path / 'facefusion-gpu-check' / 'ffmpeg'
	assert f'| ffmpeg | present | {unpacked}: ffmpeg version' in result.stdout, result.stdout[-2000:] + result.stderr[-2000:]
	assert unpacked.read_bytes() == Path(find_ffmpeg()).read_bytes()
	assert not any(path.name.startswith('ffmpeg') and path.suffix != '.log' for path in output.rglob('*'))
	# and none carried, none found: the table says so before anything fails on it
	(carry / 'ffmpeg.xz').unlink()
	result = subprocess.run(['bash', str(ROOT / 'benchmarks' / 'gpu_check.sh'), str(output)], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120)
	assert '| ffmpeg | missing |' in result.stdout


def test_gpu_check_puts_the_carried_python_packages_first_on_the_path(tmp_path: Path) -> None:
	"""The packages pack_gpu_carry.sh packs (PyNvVideoCodec, which the lent machine's image lacks) are unpacked
	outside the output folder, and the NVDEC row reports what their import gives. Here a small package of that name
	that imports is packed."""
	import tarfile
	carry = tmp_path / 'carry'
	package = tmp_path / 'build' / 'PyNvVideoCodec'
	package.mkdir(parents=True)
	(package / '__init__.py').write_text('OutputColorType = None\n')
	carry.mkdir()
	with tarfile.open(carry / 'python-packages.tar.xz', 'w:xz') as archive:
		archive.add(package, arcname='PyNvVideoCodec')
	output = tmp_path / 'out'
	environment = dict(os.environ, GPU_CHECK_STEPS='machine', GPU_CARRY_DIR=str(carry), TMPDIR=str(tmp_path))
	result = subprocess.run(['bash', str(ROOT / 'benchmarks' / 'gpu_check.sh'), str(output)], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120)
	site = tmp_path / 'facefusion-gpu-check' / 'site'
	assert f'| carried Python packages | unpacked | PyNvVideoCodec into {site} |' in result.stdout, result.stdout[-2000:] + result.stderr[-2000:]
	assert '| PyNvVideoCodec (NVDEC route) | present | PyNvVideoCodec |' in result.stdout
	assert (site / 'PyNvVideoCodec' / '__init__.py').is_file() and not any(output.rglob('__init__.py'))
	# without the carried packages the row says what is missing
	(carry / 'python-packages.tar.xz').unlink()
	result = subprocess.run(['bash', str(ROOT / 'benchmarks' / 'gpu_check.sh'), str(output)], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120)
	assert '| PyNvVideoCodec (NVDEC route) | missing | PyNvVideoCodec is not installed |' in result.stdout, result.stdout[-2000:]
