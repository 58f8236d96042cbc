"""Upstream FaceFusion 3.5.0 against this engine, side by side, on the same clip, models and options.

	python benchmarks/bench_upstream.py [--standins heavy,small] [--resolution 360p] [--frames 250] [--repeats 1]
		[--tarball ../shared/upstream/facefusion-3.5.0.tar.gz] [--work-dir /tmp/facefusion-upstream-3.5.0]
		[--wheels DIR] [--out benchmarks/results/upstream]

Sets upstream up by itself: unpacks the tarball into --work-dir, makes a venv there with upstream's pinned packages
minus the UI ones (gradio, gradio-rangeslider, psutil; opencv as the headless build, installed without its
dependencies because 4.12.0.88 declares numpy<2.3 while upstream pins numpy 2.3.4), from the package index pip is
configured with, or only from --wheels (pip --no-index) on a machine without one. The same stand-in model files go
into upstream's .assets/models (each with its .hash) and into this engine's models folder; then for each stand-in
set upstream and this engine run the same headless-run one after the other (upstream first), and the wall times and
their ratio are printed (results.md, results.json in --out).

Upstream needs ffmpeg <= 8 (it passes -vsync) and curl on PATH: the system ffmpeg is put first on PATH for it.
Upstream's code only runs in its own venv and process; nothing of it is imported here.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

PROJECT_DIR = Path(__file__).resolve().parents[1]
if str(PROJECT_DIR) not in sys.path:
	sys.path.insert(0, str(PROJECT_DIR))

DEFAULT_TARBALL = PROJECT_DIR.parent / 'shared' / 'upstream' / 'facefusion-3.5.0.tar.gz'
# upstream's requirements.txt without the UI packages; opencv separately (see the module docstring)
UPSTREAM_PACKAGES = ('numpy==2.3.4', 'onnx==1.19.1', 'onnxruntime==1.23.2', 'scipy==1.16.3', 'tqdm==4.67.1')
UPSTREAM_OPENCV = 'opencv-python-headless==4.12.0.88'
SOURCE_PHOTO = PROJECT_DIR / 'tests' / 'data' / 'obama.jpg'
# the options both sides get: one job, CPU, the real YuNet, every face
COMMON_OPTIONS = ('--face-detector-model', 'yunet', '--face-selector-mode', 'many', '--execution-providers', 'cpu', '--output-video-encoder', 'libx264')
# upstream pastes with a feathered box mask and no colour match; the engine's default (multi-band + mean-std colour
# match) costs more, so the like-for-like ratio runs the engine with upstream's paste and the default is reported next to it
UPSTREAM_PASTE_OPTIONS = ('--face-swapper-blend-mode', 'feather', '--face-swapper-color-match', 'none')


@dataclass
class SideBySide:
	standins: str
	swapper: str
	upstream_s: float
	engine_s: float
	engine_default_s: float
	# CPU seconds (user + system, the process and its ffmpeg children): what the run costs whatever else loads the
	# machine, where the wall times above swing with other jobs
	upstream_cpu_s: float
	engine_cpu_s: float
	engine_default_cpu_s: float
	upstream_exit: int
	engine_exit: int
	engine_default_exit: int

	@property
	def ratio(self) -> float:
		return self.upstream_s / self.engine_s if self.engine_s > 0 else 0.0

	@property
	def default_ratio(self) -> float:
		return self.upstream_s / self.engine_default_s if self.engine_default_s > 0 else 0.0

	@property
	def cpu_ratio(self) -> float:
		return self.upstream_cpu_s / self.engine_cpu_s if self.engine_cpu_s > 0 else 0.0


def unpack(tarball: Path, work_dir: Path) -> Path:
	if not (work_dir / 'facefusion.py').is_file():
		work_dir.mkdir(parents=True, exist_ok=True)
		with tarfile.open(tarball) as archive:
			members = []
			for member in archive.getmembers():
				parts = Path(member.name).parts[1:]
				if not parts:
					continue
				member.name = str(Path(*parts))
				members.append(member)
			archive.extractall(work_dir, members=members, filter='data')
	return work_dir


def ensure_venv(work_dir: Path, wheels: Optional[Path]) -> Path:
	"""work_dir/.venv with upstream's packages; reused when its marker says it is complete."""
	venv = work_dir / '.venv'
	python = venv / 'bin' / 'python'
	marker = venv / '.facefusion-bench-ready'
	if marker.is_file() and python.is_file():
		return python
	subprocess.run([sys.executable, '-m', 'venv', str(venv)], check=True)
	index = ['--no-index', '--find-links', str(wheels)] if wheels else []
	subprocess.run([str(python), '-m', 'pip', 'install', '-q', *index, *UPSTREAM_PACKAGES], check=True)
	subprocess.run([str(python), '-m', 'pip', 'install', '-q', '--no-deps', *index, UPSTREAM_OPENCV], check=True)
	marker.write_text('ok', encoding='utf-8')
	return python


