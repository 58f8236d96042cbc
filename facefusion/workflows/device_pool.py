"""Several devices on one machine: one worker process per --execution-device-ids entry, each with its own sessions on
its device and its own share of the CPU cores, taking WorkerTasks from the driver one at a time.

Processes rather than threads, because the per-frame Python work (tracking, pasting) of one device would otherwise
wait for the GIL while another device's worker holds it. Each worker has its own pipe to the driver (a shared queue
can be left locked by a worker killed in the middle of a write), and the driver hands the next task to whichever
worker is idle, so a slow device simply takes fewer tasks. A worker that dies (killed, out of memory) is started
again and its task is given out once more, up to MAX_ATTEMPTS times in all.
"""
from __future__ import annotations

import dataclasses
import multiprocessing
import os
import signal
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from facefusion import child_process, interrupts, logger
from facefusion.errors import ProcessingError
from facefusion.workflows.worker_tasks import TaskResult, TaskRunner, WorkerTask

MAX_ATTEMPTS = 3
# how long a worker gets to clean up (partial files, ffmpeg children) after SIGTERM before it is killed
STOP_GRACE_SECONDS = 10.0

FrameCallback = Callable[[int], None]


def split_cores(cores: Sequence[int], workers: int) -> List[List[int]]:
	"""The cores in as many contiguous shares as workers (at least one core each: more workers than cores share)."""
	cores = sorted(cores)
	if workers >= len(cores):
		return [[cores[index % len(cores)]] for index in range(workers)]
	return [cores[len(cores) * index // workers:len(cores) * (index + 1) // workers] for index in range(workers)]


def device_worker_main(device_id: str, cores: List[int], log_level: str, warned: List[str], connection: Connection) -> None:
	"""A worker process: tasks in, ('frames', n) and ('done', TaskResult) out, until the driver sends None."""
	# the driver decides what Ctrl-C means (it stops the workers with SIGTERM, which takes the cleanup paths); the
	# worker was started with SIGINT blocked (start_worker), so a Ctrl-C during its start-up was held, and is dropped
	# now that it is ignored
	signal.signal(signal.SIGINT, signal.SIG_IGN)
	if hasattr(signal, 'pthread_sigmask'):
		signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
	interrupts.install_signal_handlers()
	# the driver shows one progress bar for all workers
	os.environ['TQDM_DISABLE'] = '1'
	if cores and hasattr(os, 'sched_setaffinity'):
		os.sched_setaffinity(0, cores)
	logger.init(log_level)
	# what the driver said already (the CPU fallback of the video routes, say) is not said again by every worker
	logger.mark_warned(warned)
	runner = TaskRunner()
	try:
		while True:
			task = connection.recv()
			if task is None:
				break
			task = dataclasses.replace(task, config=task.config.with_changes(execution_device_ids=[device_id]))
			try:
				result = runner.run(task, on_frames=lambda count: connection.send(('frames', count)))
			except KeyboardInterrupt:
				raise
			except Exception as exception:
				result = TaskResult(error=f'{task.label or task.kind} failed on device {device_id}: {type(exception).__name__}: {exception}', error_kind='ProcessingError')
			connection.send(('done', result))
	except (KeyboardInterrupt, EOFError, BrokenPipeError):
		pass
	finally:
		# the worker's work is over: a SIGTERM the driver sends now (it saw the worker still busy) must not turn the
		# release and the exit into a traceback
		interrupts.ignore_signals()
		runner.close()


@dataclass
class DeviceWorker:
	device_id: str
	cores: List[int]
	process: multiprocessing.process.BaseProcess
	connection: Connection
	# the index of the task it is running, None when idle
	task_index: Optional[int] = None


@dataclass
class DevicePool:
	"""The worker processes, started on first use and kept for every run until close()."""
	device_ids: Sequence[str]
	log_level: str = 'info'
	workers: List[DeviceWorker] = field(default_factory=list)
	# (device id, cores) of workers to start: all of them before the first run, and any stopped since
	stopped: List[Tuple[str, List[int]]] = field(default_factory=list)
	# one run() at a time: the workers' pipes belong to the run that is handing out tasks
	runs_concurrently: bool = False

	@property
	def worker_count(self) -> int:
		return len(self.device_ids)

	def describe(self) -> str:
		return f'{len(self.device_ids)} device workers (devices {" ".join(self.device_ids)})'

	def start(self) -> None:
		if not self.workers and not self.stopped:
			available = sorted(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else list(range(os.cpu_count() or 1))
			self.stopped = list(zip(self.device_ids, split_cores(available, len(self.device_ids))))
		# the workers not started yet, or stopped with an abandoned task
		while self.stopped:
			device_id, cores = self.stopped.pop(0)
			self.workers.append(self.start_worker(device_id, cores))

	def stop_busy_workers(self) -> None:
		"""Workers still running tasks of a run that ended early are stopped (SIGTERM: their partial files go); the
		next run starts new ones on their devices."""
		busy = [worker for worker in self.workers if worker.task_index is not None]
		self.stop_workers(busy)
		for worker in busy:
			self.workers.remove(worker)
			self.stopped.append((worker.device_id, worker.cores))

	def stop_workers(self, workers: Sequence[DeviceWorker]) -> None:
		"""Idle workers get None and exit; busy ones get SIGTERM, which cleans up their partial files; whatever is
		still alive after the grace period is killed."""
		for worker in workers:
			try:
				if worker.task_index is None:
					worker.connection.send(None)
				elif worker.process.is_alive():
					worker.process.terminate()
			except (BrokenPipeError, OSError):
				pass
		for worker in workers:
			worker.process.join(STOP_GRACE_SECONDS)
			if worker.process.is_alive():
				worker.process.kill()
				worker.process.join()
			worker.connection.close()

	def start_worker(self, device_id: str, cores: List[int]) -> DeviceWorker:
		# a spawned worker inherits the environment as it is at that instant (see child_process)
		child_process.settle_environment()
		context = multiprocessing.get_context('spawn')
		driver_end, worker_end = context.Pipe(duplex=True)
		process = context.Process(target=device_worker_main, args=(device_id, cores, self.log_level, logger.warned_keys(), worker_end), name=f'facefusion-device-{device_id}', daemon=True)
		# started with SIGINT blocked (this thread's mask, which the worker inherits; the driver still gets a Ctrl-C
		# through its other threads or once unblocked): a Ctrl-C to the terminal's process group while the worker
		# starts up would otherwise print the worker's traceback from the middle of Python's start
		masks = hasattr(signal, 'pthread_sigmask')
		if masks:
			# the first start would start multiprocessing's resource tracker, which unblocks SIGINT on its way out
			# instead of restoring the mask: started first, here
			from multiprocessing import resource_tracker
			resource_tracker.ensure_running()
		previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT}) if masks else None
		try:
			# and the driver's own interrupt waits for the start to finish: cut off, it leaves the worker reading half
			# its start-up data (a traceback from the middle of Python's start)
			with interrupts.held():
				process.start()
		finally:
			if previous is not None:
				signal.pthread_sigmask(signal.SIG_SETMASK, previous)
		worker_end.close()
		return DeviceWorker(device_id, cores, process, driver_end)

	def run(self, tasks: Sequence[WorkerTask], on_frames: Optional[FrameCallback] = None, order: Optional[Sequence[int]] = None) -> Iterator[Tuple[int, TaskResult]]:
		"""Every task on some worker; yields (index in tasks, result) as each finishes. order: the indices in the order
		they are handed out (default: as given)."""
		self.start()
		pending = list(order) if order is not None else list(range(len(tasks)))
		attempts: Dict[int, int] = {}
		remaining = len(tasks)
		try:
			yield from self.hand_out(tasks, pending, attempts, on_frames)
			remaining = 0
		finally:
			if remaining:
				# the caller stopped early (a failed part, Ctrl-C): the tasks still running are nobody's now
				self.stop_busy_workers()

	def hand_out(self, tasks: Sequence[WorkerTask], pending: List[int], attempts: Dict[int, int], on_frames: Optional[FrameCallback]) -> Iterator[Tuple[int, TaskResult]]:
		remaining = len(tasks)
		while remaining:
			for worker in self.workers:
				if worker.task_index is None and pending:
					worker.task_index = pending.pop(0)
					attempts[worker.task_index] = attempts.get(worker.task_index, 0) + 1
					worker.connection.send(tasks[worker.task_index])
			busy = [worker for worker in self.workers if worker.task_index is not None]
			ready = wait([worker.connection for worker in busy] + [worker.process.sentinel for worker in busy])
			for worker in busy:
				if worker.connection in ready:
					try:
						kind, payload = worker.connection.recv()
					except (EOFError, OSError):
						kind, payload = 'died', None
					if kind == 'frames':
						if on_frames is not None:
							on_frames(payload)
						continue
					if kind == 'done':
						index, worker.task_index = worker.task_index, None
						remaining -= 1
						yield index, payload
						continue
				if worker.process.sentinel in ready or not worker.process.is_alive():
					pending.insert(0, self.replace_dead(worker, tasks, attempts))

	def replace_dead(self, worker: DeviceWorker, tasks: Sequence[WorkerTask], attempts: Dict[int, int]) -> int:
		"""A worker died during a task: start another on the same device and give the task out again."""
		worker.process.join(1.0)
		index = worker.task_index
		label = tasks[index].label or tasks[index].kind
		if attempts.get(index, 0) >= MAX_ATTEMPTS:
			raise ProcessingError(f'{label}: the worker on device {worker.device_id} died {attempts[index]} times (exit {worker.process.exitcode}); giving up')
		logger.get_logger().warning(f'the worker on device {worker.device_id} died (exit {worker.process.exitcode}) during {label}; running it again')
		replacement = self.start_worker(worker.device_id, worker.cores)
		self.workers[self.workers.index(worker)] = replacement
		return index

	def close(self) -> None:
		self.stop_workers(self.workers)
		self.workers = []
		self.stopped = []

	def __enter__(self) -> 'DevicePool':
		return self

	def __exit__(self, *exception: object) -> None:
		self.close()
