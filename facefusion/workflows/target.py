"""One checked target to its workflow, by what the target is; a video is split across workers when the run has
several devices (--execution-device-ids 0 1 ...) or a cluster (--cluster-address)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from facefusion.config import RunConfig
from facefusion.workflows.engine import Engine
from facefusion.workflows.image import run_image
from facefusion.workflows.job import JobPaths
from facefusion.workflows.video import run_video

if TYPE_CHECKING:
	from facefusion.workflows.worker_tasks import WorkerBackend


def run_target(config: RunConfig, paths: JobPaths, engine: Optional[Engine] = None) -> int:
	# a video goes to the workers of a cluster or of several devices; an image only to a cluster (several devices
	# here: an image needs only one)
	if (paths.target_kind == 'video' and splits_videos(config)) or config.cluster_address:
		with open_backend(config) as backend:
			return run_target_on_workers(config, paths, backend)
	if paths.target_kind == 'video':
		return run_video(config, paths, engine)
	return run_image(config, paths, engine)


def run_target_on_workers(config: RunConfig, paths: JobPaths, backend: 'WorkerBackend') -> int:
	"""A video in segments across the workers, an image as one task on one of them."""
	from facefusion.workflows.split_video import run_video_split
	from facefusion.workflows.worker_tasks import WorkerTask, raise_task_error
	if paths.target_kind == 'video':
		return run_video_split(config, paths, backend)
	for _, result in backend.run([WorkerTask('target', config.with_changes(output_path=paths.output_path), label=str(paths.target_path))]):
		if not result.ok:
			raise_task_error(result)
	return 0


def splits_videos(config: RunConfig) -> bool:
	"""Whether videos of this run go to several workers: a cluster, or more than one device here."""
	return bool(config.cluster_address) or len(config.execution_device_ids) > 1


def open_backend(config: RunConfig) -> 'WorkerBackend':
	"""The workers of this run: the cluster (--cluster-address) or one process per device (more than one
	--execution-device-ids). Use as a context manager: the workers stop at the end."""
	if config.cluster_address:
		from facefusion.cluster.ray_backend import connect_backend
		return connect_backend(config)
	from facefusion.workflows.device_pool import DevicePool
	return DevicePool(list(config.execution_device_ids), config.log_level)