def install_models(standins: str, swapper: str, engine_models: Path, upstream_models: Path) -> None:
	"""The same files for both: the stand-ins (with .hash, which upstream checks) and the real YuNet."""
	from facefusion.testing.standin_models import crc32_hex, write_standin_models
	engine_models.mkdir(parents=True, exist_ok=True)
	write_standin_models(engine_models, variant=standins)
	for yunet in (PROJECT_DIR / 'tests' / 'data').glob('yunet_2023_mar.*'):
		shutil.copy2(yunet, engine_models / yunet.name)
	upstream_models.mkdir(parents=True, exist_ok=True)
	for path in engine_models.iterdir():
		# the engine's verified dynamic-batch copies are its own; upstream gets the files as written
		if path.suffix in ('.onnx', '.hash') and '.dynamic_batch' not in path.name:
			shutil.copy2(path, upstream_models / path.name)
	# upstream's start-up validates the voice extractor's file too, though a face swap never loads it: a placeholder
	# with a matching .hash (the engine has no voice extractor)
	placeholder = bytes(4096)
	(upstream_models / 'kim_vocal_2.onnx').write_bytes(placeholder)
	(upstream_models / 'kim_vocal_2.hash').write_text(crc32_hex(placeholder), encoding='ascii')


@dataclass
class Timing:
	wall_s: float
	cpu_s: float
	exit: int


def timed(command: Sequence[str], cwd: Path, environment: Dict[str, str], log_path: Path) -> Timing:
	before = resource.getrusage(resource.RUSAGE_CHILDREN)
	started = time.perf_counter()
	with open(log_path, 'w', encoding='utf-8') as log:
		code = subprocess.run(list(command), cwd=cwd, env=environment, stdout=log, stderr=subprocess.STDOUT).returncode
	wall = time.perf_counter() - started
	after = resource.getrusage(resource.RUSAGE_CHILDREN)
	if code != 0:
		# the next repeat writes the same log: a failing run's is kept beside it
		shutil.copyfile(log_path, log_path.with_name(log_path.stem + '.failed-' + time.strftime('%H%M%S') + '.log'))
	return Timing(wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, code)


def bytecode_environment(environment: Dict[str, str], cache: Path) -> Dict[str, str]:
	"""Bytecode written and reused, kept out of both source trees (under the cache); a shell that sets
	PYTHONDONTWRITEBYTECODE would otherwise make both sides recompile every module on every run."""
	environment.pop('PYTHONDONTWRITEBYTECODE', None)
	environment['PYTHONPYCACHEPREFIX'] = str(cache / 'pycache')
	return environment


def run_pair(python: Path, work_dir: Path, target: Path, standins: str, swapper: str, out: Path, cache: Path) -> SideBySide:
	engine_models = cache / ('standins-' + standins)
	install_models(standins, swapper, engine_models, work_dir / '.assets' / 'models')
	options = [*COMMON_OPTIONS, '--face-swapper-model', swapper]
	engine_environment = bytecode_environment(dict(os.environ), cache)
	environment = dict(engine_environment)
	environment['PATH'] = '/usr/bin:' + environment.get('PATH', '')
	environment.pop('PYTHONPATH', None)
	# compiled once, untimed, for both: an installed program has its bytecode; compiling ~1 MB of source per run is
	# not what a user waits for
	subprocess.run([str(python), '-m', 'compileall', '-q', str(work_dir / 'facefusion')], env=environment, check=False)
	subprocess.run([sys.executable, '-m', 'compileall', '-q', str(PROJECT_DIR / 'facefusion')], env=engine_environment, check=False)
	upstream_output = out / ('upstream-' + standins + '.mp4')
	upstream = timed(
		[str(python), 'facefusion.py', 'headless-run', '-s', str(SOURCE_PHOTO), '-t', str(target), '-o', str(upstream_output), *options],
		work_dir, environment, out / ('upstream-' + standins + '.log')
	)
	engine_command = [sys.executable, str(PROJECT_DIR / 'facefusion.py'), 'headless-run', '-s', str(SOURCE_PHOTO), '-t', str(target), '--models-path', str(engine_models), *options]
	engine = timed(
		[*engine_command, '-o', str(out / ('engine-' + standins + '.mp4')), *UPSTREAM_PASTE_OPTIONS],
		PROJECT_DIR, engine_environment, out / ('engine-' + standins + '.log')
	)
	engine_default = timed(
		[*engine_command, '-o', str(out / ('engine-default-' + standins + '.mp4'))],
		PROJECT_DIR, engine_environment, out / ('engine-default-' + standins + '.log')
	)
	return SideBySide(
		standins, swapper, upstream.wall_s, engine.wall_s, engine_default.wall_s, upstream.cpu_s, engine.cpu_s, engine_default.cpu_s,
		upstream.exit, engine.exit, engine_default.exit
	)


