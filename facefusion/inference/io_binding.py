"""Run a model session through ONNX Runtime's IO binding: inputs bound where they already are, outputs written
into buffers we own and reuse.

Without binding, `session.run` copies every input to the device and every output back inside each call. Bound:

- CPU device path: NumPy inputs are wrapped as OrtValues (no copy) and the outputs go into preallocated NumPy
  arrays, also wrapped as OrtValues, one set per input-shape signature, reused call after call.
- CUDA device path: CuPy inputs are bound by device pointer (zero copy) and outputs go into preallocated CuPy
  buffers bound the same way, so a frame's crops go from warp to model to paste-back without touching the host.

Output shapes come from the model's declared shapes (symbolic dimensions resolved from the inputs that share their
name); where that is not possible, the first call of a signature lets ONNX Runtime allocate, and the shapes it
produced are remembered for the next calls.

Calls are serialised by a lock, and the results are copied out of the shared output buffers INSIDE that lock:
`run_with_iobinding` releases the GIL, so with several workers on one runner thread B's run would otherwise
overwrite the buffers while thread A still reads them (one frame's faces landing in another). copy=False hands out
the buffers themselves, for a caller that owns the runner alone and is done with the result before its next call.

Synchronisation is per stream, never per device: before a run the CuPy stream that filled the inputs is waited
for, and ONNX Runtime's Run synchronises its own stream before returning. `synchronize_inputs()` /
`synchronize_outputs()` end in `cudaDeviceSynchronize()`, which with several workers makes every call wait for all
the others' work, so they are not called.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from types import ModuleType
from typing import Dict, List, Optional, Sequence, Set, Tuple

import numpy as np
import onnxruntime

from facefusion.gpu.device import Array, gpu_available, is_device_array
from facefusion.inference.session import ELEMENT_TYPES, GPU_PROVIDERS, ModelSession

Signature = Tuple[Tuple[str, Tuple[int, ...], str], ...]

CUDA_PROVIDERS = GPU_PROVIDERS
# output buffer sets kept per runner: one per input-shape signature (batch sizes, pixel-boost sizes)
MAX_SIGNATURES = 8


@dataclass
class OutputBuffers:
	"""The preallocated outputs of one input-shape signature; ortvalues only on the CPU device path."""
	arrays: List[Array]
	ortvalues: Optional[List[onnxruntime.OrtValue]] = None


def default_device(model_session: ModelSession) -> str:
	"""'cuda' when the session runs on CUDA / TensorRT and CuPy has a working device, else 'cpu'."""
	if any(provider in CUDA_PROVIDERS for provider in model_session.active_providers) and gpu_available(model_session.device_id):
		return 'cuda'
	return 'cpu'


def buffer_pointer(array: Array) -> int:
	"""The address of a contiguous array's first element: CuPy's device pointer or NumPy's host pointer."""
	if is_device_array(array):
		return int(array.data.ptr)
	return int(array.ctypes.data)


