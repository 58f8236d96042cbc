"""Stand-in ONNX models with the real FaceFusion 3.5.0 signatures, for tests and benchmarks.

The real model files cannot be downloaded on the machines this project is developed on, so the test suite and the
benchmarks generate look-alikes here: same file names, same input names, shapes, dtypes and output order, the same
quirks (inswapper's batch fixed at 1 and its 512x512 "emap" as the last initializer, the detectors' nine 2-D outputs,
and so on), each with a `.hash` file in FaceFusion's format. Their arithmetic is simple but not arbitrary: the
detectors find one face at a predictable place, the landmarkers return a plausible mean face, the recognizer gives
different embeddings for different crops, the swappers mix source and target. Everything is built with onnx.helper
from fixed seeds, so every run writes identical bytes.

Usage: write_standin_models(directory, names=None, variant='small') or
`python -m facefusion.testing.standin_models OUTDIR [names...] [--variant heavy] [--nsfw-flagged]`.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import zlib
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy
import onnx
from onnx import TensorProto, helper, numpy_helper

# opset 17 with IR 8 loads in every onnxruntime from 1.14 on and in the onnx checker of any recent onnx
OPSET = 17
IR_VERSION = 8
PRODUCER = 'facefusion-standin'

DETECTOR_FILE_NAMES: Dict[str, str] = {
	'yolo_face': 'yoloface_8n.onnx',
	'retinaface': 'retinaface_10g.onnx',
	'scrfd': 'scrfd_2.5g.onnx',
	'yunet': 'yunet_2023_mar.onnx',
}
SWAPPER_KEYS: Tuple[str, ...] = (
	'blendswap_256', 'ghost_1_256', 'ghost_2_256', 'ghost_3_256', 'hififace_unofficial_256',
	'hyperswap_1a_256', 'hyperswap_1b_256', 'hyperswap_1c_256', 'inswapper_128', 'inswapper_128_fp16',
	'simswap_256', 'simswap_unofficial_512', 'uniface_256'
)
OTHER_KEYS: Tuple[str, ...] = (
	'2dfan4', 'peppa_wutz', 'fan_68_5', 'arcface_w600k_r50', 'fairface', 'xseg_1', 'xseg_2', 'xseg_3',
	'bisenet_resnet_18', 'bisenet_resnet_34', 'nsfw_1', 'nsfw_2', 'nsfw_3',
	'crossface_ghost', 'crossface_hififace', 'crossface_simswap'
)
# face enhancers -> their crop size; codeformer alone takes a `weight` input
ENHANCER_SIZES: Dict[str, int] = {
	'codeformer': 512, 'gfpgan_1.2': 512, 'gfpgan_1.3': 512, 'gfpgan_1.4': 512, 'gpen_bfr_256': 256,
	'gpen_bfr_512': 512, 'gpen_bfr_1024': 1024, 'gpen_bfr_2048': 2048, 'restoreformer_plus_plus': 512
}
ENHANCER_WEIGHT_KEYS: Tuple[str, ...] = ('codeformer',)
# key -> file name; kept here rather than imported from the model registry so tests depend on nothing else
STANDIN_FILE_NAMES: Dict[str, str] = {
	**DETECTOR_FILE_NAMES,
	**{ key: key + '.onnx' for key in OTHER_KEYS },
	**{ key: key + '.onnx' for key in SWAPPER_KEYS },
	**{ key: key + '.onnx' for key in ENHANCER_SIZES },
}
# keys whose file is real and copied rather than generated
COPIED_KEYS: Tuple[str, ...] = ('yunet',)
# 'pinned' / 'heavy-pinned': the same graphs, except that the fixed-batch swappers (inswapper) hard-code batch 1
# inside, as many exports do (a PyTorch view(1, C, 1, 1)): Reshape targets [1, ...], one shared by two Reshapes, and
# (small) a target assembled by Concat from a constant [1]; what the dynamic-batch conversion must rewrite
VARIANTS: Tuple[str, ...] = ('small', 'heavy', 'pinned', 'heavy-pinned')

# where the stand-in detectors put their one face, relative to the non-black content of the detector canvas
# (width Wc, height Hc, m = min(Wc, Hc)); portraits have the face near the top centre, which is what the shipped
# photos look like
FACE_CENTRE_X = 0.5
FACE_CENTRE_Y = 0.22
FACE_WIDTH = 0.3
FACE_HEIGHT = 0.375
# the five points inside the face box (unit box coordinates): eyes, nose tip, mouth corners (image left first)
FACE_LANDMARK_5_IN_BOX: Tuple[Tuple[float, float], ...] = (
	(0.38, 0.45), (0.62, 0.45), (0.5, 0.6), (0.4, 0.75), (0.6, 0.75)
)
DETECTOR_SCORES: Dict[str, float] = { 'yolo_face': 0.9, 'retinaface': 0.88, 'scrfd': 0.86 }
# yolo's single candidate sits in the stride-32 part of the 8400 candidates, never at index 0 (3.5.0 drops it)
YOLO_CANDIDATE_INDEX = 8210
# the 2dfan4 / peppa scores stay below the default landmarker threshold (0.5) so the detector's 5 points drive
# alignment, as the reference run of 3.5.0 needed
LANDMARKER_HEAT = 0.4
FFHQ_512_TEMPLATE: Tuple[Tuple[float, float], ...] = (
	(0.37691676, 0.46864664), (0.62285697, 0.46912813), (0.50123859, 0.61331904),
	(0.39308822, 0.72541100), (0.61150205, 0.72490465)
)
IMAGENET_MEAN: Tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: Tuple[float, float, float] = (0.229, 0.224, 0.225)


class _GraphBuilder:
	"""Collects nodes and initializers with generated, deterministic tensor names."""

	def __init__(self, name: str, fp16_weights: bool = False) -> None:
		self.name = name
		self.fp16_weights = fp16_weights
		self.nodes: List[onnx.NodeProto] = []
		self.initializers: List[onnx.TensorProto] = []
		self.inputs: List[onnx.ValueInfoProto] = []
		self.outputs: List[onnx.ValueInfoProto] = []
		self.last_initializer: Optional[str] = None
		self.counter = 0
		self.small_constants: Dict[Tuple[str, Tuple[int, ...], bytes], str] = {}
		# the leading entry of batch-carrying Reshape targets: -1 (any batch) or, in the pinned variants, 1
		self.batch_entry = -1

	def fresh(self, hint: str) -> str:
		self.counter += 1
		return hint + '_' + str(self.counter)

	def input(self, name: str, shape: Sequence[int | str], elem_type: int = TensorProto.FLOAT) -> str:
		self.inputs.append(helper.make_tensor_value_info(name, elem_type, list(shape)))
		return name

	def const(self, value: object, dtype: type = numpy.float32, name: Optional[str] = None) -> str:
		array = numpy.array(value, dtype=dtype, order='C')
		# small constants (scalars, axes, shapes) repeat a lot; share them to keep the graph readable
		key = (array.dtype.str, array.shape, array.tobytes())
		if name is None and array.size <= 16 and key in self.small_constants:
			return self.small_constants[key]
		tensor_name = name or self.fresh('const')
		self.initializers.append(numpy_helper.from_array(array, tensor_name))
		if name is None and array.size <= 16:
			self.small_constants[key] = tensor_name
		return tensor_name

	def weight(self, value: numpy.ndarray) -> str:
		"""A float32 weight tensor; the fp16 stand-ins store it as float16 and cast it back at load time."""
		if self.fp16_weights:
			return self.op('Cast', self.const(value, numpy.float16), to=TensorProto.FLOAT)
		return self.const(value, numpy.float32)

	def op(self, op_type: str, *inputs: str, name: Optional[str] = None, **attributes: object) -> str:
		output = name or self.fresh(op_type.lower())
		self.nodes.append(helper.make_node(op_type, list(inputs), [ output ], name=self.fresh('node_' + op_type), **attributes))
		return output

	def reduce(self, op_type: str, tensor: str, axes: Sequence[int], keepdims: bool = True) -> str:
		# opset 17: ReduceSum takes its axes as an input, the other reductions as an attribute
		if op_type == 'ReduceSum':
			return self.op(op_type, tensor, self.const(list(axes), numpy.int64), keepdims=int(keepdims))
		return self.op(op_type, tensor, axes=list(axes), keepdims=int(keepdims))

	def scalar_mul(self, tensor: str, factor: float) -> str:
		return self.op('Mul', tensor, self.const(factor))

	def scalar_add(self, tensor: str, offset: float) -> str:
		return self.op('Add', tensor, self.const(offset))

	def clip(self, tensor: str, low: float, high: float) -> str:
		return self.op('Clip', tensor, self.const(low), self.const(high))

	def reshape(self, tensor: str, shape: Sequence[int]) -> str:
		return self.op('Reshape', tensor, self.const(list(shape), numpy.int64))

	def zero_of(self, tensor: str) -> str:
		"""A 0-d zero computed from a tensor: makes a constant output formally depend on the input."""
		return self.scalar_mul(self.op('ReduceMean', tensor, keepdims=0), 0.0)

	def dim(self, tensor: str, axis: int) -> str:
		"""One dimension of a tensor as a 0-d int64, for shapes computed inside the graph."""
		return self.op('Gather', self.op('Shape', tensor), self.const(axis, numpy.int64), axis=0)

	def output(self, tensor: str, name: str, shape: Sequence[int | str], elem_type: int = TensorProto.FLOAT) -> None:
		self.nodes.append(helper.make_node('Identity', [ tensor ], [ name ], name=self.fresh('node_output')))
		self.outputs.append(helper.make_tensor_value_info(name, elem_type, list(shape)))

	def build(self) -> onnx.ModelProto:
		initializers = list(self.initializers)
		if self.last_initializer is not None:
			# FaceFusion reads inswapper's emap as graph.initializer[-1]
			initializers = [ tensor for tensor in initializers if tensor.name != self.last_initializer ] + \
				[ tensor for tensor in initializers if tensor.name == self.last_initializer ]
		graph = helper.make_graph(self.nodes, self.name, self.inputs, self.outputs, initializers)
		model = helper.make_model(graph, producer_name=PRODUCER, opset_imports=[ helper.make_opsetid('', OPSET) ])
		model.ir_version = IR_VERSION
		model.doc_string = 'Stand-in for FaceFusion model ' + self.name + ' (generated, not the real weights)'
		return model


def _seed(name: str, salt: str = '') -> int:
	return zlib.crc32((name + '/' + salt).encode('utf-8'))


def _uniform(name: str, salt: str, shape: Sequence[int], std: float) -> numpy.ndarray:
	"""Zero-mean random weights of the given standard deviation. Uniform draws use no transcendental functions,
	so the bytes are the same on every CPU and numpy build."""
	state = numpy.random.RandomState(_seed(name, salt))
	values = (state.random_sample(tuple(shape)) * 2.0 - 1.0) * (std * math.sqrt(3.0))
	return values.astype(numpy.float32)


def _quantise(values: numpy.ndarray) -> numpy.ndarray:
	# constants computed with exp/sin/cos may differ in the last bit between SIMD code paths; rounding makes the
	# written bytes independent of the machine
	return numpy.round(numpy.asarray(values, numpy.float64), 5).astype(numpy.float32)


# --- geometry of the mean face ------------------------------------------------------------------------------------


def mean_face_68_in_box() -> numpy.ndarray:
	"""A plausible 68-point face (iBUG order) in unit face-box coordinates, consistent with FACE_LANDMARK_5_IN_BOX:
	eye centres (means of 36-41 and 42-47), nose tip (30) and mouth corners (48, 54) land exactly on the five points."""
	left: Dict[int, Tuple[float, float]] = {}
	# jaw: a squarish U from the image-left ear to the chin (0..8); its mirror gives 16..9
	for index in range(9):
		angle = math.pi * (1.0 - index / 16.0)
		cosine = math.cos(angle)
		left[index] = (0.5 + 0.4 * math.copysign(abs(cosine) ** 0.8, cosine), 0.4 + 0.56 * math.sin(angle) ** 0.9)
	# image-left eyebrow 17..21, outer to inner
	for offset, (x, y) in enumerate([ (0.25, 0.38), (0.3, 0.355), (0.36, 0.35), (0.41, 0.355), (0.455, 0.37) ]):
		left[17 + offset] = (x, y)
	# nose bridge 27..30 on the mid line, ending at the tip
	for offset, y in enumerate([ 0.46, 0.51, 0.555, 0.6 ]):
		left[27 + offset] = (0.5, y)
	# nostrils 31..33 (33 is the mid one)
	left[31] = (0.445, 0.635)
	left[32] = (0.47, 0.645)
	left[33] = (0.5, 0.65)
	# image-left eye 36..41: outer corner, two upper lids, inner corner, two lower lids; mean is (0.38, 0.45)
	for offset, (x, y) in enumerate([ (0.33, 0.45), (0.36, 0.435), (0.4, 0.435), (0.43, 0.45), (0.4, 0.465), (0.36, 0.465) ]):
		left[36 + offset] = (x, y)
	# outer lips 48..51 (48 the corner), 57..59 (lower lip); inner lips 60..62 and 66..67
	left[48] = (0.4, 0.75)
	left[49] = (0.43, 0.73)
	left[50] = (0.47, 0.72)
	left[51] = (0.5, 0.725)
	left[57] = (0.5, 0.8)
	left[58] = (0.47, 0.795)
	left[59] = (0.43, 0.78)
	left[60] = (0.41, 0.75)
	left[61] = (0.46, 0.745)
	left[62] = (0.5, 0.745)
	left[66] = (0.5, 0.76)
	left[67] = (0.46, 0.758)
	# mirror pairs (left index -> right index) across x = 0.5
	mirror = { index: 16 - index for index in range(8) }
	mirror.update({ 17 + offset: 26 - offset for offset in range(5) })
	mirror.update({ 31: 35, 32: 34 })
	mirror.update({ 36: 45, 37: 44, 38: 43, 39: 42, 40: 47, 41: 46 })
	mirror.update({ 48: 54, 49: 53, 50: 52, 59: 55, 58: 56, 60: 64, 61: 63, 67: 65 })
	points = numpy.zeros((68, 2), numpy.float64)
	for index, (x, y) in left.items():
		points[index] = (x, y)
	for source, target in mirror.items():
		points[target] = (1.0 - left[source][0], left[source][1])
	return _quantise(points)


def _similarity_fit(source: Sequence[Tuple[float, float]], target: Sequence[Tuple[float, float]]) -> Tuple[float, float, float, float]:
	"""Least-squares similarity (a, b, tx, ty) with x' = a x - b y + tx, y' = b x + a y + ty, in plain Python floats
	so it is bit-identical everywhere."""
	count = len(source)
	mean_sx = sum(point[0] for point in source) / count
	mean_sy = sum(point[1] for point in source) / count
	mean_tx = sum(point[0] for point in target) / count
	mean_ty = sum(point[1] for point in target) / count
	dot = 0.0
	cross = 0.0
	norm = 0.0
	for (sx, sy), (tx, ty) in zip(source, target):
		sx, sy, tx, ty = sx - mean_sx, sy - mean_sy, tx - mean_tx, ty - mean_ty
		dot += sx * tx + sy * ty
		cross += sx * ty - sy * tx
		norm += sx * sx + sy * sy
	a = dot / norm
	b = cross / norm
	return a, b, mean_tx - (a * mean_sx - b * mean_sy), mean_ty - (b * mean_sx + a * mean_sy)


def fan_68_5_matrix() -> numpy.ndarray:
	"""The 68x5 mixing matrix of the fan_68_5 stand-in. Each row holds affine weights (summing to 1) over the five
	input points, so the output follows any similarity of the input, and the ffhq_512 template maps onto the mean face."""
	box_68 = mean_face_68_in_box().astype(numpy.float64).tolist()
	a, b, tx, ty = _similarity_fit(FACE_LANDMARK_5_IN_BOX, FFHQ_512_TEMPLATE)
	template = [ (float(x), float(y)) for x, y in FFHQ_512_TEMPLATE ]
	# the 3x3 Gram matrix of [x; y; 1] over the template points, inverted by cofactors (no LAPACK)
	rows = [ [ point[0] for point in template ], [ point[1] for point in template ], [ 1.0 ] * 5 ]
	gram = [ [ sum(rows[i][k] * rows[j][k] for k in range(5)) for j in range(3) ] for i in range(3) ]
	inverse = _invert_3x3(gram)
	matrix = numpy.zeros((68, 5), numpy.float64)
	for index, (x, y) in enumerate(box_68):
		target = (a * x - b * y + tx, b * x + a * y + ty, 1.0)
		# minimum-norm weights w = rows^T (rows rows^T)^-1 target
		solved = [ sum(inverse[i][j] * target[j] for j in range(3)) for i in range(3) ]
		for k in range(5):
			matrix[index, k] = sum(rows[i][k] * solved[i] for i in range(3))
	return matrix.astype(numpy.float32)


def _invert_3x3(matrix: List[List[float]]) -> List[List[float]]:
	(a, b, c), (d, e, f), (g, h, i) = matrix
	determinant = a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g)
	cofactors = [
		[ e * i - f * h, c * h - b * i, b * f - c * e ],
		[ f * g - d * i, a * i - c * g, c * d - a * f ],
		[ d * h - e * g, b * g - a * h, a * e - b * d ],
	]
	return [ [ value / determinant for value in row ] for row in cofactors ]


def mean_face_68_in_landmarker_crop() -> numpy.ndarray:
	"""The mean face as 2dfan4 / peppa_wutz would see it in their 256x256 crop (3.5.0 scales the detector box's
	longer side to 195 px and centres it); our detectors' boxes are 1.25 times taller than wide."""
	box_68 = mean_face_68_in_box().astype(numpy.float64)
	box_height = 195.0
	box_width = box_height * FACE_WIDTH / FACE_HEIGHT
	crop = numpy.stack([ 128.0 + (box_68[:, 0] - 0.5) * box_width, 128.0 + (box_68[:, 1] - 0.5) * box_height ], axis=1)
	return _quantise(crop)


