"""benchmarks/gpu_check.sh must not report success over GPU tests that did not run on the machine."""
from __future__ import annotations

import os
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
