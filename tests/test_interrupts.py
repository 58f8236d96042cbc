"""Ctrl-C, SIGTERM and SIGHUP arriving while the import machinery holds a lock: raised there, they leaked the global
import lock and the run hung on the next import of another thread (a SIGTERM in the first tenth of a second of a
video run, about one run in forty). They now wait until the lock is free. An interrupted extension-module import
(ImportError 'initialization failed', caused by the interrupt) is reported as the interrupt, not as an error."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from facefusion import child_process, core, interrupts

PROJECT_DIR = Path(__file__).resolve().parents[1]

HELD_LOCK_SCRIPT = """
import _imp, os, signal, sys, time
from facefusion import interrupts
interrupts.install_signal_handlers()
_imp.acquire_lock()
try:
	os.kill(os.getpid(), getattr(signal, sys.argv[1]))
	# the handler runs during these sleeps, with the lock held by this thread
	for _ in range(40):
		time.sleep(0.005)
	print('not raised while held', flush=True)
finally:
	_imp.release_lock()
try:
	time.sleep(5)
	print('never raised', flush=True)
except KeyboardInterrupt as interrupt:
	print('raised after release', type(interrupt).__name__, flush=True)
"""


def run_script(code: str, *arguments: str) -> subprocess.CompletedProcess:
	environment = child_process.environment_snapshot()
	environment['PYTHONPATH'] = str(PROJECT_DIR)
	return child_process.run([sys.executable, '-c', code, *arguments], env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)


@pytest.mark.parametrize('signal_name, raised', [('SIGTERM', 'SignalInterrupt'), ('SIGHUP', 'SignalInterrupt'), ('SIGINT', 'KeyboardInterrupt')])
def test_a_signal_waits_while_the_import_lock_is_held(signal_name: str, raised: str) -> None:
	result = run_script(HELD_LOCK_SCRIPT, signal_name)
	assert result.stdout.splitlines() == ['not raised while held', 'raised after release ' + raised], result.stderr


def test_an_ignored_ctrl_c_stays_ignored() -> None:
	code = (
		'import signal\n'
		'from facefusion import interrupts\n'
		'signal.signal(signal.SIGINT, signal.SIG_IGN)\n'
		'interrupts.install_signal_handlers()\n'
		'print(signal.getsignal(signal.SIGINT) is signal.SIG_IGN, signal.getsignal(signal.SIGTERM) is interrupts.raise_signal_interrupt)\n'
	)
	assert run_script(code).stdout.split() == ['True', 'True']


def test_the_interrupt_behind_an_import_error_is_found() -> None:
	try:
		try:
			raise interrupts.SignalInterrupt(signal.SIGTERM)
		except KeyboardInterrupt as interrupt:
			raise ImportError('initialization failed') from interrupt
	except ImportError as error:
		found = interrupts.interrupt_behind(error)
	assert isinstance(found, interrupts.SignalInterrupt) and found.exit_code == 143
	assert interrupts.interrupt_behind(ValueError('plain')) is None


@pytest.mark.parametrize('interrupt, exit_code, message', [
	(interrupts.SignalInterrupt(signal.SIGTERM), 143, 'terminated (SIGTERM)'),
	(KeyboardInterrupt(), 130, 'interrupted by the user'),
])
def test_cli_reports_an_interrupted_import_as_the_interrupt(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, interrupt: KeyboardInterrupt, exit_code: int, message: str) -> None:
	"""What pybind11 turns an interrupted module initialisation into, raised where a route imports its workflow."""
	def interrupted_route(config: object) -> int:
		try:
			raise interrupt
		except KeyboardInterrupt as cause:
			raise ImportError('initialization failed') from cause

	monkeypatch.setattr(core, 'route', interrupted_route)
	assert core.cli(['headless-run', '-s', 'a.jpg', '-t', 'b.jpg', '-o', 'c.jpg']) == exit_code
	error = capsys.readouterr().err
	assert message in error and 'unexpected error' not in error


EARLY_SIGNAL_SCRIPT = """
import importlib.util, os, runpy, signal, sys
SIGNAL = getattr(signal, sys.argv[1])
class SignalOnCoreImport:
	# stands for a signal that comes while the engine's modules load: sent as facefusion.core starts to execute
	def find_spec(self, name, path, target=None):
		if name != 'facefusion.core':
			return None
		sys.meta_path.remove(self)
		spec = importlib.util.find_spec(name)
		real = spec.loader
		class SignallingLoader:
			def create_module(self, spec):
				return real.create_module(spec)
			def exec_module(self, module):
				os.kill(os.getpid(), SIGNAL)
				for _ in range(1000):
					pass
				real.exec_module(module)
		spec.loader = SignallingLoader()
		return spec
