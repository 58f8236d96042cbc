#!/usr/bin/env python3
"""Entry point: `python facefusion.py <command> [options]` (see `python facefusion.py --help`)."""
import os
import sys

# Before numpy, OpenCV or onnxruntime load (as FaceFusion does): one OpenMP thread each, because parallelism comes
# from the engine's own workers and onnxruntime's pools, and nested OpenMP pools oversubscribe the CPU. A value the
# user exported is kept.
os.environ.setdefault('OMP_NUM_THREADS', '1')

# only as the program: a device worker started with multiprocessing's spawn imports this file as __mp_main__, and
# sets up its own signals
if __name__ == '__main__':
	# the signal handlers before the engine's modules load (a tenth of a second): a Ctrl-C or SIGTERM then stops with
	# one line and its exit code, as it does later, instead of a traceback or a silent kill
	from facefusion import interrupts

	interrupts.install_signal_handlers()
	try:
		from facefusion import core
	except KeyboardInterrupt as interrupt:
		message, exit_code = interrupts.outcome(interrupt)
		print('[FACEFUSION] ' + message, file=sys.stderr)
		sys.exit(exit_code)
	core.main()
