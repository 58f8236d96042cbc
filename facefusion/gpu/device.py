"""Is there a usable CUDA device for CuPy, and which array module should per-pixel code use.

The probe runs once per device id and is cached: it imports CuPy, counts devices and runs one tiny kernel, because
`cupy.cuda.is_available()` and even `getDeviceCount()` can succeed on a machine whose driver is too old for the CUDA
runtime, which only fails at the first real allocation. When the GPU was asked for but is unusable the engine says
so in one line and continues with NumPy.
"""
from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Dict, Optional

import numpy as np

from facefusion.logger import get_logger, warn_once

# set to 1 to force the CPU path even where a GPU works (tests, comparisons, debugging)
DISABLE_ENVIRONMENT_VARIABLE = 'FACEFUSION_DISABLE_GPU'
# a NumPy or a CuPy array: CuPy is never imported for a type hint, so the hint cannot name its class
Array = Any


@dataclass(frozen=True)
class DeviceInfo:
	available: bool
	# why not, when unavailable: one line meant for the user
	reason: str = ''
	device_id: int = 0
	name: str = ''
	# e.g. '90' for Hopper
	compute_capability: str = ''
	total_memory: int = 0
	cupy_version: str = ''

	def describe(self) -> str:
		if not self.available:
			return 'no usable CUDA device (' + self.reason + ')'
		gibibytes = self.total_memory / (1 << 30)
		return self.name + ' (sm_' + self.compute_capability + ', ' + format(gibibytes, '.0f') + ' GiB, CuPy ' + self.cupy_version + ')'


_lock = threading.Lock()
_detected: Dict[int, DeviceInfo] = {}


def first_line(exception: BaseException) -> str:
	text = str(exception).strip().splitlines()
	return type(exception).__name__ + (': ' + text[0] if text else '')


def probe_device(device_id: int) -> DeviceInfo:
	if os.environ.get(DISABLE_ENVIRONMENT_VARIABLE, '').strip() not in ('', '0'):
		return DeviceInfo(False, DISABLE_ENVIRONMENT_VARIABLE + ' is set', device_id)
	try:
		import cupy
	except Exception as exception:
		return DeviceInfo(False, 'CuPy is not installed (pip install .[gpu]): ' + first_line(exception), device_id)
	try:
		count = cupy.cuda.runtime.getDeviceCount()
		if device_id >= count:
			return DeviceInfo(False, 'CUDA device ' + str(device_id) + ' asked for, ' + str(count) + ' found', device_id, cupy_version=cupy.__version__)
		with cupy.cuda.Device(device_id) as device:
			# one real allocation and kernel launch: the driver / runtime mismatch only shows here
			probe = cupy.arange(4, dtype=cupy.float32) * 2
			if float(probe.sum()) != 12.0:
				return DeviceInfo(False, 'CUDA device ' + str(device_id) + ' computed a wrong result', device_id, cupy_version=cupy.__version__)
			properties = cupy.cuda.runtime.getDeviceProperties(device_id)
			name = properties.get('name', b'')
			name = name.decode(errors='replace') if isinstance(name, bytes) else str(name)
			total_memory = int(cupy.cuda.runtime.memGetInfo()[1])
			return DeviceInfo(True, '', device_id, name, str(device.compute_capability), total_memory, cupy.__version__)
	except Exception as exception:
		return DeviceInfo(False, 'CUDA is unusable: ' + first_line(exception), device_id, cupy_version=getattr(cupy, '__version__', ''))


def detect_device(device_id: int = 0) -> DeviceInfo:
	"""The cached probe of one device (the first call costs about 0.2 s with CuPy installed, nothing without)."""
	with _lock:
		info = _detected.get(device_id)
		if info is None:
			info = probe_device(device_id)
			_detected[device_id] = info
			get_logger().debug('gpu: %s', info.describe())
		return info


def gpu_available(device_id: int = 0) -> bool:
	return detect_device(device_id).available


def get_array_module(prefer_gpu: bool, device_id: int = 0) -> ModuleType:
	"""cupy when the GPU was asked for and works, else numpy; asking for a GPU that is not there warns once. With
	CuPy, device_id becomes the calling thread's current device (CuPy's is per thread and starts at 0), so the
	arrays this thread makes next live on the GPU its sessions run on."""
	if not prefer_gpu:
		return np
	info = detect_device(device_id)
	if info.available:
		import cupy
		use_device(cupy, device_id)
		return cupy
	warn_once('gpu-missing', 'GPU processing asked for but unavailable (' + info.reason + '); running on the CPU with NumPy')
	return np


def use_device(cupy: ModuleType, device_id: int) -> None:
	"""Make device_id current for this thread (a no-op when it already is)."""
	if cupy.cuda.runtime.getDevice() != device_id:
		cupy.cuda.Device(device_id).use()


def is_device_array(array: Array) -> bool:
	"""True for a CuPy array, without importing CuPy (a NumPy-only run never loads it)."""
	return type(array).__module__.split('.')[0] == 'cupy'


def array_module_of(*arrays: Array) -> ModuleType:
	"""cupy if any argument is a CuPy array, else numpy: the `xp` that per-pixel code runs under."""
	if any(is_device_array(array) for array in arrays):
		return sys.modules['cupy']
	return np


def to_host(array: Array) -> np.ndarray:
	if is_device_array(array):
		return array.get()
	return np.asarray(array)


def to_device(array: Array, xp: ModuleType) -> Array:
	"""The array under the module xp (a copy across devices, the same object when it is already there)."""
	if xp is np:
		return to_host(array)
	return xp.asarray(array)


def free_device_memory(device_id: int = 0) -> Optional[int]:
	"""Bytes free on the device as the driver sees them (what ONNX Runtime's arena can still take), None without a
	GPU. CuPy's pool keeps freed blocks cached; those count as used here, which is the safe side for sizing."""
	if not gpu_available(device_id):
		return None
	import cupy
	with cupy.cuda.Device(device_id):
		return int(cupy.cuda.runtime.memGetInfo()[0])


def synchronize(device_id: int = 0) -> None:
	"""Wait for the device's queued work (timings, and before ONNX Runtime reads what CuPy wrote on another stream)."""
	if 'cupy' in sys.modules and gpu_available(device_id):
		import cupy
		with cupy.cuda.Device(device_id):
			cupy.cuda.runtime.deviceSynchronize()
