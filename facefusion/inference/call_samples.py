"""What the models really ran in a run, per model: calls, items, seconds, and the feed of the largest call (kept
only while recording is on; the benchmark turns it on). Afterwards `isolated_times` replays each kept feed alone,
one call at a time, on a session built the same way: the per-item time each model has with the machine to itself,
against which the run's own per-item time and the run's model floor are judged.

Besides wall seconds, each call's CPU seconds on the calling thread are kept. With one intra-op thread ONNX Runtime
computes on the caller, so those are the call's whole CPU time: in the run against alone they tell whether a call
costs more work (threads fighting over caches or spinning) or only waits longer for a core that other work holds.
With more intra-op threads the pool's share is missed, and the figures are left out (`cpu_measured`)."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import onnxruntime


@dataclass
class ModelCalls:
	name: str
	path: Path
	stage: str
	calls: int = 0
	items: int = 0
	seconds: float = 0.0
	# CPU seconds of the calling thread (all of the call's CPU with one intra-op thread)
	cpu_seconds: float = 0.0
	# the feed of the largest call, copied
	sample: Dict[str, np.ndarray] = field(default_factory=dict)
	sample_items: int = 0


class CallRecorder:
	def __init__(self) -> None:
		self.enabled = False
		self.lock = threading.Lock()
		self.models: Dict[str, ModelCalls] = {}

	def record(self, name: str, path: Path, stage: str, feed: Dict[str, np.ndarray], items: int, seconds: float, cpu_seconds: float = 0.0) -> None:
		with self.lock:
			calls = self.models.setdefault(name, ModelCalls(name, path, stage))
			calls.calls += 1
			calls.items += items
			calls.seconds += seconds
			calls.cpu_seconds += cpu_seconds
			if items > calls.sample_items:
				calls.sample = {key: np.array(value, copy=True) for key, value in feed.items()}
				calls.sample_items = items

	def reset(self) -> None:
		with self.lock:
			self.models.clear()


RECORDER = CallRecorder()


@dataclass(frozen=True)
class IsolatedTime:
	name: str
	stage: str
	calls: int
	items: int
	run_seconds_per_item: float
	isolated_seconds_per_item: float
	# the calling thread's CPU per item, in the run and alone; None unless one intra-op thread did all the work
	run_cpu_seconds_per_item: Optional[float] = None
	isolated_cpu_seconds_per_item: Optional[float] = None


def replay_session(path: Path, thread_count: int) -> onnxruntime.InferenceSession:
	"""A CPU session with the options create_session gives CPU sessions (no spinning pools, the plan's threads)."""
	options = onnxruntime.SessionOptions()
	options.log_severity_level = 3
	if thread_count > 0:
		options.intra_op_num_threads = thread_count
	options.add_session_config_entry('session.intra_op.allow_spinning', '0')
	options.add_session_config_entry('session.inter_op.allow_spinning', '0')
	return onnxruntime.InferenceSession(str(path), sess_options=options, providers=['CPUExecutionProvider'])


def isolated_times(thread_count: int, repeats: int = 5, names: Optional[List[str]] = None) -> List[IsolatedTime]:
	"""Each recorded model's largest feed replayed alone on the CPU provider with thread_count intra-op threads
	(the run's plan): the median of repeats calls after one warm-up, per item (wall, and CPU where it is measured)."""
	cpu_measured = thread_count == 1
	results: List[IsolatedTime] = []
	for calls in list(RECORDER.models.values()):
		if names is not None and calls.name not in names or not calls.sample:
			continue
		session = replay_session(calls.path, thread_count)
		session.run(None, calls.sample)
		timings = []
		cpu_timings = []
		for _ in range(repeats):
			started = time.perf_counter()
			cpu_started = time.thread_time()
			session.run(None, calls.sample)
			cpu_timings.append(time.thread_time() - cpu_started)
			timings.append(time.perf_counter() - started)
		sample_items = max(1, calls.sample_items)
		items = max(1, calls.items)
		results.append(IsolatedTime(
			calls.name, calls.stage, calls.calls, calls.items, calls.seconds / items, float(np.median(timings)) / sample_items,
			calls.cpu_seconds / items if cpu_measured else None,
			float(np.median(cpu_timings)) / sample_items if cpu_measured else None
		))
	return results


def measured_parallelism(workers: int, thread_count: int, repeats: int = 8) -> Optional[float]:
	"""How many of the heaviest recorded model's calls the machine really runs at once: its largest feed replayed
	on `workers` sessions in as many threads at the same time, against one call alone (same intra-op threads). On
	ideal cores this is `workers`; shared caches, memory bandwidth and a virtual machine's neighbours make it less.
	None when nothing was recorded."""
	candidates = [calls for calls in RECORDER.models.values() if calls.sample]
	if not candidates or workers < 1:
		return None
	heaviest = max(candidates, key=lambda calls: calls.seconds)
	sessions = [replay_session(heaviest.path, thread_count) for _ in range(workers)]
	for session in sessions:
		session.run(None, heaviest.sample)

	def run_calls(session: onnxruntime.InferenceSession, count: int) -> None:
		for _ in range(count):
			session.run(None, heaviest.sample)

	started = time.perf_counter()
	run_calls(sessions[0], repeats)
	alone = (time.perf_counter() - started) / repeats
	threads = [threading.Thread(target=run_calls, args=(session, repeats)) for session in sessions]
	started = time.perf_counter()
	for thread in threads:
		thread.start()
	for thread in threads:
		thread.join()
	together = (time.perf_counter() - started) / repeats
	return workers * alone / together if together > 0 else None