def detector_face_for_content(content_width: float, content_height: float) -> Tuple[numpy.ndarray, numpy.ndarray]:
	"""Where the stand-in detectors put their face for a frame whose non-black content is W x H pixels in detector
	space (the frame is pasted top-left into the canvas); returns (box x1 y1 x2 y2, landmarks 5x2). The graphs
	measure the content in 16-pixel cells, so real outputs match this up to that rounding."""
	size = min(content_width, content_height)
	width = size * FACE_WIDTH
	height = size * FACE_HEIGHT
	centre_x = content_width * FACE_CENTRE_X
	centre_y = content_height * FACE_CENTRE_Y
	x1 = centre_x - width / 2
	y1 = centre_y - height / 2
	box = numpy.array([ x1, y1, x1 + width, y1 + height ], numpy.float32)
	landmarks = numpy.array([ (x1 + u * width, y1 + v * height) for u, v in FACE_LANDMARK_5_IN_BOX ], numpy.float32)
	return box, landmarks


# --- detectors --------------------------------------------------------------------------------------------------


def _face_parameters(graph: _GraphBuilder, image: str, score_value: float) -> Tuple[str, str]:
	"""From a [1,3,H,W] canvas in 0..1 return (params [1,4] = centre x, centre y, width, height in pixels, score [1]).
	The face sits at a fixed place relative to the extent of the non-black content, which is where the frame was
	pasted; an all-black canvas scores 0 so 'no face' stays testable."""
	pooled = graph.op('AveragePool', image, kernel_shape=[ 16, 16 ], strides=[ 16, 16 ])
	content = graph.clip(graph.scalar_mul(graph.reduce('ReduceSum', pooled, [ 1 ], keepdims=False), 40.0), 0.0, 1.0)
	extents = []
	for axis, reduce_axis in ((3, 1), (2, 2)):
		# content mask of each column (then row), times the right (bottom) edge of that cell in pixels
		cells = graph.dim(pooled, axis)
		edges = graph.op('Range', graph.const(1, numpy.int64), graph.op('Add', cells, graph.const(1, numpy.int64)), graph.const(1, numpy.int64))
		edges = graph.scalar_mul(graph.op('Cast', edges, to=TensorProto.FLOAT), 16.0)
		mask = graph.reduce('ReduceMax', content, [ reduce_axis ], keepdims=False)
		extents.append(graph.reduce('ReduceMax', graph.op('Mul', mask, edges), [ 1 ], keepdims=False))
	content_width, content_height = extents
	fraction = graph.reduce('ReduceMean', content, [ 1, 2 ], keepdims=False)
	score = graph.scalar_mul(graph.clip(graph.scalar_mul(fraction, 50.0), 0.0, 1.0), score_value)
	size = graph.op('Min', content_width, content_height)
	parameters = graph.op('Concat',
		graph.scalar_mul(content_width, FACE_CENTRE_X),
		graph.scalar_mul(content_height, FACE_CENTRE_Y),
		graph.scalar_mul(size, FACE_WIDTH),
		graph.scalar_mul(size, FACE_HEIGHT),
		axis=0)
	return graph.reshape(parameters, [ 1, 4 ]), score


