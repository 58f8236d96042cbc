"""Give fixed-batch models (the distributed inswapper_128 declares batch 1) a dynamic batch axis, safely.

The conversion edits a copy, never the original: the graph inputs' and outputs' leading dimension 1 becomes the
symbolic `batch`, and the stale intermediate shapes (value_info) are dropped so ONNX Runtime infers them again. A
graph may still hard-code the batch inside, e.g. a Reshape to [1, ...]; such a copy either fails at batch > 1 or,
worse, silently mixes items. So every copy is verified before it is used: random inputs run at batch 3 through the
copy must equal the same items run one by one through the original. When the plain edit fails that check, rewrites
of the constants that hard-code batch 1 are tried one after the other, each verified the same way: Reshape targets
[1, ...] -> [0, ...] ("keep the input's dimension", the batch when the Reshape's input carries it), then
[1, ...] -> [-1, ...], then the batch rebuilt from Shape(input)[0] in Reshape / Expand targets, Concat-built
shapes and Slice ends. A model that passes none is refused: it keeps running one item at a time, and the reason is
logged at debug level.

The verified copy is cached as `<stem>.dynamic_batch.onnx` beside the original when that folder is writable, else
under `<project>/.caches`; a small `<stem>.dynamic_batch.json` beside it records the source file's size and
modification time, its SHA-256 and the verdict (a refusal too), so later runs decide without loading or verifying
again; a file whose modification time changed but whose bytes did not (copied, touched) keeps its verdict.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import onnxruntime

from facefusion.config import PROJECT_DIR
from facefusion.logger import get_logger

if TYPE_CHECKING:
	import onnx

BATCH_PARAM = 'batch'
CONVERTED_SUFFIX = '.dynamic_batch.onnx'
RECORD_SUFFIX = '.dynamic_batch.json'
VERIFY_BATCH = 3
# a model larger than protobuf's 2 GiB cannot be serialised in one piece for the in-memory verification session
MAX_IN_MEMORY_BYTES = 2_000_000_000
# 2: the record carries the source's SHA-256, and the rewrites beyond [1, ...] -> [0, ...] exist
RECORD_VERSION = 2
# verdicts of this process, by source path, cache location, size and modification time
_verdicts: Dict[Tuple[str, str, int, int], 'ConversionResult'] = {}
# by ONNX's TensorProto element type numbers (FLOAT 1, UINT8 2, INT8 3, INT32 6, INT64 7, BOOL 9, FLOAT16 10,
# DOUBLE 11): the onnx package itself (0.08 s to import) is only loaded when a model is converted, not when a run
# finds the cached verdict
NUMPY_TYPES: Dict[int, Any] = {
	1: np.float32,
	10: np.float16,
	11: np.float64,
	7: np.int64,
	6: np.int32,
	3: np.int8,
	2: np.uint8,
	9: np.bool_
}


@dataclass(frozen=True)
class ConversionResult:
	"""path: the file to load; converted: path is the verified dynamic-batch copy; reason: why (for the debug log)."""
	path: Path
	converted: bool
	reason: str
	max_difference: float = 0.0


@dataclass
class ConversionRecord:
	"""The sidecar JSON: which source it was made from and what was decided."""
	version: int
	source_name: str
	source_size: int
	source_mtime_ns: int
	status: str
	reason: str
	max_difference: float = 0.0
	# the model's content hash: a copied or touched file (new modification time, same bytes) keeps its verdict
	source_sha256: str = ''


def file_sha256(path: Path) -> str:
	digest = hashlib.sha256()
	with open(path, 'rb') as handle:
		for block in iter(lambda: handle.read(1 << 20), b''):
			digest.update(block)
	return digest.hexdigest()


def ensure_dynamic_batch(model_path: os.PathLike[str] | str, cache_dir: Optional[os.PathLike[str] | str] = None) -> Path:
	"""The path to load for batched calls: model_path itself when its batch is already dynamic (or the model cannot
	be converted safely), else the verified dynamic-batch copy (made on the first call, cached after)."""
	return convert_dynamic_batch(model_path, cache_dir).path


def convert_dynamic_batch(
	model_path: os.PathLike[str] | str,
	cache_dir: Optional[os.PathLike[str] | str] = None,
	verify_batch: int = VERIFY_BATCH,
	force: bool = False
) -> ConversionResult:
	"""ensure_dynamic_batch with the verdict; force ignores a cached verdict (not the original, which is never
	written)."""
	source = Path(model_path)
	stat = source.stat()
	converted_path, record_path = cache_paths(source, cache_dir)
	memo_key = (str(source.resolve()), str(converted_path), stat.st_size, stat.st_mtime_ns)
	if not force:
		# sessions are created again after --video-memory-strategy releases them: answer those from memory
		remembered = _verdicts.get(memo_key)
		if remembered is not None and (not remembered.converted or remembered.path.is_file()):
			return remembered
		cached = read_cached_verdict(source, stat, converted_path, record_path)
		if cached is not None:
			log_verdict(source, cached)
			_verdicts[memo_key] = cached
			return cached
	import onnx
	model = onnx.load(str(source))
	fixed_inputs, problem = find_fixed_batch_inputs(model)
	if problem or not fixed_inputs:
		result = ConversionResult(source, False, problem or 'batch axis already dynamic')
		# kept on disk too: finding it out means parsing the whole model (and importing onnx) at every start
		write_record(record_path, source, stat, result)
		log_verdict(source, result)
		_verdicts[memo_key] = result
		return result
	started = time.perf_counter()
	result = convert_and_verify(source, model, converted_path, verify_batch)
	write_record(record_path, source, stat, result)
	get_logger().debug('dynamic-batch check of %s took %.1f s', source.name, time.perf_counter() - started)
	log_verdict(source, result)
	_verdicts[memo_key] = result
	return result


def cache_paths(source: Path, cache_dir: Optional[os.PathLike[str] | str]) -> Tuple[Path, Path]:
	"""Beside the original when no cache folder is given and that folder is writable, else <project>/.caches."""
	if cache_dir is not None:
		directory = Path(cache_dir)
	elif os.access(source.parent, os.W_OK):
		directory = source.parent
	else:
		directory = PROJECT_DIR / '.caches'
	return directory / (source.stem + CONVERTED_SUFFIX), directory / (source.stem + RECORD_SUFFIX)


def read_cached_verdict(source: Path, stat: os.stat_result, converted_path: Path, record_path: Path) -> Optional[ConversionResult]:
	if not record_path.is_file():
		return None
	try:
		record = ConversionRecord(**json.loads(record_path.read_text(encoding='utf-8')))
	except (ValueError, TypeError):
		return None
	if record.version != RECORD_VERSION or record.source_size != stat.st_size:
		return None
	if record.source_mtime_ns != stat.st_mtime_ns and (not record.source_sha256 or record.source_sha256 != file_sha256(source)):
		return None
	if record.status == 'converted':
		if not converted_path.is_file():
			return None
		return ConversionResult(converted_path, True, 'cached ' + record.reason, record.max_difference)
	return ConversionResult(source, False, record.reason, record.max_difference)


def write_record(record_path: Path, source: Path, stat: os.stat_result, result: ConversionResult) -> None:
	record = ConversionRecord(
		RECORD_VERSION, source.name, stat.st_size, stat.st_mtime_ns, 'converted' if result.converted else 'refused',
		result.reason, result.max_difference, file_sha256(source)
	)
	try:
		record_path.parent.mkdir(parents=True, exist_ok=True)
		write_atomic(record_path, json.dumps(asdict(record), indent=1).encode('utf-8'))
	except OSError as exception:
		# without the record the next run verifies again: slower, never wrong
		get_logger().debug('cannot write %s: %s', record_path, exception)


def log_verdict(source: Path, result: ConversionResult) -> None:
	if result.converted:
		get_logger().debug('%s runs batched from %s (%s)', source.name, result.path.name, result.reason)
	else:
		get_logger().debug('%s keeps its batch layout (%s)%s', source.name, result.reason, '' if result.reason == 'batch axis already dynamic' else '; it runs one item at a time')


def graph_input_values(model: onnx.ModelProto) -> List[onnx.ValueInfoProto]:
	"""The real inputs (old exporters also list initializers as graph inputs)."""
	initializer_names = {tensor.name for tensor in model.graph.initializer}
	return [value for value in model.graph.input if value.name not in initializer_names]


def find_fixed_batch_inputs(model: onnx.ModelProto) -> Tuple[List[str], str]:
	"""(names of inputs whose leading dimension is the integer 1, '') or ([], why the model cannot be converted)."""
	fixed: List[str] = []
	dynamic: List[str] = []
	for value in graph_input_values(model):
		dims = value.type.tensor_type.shape.dim
		if not value.type.HasField('tensor_type') or len(dims) == 0:
			return [], 'input ' + value.name + ' has no batch axis'
		if dims[0].HasField('dim_value'):
			if dims[0].dim_value != 1:
				return [], 'input ' + value.name + ' has a fixed batch of ' + str(dims[0].dim_value)
			fixed.append(value.name)
		else:
			dynamic.append(value.name)
	if fixed and dynamic:
		# a mix is legal (e.g. a per-call parameter tensor) but nothing here can tell which inputs carry the batch
		return [], 'inputs ' + ', '.join(dynamic) + ' are dynamic while ' + ', '.join(fixed) + ' are fixed at 1'
	return fixed, ''


def make_batch_dynamic(model: onnx.ModelProto) -> None:
	"""Leading 1 -> `batch` on graph inputs and outputs; drop value_info (it may pin intermediate batch sizes)."""
	for value in list(graph_input_values(model)) + list(model.graph.output):
		dims = value.type.tensor_type.shape.dim
		if len(dims) and dims[0].HasField('dim_value') and dims[0].dim_value == 1:
			dims[0].Clear()
			dims[0].dim_param = BATCH_PARAM
	del model.graph.value_info[:]


def constant_values(model: onnx.ModelProto) -> Dict[str, np.ndarray]:
	"""Initializers and Constant-node outputs by name: the shape arguments a rewrite can read and replace."""
	from onnx import numpy_helper
	values = {tensor.name: numpy_helper.to_array(tensor) for tensor in model.graph.initializer}
	for node in model.graph.node:
		if node.op_type == 'Constant' and len(node.output) == 1:
			for attribute in node.attribute:
				if attribute.name == 'value':
					values[node.output[0]] = numpy_helper.to_array(attribute.t)
	return values


def unit_leading(shape: Optional[np.ndarray]) -> bool:
	"""A 1-D integer shape argument whose first entry is a hard-coded 1 (e.g. a PyTorch view(1, C, 1, 1))."""
	return shape is not None and shape.ndim == 1 and shape.size > 1 and np.issubdtype(shape.dtype, np.integer) and int(shape[0]) == 1


def add_initializer(model: onnx.ModelProto, name: str, value: np.ndarray) -> str:
	"""A new initializer (one per rewritten argument: a constant shared with other nodes stays as it was)."""
	from onnx import numpy_helper
	existing = {tensor.name for tensor in model.graph.initializer}
	if name not in existing:
		# before the others: the inswapper's emap is read as the graph's LAST initializer and must stay there
		tensors = [numpy_helper.from_array(value, name)] + list(model.graph.initializer)
		del model.graph.initializer[:]
		model.graph.initializer.extend(tensors)
	return name


def allows_zero(node: onnx.NodeProto) -> bool:
	return any(attribute.name == 'allowzero' and attribute.i == 1 for attribute in node.attribute)


def rewrite_unit_reshapes(model: onnx.ModelProto, fill: int = 0) -> int:
	"""Reshape targets stored as constants with a leading 1 -> leading `fill`: 0 ("copy the input's dimension", the
	batch when the Reshape's input carries it) or -1 ("whatever is left", when no other entry is -1). A constant
	shared by several nodes gets a rewritten copy per use. Returns how many were rewritten; verification decides
	whether it worked."""
	values = constant_values(model)
	rewritten = 0
	for node in model.graph.node:
		if node.op_type != 'Reshape' or len(node.input) < 2 or not unit_leading(values.get(node.input[1])):
			continue
		shape = values[node.input[1]]
		if fill == 0 and allows_zero(node):
			# with allowzero a 0 means an empty dimension, not "copy"
			continue
		if fill == -1 and int((shape == -1).sum()) > 0:
			continue
		updated = shape.copy()
		updated[0] = fill
		node.input[1] = add_initializer(model, node.input[1] + '__batch' + ('0' if fill == 0 else '_rest'), updated)
		rewritten += 1
	return rewritten


def rewrite_batch_shapes(model: onnx.ModelProto) -> int:
	"""Rebuild hard-coded batch sizes from the real one, Shape(first input)[0:1]:
	- Reshape / Expand targets [1, rest...] -> Concat(batch, rest);
	- a Concat that assembles a Reshape / Expand target from a leading constant [1] -> that piece becomes the batch;
	- Slice of axis 0 from 0 to a hard-coded end of 1 -> to the end.
	Tile repeats need nothing: a leading repeat of 1 keeps whatever batch comes in."""
	from onnx import helper
	inputs = graph_input_values(model)
	if not inputs:
		return 0
	values = constant_values(model)
	batch = '__batch_size'
	shape_targets = {node.input[1] for node in model.graph.node if node.op_type in ('Reshape', 'Expand') and len(node.input) > 1}
	prologue = [
		helper.make_node('Shape', [inputs[0].name], ['__batch_input_shape']),
		helper.make_node('Slice', ['__batch_input_shape', add_initializer(model, '__batch_zero', np.array([0], np.int64)), add_initializer(model, '__batch_one', np.array([1], np.int64))], [batch])
	]
	rewritten = 0
	for index, node in enumerate(model.graph.node):
		if node.op_type in ('Reshape', 'Expand') and len(node.input) > 1 and unit_leading(values.get(node.input[1])):
			shape = values[node.input[1]]
			if node.op_type == 'Reshape' and allows_zero(node) and 0 in shape[1:].tolist():
				continue
			rest = add_initializer(model, node.input[1] + '__rest', shape[1:].astype(np.int64))
			rebuilt = node.input[1] + '__batched_' + str(index)
			prologue.append(helper.make_node('Concat', [batch, rest], [rebuilt], axis=0))
			node.input[1] = rebuilt
			rewritten += 1
		elif node.op_type == 'Concat' and node.output[0] in shape_targets and node.input:
			first = values.get(node.input[0])
			if first is not None and first.ndim == 1 and first.size == 1 and int(first[0]) == 1:
				node.input[0] = batch
				rewritten += 1
		elif node.op_type == 'Slice' and len(node.input) >= 3:
			starts, ends = values.get(node.input[1]), values.get(node.input[2])
			axes = values.get(node.input[3]) if len(node.input) > 3 and node.input[3] else None
			if starts is None or ends is None or starts.ndim != 1:
				continue
			axis_list = axes.tolist() if axes is not None else list(range(starts.size))
			if 0 in axis_list:
				position = axis_list.index(0)
				if int(starts[position]) == 0 and int(ends[position]) == 1:
					updated = ends.astype(np.int64).copy()
					updated[position] = np.iinfo(np.int64).max
					node.input[2] = add_initializer(model, node.input[2] + '__to_end', updated)
					rewritten += 1
	if rewritten:
		nodes = list(prologue) + list(model.graph.node)
		del model.graph.node[:]
		model.graph.node.extend(nodes)
	return rewritten


# the rewrites tried after the plain edit, in order; each starts from the plain edit and is verified on its own
REWRITES: Tuple[Tuple[str, str], ...] = (
	('reshape', 'Reshape targets [1, ...] -> [0, ...]'),
	('reshape-rest', 'Reshape targets [1, ...] -> [-1, ...]'),
	('batch-shape', 'hard-coded batch 1 in Reshape / Expand / Concat / Slice arguments rebuilt from Shape(input)[0]'),
)


def apply_rewrite(model: onnx.ModelProto, attempt: str) -> int:
	if attempt == 'reshape':
		return rewrite_unit_reshapes(model, 0)
	if attempt == 'reshape-rest':
		return rewrite_unit_reshapes(model, -1)
	return rewrite_batch_shapes(model)


def convert_and_verify(source: Path, model: onnx.ModelProto, converted_path: Path, verify_batch: int) -> ConversionResult:
	if model.ByteSize() > MAX_IN_MEMORY_BYTES:
		return ConversionResult(source, False, 'model too large to verify in memory')
	try:
		feeds = verification_feeds(model, verify_batch)
		reference = run_one_by_one(source, feeds, verify_batch)
	except Exception as exception:
		return ConversionResult(source, False, 'cannot run the original for verification: ' + first_line(exception))
	make_batch_dynamic(model)
	attempts: List[str] = []
	descriptions = dict(REWRITES)
	for attempt in ('plain',) + tuple(name for name, _ in REWRITES):
		import onnx
		candidate = onnx.ModelProto()
		candidate.CopyFrom(model)
		if attempt != 'plain' and apply_rewrite(candidate, attempt) == 0:
			continue
		data = candidate.SerializeToString()
		verdict, difference = verify_batched(data, feeds, reference, verify_batch)
		if verdict == '':
			try:
				converted_path.parent.mkdir(parents=True, exist_ok=True)
				write_atomic(converted_path, data)
			except OSError as exception:
				return ConversionResult(source, False, 'cannot write ' + str(converted_path) + ': ' + str(exception))
			how = 'batch axis made dynamic' + ('' if attempt == 'plain' else ', ' + descriptions[attempt])
			return ConversionResult(converted_path, True, how + ', verified at batch ' + str(verify_batch), difference)
		attempts.append(attempt + ': ' + verdict)
	return ConversionResult(source, False, 'the graph hard-codes its batch (' + '; '.join(attempts) + ')')


def verification_feeds(model: onnx.ModelProto, verify_batch: int) -> Dict[str, np.ndarray]:
	"""Deterministic random inputs at batch verify_batch (values in 0..1 for floats: the range crops come in)."""
	generator = np.random.default_rng(20240917)
	feeds: Dict[str, np.ndarray] = {}
	for value in graph_input_values(model):
		tensor_type = value.type.tensor_type
		shape = [verify_batch]
		for dim in list(tensor_type.shape.dim)[1:]:
			if not dim.HasField('dim_value'):
				raise ValueError('input ' + value.name + ' has a dynamic non-batch dimension ' + (dim.dim_param or '?'))
			shape.append(int(dim.dim_value))
		dtype = NUMPY_TYPES.get(tensor_type.elem_type)
		if dtype is None:
			raise ValueError('input ' + value.name + ' has an unsupported element type ' + str(tensor_type.elem_type))
		if np.issubdtype(dtype, np.floating):
			feeds[value.name] = generator.random(shape).astype(dtype)
		elif dtype == np.bool_:
			feeds[value.name] = generator.random(shape) > 0.5
		else:
			feeds[value.name] = generator.integers(0, 2, shape).astype(dtype)
	return feeds


def verification_session(model: Path | bytes) -> onnxruntime.InferenceSession:
	options = onnxruntime.SessionOptions()
	options.log_severity_level = 3
	return onnxruntime.InferenceSession(model if isinstance(model, bytes) else str(model), sess_options=options, providers=['CPUExecutionProvider'])


def quiet_run_options() -> onnxruntime.RunOptions:
	"""A batched run that fails is an expected verdict here, not an error for the console."""
	options = onnxruntime.RunOptions()
	options.log_severity_level = 4
	return options


def run_one_by_one(source: Path, feeds: Dict[str, np.ndarray], verify_batch: int) -> List[np.ndarray]:
	session = verification_session(source)
	per_item = [session.run(None, {name: value[index:index + 1] for name, value in feeds.items()}, quiet_run_options()) for index in range(verify_batch)]
	return [np.concatenate([outputs[position] for outputs in per_item]) for position in range(len(per_item[0]))]


def verify_batched(data: bytes, feeds: Dict[str, np.ndarray], reference: Sequence[np.ndarray], verify_batch: int) -> Tuple[str, float]:
	"""('' and the largest difference) when the batched run equals the one-by-one run, else (what differs, 0)."""
	try:
		outputs = verification_session(data).run(None, feeds, quiet_run_options())
	except Exception as exception:
		return 'fails at batch ' + str(verify_batch) + ': ' + first_line(exception), 0.0
	largest = 0.0
	for position, (batched, expected) in enumerate(zip(outputs, reference)):
		if batched.shape != expected.shape:
			return 'output ' + str(position) + ' has shape ' + str(batched.shape) + ' at batch ' + str(verify_batch) + ', expected ' + str(expected.shape), 0.0
		if not np.issubdtype(expected.dtype, np.floating):
			if not np.array_equal(batched, expected):
				return 'output ' + str(position) + ' differs from the one-by-one run', 0.0
			continue
		expected64 = expected.astype(np.float64)
		batched64 = batched.astype(np.float64)
		if not np.array_equal(np.isnan(expected64), np.isnan(batched64)):
			return 'output ' + str(position) + ' has NaNs where the one-by-one run has none', 0.0
		finite = ~np.isnan(expected64)
		difference = float(np.max(np.abs(batched64[finite] - expected64[finite]), initial=0.0))
		scale = float(np.max(np.abs(expected64[finite]), initial=0.0))
		# batch size changes ORT's kernel blocking, so sums round differently; items mixing across the batch
		# change values by far more than this
		tolerance = (1e-2 if expected.dtype == np.float16 else 1e-4) * max(1.0, scale)
		if difference > tolerance:
			return 'output ' + str(position) + ' differs from the one-by-one run by ' + format(difference, '.3g'), 0.0
		largest = max(largest, difference)
	return '', largest


def first_line(exception: BaseException) -> str:
	"""The informative part of an error: ONNX Runtime's messages lead with a source location and a C++ signature."""
	lines = str(exception).strip().splitlines()
	text = lines[0] if lines else type(exception).__name__
	text = text.split('Status Message: ')[-1]
	if ' was false. ' in text:
		text = text.split(' was false. ', 1)[1]
	return text[:240]


def write_atomic(path: Path, data: bytes) -> None:
	"""Through a temporary name: a reader (or a second process converting at the same time) never sees half a file."""
	temporary = path.with_name(path.name + '.' + str(os.getpid()) + '.tmp')
	temporary.write_bytes(data)
	os.replace(temporary, path)
