"""The driver's side of the Ray backend: a WorkerBackend whose workers are Ray actors (cluster/ray_worker.py).

connect_backend() joins the cluster named by --cluster-address (auto, ray://HOST:PORT through Ray Client, or the
head's HOST:PORT), ships this package to the workers (runtime_env py_modules: the workers need the engine's
dependencies installed, not the engine) and passes on the FACEFUSION_* settings. Workers are started on first use,
one per GPU of the cluster when the models run on a GPU, else one per --cluster-worker-cpus cores, and kept for
every task of the run so that each loads its models once.

A worker that dies during a task (its process killed, its machine lost) is restarted by Ray and the task runs again
(max_restarts, max_task_retries); a task that still fails ends the run with one line, and nothing partial is ever
under the caller's final name: outputs come back as bytes and are written by replace_atomically / as hidden
partial segment files.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from facefusion import child_process, logger
from facefusion.config import RunConfig
from facefusion.errors import InputError, ProcessingError
from facefusion.workflows.worker_tasks import SegmentOutput, TaskResult, WorkerTask

INSTALL_HINT = "--cluster-address needs Ray, an optional extra: pip install '.[cluster]' (or pip install 'ray>=2.40')"
# a task whose worker died is run again this many times (on the restarted worker) before the run gives up
TASK_RETRIES = 3
# seconds a first connection to the cluster's address may take before it counts as unreachable
CONNECT_TIMEOUT_SECONDS = 10
# Ray Client connections tried before the cluster counts as unreachable, and the pause between them
CLIENT_CONNECT_ATTEMPTS = 3
CLIENT_RETRY_SECONDS = 2.0
# seconds the workers get to remove their folders at the end of a run
CLOSE_TIMEOUT_SECONDS = 15
# environment settings the workers need as the driver has them (model folder, download mirror, ffmpeg binary)
FORWARDED_ENVIRONMENT_PREFIX = 'FACEFUSION_'

FrameCallback = Callable[[int], None]


def import_ray() -> Any:
	try:
		import ray
	except ImportError as exception:
		raise InputError(INSTALL_HINT) from exception
	return ray


def runtime_environment() -> Dict[str, Any]:
	import facefusion
	env_vars = {name: value for name, value in os.environ.items() if name.startswith(FORWARDED_ENVIRONMENT_PREFIX) and name != 'FACEFUSION_CORES'}
	# the workers' nested OpenMP pools would oversubscribe their cores, as in facefusion.py
	env_vars.setdefault('OMP_NUM_THREADS', '1')
	return {'py_modules': [str(Path(facefusion.__file__).parent)], 'env_vars': env_vars}


def describe_connect_error(exception: BaseException) -> str:
	lines = [line.strip() for line in str(exception).strip().splitlines() if line.strip()]
	return ' '.join(lines)[:300] if lines else type(exception).__name__


def address_endpoint(address: str) -> Optional[Tuple[str, int]]:
	"""(host, port) of ray://HOST:PORT or HOST:PORT; None for auto (Ray finds the local cluster itself)."""
	text = address[len('ray://'):] if address.startswith('ray://') else address
	host, separator, port = text.rpartition(':')
	if not separator or not port.isdigit():
		if address == 'auto':
			return None
		raise InputError(f'--cluster-address must be auto, ray://HOST:PORT or HOST:PORT, not {address}')
	return host.strip('[]') or '127.0.0.1', int(port)


def check_reachable(address: str) -> None:
	"""A first connection by hand: Ray itself retries an unreachable address for minutes before it gives up."""
	import socket
	endpoint = address_endpoint(address)
	if endpoint is None:
		return
	try:
		socket.create_connection(endpoint, timeout=CONNECT_TIMEOUT_SECONDS).close()
	except OSError as exception:
		raise InputError(f'cannot reach the Ray cluster at {address}: {exception.strerror or exception}') from exception