def _geometry_matrix() -> numpy.ndarray:
	"""[4,14] map from (cx, cy, w, h) to (x1, y1, x2, y2, then the five landmarks x, y)."""
	matrix = numpy.zeros((4, 14), numpy.float32)
	matrix[:, 0] = (1, 0, -0.5, 0)
	matrix[:, 1] = (0, 1, 0, -0.5)
	matrix[:, 2] = (1, 0, 0.5, 0)
	matrix[:, 3] = (0, 1, 0, 0.5)
	for index, (u, v) in enumerate(FACE_LANDMARK_5_IN_BOX):
		matrix[:, 4 + index * 2] = (1, 0, u - 0.5, 0)
		matrix[:, 5 + index * 2] = (0, 1, 0, v - 0.5)
	return matrix


def _build_yolo_face() -> onnx.ModelProto:
	graph = _GraphBuilder('yolo_face')
	image = graph.input('input', [ 1, 3, 640, 640 ])
	parameters, score = _face_parameters(graph, image, DETECTOR_SCORES['yolo_face'])
	# candidate layout: cx, cy, w, h, score, then (x, y, visibility) for each of the five points
	mixing = numpy.zeros((4, 20), numpy.float32)
	bias = numpy.zeros(20, numpy.float32)
	geometry = _geometry_matrix()
	mixing[:, 0:4] = numpy.eye(4, dtype=numpy.float32)
	for index in range(5):
		mixing[:, 5 + index * 3] = geometry[:, 4 + index * 2]
		mixing[:, 6 + index * 3] = geometry[:, 5 + index * 2]
		bias[7 + index * 3] = 0.9
	score_column = numpy.zeros((1, 20), numpy.float32)
	score_column[0, 4] = 1.0
	candidate = graph.op('Add', graph.op('MatMul', parameters, graph.const(mixing)), graph.const(bias))
	candidate = graph.op('Add', candidate, graph.op('Mul', graph.reshape(score, [ 1, 1 ]), graph.const(score_column)))
	placement = numpy.zeros((1, 1, 8400), numpy.float32)
	placement[0, 0, YOLO_CANDIDATE_INDEX] = 1.0
	output = graph.op('Mul', graph.reshape(candidate, [ 1, 20, 1 ]), graph.const(placement))
	graph.output(output, 'output', [ 1, 20, 8400 ])
	return graph.build()


