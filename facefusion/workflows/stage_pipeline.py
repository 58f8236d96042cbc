"""Stages in their own threads, joined by bounded queues: decode, work and encode overlap, memory stays flat.

    source iterable ──► [stage 1: N workers] ──► [stage 2: M workers] ──► ... ──► caller (in order)

- Order is preserved: items carry their position from the source; a stage with several workers re-orders its
  results before passing them on, so the caller receives results in source order.
- Memory is bounded: every queue holds at most ``queue_size`` items, and a multi-worker stage lets at most
  ``queue_size + workers`` items be in flight or waiting for an earlier one, however slow one item is.
- Errors propagate: the first exception in any stage (or in the source) stops all the others and is re-raised
  in the caller's thread, with its original traceback.
- Stopping: ``stop()`` (e.g. from a Ctrl-C handler), or the caller leaving the loop early (break, exception,
  KeyboardInterrupt) stops and joins every thread.

Threads suit this engine: ffmpeg pipes, numpy, OpenCV and onnxruntime release the GIL for the heavy parts.
"""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Generic, Iterable, Iterator, List, Optional, Tuple, TypeVar

from facefusion.errors import ProcessingError

Item = TypeVar('Item')
# how often a blocked thread looks at the stop event
_POLL_SECONDS = 0.05


class _EndOfStream:
	"""Sentinel that follows the last item through every queue."""


_END = _EndOfStream()


@dataclass
class Stage:
	"""One step of the pipeline: ``function(item) -> result`` run by ``workers`` threads."""
	name: str
	function: Callable[[Any], Any]
	workers: int = 1


@dataclass
class StageStatistics:
	name: str
	items: int = 0
	busy_seconds: float = 0.0
	lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

	def add(self, seconds: float) -> None:
		with self.lock:
			self.items += 1
			self.busy_seconds += seconds


class PipelineStopped(Exception):
	"""Raised inside stage threads to unwind them once the pipeline is stopping (never reaches the caller)."""


class PipelineCancelled(ProcessingError):
	"""The caller's loop ends with this when stop() was called before the last item came through."""