class BoundRunner:
	def __init__(self, model_session: ModelSession, device: Optional[str] = None, device_id: Optional[int] = None, by_pointer: Optional[bool] = None) -> None:
		self.model_session = model_session
		self.session = model_session.session
		self.device = device or default_device(model_session)
		if self.device not in ('cpu', 'cuda'):
			raise ValueError('BoundRunner device must be cpu or cuda, got ' + self.device)
		# the session's own GPU (--execution-device-ids), never a hard-wired 0: with device 1, pointers from GPU 0
		# would be read by ONNX Runtime as addresses on GPU 1
		self.device_id = (model_session.device_id if self.device == 'cuda' else 0) if device_id is None else device_id
		# bind raw buffer pointers (always on CUDA); on the CPU this runs the very calls the CUDA path makes, which
		# is how CI covers them without a GPU
		self.by_pointer = True if self.device == 'cuda' else bool(by_pointer)
		self.inputs = self.session.get_inputs()
		self.outputs = self.session.get_outputs()
		self.input_types = {item.name: ELEMENT_TYPES.get(item.type, np.float32) for item in self.inputs}
		self.output_types = [ELEMENT_TYPES.get(item.type, np.float32) for item in self.outputs]
		self.binding = self.session.io_binding()
		self.buffers: 'OrderedDict[Signature, OutputBuffers]' = OrderedDict()
		# signatures whose outputs ONNX Runtime allocated once (their shapes were not predictable)
		self.learned_shapes: Dict[Signature, List[Tuple[int, ...]]] = {}
		# signatures that ran at least once with their buffers (a later failure there is a real one)
		self.verified: Set[Signature] = set()
		self.lock = threading.Lock()
		self.calls = 0
		self.quiet_options = onnxruntime.RunOptions()
		self.quiet_options.log_severity_level = 4

	@property
	def xp(self) -> ModuleType:
		if self.device == 'cuda':
			import cupy
			return cupy
		return np

	def run(self, feed: Dict[str, Array], copy: bool = True) -> List[Array]:
		"""Outputs by position, as session.run returns them (NumPy on the CPU path, CuPy on the CUDA path); arrays
		of the caller's own unless copy=False."""
		missing = [item.name for item in self.inputs if item.name not in feed]
		if missing:
			raise ValueError('missing model inputs: ' + ', '.join(missing))
		with self.lock:
			prepared = {item.name: self.prepare_input(item.name, feed[item.name]) for item in self.inputs}
			signature: Signature = tuple((name, tuple(int(size) for size in value.shape), np.dtype(value.dtype).str) for name, value in prepared.items())
			results = self.run_signature(prepared, signature)
			self.calls += 1
			if copy:
				results = [result.copy() for result in results]
				self.synchronize_stream()
		return results

	def run_batch(self, feed: Dict[str, Array], copy: bool = True) -> List[Array]:
		"""Batch-first like ModelSession.run_batch: a fixed-batch model is run one item at a time (into fresh arrays)."""
		sizes = {int(value.shape[0]) for value in feed.values()}
		if len(sizes) != 1:
			raise ValueError('all inputs of a batch call need the same batch size, got ' + str(sorted(sizes)))
		size = sizes.pop()
		if not self.model_session.fixed_batch or size == 1:
			return self.run(feed, copy)
		per_item = [self.run({name: value[index:index + 1] for name, value in feed.items()}, copy=True) for index in range(size)]
		return [self.xp.concatenate([outputs[position] for outputs in per_item]) for position in range(len(self.outputs))]

	def prepare_input(self, name: str, value: Array) -> Array:
		"""The input on the runner's device, C-contiguous, in the model's declared element type."""
		dtype = self.input_types[name]
		if self.device == 'cuda':
			import cupy
			with cupy.cuda.Device(self.device_id):
				# asarray of an array on another GPU copies it here: ONNX Runtime reads pointers of this device only
				return cupy.ascontiguousarray(cupy.asarray(value), dtype=dtype)
		if is_device_array(value):
			value = value.get()
		return np.ascontiguousarray(value, dtype=dtype)

	def run_signature(self, prepared: Dict[str, Array], signature: Signature) -> List[Array]:
		self.binding.clear_binding_inputs()
		self.binding.clear_binding_outputs()
		for name, value in prepared.items():
			self.bind_input(name, value)
		buffers = self.buffers_for(prepared, signature)
		if buffers is None:
			return self.run_and_learn(signature)
		self.bind_outputs(buffers)
		first_call = signature not in self.verified
		try:
			self.execute(quiet=first_call)
		except Exception:
			if signature in self.verified or signature in self.learned_shapes:
				raise
			# first call of this shape with the declared output shapes: they may be wrong (a stale export), so let
			# ONNX Runtime allocate once and learn; a genuine failure (out of memory) raises again from there
			self.buffers.pop(signature, None)
			self.binding.clear_binding_outputs()
			return self.run_and_learn(signature)
		self.verified.add(signature)
		return buffers.arrays

	def bind_input(self, name: str, value: Array) -> None:
		if self.by_pointer:
			self.binding.bind_input(name, self.device, self.device_id, value.dtype, list(value.shape), buffer_pointer(value))
			return
		self.binding.bind_ortvalue_input(name, onnxruntime.OrtValue.ortvalue_from_numpy(value))

	def bind_outputs(self, buffers: OutputBuffers) -> None:
		for position, item in enumerate(self.outputs):
			array = buffers.arrays[position]
			if self.by_pointer:
				self.binding.bind_output(item.name, self.device, self.device_id, array.dtype, list(array.shape), buffer_pointer(array))
			else:
				self.binding.bind_ortvalue_output(item.name, buffers.ortvalues[position])

	def execute(self, quiet: bool = False) -> None:
		"""One bound run; quiet keeps ONNX Runtime from printing an error the caller recovers from."""
		# ONNX Runtime runs on its own stream: what CuPy queued to fill the inputs must be finished first (that
		# stream only; Run itself waits for its stream before returning, so the outputs are complete after it)
		self.synchronize_stream()
		self.session.run_with_iobinding(self.binding, self.quiet_options if quiet else None)

	def synchronize_stream(self) -> None:
		"""Wait for CuPy's current stream on the runner's device (nothing on the CPU path)."""
		if self.device == 'cuda':
			import cupy
			with cupy.cuda.Device(self.device_id):
				cupy.cuda.get_current_stream().synchronize()

	def buffers_for(self, prepared: Dict[str, Array], signature: Signature) -> Optional[OutputBuffers]:
		"""The reusable output buffers of this signature, allocated on first use; None when the shapes are unknown."""
		buffers = self.buffers.get(signature)
		if buffers is not None:
			self.buffers.move_to_end(signature)
			return buffers
		shapes = self.learned_shapes.get(signature) or self.predict_output_shapes(prepared)
		if shapes is None:
			return None
		buffers = self.allocate(shapes)
		self.buffers[signature] = buffers
		while len(self.buffers) > MAX_SIGNATURES:
			self.buffers.popitem(last=False)
		return buffers

	def allocate(self, shapes: Sequence[Tuple[int, ...]]) -> OutputBuffers:
		if self.device == 'cuda':
			import cupy
			with cupy.cuda.Device(self.device_id):
				return OutputBuffers([cupy.empty(shape, dtype=dtype) for shape, dtype in zip(shapes, self.output_types)])
		arrays = [np.empty(shape, dtype=dtype) for shape, dtype in zip(shapes, self.output_types)]
		if self.by_pointer:
			return OutputBuffers(arrays)
		# the OrtValue wraps the NumPy memory: ONNX Runtime writes the result straight into our array
		return OutputBuffers(arrays, [onnxruntime.OrtValue.ortvalue_from_numpy(array) for array in arrays])

	def predict_output_shapes(self, prepared: Dict[str, Array]) -> Optional[List[Tuple[int, ...]]]:
		"""Declared output shapes with symbolic dimensions taken from the inputs that share the name (`batch`)."""
		known: Dict[str, int] = {}
		batch_size = None
		for item in self.inputs:
			actual = prepared[item.name].shape
			if batch_size is None and len(actual):
				batch_size = int(actual[0])
			for declared, size in zip(item.shape, actual):
				if isinstance(declared, str):
					known[declared] = int(size)
		shapes: List[Tuple[int, ...]] = []
		for item in self.outputs:
			shape: List[int] = []
			for axis, declared in enumerate(item.shape):
				if isinstance(declared, int):
					shape.append(declared)
				elif isinstance(declared, str) and declared in known:
					shape.append(known[declared])
				else:
					return None
			shapes.append(tuple(shape))
		return shapes

	def run_and_learn(self, signature: Signature) -> List[Array]:
		"""ONNX Runtime allocates the outputs this once; their shapes size the buffers of the next calls."""
		for item in self.outputs:
			self.binding.bind_output(item.name, self.device, self.device_id)
		self.execute()
		produced = self.binding.get_outputs()
		shapes = [tuple(int(size) for size in value.shape()) for value in produced]
		# the element types ONNX Runtime really produced: a declared type it does not report (or one missing from
		# ELEMENT_TYPES) must not turn an int16 or float16 output into float32
		self.output_types = [ELEMENT_TYPES.get(value.data_type(), declared) for value, declared in zip(produced, self.output_types)]
		self.learned_shapes[signature] = shapes
		buffers = self.allocate(shapes)
		for position, value in enumerate(produced):
			self.copy_into(buffers.arrays[position], value)
		# the device copies above are queued on CuPy's stream and read ONNX Runtime's memory: finish them while the
		# OrtValues still hold it, then let the binding release them
		self.synchronize_stream()
		del produced
		self.binding.clear_binding_outputs()
		self.buffers[signature] = buffers
		self.verified.add(signature)
		return buffers.arrays

	def copy_into(self, array: Array, value: onnxruntime.OrtValue) -> None:
		if self.device == 'cuda':
			import cupy
			size = array.nbytes
			memory = cupy.cuda.UnownedMemory(value.data_ptr(), size, value)
			source = cupy.ndarray(array.shape, dtype=array.dtype, memptr=cupy.cuda.MemoryPointer(memory, 0))
			array[...] = source
			return
		array[...] = value.numpy()