def _build_scrfd_like(name: str) -> onnx.ModelProto:
	"""retinaface_10g / scrfd_2.5g: dynamic H, W; nine 2-D outputs (scores, boxes, landmarks for strides 8, 16, 32)
	whose row counts are computed from the input shape. Every anchor carries the same face; one stride-32 anchor
	(never index 0) scores, the rest score 0."""
	graph = _GraphBuilder(name)
	image = graph.input('input', [ 1, 3, 'height', 'width' ])
	# the input is (pixel - 127.5) / 128; get back to 0..1 for the shared face estimate
	image_01 = graph.scalar_add(graph.scalar_mul(image, 128.0 / 255.0), 127.5 / 255.0)
	parameters, score = _face_parameters(graph, image_01, DETECTOR_SCORES[name])
	geometry = graph.op('MatMul', parameters, graph.const(_geometry_matrix()))
	geometry_box = graph.op('Slice', geometry, graph.const([ 0 ], numpy.int64), graph.const([ 4 ], numpy.int64), graph.const([ 1 ], numpy.int64))
	geometry_landmarks = graph.op('Slice', geometry, graph.const([ 4 ], numpy.int64), graph.const([ 14 ], numpy.int64), graph.const([ 1 ], numpy.int64))
	height = graph.dim(image, 2)
	width = graph.dim(image, 3)
	scores: List[str] = []
	boxes: List[str] = []
	landmarks: List[str] = []
	for stride in (8, 16, 32):
		rows = graph.op('Div', height, graph.const(stride, numpy.int64))
		columns = graph.op('Div', width, graph.const(stride, numpy.int64))
		zero = graph.const(0, numpy.int64)
		one = graph.const(1, numpy.int64)
		row_positions = graph.scalar_mul(graph.op('Cast', graph.op('Range', zero, rows, one), to=TensorProto.FLOAT), float(stride))
		column_positions = graph.scalar_mul(graph.op('Cast', graph.op('Range', zero, columns, one), to=TensorProto.FLOAT), float(stride))
		# anchor centres (col * s, row * s), row-major, each repeated twice consecutively
		grid_x = graph.op('Add', graph.op('Unsqueeze', column_positions, graph.const([ 0 ], numpy.int64)), graph.op('Unsqueeze', graph.scalar_mul(row_positions, 0.0), graph.const([ 1 ], numpy.int64)))
		grid_y = graph.op('Add', graph.op('Unsqueeze', row_positions, graph.const([ 1 ], numpy.int64)), graph.op('Unsqueeze', graph.scalar_mul(column_positions, 0.0), graph.const([ 0 ], numpy.int64)))
		anchor_x = graph.reshape(grid_x, [ -1, 1 ])
		anchor_y = graph.reshape(grid_y, [ -1, 1 ])
		anchor_x = graph.reshape(graph.op('Concat', anchor_x, anchor_x, axis=1), [ -1, 1 ])
		anchor_y = graph.reshape(graph.op('Concat', anchor_y, anchor_y, axis=1), [ -1, 1 ])
		anchor_box = graph.op('Concat', anchor_x, anchor_y, anchor_x, anchor_y, axis=1)
		anchor_landmarks = graph.op('Concat', *([ anchor_x, anchor_y ] * 5), axis=1)
		# distances in stride units: (cx - x1, cy - y1, x2 - cx, y2 - cy) / s and (lx - cx, ly - cy) / s
		box_sign = numpy.array([ -1, -1, 1, 1 ], numpy.float32) / stride
		boxes.append(graph.op('Mul', graph.op('Sub', geometry_box, anchor_box), graph.const(box_sign)))
		landmarks.append(graph.scalar_mul(graph.op('Sub', geometry_landmarks, anchor_landmarks), 1.0 / stride))
		if stride == 32:
			rows_float = graph.op('Cast', rows, to=TensorProto.FLOAT)
			columns_float = graph.op('Cast', columns, to=TensorProto.FLOAT)
			centre_x = graph.op('Gather', parameters, graph.const(0, numpy.int64), axis=1)
			centre_y = graph.op('Gather', parameters, graph.const(1, numpy.int64), axis=1)
			row = graph.op('Max', graph.op('Min', graph.op('Floor', graph.scalar_mul(centre_y, 1.0 / stride)), graph.scalar_add(rows_float, -1.0)), graph.const(0.0))
			column = graph.op('Max', graph.op('Min', graph.op('Floor', graph.scalar_mul(centre_x, 1.0 / stride)), graph.scalar_add(columns_float, -1.0)), graph.const(0.0))
			# second copy of the anchor: index 2k + 1 is never 0
			index = graph.scalar_add(graph.scalar_mul(graph.op('Add', graph.op('Mul', row, columns_float), column), 2.0), 1.0)
			index = graph.op('Cast', index, to=TensorProto.INT64)
			count = graph.op('Mul', graph.op('Mul', rows, columns), graph.const(2, numpy.int64))
			hit = graph.op('Cast', graph.op('Equal', graph.op('Range', zero, count, one), index), to=TensorProto.FLOAT)
			scores.append(graph.op('Mul', graph.reshape(hit, [ -1, 1 ]), graph.reshape(score, [ 1, 1 ])))
		else:
			scores.append(graph.scalar_mul(anchor_x, 0.0))
	for stride, tensor in zip((8, 16, 32), scores):
		graph.output(tensor, 'score_' + str(stride), [ 'anchors_' + str(stride), 1 ])
	for stride, tensor in zip((8, 16, 32), boxes):
		graph.output(tensor, 'bbox_' + str(stride), [ 'anchors_' + str(stride), 4 ])
	for stride, tensor in zip((8, 16, 32), landmarks):
		graph.output(tensor, 'kps_' + str(stride), [ 'anchors_' + str(stride), 10 ])
	return graph.build()


# --- landmarkers ------------------------------------------------------------------------------------------------


def _landmarks_from_crop(graph: _GraphBuilder, image: str, name: str) -> str:
	"""[1,68,2] landmarks in 64-grid units: the mean face in the crop, nudged by at most half a grid cell towards
	the brighter side of the crop so the output depends on the image."""
	quadrants = graph.reduce('ReduceMean', graph.op('AveragePool', image, kernel_shape=[ 128, 128 ], strides=[ 128, 128 ]), [ 1 ], keepdims=False)
	# quadrant order: top-left, top-right, bottom-left, bottom-right -> (right - left, bottom - top)
	contrast = numpy.array([ [ -1, -1 ], [ 1, -1 ], [ -1, 1 ], [ 1, 1 ] ], numpy.float32) * 2.0
	shift = graph.scalar_mul(graph.op('Tanh', graph.op('MatMul', graph.reshape(quadrants, [ 1, 4 ]), graph.const(contrast))), 0.5)
	base = (mean_face_68_in_landmarker_crop() / 4.0).reshape(1, 68, 2)
	if name == 'peppa_wutz':
		# a second opinion that differs a little from 2dfan4, as two real landmarkers would
		base = base + numpy.float32(0.15)
	return graph.op('Add', graph.const(base), graph.reshape(shift, [ 1, 1, 2 ]))


