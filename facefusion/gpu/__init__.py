"""Device-side code: CUDA detection and the array-module switch, per-pixel ops written once against `xp`
(NumPy on the CPU, CuPy on the GPU), custom CUDA kernels with their NumPy references, and the compositor.

Nothing here imports CuPy at module import time: a CPU-only install never pays for it and never fails on it.
"""
from facefusion.gpu.device import DeviceInfo, array_module_of, detect_device, free_device_memory, get_array_module, gpu_available, is_device_array, synchronize, to_device, to_host

__all__ = [
	'DeviceInfo',
	'array_module_of',
	'detect_device',
	'free_device_memory',
	'get_array_module',
	'gpu_available',
	'is_device_array',
	'synchronize',
	'to_device',
	'to_host'
]
