"""One thread plan for the whole run: how many process workers call the models at once, and how many intra-op
threads each ONNX Runtime session gets, so that together they use the cores once.

On the CPU provider every concurrent model call runs its own intra-op pool: two process workers each with a pool
of two threads on two cores means four busy threads on two cores, and each call takes about twice its isolated
time (measured: the swapper at 90 ms per item in a run against 36 ms isolated). The plan keeps
workers × intra-op threads ≤ cores: the workers are the parallelism across frames, the intra-op threads the
parallelism inside one call, and a job that runs one model call at a time (an image) gets every core for it.

On a GPU provider the host threads only feed the device and the device serialises the kernels: the workers stay as
the CPU allows and ONNX Runtime keeps its own default for the few nodes that run on the host. The same holds for
ffmpeg's decoder: one thread on the CPU provider (the cores are the workers'), ffmpeg's default on a GPU, where the
decoder has to keep up with the device.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

from facefusion.config import RunConfig

GPU_PROVIDER_NAMES = ('cuda', 'tensorrt')


@dataclass(frozen=True)
class ThreadPlan:
	cores: int
	# model calls that may run at the same time (the process stage's workers)
	process_workers: int
	# ONNX Runtime intra_op_num_threads for CPU sessions; 0 leaves ONNX Runtime's default (GPU providers)
	intra_op_threads: int
	# ffmpeg's decoding threads (frame threads and filter threads); 0 leaves ffmpeg's default (one per core)
	decoder_threads: int = 0
	# threads that make the tracker's stateless per-frame cues ahead of the one analysis thread (0: it makes them)
	cue_workers: int = 0

	def describe(self) -> str:
		pool = str(self.intra_op_threads) if self.intra_op_threads else 'ONNX Runtime default'
		decoder = str(self.decoder_threads) if self.decoder_threads else 'ffmpeg default'
		return str(self.process_workers) + ' process workers × ' + pool + ' intra-op threads on ' + str(self.cores) + ' cores, decoder threads ' + decoder + ', cue workers ' + str(self.cue_workers)


# up to this many pixels a frame, one x264 thread outruns what CPU models deliver (about 170 fps at 640x360 on one of
# these cores, veryfast, CRF 10) and its frame threads only contend with the workers: on 2 cores at 360p, one
# encoder thread made the whole run 8 % faster and saved 0.5 CPU s of 8. At 1080p one thread (16 fps) falls behind
# even a 2-core pipeline with nearly free models, so larger frames keep ffmpeg's default. x264's output does not
# depend on its thread count.
SINGLE_THREAD_ENCODE_PIXELS = 1024 * 576


def encoder_threads(plan: ThreadPlan, width: int, height: int) -> int:
	"""ffmpeg's encoder threads for frames of this size under this plan: 1 on the CPU provider up to
	SINGLE_THREAD_ENCODE_PIXELS, else 0 (ffmpeg's default: on a GPU provider the encoder must keep up with the
	device)."""
	return 1 if plan.intra_op_threads > 0 and width * height <= SINGLE_THREAD_ENCODE_PIXELS else 0


def available_cores() -> int:
	"""The cores this process may run on: FACEFUSION_CORES when set (a cluster worker's share of its machine, which
	Ray does not pin), else the affinity mask where the platform has one (a container's share)."""
	share = os.environ.get('FACEFUSION_CORES', '')
	if share.isdigit() and int(share) > 0:
		return int(share)
	if hasattr(os, 'sched_getaffinity'):
		return max(1, len(os.sched_getaffinity(0)))
	return max(1, os.cpu_count() or 1)


def uses_gpu(config: RunConfig) -> bool:
	return any(name in GPU_PROVIDER_NAMES for name in config.execution_providers) or config.face_swapper_use_trt or config.face_enhancer_use_trt


def plan_threads(config: RunConfig, concurrent_calls: Optional[int] = None, cores: Optional[int] = None) -> ThreadPlan:
	"""The plan for a run whose process stage makes up to concurrent_calls model calls at once (the video's workers:
	--execution-thread-count capped at the cores; None: that), or 1 for a job that calls one model at a time."""
	cores = cores or available_cores()
	workers = concurrent_calls if concurrent_calls is not None else min(config.execution_thread_count, cores)
	workers = max(1, min(workers, cores))
	if uses_gpu(config):
		# the device does the model work and the one analysis thread, in frame order, becomes the limit: where a core
		# is spare, the tracker's stateless per-frame work (a scene-cut signature and a flow image, 4 ms of a 1080p
		# frame's 14 here) is done ahead in a thread of its own. On the CPU provider the workers take every core, and
		# the extra hand-over only costs (measured on 2 cores)
		return ThreadPlan(cores, workers, 0, cue_workers=1 if cores >= workers + 2 else 0)
	# on the CPU provider the workers already keep every core busy: ffmpeg's frame and filter threads would only add
	# their hand-overs (measured on 2 cores, 360p: 0.2 CPU s of 0.9 for 250 frames), and one thread decodes far faster
	# than CPU models consume frames
	return ThreadPlan(cores, workers, max(1, cores // workers), decoder_threads=1)
