"""Smoke tests of the `benchmark` command and of benchmarks/bench_pipeline.py on tiny clips with the small stand-ins:
they run, print / write their reports, and carry every field. No timing is asserted (the machine is shared)."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from conftest import PROJECT_DIR, UNREACHABLE_MIRROR

BENCH_PIPELINE = PROJECT_DIR / 'benchmarks' / 'bench_pipeline.py'


def load_bench_pipeline() -> ModuleType:
	spec = importlib.util.spec_from_file_location('bench_pipeline', BENCH_PIPELINE)
	module = importlib.util.module_from_spec(spec)
	# dataclasses look their module up in sys.modules
	sys.modules[spec.name] = module
	spec.loader.exec_module(module)
	return module


def test_benchmark_command_prints_the_table(standin_models_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
	from facefusion import core
	from facefusion.workflows import benchmark
	# a short example clip in a private folder, so the test neither waits for nor touches .assets/examples
	monkeypatch.setattr(benchmark, 'EXAMPLES_DIR', tmp_path / 'examples')
	monkeypatch.setattr(benchmark, 'EXAMPLE_FRAME_COUNT', 6)
	monkeypatch.setenv('FACEFUSION_DOWNLOAD_BASE_URL', UNREACHABLE_MIRROR)
	monkeypatch.chdir(tmp_path)

	exit_code = core.cli([
		'benchmark', '--benchmark-resolutions', '240p', '--benchmark-cycle-count', '1', '--models-path', str(standin_models_dir),
		'--face-detector-model', 'yunet', '--temp-path', str(tmp_path), '--log-level', 'error'
	])

	output = capsys.readouterr().out
	assert exit_code == 0
	assert (tmp_path / 'examples' / 'target-240p.mp4').is_file()
	header = next(line for line in output.splitlines() if 'relative_fps' in line)
	for column in ('resolution', 'frames', 'average_run', 'fastest_run', 'slowest_run'):
		assert column in header
	row = next(line for line in output.splitlines() if line.startswith('| 240p'))
	cells = [cell.strip() for cell in row.strip('|').split('|')]
	assert cells[1] == '6' and cells[2] == '1'
	assert float(cells[-1]) > 0
	# the run's temp folder is gone
	assert not list(tmp_path.glob('facefusion-benchmark-*'))


def test_benchmark_options_parse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
	from facefusion.cli import program
	# away from any facefusion.ini of the developer's
	monkeypatch.chdir(tmp_path)
	config = program.build_config(['benchmark', '--benchmark-mode', 'cold', '--benchmark-resolutions', '240p', '720p', '--benchmark-cycle-count', '3'])
	assert (config.command, config.benchmark_mode, config.benchmark_resolutions, config.benchmark_cycle_count) == ('benchmark', 'cold', ['240p', '720p'], 3)
	defaults = program.build_config(['benchmark'])
	assert (defaults.benchmark_mode, defaults.benchmark_resolutions, defaults.benchmark_cycle_count) == ('warm', ['240p'], 5)
	with pytest.raises(SystemExit):
		program.build_config(['benchmark', '--benchmark-cycle-count', '11'])


def test_bench_pipeline_writes_reports(standin_models_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
	monkeypatch.setenv('FACEFUSION_DOWNLOAD_BASE_URL', UNREACHABLE_MIRROR)
	monkeypatch.chdir(tmp_path)
	bench_pipeline = load_bench_pipeline()
	out_directory = tmp_path / 'results'

	exit_code = bench_pipeline.main([
		'--models-path', str(standin_models_dir), '--resolution', '240p', '--frames', '10', '--out', str(out_directory),
		'--cache-dir', str(tmp_path / 'cache'), '--variants', 'baseline,optimized,fast', '--define', 'fast=--execution-thread-count 2'
	])

	assert exit_code == 0
	results = json.loads((out_directory / 'results.json').read_text(encoding='utf-8'))
	assert results['reference'] == 'baseline'
	assert [variant['name'] for variant in results['variants']] == ['baseline', 'optimized', 'fast']
	for variant in results['variants']:
		assert variant['speed_up'] > 0 and variant['fps'] > 0 and variant['peak_rss_mib'] > 0
		assert variant['output_frames'] == 10
		for stage in ('decode', 'detect', 'landmark', 'embed', 'swap', 'mask', 'paste', 'encode'):
			assert stage in variant['stages']
	assert results['variants'][0]['speed_up'] == pytest.approx(1.0)
	assert results['variants'][0]['arguments'] == [
		'--workflow-strategy', 'disk', '--temp-frame-format', 'png', '--face-swapper-batching', 'never', '--face-swapper-blend-mode', 'feather',
		'--face-swapper-color-match', 'none'
	]
	# the model floor of the streaming variant: over the calls the machine really runs at once (at most the plan's)
	optimized = results['variants'][1]
	plan = optimized['plan']
	assert 0 < optimized['parallelism'] <= max(1, min(plan['process_workers'], plan['cores'] // plan['intra_op_threads']))
	assert optimized['model_floor_s'] > 0 and optimized['other_cpu_s'] >= 0 and 0 < optimized['cores_busy']
	# where the CPU went: ffmpeg decoded and encoded in child processes, so the floor with it is above the model floor
	assert 0 < optimized['ffmpeg_cpu_s'] < optimized['cpu_s']
	assert optimized['floor_with_ffmpeg_s'] > optimized['model_floor_s']
	assert optimized['engine_other_cpu_s'] >= 0 and optimized['idle_core_s'] >= 0
	if plan['intra_op_threads'] == 1:
		assert optimized['model_cpu_in_run_s'] > 0 and optimized['swap_run_cpu_ms'] > 0
		assert optimized['swap_together_cpu_ms'] >= optimized['swap_isolated_cpu_ms'] > 0
	else:
		assert optimized['model_cpu_in_run_s'] is None and optimized['swap_run_cpu_ms'] is None
	# the streaming pipeline's own stages: the analysis thread's time a frame (none for the disk workflow)
	assert results['variants'][0]['pipeline_ms_per_frame'] == {}
	assert optimized['pipeline_ms_per_frame']['analyse'] > 0 and optimized['pipeline_ms_per_frame']['process'] > 0
	assert all(not stage.startswith('pipeline:') for stage in optimized['stages'])
	markdown = (out_directory / 'results.md').read_text(encoding='utf-8')
	assert 'fps it allows' in markdown
	assert '| baseline |' in markdown and '| optimized |' in markdown and 'speed-up' in markdown and 'calls at once' in markdown
	assert 'floor with ffmpeg' in markdown
	assert (out_directory / 'results.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
