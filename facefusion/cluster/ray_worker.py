"""The workers' side of the Ray backend: an actor that keeps one engine (models load once per worker) and runs
WorkerTasks on local copies of the driver's files, answering with the result and the bytes of what it wrote.

Nothing assumes a shared filesystem: the driver puts each input file into Ray's object store once, a worker writes
it into its own folder the first time a task needs it (a video's segments share one copy), and every output comes
back as bytes for the driver to write under the caller's path. A killed worker leaves only its folder, whose lock
file its process held: the next worker on that machine finds the lock free and removes the folder.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Dict, List, Optional, Sequence, Tuple

try:
	import fcntl
except ImportError:
	fcntl = None  # type: ignore[assignment]

from facefusion import logger
from facefusion.workflows.worker_tasks import SegmentOutput, TaskResult, TaskRunner, WorkerTask

# options naming files a task writes besides its output: they are written in the worker and sent back too
SIDE_OUTPUT_FIELDS = ('quality_report', 'quality_plot', 'face_landmarks_export')
FOLDER_PREFIX = 'facefusion-worker-'
LOCK_NAME = '.owner.lock'


@dataclass
class WorkerReply:
	result: TaskResult
	# 'output' (the target's output or the segment's encoded file) and side-output option names → file content
	files: Dict[str, bytes] = field(default_factory=dict)


def hold_folder(folder: Path) -> Optional[IO[bytes]]:
	"""An exclusive lock on the folder's lock file, held for the worker's life. The kernel drops it when the process
	dies, however it dies; a pid would not do, since workers of clusters in other pid namespaces (containers) share
	the machine's temp folder and reuse each other's pids."""
	if fcntl is None:
		return None
	# locked under another name, then renamed (atomically, the lock goes with the file): a lock file that is there but
	# not yet held would be taken for a dead worker's by another worker starting at the same moment, which would
	# remove this worker's folder under it
	pending = folder / (LOCK_NAME + '.pending')
	handle = open(pending, 'wb')
	fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
	os.replace(pending, folder / LOCK_NAME)
	return handle


def remove_stale_folders(parent: str) -> None:
	"""Folders of workers on this machine that are gone (killed mid-task): their lock is free."""
	if fcntl is None:
		return
	for entry in Path(parent).glob(FOLDER_PREFIX + '*'):
		lock_path = entry / LOCK_NAME
		if not entry.is_dir() or not lock_path.is_file():
			continue
		try:
			with open(lock_path, 'rb') as handle:
				fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
		except OSError:
			# held: its worker is alive
			continue
		shutil.rmtree(entry, ignore_errors=True)


class ClusterWorker:
	"""Made a Ray actor by the driver (ray.remote(...)(ClusterWorker)); one per GPU, or per --cluster-worker-cpus."""

	def __init__(self, cores: int, log_level: str, warned: Sequence[str]) -> None:
		# the thread plan sizes ONNX Runtime's pools by this worker's share, not by the machine's cores
		os.environ['FACEFUSION_CORES'] = str(cores)
		os.environ['TQDM_DISABLE'] = '1'
		logger.init(log_level)
		logger.mark_warned(warned)
		remove_stale_folders(tempfile.gettempdir())
		self.folder = Path(tempfile.mkdtemp(prefix=f'{FOLDER_PREFIX}{os.getpid()}-'))
		self.folder_lock = hold_folder(self.folder)
		self.inputs: Dict[str, str] = {}
		self.task_count = 0
		self.runner = TaskRunner()

	def pid(self) -> int:
		return os.getpid()

	def run(self, task: WorkerTask, inputs: List[Tuple[str, List[Any]]]) -> WorkerReply:
		"""inputs: (the driver's path, [an ObjectRef to its bytes]) for each input file of the task (the ref is in a
		list so that Ray hands it over unresolved and it is fetched only when this worker has no copy yet)."""
		self.task_count += 1
		task_folder = self.folder / f'task-{self.task_count}'
		task_folder.mkdir()
		try:
			local_task, outputs = self.localise(task, {path: self.fetch(path, refs[0]) for path, refs in inputs}, task_folder)
			result = self.runner.run(local_task)
			files: Dict[str, bytes] = {}
			if result.ok:
				output_file = result.value.path if isinstance(result.value, SegmentOutput) else outputs.get('output_path') if task.kind == 'target' else None
				if output_file:
					files['output'] = Path(output_file).read_bytes()
					if isinstance(result.value, SegmentOutput):
						result.value = SegmentOutput('', result.value.start, result.value.frames, result.value.duration)
				for name in SIDE_OUTPUT_FIELDS:
					if name in outputs and os.path.isfile(outputs[name]):
						files[name] = Path(outputs[name]).read_bytes()
			return WorkerReply(result, files)
		finally:
			shutil.rmtree(task_folder, ignore_errors=True)
			if task.kind == 'target':
				# a batch item's inputs serve no other task: a long batch would otherwise pile up every video it saw
				# (a video's parts share their target, so segments keep theirs)
				for _, refs in inputs:
					self.forget(refs[0])

	def forget(self, ref: Any) -> None:
		local = self.inputs.pop(ref.hex(), None)
		if local is not None and os.path.exists(local):
			os.remove(local)

	def fetch(self, driver_path: str, ref: Any) -> str:
		import ray
		key = ref.hex()
		if key not in self.inputs:
			local = self.folder / 'inputs' / f'{len(self.inputs)}-{os.path.basename(driver_path)}'
			local.parent.mkdir(exist_ok=True)
			local.write_bytes(ray.get(ref))
			self.inputs[key] = str(local)
		return self.inputs[key]

	def localise(self, task: WorkerTask, local_inputs: Dict[str, str], task_folder: Path) -> Tuple[WorkerTask, Dict[str, str]]:
		"""The task on this worker's files: inputs by their local copies, outputs into the task's folder, and the
		run kept here (no cluster of its own; the device Ray gave this worker is its device 0)."""
		config = task.config
		outputs: Dict[str, str] = {}
		for name in ('output_path',) + SIDE_OUTPUT_FIELDS:
			value: Optional[str] = getattr(config, name)
			if value:
				outputs[name] = str(task_folder / os.path.basename(value))
		config = config.with_changes(
			source_paths=[local_inputs.get(path, path) for path in config.source_paths],
			target_path=local_inputs.get(str(config.target_path), config.target_path) if config.target_path else None,
			cluster_address=None, execution_device_ids=['0'], **outputs
		)
		return dataclasses.replace(task, config=config), outputs

	def close(self) -> None:
		self.runner.close()
		shutil.rmtree(self.folder, ignore_errors=True)
		if self.folder_lock is not None:
			self.folder_lock.close()