sys.meta_path.insert(0, SignalOnCoreImport())
sys.argv = [sys.argv[2], '--version']
runpy.run_path(sys.argv[0], run_name='__main__')
print('ran on', flush=True)
"""


@pytest.mark.parametrize('signal_name, exit_code, line', [
	('SIGTERM', 143, '[FACEFUSION] terminated (SIGTERM); no partial output was written'),
	('SIGINT', 130, '[FACEFUSION] interrupted by the user; no partial output was written'),
])
def test_a_signal_while_the_engine_loads_stops_with_one_line(signal_name: str, exit_code: int, line: str) -> None:
	result = run_script(EARLY_SIGNAL_SCRIPT, signal_name, str(PROJECT_DIR / 'facefusion.py'))
	assert result.returncode == exit_code
	assert result.stderr.strip().splitlines() == [line]
	assert 'ran on' not in result.stdout


HELD_BLOCK_SCRIPT = """
import os, signal, sys, time
from facefusion import interrupts
interrupts.install_signal_handlers()
try:
	with interrupts.held():
		os.kill(os.getpid(), getattr(signal, sys.argv[1]))
		os.kill(os.getpid(), getattr(signal, sys.argv[1]))
		for _ in range(40):
			time.sleep(0.005)
		print('not raised inside', flush=True)
	time.sleep(5)
	print('never raised', flush=True)
except KeyboardInterrupt as interrupt:
	print('raised at the end of the block', type(interrupt).__name__, flush=True)
"""


@pytest.mark.parametrize('signal_name, raised', [('SIGTERM', 'SignalInterrupt'), ('SIGINT', 'KeyboardInterrupt')])
def test_held_signals_wait_for_the_end_of_the_block(signal_name: str, raised: str) -> None:
	"""Twice the same signal inside the block: raised once, when the block ends (not lost, not doubled)."""
	result = run_script(HELD_BLOCK_SCRIPT, signal_name)
	assert result.stdout.splitlines() == ['not raised inside', 'raised at the end of the block ' + raised], result.stderr
	assert result.returncode == 0


def signal_sets(pid: int) -> dict:
	"""SigBlk / SigIgn of a process, as sets of signal numbers."""
	sets = {}
	with open('/proc/{}/status'.format(pid), encoding='utf-8') as status:
		for line in status:
			key, _, value = line.partition(':')
			if key in ('SigBlk', 'SigIgn'):
				bits = int(value.strip(), 16)
				sets[key] = {number + 1 for number in range(64) if bits >> number & 1}
	return sets


@pytest.mark.skipif(not Path('/proc/self/status').exists(), reason='reads /proc')
def test_device_workers_start_with_ctrl_c_held_and_end_up_ignoring_it() -> None:
	"""From its first instant a worker has SIGINT blocked (a Ctrl-C to the terminal's process group during its
	start-up printed a traceback from the middle of Python's start); once running it ignores SIGINT, unblocked, so
	that its own ffmpeg children get the usual mask. The first worker is the one the resource tracker used to expose."""
	import time

	from facefusion.workflows.device_pool import DevicePool
	pool = DevicePool(['0', '1'], log_level='error')
	try:
		pool.start()
		first = [signal_sets(worker.process.pid) for worker in pool.workers]
		deadline = time.monotonic() + 60
		while time.monotonic() < deadline and not all(signal.SIGINT in signal_sets(worker.process.pid)['SigIgn'] for worker in pool.workers):
			time.sleep(0.05)
		later = [signal_sets(worker.process.pid) for worker in pool.workers]
	finally:
		pool.close()
	assert all(signal.SIGINT in sets['SigBlk'] or signal.SIGINT in sets['SigIgn'] for sets in first), first
	assert all(signal.SIGINT in sets['SigIgn'] and signal.SIGINT not in sets['SigBlk'] for sets in later), later
	assert signal.SIGINT not in signal_sets(os.getpid())['SigBlk']
