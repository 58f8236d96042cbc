"""The command routes: from a command line to a workflow, and from any failure to one line and an exit code.

	cli(argv) → build the RunConfig (argparse, --config-path INI under the command line)
	  → route: force-download | benchmark | batch-run (workflows/batch.py) | job-* (jobs/commands.py)
	    | run without paths: the UI (uis/app.py) | headless-run / run with paths
	  → run_job: paths checked once → the image workflow (workflows/image.py) or the video workflow
	    (workflows/video.py: decode → analyse → process → encode → audio), on the typed job.

Errors a user can cause are FaceFusionError; cli() turns them into one line `[FACEFUSION] message` on stderr and the
error's exit code. Heavy modules (numpy, cv2, onnxruntime, the models) are imported inside the functions that use
them, so `--help`, `--version` and bad command lines answer at once.
"""
from __future__ import annotations

import os
import sys
import traceback
from typing import TYPE_CHECKING, Optional, Sequence

from facefusion import allocator, interrupts, logger
from facefusion.cli import program
from facefusion.config import RunConfig
from facefusion.errors import FaceFusionError

if TYPE_CHECKING:
	from facefusion.workflows.engine import Engine


def main() -> None:
	# like 3.5.0: one OpenMP thread per library, since parallelism comes from our own workers and ORT's pools;
	# an explicit value in the environment is respected
	try:
		os.environ.setdefault('OMP_NUM_THREADS', '1')
		# before the first frame is allocated: freed frame buffers are reused instead of faulted in again
		allocator.keep_freed_memory()
		interrupts.install_signal_handlers()
		code = cli()
	except KeyboardInterrupt as interrupt:
		# a signal held back while the engine's modules loaded can land here, before cli() handles its own
		code = report_interrupt(interrupt)
	exit_now(code)


def exit_now(code: int) -> None:
	"""End the process with code once the command is done. A finished command has closed what it opened (sessions,
	workers, files), so the interpreter's own teardown (freeing onnxruntime, OpenCV and numpy: 0.1 s on two cores) is
	skipped; with a thread of its own still running, the normal exit waits for it instead."""
	import logging
	import threading
	if any(thread.is_alive() and not thread.daemon for thread in threading.enumerate() if thread is not threading.main_thread()):
		sys.exit(code)
	# the command is over: a signal from here on has nothing left to stop, and must not turn its exit code into a
	# traceback
	interrupts.ignore_signals()
	logging.shutdown()
	for stream in (sys.stdout, sys.stderr):
		try:
			stream.flush()
		except (OSError, ValueError):
			pass
	os._exit(code)


def cli(argv: Optional[Sequence[str]] = None) -> int:
	"""Run one command line (argv without the program name) and return the exit code."""
	config: Optional[RunConfig] = None
	try:
		try:
			config = program.build_config(argv)
		except SystemExit as request:
			# argparse has printed its usage / error / help already
			return exit_code_of(request)
		return route(config)
	except FaceFusionError as error:
		report(error.message)
		return error.exit_code
	except KeyboardInterrupt as interrupt:
		return report_interrupt(interrupt)
	except Exception as exception:
		interrupt = interrupts.interrupt_behind(exception)
		if interrupt is not None:
			return report_interrupt(interrupt)
		if config is not None and config.log_level == 'debug':
			traceback.print_exc()
		report(f'unexpected error: {type(exception).__name__}: {exception} (run with --log-level debug for details)')
		return 1


def exit_code_of(request: SystemExit) -> int:
	if request.code is None:
		return 0
	if isinstance(request.code, int):
		return request.code
	print(request.code, file=sys.stderr)
	return 1


def report_interrupt(interrupt: KeyboardInterrupt) -> int:
	message, exit_code = interrupts.outcome(interrupt)
	report(message)
	return exit_code


def report(message: str) -> None:
	"""One line on stderr, whatever the message holds."""
	try:
		print('[FACEFUSION] ' + ' '.join(str(message).split()), file=sys.stderr, flush=True)
	except (OSError, ValueError):
		# stderr is gone (SIGHUP after the terminal closed, a closed pipe): the exit code still says what happened
		pass


def route(config: RunConfig) -> int:
	if config.command == 'force-download':
		from facefusion.models.download import force_download
		return force_download(config.download_scope, config.models_path, config.download_providers)
	if config.command.startswith('job-'):
		from facefusion.jobs.commands import run_job_command
		return run_job_command(config)
	if config.command == 'run' and not has_media_paths(config):
		# the UI: the same workflows, each job a headless-run of the options chosen there
		from facefusion.uis.app import launch
		return launch(config)
	apply_system_memory_limit(config.system_memory_limit)
	if config.command == 'batch-run':
		from facefusion.workflows.batch import run_batch
		return run_batch(config)
	if config.command == 'benchmark':
		from facefusion.workflows.benchmark import run_benchmark
		return run_benchmark(config)
	# headless-run, and run given paths: the same processing
	return run_job(config)


def run_job(config: RunConfig, engine: Optional['Engine'] = None) -> int:
	"""One target, its paths checked once, through the image or the video workflow."""
	from facefusion.workflows.job import check_job_paths
	from facefusion.workflows.target import run_target
	return run_target(config, check_job_paths(config), engine)


def has_media_paths(config: RunConfig) -> bool:
	return bool(config.source_paths or config.target_path or config.output_path)


def apply_system_memory_limit(limit_gib: int) -> None:
	"""--system-memory-limit as in 3.5.0: a data-segment limit in GiB (soft only, so it can be raised again)."""
	if limit_gib <= 0:
		return
	try:
		import resource
		_, hard_limit = resource.getrlimit(resource.RLIMIT_DATA)
		limit = limit_gib * 1024 ** 3
		if hard_limit != resource.RLIM_INFINITY:
			limit = min(limit, hard_limit)
		resource.setrlimit(resource.RLIMIT_DATA, (limit, hard_limit))
	except (ImportError, ValueError, OSError) as exception:
		logger.warn_once('system-memory-limit', f'--system-memory-limit could not be applied here ({exception}); running without it')
