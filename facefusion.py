#!/usr/bin/env python3
"""Entry point: `python facefusion.py <command> [options]` (see `python facefusion.py --help`)."""
import os

# Before numpy, OpenCV or onnxruntime load (as FaceFusion does): one OpenMP thread each, because parallelism comes
# from the engine's own workers and onnxruntime's pools, and nested OpenMP pools oversubscribe the CPU. A value the
# user exported is kept.
os.environ.setdefault('OMP_NUM_THREADS', '1')

from facefusion import core  # noqa: E402

if __name__ == '__main__':
	core.main()