def connect_backend(config: RunConfig) -> 'RayBackend':
	"""Join the cluster (one clear InputError when Ray is missing or the cluster cannot be reached)."""
	ray = import_ray()
	address = str(config.cluster_address)
	check_reachable(address)
	options: Dict[str, Any] = {'address': address, 'runtime_env': runtime_environment(), 'logging_level': logging.DEBUG if config.log_level == 'debug' else logging.WARNING, 'log_to_driver': config.log_level == 'debug'}
	if not address.startswith('ray://'):
		options['include_dashboard'] = False
		node_ip = os.environ.get('FACEFUSION_RAY_NODE_IP')
		if node_ip:
			options['_node_ip_address'] = node_ip
	# Ray starts processes of its own that inherit the environment as it is then (see child_process)
	child_process.settle_environment()
	for attempt in range(1, CLIENT_CONNECT_ATTEMPTS + 1):
		try:
			ray.init(**options)
			break
		except Exception as exception:
			# Ray Client's server starts a process of its own per client, which can fail to come up in time on a busy
			# head ("Initialization failure from server"); a second connection usually gets one
			if not address.startswith('ray://') or attempt == CLIENT_CONNECT_ATTEMPTS:
				raise InputError(f'cannot reach the Ray cluster at {address}: {describe_connect_error(exception)}') from exception
			logger.get_logger().debug(f'connecting to {address} failed ({describe_connect_error(exception)}); trying again')
			time.sleep(CLIENT_RETRY_SECONDS)
	backend = RayBackend(config)
	try:
		backend.plan_workers()
	except BaseException:
		ray.shutdown()
		raise
	return backend