def _build_2dfan4() -> onnx.ModelProto:
	graph = _GraphBuilder('2dfan4')
	image = graph.input('input', [ 1, 3, 256, 256 ])
	points = _landmarks_from_crop(graph, image, '2dfan4')
	scores = graph.const(numpy.full((1, 68, 1), LANDMARKER_HEAT, numpy.float32))
	graph.output(graph.op('Concat', points, scores, axis=2), 'landmarks_xyscore', [ 1, 68, 3 ])
	# gaussian heat-maps (sigma 1.5 cells) peaking at LANDMARKER_HEAT on each point
	point_x = graph.reshape(graph.op('Gather', points, graph.const(0, numpy.int64), axis=2), [ 1, 68, 1, 1 ])
	point_y = graph.reshape(graph.op('Gather', points, graph.const(1, numpy.int64), axis=2), [ 1, 68, 1, 1 ])
	grid = numpy.arange(64, dtype=numpy.float32)
	# the gaussian is separable: two 64-long profiles per point, one broadcast product at full size
	profiles = []
	for point, shape in ((point_x, (1, 1, 1, 64)), (point_y, (1, 1, 64, 1))):
		distance = graph.op('Sub', graph.const(grid.reshape(shape)), point)
		profiles.append(graph.op('Exp', graph.scalar_mul(graph.op('Mul', distance, distance), -1.0 / (2.0 * 1.5 * 1.5))))
	heatmaps = graph.op('Mul', graph.scalar_mul(profiles[0], LANDMARKER_HEAT), profiles[1])
	graph.output(heatmaps, 'heatmaps', [ 1, 68, 64, 64 ])
	return graph.build()


def _build_peppa_wutz() -> onnx.ModelProto:
	graph = _GraphBuilder('peppa_wutz')
	image = graph.input('input', [ 1, 3, 256, 256 ])
	points = _landmarks_from_crop(graph, image, 'peppa_wutz')
	scores = graph.const(numpy.full((1, 68, 1), LANDMARKER_HEAT, numpy.float32))
	graph.output(graph.op('Concat', points, scores, axis=2), 'landmarks_xyscore', [ 1, 68, 3 ])
	return graph.build()


def _build_fan_68_5() -> onnx.ModelProto:
	graph = _GraphBuilder('fan_68_5')
	points = graph.input('input', [ 1, 5, 2 ])
	graph.output(graph.op('MatMul', graph.const(fan_68_5_matrix()), points), 'landmarks_68', [ 1, 68, 2 ])
	return graph.build()


# --- recognizer, classifier, converters ----------------------------------------------------------------------


def _build_arcface() -> onnx.ModelProto:
	"""Embedding = fixed random projection of the 14x14 average-pooled crop with each channel's mean removed: the
	same crop gives the same vector, small shifts or brightness changes barely move it, different faces differ.
	A small constant keeps it non-zero for flat images."""
	graph = _GraphBuilder('arcface_w600k_r50')
	image = graph.input('input', [ 1, 3, 112, 112 ])
	pooled = graph.op('AveragePool', image, kernel_shape=[ 8, 8 ], strides=[ 8, 8 ])
	centred = graph.op('Sub', pooled, graph.reduce('ReduceMean', pooled, [ 2, 3 ]))
	features = graph.reshape(centred, [ -1, 3 * 14 * 14 ])
	projection = _uniform('arcface_w600k_r50', 'projection', (3 * 14 * 14, 512), 3.0 / math.sqrt(3 * 14 * 14))
	bias = _uniform('arcface_w600k_r50', 'bias', (512,), 0.02)
	embedding = graph.op('Add', graph.op('MatMul', features, graph.const(projection)), graph.const(bias))
	graph.output(embedding, 'embedding', [ 1, 512 ])
	return graph.build()


def _build_fairface() -> onnx.ModelProto:
	"""race, gender, age ids as int64 [1], each the argmax of a random projection of the 4x4-pooled crop."""
	graph = _GraphBuilder('fairface')
	image = graph.input('input', [ 1, 3, 224, 224 ])
	pooled = graph.op('AveragePool', image, kernel_shape=[ 56, 56 ], strides=[ 56, 56 ])
	features = graph.reshape(graph.op('Sub', pooled, graph.reduce('ReduceMean', pooled, [ 2, 3 ])), [ -1, 48 ])
	for head, classes in (('race', 7), ('gender', 2), ('age', 9)):
		projection = _uniform('fairface', head, (48, classes), 1.0)
		bias = _uniform('fairface', head + '_bias', (classes,), 0.1)
		logits = graph.op('Add', graph.op('MatMul', features, graph.const(projection)), graph.const(bias))
		graph.output(graph.op('ArgMax', logits, axis=1, keepdims=0), head + '_id', [ 1 ], TensorProto.INT64)
	return graph.build()


def _build_crossface(name: str) -> onnx.ModelProto:
	graph = _GraphBuilder(name)
	embedding = graph.input('input', [ 1, 512 ])
	matrix = _uniform(name, 'matrix', (512, 512), 1.0 / math.sqrt(512))
	graph.output(graph.op('MatMul', embedding, graph.const(matrix)), 'output', [ 1, 512 ])
	return graph.build()


# --- masks --------------------------------------------------------------------------------------------------------


def _soft_ellipse(size: int, centre: Tuple[float, float], radius: Tuple[float, float], sharpness: float) -> numpy.ndarray:
	"""1 inside, falling to 0 at the rim, over a size x size unit grid (pixel centres)."""
	coordinates = (numpy.arange(size, dtype=numpy.float64) + 0.5) / size
	distance = ((coordinates[None, :] - centre[0]) / radius[0]) ** 2 + ((coordinates[:, None] - centre[1]) / radius[1]) ** 2
	return _quantise(numpy.clip((1.0 - distance) * sharpness, 0.0, 1.0))


XSEG_ELLIPSES: Dict[str, Tuple[Tuple[float, float], Tuple[float, float]]] = {
	'xseg_1': ((0.5, 0.55), (0.42, 0.5)),
	'xseg_2': ((0.5, 0.55), (0.4, 0.48)),
	'xseg_3': ((0.5, 0.54), (0.44, 0.52)),
}


def _build_xseg(name: str) -> onnx.ModelProto:
	"""Occlusion mask: a soft face ellipse, minus near-black pixels (< 5/255), which count as occluders; paint a
	black patch over a face to test occlusion."""
	graph = _GraphBuilder(name)
	image = graph.input('input', [ 1, 256, 256, 3 ])
	centre, radius = XSEG_ELLIPSES[name]
	ellipse = _soft_ellipse(256, centre, radius, 3.0).reshape(1, 256, 256)
	# channel mean as a MatMul over the last (NHWC) axis, and the element-wise work on [1,256,256]: onnxruntime's
	# broadcasting is slow when the innermost axis has length 1 or 3
	luminance = graph.reshape(graph.op('MatMul', image, graph.const(numpy.full((3, 1), 1.0 / 3.0, numpy.float32))), [ 1, 256, 256 ])
	occluded = graph.clip(graph.scalar_mul(graph.scalar_add(luminance, -0.03), -100.0), 0.0, 1.0)
	mask = graph.op('Mul', graph.const(ellipse), graph.op('Sub', graph.const(1.0), occluded))
	graph.output(graph.reshape(mask, [ 1, 256, 256, 1 ]), 'mask', [ 1, 256, 256, 1 ])
	return graph.build()


# face parser parts: class -> (centre, radius) in unit crop coordinates; the layout sits between the arcface_128
# and ffhq_512 templates, the crops the region mask is computed on. Classes 2/4 are on the image left.
BISENET_PARTS: Dict[int, Tuple[Tuple[float, float], Tuple[float, float]]] = {
	2: ((0.37, 0.37), (0.09, 0.025)),
	3: ((0.63, 0.37), (0.09, 0.025)),
	4: ((0.37, 0.44), (0.06, 0.025)),
	5: ((0.63, 0.44), (0.06, 0.025)),
	10: ((0.5, 0.55), (0.05, 0.09)),
	11: ((0.5, 0.72), (0.07, 0.012)),
	12: ((0.5, 0.7), (0.1, 0.018)),
	13: ((0.5, 0.745), (0.1, 0.022)),
}