class StagePipeline(Generic[Item]):
	"""Iterate over a StagePipeline to get the last stage's results in source order.

	``queue_size`` bounds every inter-stage queue; ``stop_event`` may be shared with other code that wants to
	stop the run (it is set when the pipeline stops for any reason)."""

	def __init__(self, source: Iterable[Any], stages: List[Stage], queue_size: int = 8, stop_event: Optional[threading.Event] = None) -> None:
		if not stages:
			raise ValueError('A pipeline needs at least one stage')
		self.source = source
		self.stages = stages
		self.queue_size = max(1, queue_size)
		self.stop_event = stop_event or threading.Event()
		# set when the pipeline ends for any reason; kept apart from stop_event so a shared event is not left set
		self._halt = threading.Event()
		self.statistics: List[StageStatistics] = [StageStatistics(stage.name) for stage in stages]
		self._queues: List[queue.Queue] = [queue.Queue(maxsize=self.queue_size) for _ in range(len(stages) + 1)]
		# told of every item put into a queue: the helpers of the stage that reads it wait on this, not on a timer
		self._arrivals: Dict[int, threading.Condition] = {id(target): threading.Condition() for target in self._queues}
		self._threads: List[threading.Thread] = []
		self._error: Optional[BaseException] = None
		self._error_lock = threading.Lock()
		self._started = False

	# -- plumbing that never blocks forever: every wait re-checks the stop event

	def _stopping(self) -> bool:
		return self._halt.is_set() or self.stop_event.is_set()

	def _put(self, target: queue.Queue, value: Any) -> None:
		while True:
			if self._stopping():
				raise PipelineStopped()
			try:
				target.put(value, timeout=_POLL_SECONDS)
			except queue.Full:
				continue
			arrivals = self._arrivals[id(target)]
			with arrivals:
				arrivals.notify_all()
			return

	def _get(self, source: queue.Queue) -> Any:
		while True:
			if self._stopping():
				raise PipelineStopped()
			try:
				return source.get(timeout=_POLL_SECONDS)
			except queue.Empty:
				continue

	def _fail(self, error: BaseException) -> None:
		with self._error_lock:
			if self._error is None:
				self._error = error
		self._halt.set()

	# -- threads

	def _feed(self) -> None:
		iterator = iter(self.source)
		try:
			for position, item in enumerate(iterator):
				self._put(self._queues[0], (position, item))
			self._put(self._queues[0], _END)
		except PipelineStopped:
			pass
		except BaseException as error:
			self._fail(error)
		finally:
			# a generator source (e.g. VideoReader) closes now, which stops its ffmpeg when we end early
			close = getattr(iterator, 'close', None)
			if close is not None:
				try:
					close()
				except Exception:
					pass

	def _start_stage(self, stage_index: int) -> None:
		stage = self.stages[stage_index]
		inbox, outbox = self._queues[stage_index], self._queues[stage_index + 1]
		arrivals = self._arrivals[id(inbox)]
		workers = max(1, stage.workers)
		statistics = self.statistics[stage_index]
		# re-ordering state shared by the stage's workers
		state: Dict[str, Any] = {'next': 0, 'pending': {}, 'alive': workers, 'ended': False}
		condition = threading.Condition()
		# admission tickets bound what a slow item lets pile up behind it in `pending`
		tickets = threading.BoundedSemaphore(self.queue_size + workers)

		def emit_in_order(position: int, result: Any) -> None:
			with condition:
				state['pending'][position] = result
				while state['next'] in state['pending']:
					ready = state['pending'].pop(state['next'])
					state['next'] += 1
					self._put(outbox, (state['next'] - 1, ready))
					tickets.release()

		def work(helper: bool) -> None:
			try:
				while True:
					while not tickets.acquire(timeout=_POLL_SECONDS):
						if self._stopping():
							raise PipelineStopped()
					if helper:
						# a helper takes work only when more is waiting than the first worker takes: a stage that keeps
						# up on one thread stays on one (fewer threads contend for the cores), one that falls behind
						# gets them all
						with arrivals:
							while inbox.qsize() < 2 and not state['ended'] and not self._stopping():
								arrivals.wait(_POLL_SECONDS)
					entry = self._get(inbox)
					if entry is _END:
						state['ended'] = True
						tickets.release()
						# let the stage's other workers see the end too
						self._put(inbox, _END)
						break
					position, item = entry
					started = time.perf_counter()
					result = stage.function(item)
					statistics.add(time.perf_counter() - started)
					if workers == 1:
						self._put(outbox, (position, result))
						tickets.release()
					else:
						emit_in_order(position, result)
				with condition:
					state['alive'] -= 1
					last = state['alive'] == 0
				if last:
					self._put(outbox, _END)
			except PipelineStopped:
				pass
			except BaseException as error:
				self._fail(error)

		for worker_index in range(workers):
			thread = threading.Thread(target=work, args=(worker_index > 0,), name='stage-{}-{}'.format(stage.name, worker_index), daemon=True)
			self._threads.append(thread)
			thread.start()

	def start(self) -> None:
		if self._started:
			return
		self._started = True
		feeder = threading.Thread(target=self._feed, name='stage-source', daemon=True)
		self._threads.append(feeder)
		feeder.start()
		for stage_index in range(len(self.stages)):
			self._start_stage(stage_index)

	def stop(self) -> None:
		"""Ask every thread to stop (safe from any thread, e.g. a signal handler)."""
		self.stop_event.set()

	def join(self, timeout: float = 5.0) -> None:
		deadline = time.monotonic() + timeout
		for thread in self._threads:
			thread.join(max(0.0, deadline - time.monotonic()))

	def __iter__(self) -> Iterator[Any]:
		self.start()
		results = self._queues[-1]
		finished = False
		try:
			while True:
				try:
					entry = results.get(timeout=_POLL_SECONDS)
				except queue.Empty:
					if self._stopping():
						break
					continue
				if entry is _END:
					finished = True
					break
				yield entry[1]
		finally:
			# normal end, break, exception or Ctrl-C in the caller: stop and join everything either way
			self._halt.set()
			self.join()
		if self._error is not None:
			raise self._error
		if not finished:
			raise PipelineCancelled('Processing was stopped')

	def run(self, sink: Optional[Callable[[Any], None]] = None) -> int:
		"""Drive the pipeline to the end, handing each result (in order) to ``sink``; returns the item count."""
		count = 0
		for result in self:
			if sink is not None:
				sink(result)
			count += 1
		return count

	def timings(self) -> Dict[str, Tuple[int, float]]:
		"""Per stage: items done and seconds spent inside its function (summed over workers)."""
		return {statistic.name: (statistic.items, statistic.busy_seconds) for statistic in self.statistics}