@dataclass
class RayBackend:
	config: RunConfig
	worker_total: int = 0
	# what each worker asks Ray for
	resources: Dict[str, float] = field(default_factory=dict)
	actors: List[Any] = field(default_factory=list)
	idle: 'queue.Queue[Any]' = field(default_factory=queue.Queue)
	# driver path → (size, mtime, ObjectRef of its bytes): each input goes into the object store once
	inputs: Dict[str, Tuple[int, float, Any]] = field(default_factory=dict)
	lock: threading.Lock = field(default_factory=threading.Lock)
	# run() may be called from several threads at once: job-run-all runs jobs side by side on a cluster
	runs_concurrently: bool = True

	@property
	def worker_count(self) -> int:
		return self.worker_total

	def describe(self) -> str:
		kind = 'GPU' if self.resources.get('num_gpus') else f'{int(self.resources.get("num_cpus", 1))}-core CPU'
		return f'a Ray cluster ({self.worker_total} {kind} workers at {self.config.cluster_address})'

	def plan_workers(self) -> None:
		from facefusion.inference.thread_plan import uses_gpu
		ray = import_ray()
		resources = ray.cluster_resources()
		cpus = float(resources.get('CPU', 0))
		per_worker = self.config.cluster_worker_cpus
		if uses_gpu(self.config):
			gpus = int(resources.get('GPU', 0))
			if gpus < 1:
				raise InputError(f'the Ray cluster at {self.config.cluster_address} has no GPU, but the run asks for {" ".join(self.config.execution_providers)}; add GPU nodes or use --execution-providers cpu')
			self.worker_total = gpus
			self.resources = {'num_gpus': 1, 'num_cpus': min(per_worker, max(cpus / gpus, 0.0))}
		else:
			if cpus < per_worker:
				raise InputError(f'the Ray cluster at {self.config.cluster_address} has {cpus:g} CPU cores, fewer than --cluster-worker-cpus {per_worker}')
			self.worker_total = max(1, int(cpus // per_worker))
			self.resources = {'num_cpus': per_worker}
		logger.get_logger().info(f'cluster: {self.describe()}')

	def start_workers(self) -> None:
		with self.lock:
			if self.actors:
				return
			ray = import_ray()
			from facefusion.cluster.ray_worker import ClusterWorker
			actor_class = ray.remote(max_restarts=-1, max_task_retries=TASK_RETRIES, **self.resources)(ClusterWorker)
			cores = max(1, int(self.resources.get('num_cpus') or 1))
			level = self.config.log_level
			for _ in range(self.worker_total):
				actor = actor_class.remote(cores, level, logger.warned_keys())
				self.actors.append(actor)
				self.idle.put(actor)

	def input_refs(self, task: WorkerTask) -> List[Tuple[str, List[Any]]]:
		ray = import_ray()
		refs = []
		for path in task.input_paths():
			status = os.stat(path)
			with self.lock:
				known = self.inputs.get(path)
				if known is None or known[:2] != (status.st_size, status.st_mtime):
					known = (status.st_size, status.st_mtime, ray.put(Path(path).read_bytes()))
					self.inputs[path] = known
			refs.append((path, [known[2]]))
		return refs

	def run(self, tasks: Sequence[WorkerTask], on_frames: Optional[FrameCallback] = None, order: Optional[Sequence[int]] = None) -> Iterator[Tuple[int, TaskResult]]:
		"""Every task on some idle worker; yields (index, result) as each finishes. Safe to call from several threads
		at once (job-run-all runs jobs side by side): the idle workers are shared."""
		ray = import_ray()
		self.start_workers()
		pending = list(order) if order is not None else list(range(len(tasks)))
		in_flight: Dict[Any, Tuple[int, Any]] = {}
		try:
			while pending or in_flight:
				while pending:
					try:
						# block for a worker only when nothing of ours is running (else check back after a wait)
						actor = self.idle.get(block=not in_flight, timeout=None if not in_flight else 0)
					except queue.Empty:
						break
					index = pending.pop(0)
					in_flight[actor.run.remote(self.remote_task(tasks[index]), self.input_refs(tasks[index]))] = (index, actor)
				done, _ = ray.wait(list(in_flight), num_returns=1, timeout=0.5)
				for future in done:
					index, actor = in_flight.pop(future)
					self.idle.put(actor)
					result = self.collect(tasks[index], future)
					if on_frames is not None and result.frames:
						on_frames(result.frames)
					yield index, result
		finally:
			for future, (_, actor) in in_flight.items():
				# an interrupted run: the worker's task is cancelled and the worker is free for others
				try:
					ray.cancel(future)
				except Exception as exception:
					logger.get_logger().debug(f'cancelling a cluster task failed: {describe_connect_error(exception)}')
				self.idle.put(actor)
			# this run's inputs leave the object store (a task still running holds its own reference)
			with self.lock:
				for task in tasks:
					for path in task.input_paths():
						self.inputs.pop(path, None)

	def remote_task(self, task: WorkerTask) -> WorkerTask:
		return dataclasses.replace(task, config=task.config.with_changes(cluster_address=None))

	def collect(self, task: WorkerTask, future: Any) -> TaskResult:
		"""The worker's reply, its files written where the caller asked for them."""
		from facefusion.partial_files import partial_media_name, replace_atomically
		ray = import_ray()
		try:
			reply = ray.get(future)
		except ray.exceptions.RayError as exception:
			raise ProcessingError(f'{task.label or task.kind} failed on the cluster: {describe_connect_error(exception)}') from exception
		result = reply.result
		if not result.ok:
			return result
		if isinstance(result.value, SegmentOutput) and 'output' in reply.files:
			path = partial_media_name(str(task.config.output_path), 'partial')
			path.write_bytes(reply.files['output'])
			result.value = SegmentOutput(str(path), result.value.start, result.value.frames, result.value.duration)
		elif task.kind == 'target':
			replace_atomically(str(task.config.output_path), reply.files['output'])
			result.value = task.config.output_path
		for name, content in reply.files.items():
			if name != 'output':
				replace_atomically(str(getattr(task.config, name)), content)
		return result

	def close(self) -> None:
		"""The workers remove their folders (copies of the inputs) and release their sessions, then go."""
		ray = import_ray()
		try:
			ray.get([actor.close.remote() for actor in self.actors], timeout=CLOSE_TIMEOUT_SECONDS)
		except Exception as exception:
			logger.get_logger().debug(f'cluster workers did not all close cleanly: {describe_connect_error(exception)}')
		for actor in self.actors:
			try:
				ray.kill(actor)
			except Exception:
				pass
		self.actors = []
		ray.shutdown()

	def __enter__(self) -> 'RayBackend':
		return self

	def __exit__(self, *exception: object) -> None:
		self.close()