def bisenet_logit_terms(size: int = 512) -> Tuple[numpy.ndarray, numpy.ndarray]:
	"""The face parser's logits as a sum of a column term [1,19,1,size] and a row term [1,19,size,1]: every class
	field is an elliptic bump 1 - ((x - cx) / rx)^2 - ((y - cy) / ry)^2, which separates into f(x) + g(y), so the
	graph builds the full-size logits with one broadcast Add. Background 0 wins outside the face ellipse, skin 1
	inside it, the parts of BISENET_PARTS on their ellipses, hair 17 above the face and neck 14 below it."""
	coordinates = (numpy.arange(size, dtype=numpy.float64) + 0.5) / size
	column_term = numpy.zeros((19, size), numpy.float64)
	row_term = numpy.zeros((19, size), numpy.float64)
	column_term[:] = -4.0
	column_term[0] = 0.5

	def set_bump(index: int, gain: float, centre: Tuple[float, float], radius: Tuple[float, float]) -> None:
		column_term[index] = gain * (1.0 - ((coordinates - centre[0]) / radius[0]) ** 2)
		row_term[index] = -gain * ((coordinates - centre[1]) / radius[1]) ** 2

	set_bump(1, 4.0, (0.5, 0.55), (0.36, 0.46))
	for part, (centre, radius) in BISENET_PARTS.items():
		set_bump(part, 8.0, centre, radius)
	set_bump(17, 3.0, (0.5, 0.12), (0.45, 0.16))
	set_bump(14, 3.0, (0.5, 1.05), (0.22, 0.1))
	return _quantise(column_term.reshape(1, 19, 1, size)), _quantise(row_term.reshape(1, 19, size, 1))


def bisenet_logits(size: int = 512) -> numpy.ndarray:
	"""The full [1,19,size,size] logits the stand-in parser returns (for tests)."""
	column_term, row_term = bisenet_logit_terms(size)
	return column_term + row_term


def _build_bisenet(name: str) -> onnx.ModelProto:
	graph = _GraphBuilder(name)
	image = graph.input('input', [ 1, 3, 512, 512 ])
	column_term, row_term = bisenet_logit_terms(512)
	column_term = graph.op('Add', graph.const(column_term), graph.zero_of(image))
	graph.output(graph.op('Add', column_term, graph.const(row_term)), 'logits', [ 1, 19, 512, 512 ])
	return graph.build()


# --- content analyser -----------------------------------------------------------------------------------------


def _build_nsfw(name: str, flagged: bool) -> onnx.ModelProto:
	"""Constant verdicts: safe by default (every threshold of 3.5.0 missed by a wide margin), or flagged for any
	input when `flagged`."""
	graph = _GraphBuilder(name)
	if name == 'nsfw_1':
		image = graph.input('input', [ 1, 3, 640, 640 ])
		column = numpy.array([ 320.0, 320.0, 64.0, 64.0 ] + [ 0.01 ] * 5, numpy.float32).reshape(1, 9, 1)
		if flagged:
			column[0, 4, 0] = 0.9
		values = graph.op('Add', graph.const(column), graph.zero_of(image))
		graph.output(graph.op('Expand', values, graph.const([ 1, 9, 8400 ], numpy.int64)), 'output', [ 1, 9, 8400 ])
	if name == 'nsfw_2':
		image = graph.input('input', [ 1, 3, 384, 384 ])
		logits = [ 3.0, 0.0 ] if flagged else [ 0.0, 2.0 ]
		graph.output(graph.op('Add', graph.const([ logits ]), graph.zero_of(image)), 'output', [ 1, 2 ])
	if name == 'nsfw_3':
		image = graph.input('input', [ 1, 3, 448, 448 ])
		logits = [ 0.0, 0.0, 8.0, 8.0 ] if flagged else [ 2.0, 2.0, 0.0, 0.0 ]
		graph.output(graph.op('Add', graph.const([ logits ]), graph.zero_of(image)), 'output', [ 1, 4 ])
	return graph.build()


# --- face swappers -------------------------------------------------------------------------------------------------


class _SwapperSpec:
	"""Per-model conventions of the swapper stand-ins (3.5.0's preprocessing and output normalisation per swapper type)."""

	def __init__(self, size: int, mean: Sequence[float], std: Sequence[float], signed_output: bool, source_image_size: int = 0, fixed_batch: bool = False, mask_output: bool = False, emap: bool = False, fp16: bool = False) -> None:
		self.size = size
		self.mean = tuple(mean)
		self.std = tuple(std)
		self.signed_output = signed_output
		self.source_image_size = source_image_size
		self.fixed_batch = fixed_batch
		self.mask_output = mask_output
		self.emap = emap
		self.fp16 = fp16


HALF = (0.5, 0.5, 0.5)
ZERO = (0.0, 0.0, 0.0)
ONE = (1.0, 1.0, 1.0)
SWAPPER_SPECS: Dict[str, _SwapperSpec] = {
	'blendswap_256': _SwapperSpec(256, ZERO, ONE, False, source_image_size=112),
	'ghost_1_256': _SwapperSpec(256, HALF, HALF, True),
	'ghost_2_256': _SwapperSpec(256, HALF, HALF, True),
	'ghost_3_256': _SwapperSpec(256, HALF, HALF, True),
	'hififace_unofficial_256': _SwapperSpec(256, HALF, HALF, True),
	'hyperswap_1a_256': _SwapperSpec(256, HALF, HALF, True, mask_output=True),
	'hyperswap_1b_256': _SwapperSpec(256, HALF, HALF, True, mask_output=True),
	'hyperswap_1c_256': _SwapperSpec(256, HALF, HALF, True, mask_output=True),
	'inswapper_128': _SwapperSpec(128, ZERO, ONE, False, fixed_batch=True, emap=True),
	'inswapper_128_fp16': _SwapperSpec(128, ZERO, ONE, False, fixed_batch=True, emap=True, fp16=True),
	'simswap_256': _SwapperSpec(256, IMAGENET_MEAN, IMAGENET_STD, False),
	'simswap_unofficial_512': _SwapperSpec(512, ZERO, ONE, False),
	'uniface_256': _SwapperSpec(256, HALF, HALF, True, source_image_size=256),
}
# blend of target and generated content: large enough to see the swap, small enough to keep the face recognisable
TARGET_WEIGHT = 0.7


def inswapper_emap(name: str = 'inswapper_128') -> numpy.ndarray:
	"""The 512x512 'emap' of the inswapper stand-ins: roughly norm-preserving."""
	return _uniform(name, 'emap', (512, 512), 1.0 / math.sqrt(512))


def _source_code(graph: _GraphBuilder, source: str, spec: _SwapperSpec) -> Tuple[str, int]:
	"""The identity vector the swapper is conditioned on, L2-normalised: the embedding itself, or for image-source
	models (blendswap, uniface) the mean-free 8x8-pooled source image."""
	if spec.source_image_size:
		kernel = spec.source_image_size // 8
		pooled = graph.op('AveragePool', source, kernel_shape=[ kernel, kernel ], strides=[ kernel, kernel ])
		code = graph.reshape(pooled, [ -1, 192 ])
		code = graph.op('Sub', code, graph.reduce('ReduceMean', code, [ 1 ]))
		length = 192
	else:
		code = source
		length = 512
	norm = graph.op('Sqrt', graph.reduce('ReduceSum', graph.op('Mul', code, code), [ 1 ]))
	return graph.op('Div', code, graph.scalar_add(norm, 1e-6)), length


