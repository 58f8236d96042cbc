"""Work across machines: a Ray cluster as a WorkerBackend (ray_backend.py, the driver's side) and its actors
(ray_worker.py, the workers' side). Ray is an optional extra: pip install .[cluster]."""