def median_pair(runs: Sequence[SideBySide]) -> SideBySide:
	"""The median of each time over repeated side-by-side runs (a shared machine's wall times swing by tens of per
	cent from one run to the next); an exit code other than 0 in any run is kept."""
	first = runs[0]
	return SideBySide(
		first.standins, first.swapper,
		*[statistics.median(getattr(run, name) for run in runs) for name in ('upstream_s', 'engine_s', 'engine_default_s', 'upstream_cpu_s', 'engine_cpu_s', 'engine_default_cpu_s')],
		*[max((getattr(run, name) for run in runs), key=abs) for name in ('upstream_exit', 'engine_exit', 'engine_default_exit')]
	)


def report(results: List[SideBySide], target: Path, frames: int, load: Sequence[float], repeats: int = 1) -> str:
	runs = 'one run each' if repeats == 1 else 'medians of ' + str(repeats) + ' interleaved runs each'
	lines = [
		'## Upstream FaceFusion 3.5.0 against this engine', '',
		'Same clip (' + target.name + ', ' + str(frames) + ' frames), same model files, same options (' + ' '.join(COMMON_OPTIONS) + '), '
		+ str(os.cpu_count()) + ' CPU cores (1-minute load average ' + ' → '.join(format(value, '.1f') for value in load) + '), upstream first, ' + runs + '. "Same paste": the engine with upstream\'s paste (' + ' '.join(UPSTREAM_PASTE_OPTIONS) + '); '
		+ '"default paste": multi-band + mean-std colour match.', '',
		'| stand-ins | swapper | upstream 3.5.0 (s) | engine, same paste (s) | speed-up | engine, default paste (s) | speed-up | CPU s upstream / same / default | CPU ratio (same paste) | exits |',
		'|---|---|---:|---:|---:|---:|---:|---:|---:|---|',
	]
	for result in results:
		lines.append('| ' + result.standins + ' | ' + result.swapper + ' | ' + format(result.upstream_s, '.1f') + ' | ' + format(result.engine_s, '.1f') + ' | '
			+ format(result.ratio, '.2f') + '× | ' + format(result.engine_default_s, '.1f') + ' | ' + format(result.default_ratio, '.2f') + '× | '
			+ format(result.upstream_cpu_s, '.1f') + ' / ' + format(result.engine_cpu_s, '.1f') + ' / ' + format(result.engine_default_cpu_s, '.1f') + ' | '
			+ format(result.cpu_ratio, '.2f') + '× | '
			+ str(result.upstream_exit) + ' / ' + str(result.engine_exit) + ' / ' + str(result.engine_default_exit) + ' |')
	return '\n'.join(lines) + '\n'


def main(argv: Optional[Sequence[str]] = None) -> int:
	parser = argparse.ArgumentParser(description='upstream FaceFusion 3.5.0 against this engine, side by side')
	parser.add_argument('--standins', default='heavy,small', help='stand-in sets, comma-separated (heavy: swapper-like cost; small: nearly free models)')
	parser.add_argument('--swapper', default='inswapper_128')
	parser.add_argument('--resolution', default='360p')
	parser.add_argument('--frames', type=int, default=250, help='clip length (25 fps); 250 frames is the clip the speed targets were first measured on')
	parser.add_argument('--tarball', default=str(DEFAULT_TARBALL))
	parser.add_argument('--work-dir', default='/tmp/facefusion-upstream-3.5.0')
	parser.add_argument('--wheels', default=None, help='install upstream packages only from this folder of wheels (pip --no-index)')
	parser.add_argument('--cache-dir', default=str(PROJECT_DIR / '.assets' / 'benchmarks'))
	parser.add_argument('--out', default=str(PROJECT_DIR / 'benchmarks' / 'results' / 'upstream'))
	parser.add_argument('--repeats', type=int, default=1, help='side-by-side runs per stand-in set (upstream, engine, engine default, in turn); the report shows medians')
	options = parser.parse_args(argv)
	from facefusion.workflows.benchmark import ensure_example_target
	out = Path(options.out).resolve()
	out.mkdir(parents=True, exist_ok=True)
	cache = Path(options.cache_dir).resolve()
	work_dir = unpack(Path(options.tarball), Path(options.work_dir))
	python = ensure_venv(work_dir, Path(options.wheels) if options.wheels else None)
	target = ensure_example_target(options.resolution, options.frames, cache / 'clips')
	load_before = os.getloadavg()[0]
	repeats = max(1, options.repeats)
	results = [median_pair([run_pair(python, work_dir, target, standins, options.swapper, out, cache) for _ in range(repeats)]) for standins in options.standins.split(',') if standins]
	text = report(results, target, options.frames, (load_before, os.getloadavg()[0]), repeats)
	(out / 'results.md').write_text(text, encoding='utf-8')
	(out / 'results.json').write_text(json.dumps([dict(asdict(result), ratio=result.ratio, default_ratio=result.default_ratio, cpu_ratio=result.cpu_ratio) for result in results], indent=1), encoding='utf-8')
	print(text)
	return 0 if all(result.upstream_exit == 0 and result.engine_exit == 0 and result.engine_default_exit == 0 for result in results) else 1


if __name__ == '__main__':
	sys.exit(main())
