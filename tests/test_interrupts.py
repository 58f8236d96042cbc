"""Ctrl-C, SIGTERM and SIGHUP arriving while the import machinery holds a lock: raised there, they leaked the global
import lock and the run hung on the next import of another thread (a SIGTERM in the first tenth of a second of a
video run, about one run in forty). They now wait until the lock is free. An interrupted extension-module import
(ImportError 'initialization failed', caused by the interrupt) is reported as the interrupt, not as an error."""
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