def _small_swapper_body(graph: _GraphBuilder, name: str, code: str, length: int, target_signed: str, spec: _SwapperSpec) -> str:
	"""A smooth identity-dependent colour pattern (8x8, upsampled) blended over the target; returns [-1, 1]."""
	projection = _uniform(name, 'pattern', (length, 192), 1.5)
	pattern = graph.op('Tanh', graph.op('MatMul', code, graph.weight(projection)))
	if graph.batch_entry == 1:
		# a target assembled at run time from a hard-coded batch of 1, as traced exports write view(1, ...)
		flat = graph.reshape(pattern, [ 1, 192 ])
		pattern = graph.op('Reshape', flat, graph.op('Concat', graph.const([ 1 ], numpy.int64), graph.const([ 3, 8, 8 ], numpy.int64), axis=0))
	else:
		pattern = graph.reshape(pattern, [ -1, 3, 8, 8 ])
	factor = float(spec.size // 8)
	return graph.op('Resize', pattern, '', graph.const([ 1.0, 1.0, factor, factor ]), mode='linear', coordinate_transformation_mode='half_pixel')


def _heavy_channels(resolution: int) -> int:
	return { 512: 16, 256: 32, 128: 64, 64: 128, 32: 256, 16: 256 }[resolution]


def _conv(graph: _GraphBuilder, name: str, tensor: str, channels_in: int, channels_out: int, kernel: int, stride: int) -> str:
	label = 'conv' + str(graph.counter)
	weights = _uniform(name, label, (channels_out, channels_in, kernel, kernel), math.sqrt(2.0 / (channels_in * kernel * kernel)))
	bias = numpy.zeros(channels_out, numpy.float32)
	pad = kernel // 2
	return graph.op('Conv', tensor, graph.weight(weights), graph.const(bias), kernel_shape=[ kernel, kernel ], strides=[ stride, stride ], pads=[ pad, pad, pad, pad ])


def _adain(graph: _GraphBuilder, name: str, tensor: str, code: str, length: int, channels: int) -> str:
	label = 'adain' + str(graph.counter)
	normalised = graph.op('InstanceNormalization', tensor, graph.const(numpy.ones(channels, numpy.float32)), graph.const(numpy.zeros(channels, numpy.float32)), epsilon=1e-5)
	gamma = graph.op('Gemm', code, graph.weight(_uniform(name, label + 'gamma', (length, channels), 0.1)), graph.const(numpy.zeros(channels, numpy.float32)))
	beta = graph.op('Gemm', code, graph.weight(_uniform(name, label + 'beta', (length, channels), 0.1)), graph.const(numpy.zeros(channels, numpy.float32)))
	scaled = graph.op('Mul', normalised, graph.scalar_add(graph.reshape(gamma, [ graph.batch_entry, channels, 1, 1 ]), 1.0))
	return graph.op('Add', scaled, graph.reshape(beta, [ graph.batch_entry, channels, 1, 1 ]))


def _heavy_swapper_body(graph: _GraphBuilder, name: str, code: str, length: int, target_signed: str, spec: _SwapperSpec) -> str:
	"""Encoder / style blocks / decoder with a cost like a real swapper (about 7 GFLOP per 128 px image, 9 at
	256): conv k7 stem, stride-2 convs down to 16x16, six residual blocks of two 3x3 convs with AdaIN from the
	identity code, nearest x2 upsampling + 3x3 convs back up, a final 3x3 conv and tanh. Random weights."""
	resolution = spec.size
	channels = _heavy_channels(resolution)
	features = graph.op('LeakyRelu', _conv(graph, name, target_signed, 3, channels, 7, 1), alpha=0.2)
	while resolution > 16:
		resolution //= 2
		next_channels = _heavy_channels(resolution)
		features = graph.op('LeakyRelu', _conv(graph, name, features, channels, next_channels, 3, 2), alpha=0.2)
		channels = next_channels
	for _ in range(6):
		hidden = graph.op('LeakyRelu', _adain(graph, name, _conv(graph, name, features, channels, channels, 3, 1), code, length, channels), alpha=0.2)
		hidden = _adain(graph, name, _conv(graph, name, hidden, channels, channels, 3, 1), code, length, channels)
		features = graph.op('Add', features, hidden)
	while resolution < spec.size:
		resolution *= 2
		next_channels = _heavy_channels(resolution) // 2
		upsampled = graph.op('Resize', features, '', graph.const([ 1.0, 1.0, 2.0, 2.0 ]), mode='nearest')
		features = graph.op('LeakyRelu', _conv(graph, name, upsampled, channels, next_channels, 3, 1), alpha=0.2)
		channels = next_channels
	return graph.op('Tanh', _conv(graph, name, features, channels, 3, 3, 1))


def _build_swapper(name: str, variant: str) -> onnx.ModelProto:
	spec = SWAPPER_SPECS[name]
	graph = _GraphBuilder(name, fp16_weights=spec.fp16)
	if variant.endswith('pinned') and spec.fixed_batch:
		graph.batch_entry = 1
	batch: int | str = 1 if spec.fixed_batch else 'batch'
	source_shape: List[int | str] = [ batch, 3, spec.source_image_size, spec.source_image_size ] if spec.source_image_size else [ batch, 512 ]
	target_shape: List[int | str] = [ batch, 3, spec.size, spec.size ]
	# callers must feed by name: InsightFace's inswapper declares target first, the stand-ins of the others source
	# first, so code that relies on the order breaks here as it would on some real file
	if spec.emap:
		target = graph.input('target', target_shape)
		source = graph.input('source', source_shape)
	else:
		source = graph.input('source', source_shape)
		target = graph.input('target', target_shape)
	# back to 0..1 RGB, then to -1..1 as the common working space
	mean = numpy.array(spec.mean, numpy.float32).reshape(1, 3, 1, 1)
	std = numpy.array(spec.std, numpy.float32).reshape(1, 3, 1, 1)
	target_01 = graph.op('Add', graph.op('Mul', target, graph.const(std)), graph.const(mean))
	target_signed = graph.scalar_add(graph.scalar_mul(target_01, 2.0), -1.0)
	code, length = _source_code(graph, source, spec)
	if variant in ('heavy', 'heavy-pinned'):
		generated = _heavy_swapper_body(graph, name, code, length, target_signed, spec)
	else:
		generated = _small_swapper_body(graph, name, code, length, target_signed, spec)
	blended = graph.op('Add', graph.scalar_mul(target_signed, TARGET_WEIGHT), graph.scalar_mul(generated, 1.0 - TARGET_WEIGHT))
	blended = graph.clip(blended, -1.0, 1.0)
	if spec.emap:
		# the emap is part of the graph (as in the real file) though the pipeline applies it before the call
		emap = graph.const(inswapper_emap(name), name='emap')
		graph.last_initializer = emap
		blended = graph.op('Add', blended, graph.zero_of(emap))
	output = blended if spec.signed_output else graph.scalar_add(graph.scalar_mul(blended, 0.5), 0.5)
	graph.output(output, 'output', [ batch, 3, spec.size, spec.size ])
	if spec.mask_output:
		ellipse = _soft_ellipse(spec.size, (0.5, 0.55), (0.4, 0.48), 3.0).reshape(1, 1, spec.size, spec.size)
		mask = graph.op('Add', graph.const(ellipse), graph.scalar_mul(graph.reduce('ReduceMean', target, [ 1, 2, 3 ]), 0.0))
		graph.output(mask, 'mask', [ batch, 1, spec.size, spec.size ])
	return graph.build()


# --- face enhancers ------------------------------------------------------------------------------------------------

# unsharp-mask amount of the small enhancer stand-ins, and the strength of their fixed colour pattern
ENHANCER_SHARPEN = 0.5
ENHANCER_PATTERN = 0.05


def enhancer_pattern(name: str) -> numpy.ndarray:
	"""The 1×3×8×8 pattern (-1..1) the small enhancer stand-ins add, upsampled (nearest) to their size."""
	return (numpy.tanh(_uniform(name, 'pattern', (3, 8, 8), 1.5)) * ENHANCER_PATTERN).astype(numpy.float32)[None]


def _heavy_enhancer_body(graph: _GraphBuilder, name: str, image: str, size: int) -> str:
	"""Encoder / residual blocks / decoder with a cost of the order of a real enhancer (about 10 GFLOP at 512):
	conv k7 stem, stride-2 convs down to 16×16, six residual blocks, nearest ×2 upsampling + 3×3 convs back up."""
	resolution = size
	channels = _heavy_channels(min(resolution, 512))
	features = graph.op('LeakyRelu', _conv(graph, name, image, 3, channels, 7, 1), alpha=0.2)
	while resolution > 16:
		resolution //= 2
		next_channels = _heavy_channels(min(resolution, 512))
		features = graph.op('LeakyRelu', _conv(graph, name, features, channels, next_channels, 3, 2), alpha=0.2)
		channels = next_channels
	for _ in range(6):
		hidden = graph.op('LeakyRelu', _conv(graph, name, features, channels, channels, 3, 1), alpha=0.2)
		features = graph.op('Add', features, _conv(graph, name, hidden, channels, channels, 3, 1))
	while resolution < size:
		resolution *= 2
		next_channels = _heavy_channels(min(resolution, 512)) // 2
		upsampled = graph.op('Resize', features, '', graph.const([ 1.0, 1.0, 2.0, 2.0 ]), mode='nearest')
		features = graph.op('LeakyRelu', _conv(graph, name, upsampled, channels, next_channels, 3, 1), alpha=0.2)
		channels = next_channels
	return graph.op('Tanh', _conv(graph, name, features, channels, 3, 3, 1))


def _build_enhancer(name: str, variant: str) -> onnx.ModelProto:
	"""`input` [1,3,S,S] float32 (RGB, -1..1) -> `output` [1,3,S,S] (-1..1); codeformer also takes `weight` [1]
	float64. Small variant: an unsharp mask (x + a·(x - blur3(x)), a = 0.5, or (1 - weight) for codeformer) plus a
	fixed smooth colour pattern, clipped to -1..1. Heavy variant: x + 0.3·(a conv network), clipped."""
	size = ENHANCER_SIZES[name]
	graph = _GraphBuilder(name)
	image = graph.input('input', [ 1, 3, size, size ])
	if name in ENHANCER_WEIGHT_KEYS:
		weight = graph.input('weight', [ 1 ], TensorProto.DOUBLE)
		amount = graph.op('Sub', graph.const(1.0), graph.op('Cast', weight, to=TensorProto.FLOAT))
	else:
		amount = graph.const(ENHANCER_SHARPEN)
	if variant in ('heavy', 'heavy-pinned'):
		enhanced = graph.op('Add', image, graph.op('Mul', _heavy_enhancer_body(graph, name, image, size), graph.const(0.3)))
	else:
		blurred = graph.op('AveragePool', image, kernel_shape=[ 3, 3 ], strides=[ 1, 1 ], pads=[ 1, 1, 1, 1 ], count_include_pad=0)
		detail = graph.op('Mul', graph.op('Sub', image, blurred), amount)
		factor = float(size // 8)
		pattern = graph.op('Resize', graph.const(enhancer_pattern(name)), '', graph.const([ 1.0, 1.0, factor, factor ]), mode='nearest', coordinate_transformation_mode='asymmetric', nearest_mode='floor')
		enhanced = graph.op('Add', graph.op('Add', image, detail), pattern)
	graph.output(graph.clip(enhanced, -1.0, 1.0), 'output', [ 1, 3, size, size ])
	return graph.build()


# --- public API ---------------------------------------------------------------------------------------------------


def build_model(name: str, variant: str = 'small', nsfw_flagged: bool = False) -> onnx.ModelProto:
	"""The stand-in for one FaceFusion model key. `variant` 'heavy' only changes the swappers and enhancers (a
	convolutional network with a realistic cost, for benchmarks); `nsfw_flagged` makes nsfw_1..3 flag every input."""
	if variant not in VARIANTS:
		raise ValueError('unknown stand-in variant: ' + variant)
	if name == 'yolo_face':
		return _build_yolo_face()
	if name in ('retinaface', 'scrfd'):
		return _build_scrfd_like(name)
	if name == '2dfan4':
		return _build_2dfan4()
	if name == 'peppa_wutz':
		return _build_peppa_wutz()
	if name == 'fan_68_5':
		return _build_fan_68_5()
	if name == 'arcface_w600k_r50':
		return _build_arcface()
	if name == 'fairface':
		return _build_fairface()
	if name in XSEG_ELLIPSES:
		return _build_xseg(name)
	if name in ('bisenet_resnet_18', 'bisenet_resnet_34'):
		return _build_bisenet(name)
	if name in ('nsfw_1', 'nsfw_2', 'nsfw_3'):
		return _build_nsfw(name, nsfw_flagged)
	if name.startswith('crossface_'):
		return _build_crossface(name)
	if name in SWAPPER_SPECS:
		return _build_swapper(name, variant)
	if name in ENHANCER_SIZES:
		return _build_enhancer(name, variant)
	if name in COPIED_KEYS:
		raise ValueError(name + ' is a real model that is copied, not generated')
	raise KeyError('no stand-in for model ' + name)


def crc32_hex(data: bytes) -> str:
	return format(zlib.crc32(data) & 0xffffffff, '08x')


def _write_atomic(path: Path, data: bytes) -> None:
	"""Write through a temporary name so a reader (or a parallel writer) never sees a partial file; skip the write
	when the bytes are already there."""
	if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
		return
	temporary = path.with_name(path.name + '.' + str(os.getpid()) + '.tmp')
	temporary.write_bytes(data)
	os.replace(temporary, path)


def _find_real_model(file_name: str) -> Path:
	package_root = Path(__file__).resolve().parents[2]
	for candidate in (package_root / 'tests' / 'data' / file_name, package_root.parent / 'shared' / 'models' / file_name):
		if candidate.is_file():
			return candidate
	raise FileNotFoundError('cannot find the real ' + file_name + ' (expected in tests/data/)')


def write_standin_models(directory: str | os.PathLike[str], names: Optional[Iterable[str]] = None, variant: str = 'small', nsfw_flagged: bool = False) -> List[Path]:
	"""Write `<file_name>` and `<stem>.hash` for each model key (all when names is None) into directory; returns
	the model paths in the order asked. Identical bytes on every run; existing identical files are left alone."""
	target_directory = Path(directory)
	target_directory.mkdir(parents=True, exist_ok=True)
	keys = list(STANDIN_FILE_NAMES) if names is None else list(names)
	unknown = [ key for key in keys if key not in STANDIN_FILE_NAMES ]
	if unknown:
		raise KeyError('no stand-in for model(s): ' + ', '.join(unknown))
	written: List[Path] = []
	for key in keys:
		file_name = STANDIN_FILE_NAMES[key]
		path = target_directory / file_name
		if key in COPIED_KEYS:
			data = _find_real_model(file_name).read_bytes()
		else:
			data = build_model(key, variant, nsfw_flagged).SerializeToString()
		_write_atomic(path, data)
		_write_atomic(path.with_suffix('.hash'), crc32_hex(data).encode('ascii'))
		written.append(path)
	return written


def main(arguments: Optional[Sequence[str]] = None) -> int:
	parser = argparse.ArgumentParser(prog='python -m facefusion.testing.standin_models', description='Write stand-in ONNX models with FaceFusion 3.5.0 signatures.')
	parser.add_argument('directory')
	parser.add_argument('names', nargs='*', help='model keys (default: all)')
	parser.add_argument('--variant', choices=VARIANTS, default='small')
	parser.add_argument('--nsfw-flagged', action='store_true', help='content analyser stand-ins flag every input')
	options = parser.parse_args(arguments)
	try:
		paths = write_standin_models(options.directory, options.names or None, options.variant, options.nsfw_flagged)
	except (KeyError, FileNotFoundError) as exception:
		print('[FACEFUSION] ' + str(exception).strip("'"), file=sys.stderr)
		return 1
	for path in paths:
		print(path)
	return 0


if __name__ == '__main__':
	sys.exit(main())
