"""The stand-in models: real signatures, valid hashes, deterministic bytes, and behaviour the other tests rely on."""
from __future__ import annotations

import zlib
from pathlib import Path
from typing import Dict, List, Tuple

import cv2
import numpy
import onnx
import onnxruntime
import pytest

from facefusion.testing import standin_models
from facefusion.testing.standin_models import STANDIN_FILE_NAMES, build_model, write_standin_models

DATA_DIRECTORY = Path(__file__).parent / 'data'
SWAPPER_KEYS = [
	'blendswap_256', 'ghost_1_256', 'ghost_2_256', 'ghost_3_256', 'hififace_unofficial_256',
	'hyperswap_1a_256', 'hyperswap_1b_256', 'hyperswap_1c_256', 'inswapper_128', 'inswapper_128_fp16',
	'simswap_256', 'simswap_unofficial_512', 'uniface_256'
]
# the documented signatures, written out independently of the generator: key -> ({input: shape}, [output shapes]).
# 'B' marks a dynamic batch (fed as 2 here), 'H'/'W' the detectors' dynamic size (fed as 320).
SIGNATURES: Dict[str, Tuple[Dict[str, List[int | str]], List[List[int | str]]]] = {
	'yolo_face': ({ 'input': [ 1, 3, 640, 640 ] }, [ [ 1, 20, 8400 ] ]),
	'retinaface': ({ 'input': [ 1, 3, 'H', 'W' ] }, [ [ 3200, 1 ], [ 800, 1 ], [ 200, 1 ], [ 3200, 4 ], [ 800, 4 ], [ 200, 4 ], [ 3200, 10 ], [ 800, 10 ], [ 200, 10 ] ]),
	'scrfd': ({ 'input': [ 1, 3, 'H', 'W' ] }, [ [ 3200, 1 ], [ 800, 1 ], [ 200, 1 ], [ 3200, 4 ], [ 800, 4 ], [ 200, 4 ], [ 3200, 10 ], [ 800, 10 ], [ 200, 10 ] ]),
	'2dfan4': ({ 'input': [ 1, 3, 256, 256 ] }, [ [ 1, 68, 3 ], [ 1, 68, 64, 64 ] ]),
	'peppa_wutz': ({ 'input': [ 1, 3, 256, 256 ] }, [ [ 1, 68, 3 ] ]),
	'fan_68_5': ({ 'input': [ 1, 5, 2 ] }, [ [ 1, 68, 2 ] ]),
	'arcface_w600k_r50': ({ 'input': [ 1, 3, 112, 112 ] }, [ [ 1, 512 ] ]),
	'fairface': ({ 'input': [ 1, 3, 224, 224 ] }, [ [ 1 ], [ 1 ], [ 1 ] ]),
	'xseg_1': ({ 'input': [ 1, 256, 256, 3 ] }, [ [ 1, 256, 256, 1 ] ]),
	'xseg_2': ({ 'input': [ 1, 256, 256, 3 ] }, [ [ 1, 256, 256, 1 ] ]),
	'xseg_3': ({ 'input': [ 1, 256, 256, 3 ] }, [ [ 1, 256, 256, 1 ] ]),
	'bisenet_resnet_18': ({ 'input': [ 1, 3, 512, 512 ] }, [ [ 1, 19, 512, 512 ] ]),
	'bisenet_resnet_34': ({ 'input': [ 1, 3, 512, 512 ] }, [ [ 1, 19, 512, 512 ] ]),
	'nsfw_1': ({ 'input': [ 1, 3, 640, 640 ] }, [ [ 1, 9, 8400 ] ]),
	'nsfw_2': ({ 'input': [ 1, 3, 384, 384 ] }, [ [ 1, 2 ] ]),
	'nsfw_3': ({ 'input': [ 1, 3, 448, 448 ] }, [ [ 1, 4 ] ]),
	'crossface_ghost': ({ 'input': [ 1, 512 ] }, [ [ 1, 512 ] ]),
	'crossface_hififace': ({ 'input': [ 1, 512 ] }, [ [ 1, 512 ] ]),
	'crossface_simswap': ({ 'input': [ 1, 512 ] }, [ [ 1, 512 ] ]),
	'blendswap_256': ({ 'source': [ 'B', 3, 112, 112 ], 'target': [ 'B', 3, 256, 256 ] }, [ [ 'B', 3, 256, 256 ] ]),
	'ghost_1_256': ({ 'source': [ 'B', 512 ], 'target': [ 'B', 3, 256, 256 ] }, [ [ 'B', 3, 256, 256 ] ]),
	'ghost_2_256': ({ 'source': [ 'B', 512 ], 'target': [ 'B', 3, 256, 256 ] }, [ [ 'B', 3, 256, 256 ] ]),
	'ghost_3_256': ({ 'source': [ 'B', 512 ], 'target': [ 'B', 3, 256, 256 ] }, [ [ 'B', 3, 256, 256 ] ]),
	'hififace_unofficial_256': ({ 'source': [ 'B', 512 ], 'target': [ 'B', 3, 256, 256 ] }, [ [ 'B', 3, 256, 256 ] ]),
	'hyperswap_1a_256': ({ 'source': [ 'B', 512 ], 'target': [ 'B', 3, 256, 256 ] }, [ [ 'B', 3, 256, 256 ], [ 'B', 1, 256, 256 ] ]),
	'hyperswap_1b_256': ({ 'source': [ 'B', 512 ], 'target': [ 'B', 3, 256, 256 ] }, [ [ 'B', 3, 256, 256 ], [ 'B', 1, 256, 256 ] ]),
	'hyperswap_1c_256': ({ 'source': [ 'B', 512 ], 'target': [ 'B', 3, 256, 256 ] }, [ [ 'B', 3, 256, 256 ], [ 'B', 1, 256, 256 ] ]),
	'inswapper_128': ({ 'target': [ 1, 3, 128, 128 ], 'source': [ 1, 512 ] }, [ [ 1, 3, 128, 128 ] ]),
	'inswapper_128_fp16': ({ 'target': [ 1, 3, 128, 128 ], 'source': [ 1, 512 ] }, [ [ 1, 3, 128, 128 ] ]),
	'simswap_256': ({ 'source': [ 'B', 512 ], 'target': [ 'B', 3, 256, 256 ] }, [ [ 'B', 3, 256, 256 ] ]),
	'simswap_unofficial_512': ({ 'source': [ 'B', 512 ], 'target': [ 'B', 3, 512, 512 ] }, [ [ 'B', 3, 512, 512 ] ]),
	'uniface_256': ({ 'source': [ 'B', 3, 256, 256 ], 'target': [ 'B', 3, 256, 256 ] }, [ [ 'B', 3, 256, 256 ] ]),
	'codeformer': ({ 'input': [ 1, 3, 512, 512 ], 'weight': [ 1 ] }, [ [ 1, 3, 512, 512 ] ]),
	'gfpgan_1.2': ({ 'input': [ 1, 3, 512, 512 ] }, [ [ 1, 3, 512, 512 ] ]),
	'gfpgan_1.3': ({ 'input': [ 1, 3, 512, 512 ] }, [ [ 1, 3, 512, 512 ] ]),
	'gfpgan_1.4': ({ 'input': [ 1, 3, 512, 512 ] }, [ [ 1, 3, 512, 512 ] ]),
	'gpen_bfr_256': ({ 'input': [ 1, 3, 256, 256 ] }, [ [ 1, 3, 256, 256 ] ]),
	'gpen_bfr_512': ({ 'input': [ 1, 3, 512, 512 ] }, [ [ 1, 3, 512, 512 ] ]),
	'gpen_bfr_1024': ({ 'input': [ 1, 3, 1024, 1024 ] }, [ [ 1, 3, 1024, 1024 ] ]),
	'gpen_bfr_2048': ({ 'input': [ 1, 3, 2048, 2048 ] }, [ [ 1, 3, 2048, 2048 ] ]),
	'restoreformer_plus_plus': ({ 'input': [ 1, 3, 512, 512 ] }, [ [ 1, 3, 512, 512 ] ]),
}
# inputs that are not float32: codeformer's fidelity weight is a float64 of shape [1]
DOUBLE_INPUTS = { ('codeformer', 'weight') }
# output space of each swapper's first output: 0..1 or normalised -1..1
SIGNED_OUTPUT = { 'ghost_1_256', 'ghost_2_256', 'ghost_3_256', 'hififace_unofficial_256', 'hyperswap_1a_256', 'hyperswap_1b_256', 'hyperswap_1c_256', 'uniface_256' }
GENERATED_KEYS = sorted(SIGNATURES)
DIMENSION_VALUES = { 'B': 2, 'H': 320, 'W': 320 }


@pytest.fixture(scope='module')
def model_directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
	directory = tmp_path_factory.mktemp('standin_models')
	write_standin_models(directory)
	return directory


def open_session(path: Path) -> onnxruntime.InferenceSession:
	return onnxruntime.InferenceSession(str(path), providers=[ 'CPUExecutionProvider' ])


def concrete(shape: List[int | str]) -> List[int]:
	return [ DIMENSION_VALUES[value] if isinstance(value, str) else value for value in shape ]


def letterbox(frame: numpy.ndarray, size: int) -> Tuple[numpy.ndarray, float, int, int]:
	"""3.5.0's detector canvas: shrink to fit (never enlarge), paste top-left into a black square."""
	height, width = frame.shape[:2]
	scale = min(size / height, size / width, 1.0)
	resized = cv2.resize(frame, (int(width * scale), int(height * scale)))
	canvas = numpy.zeros((size, size, 3), numpy.uint8)
	canvas[:resized.shape[0], :resized.shape[1]] = resized
	return canvas, 1.0 / scale, resized.shape[1], resized.shape[0]


def decode_yolo(output: numpy.ndarray, threshold: float) -> List[Tuple[int, float, numpy.ndarray, numpy.ndarray]]:
	candidates = output[0].T
	found = []
	for index in numpy.flatnonzero(candidates[:, 4] > threshold):
		centre_x, centre_y, width, height = candidates[index, :4]
		box = numpy.array([ centre_x - width / 2, centre_y - height / 2, centre_x + width / 2, centre_y + height / 2 ])
		found.append((int(index), float(candidates[index, 4]), box, candidates[index, 5:].reshape(5, 3)[:, :2]))
	return found


def decode_scrfd(outputs: List[numpy.ndarray], size: int, threshold: float) -> List[Tuple[int, float, numpy.ndarray, numpy.ndarray]]:
	found = []
	for position, stride in enumerate((8, 16, 32)):
		scores, boxes, landmarks = outputs[position], outputs[position + 3], outputs[position + 6]
		cells = size // stride
		rows, columns = numpy.mgrid[:cells, :cells]
		anchors = numpy.repeat(numpy.stack([ columns, rows ], axis=-1).reshape(-1, 2) * stride, 2, axis=0)
		assert scores.shape == (cells * cells * 2, 1)
		for index in numpy.flatnonzero(scores[:, 0] >= threshold):
			box = numpy.concatenate([ anchors[index] - boxes[index, :2] * stride, anchors[index] + boxes[index, 2:] * stride ])
			points = anchors[index] + landmarks[index].reshape(5, 2) * stride
			found.append((int(index), float(scores[index, 0]), box, points))
	return found


def crude_face_crop(name: str, shift: int = 0, size: int = 112) -> numpy.ndarray:
	"""A square crop around the face (centres from YuNet on these photos), RGB -> arcface input."""
	centres = { 'obama': (490, 255, 260), 'biden': (567, 367, 300) }
	frame = cv2.imread(str(DATA_DIRECTORY / (name + '.jpg')))
	centre_x, centre_y, side = centres[name]
	x1 = centre_x - side // 2 + shift
	y1 = centre_y - side // 2 + shift
	return cv2.resize(frame[y1:y1 + side, x1:x1 + side], (size, size), interpolation=cv2.INTER_AREA)


def arcface_input(crop: numpy.ndarray) -> numpy.ndarray:
	return (crop[:, :, ::-1].astype(numpy.float32) / 127.5 - 1.0).transpose(2, 0, 1)[None]


def test_every_key_has_a_file_name() -> None:
	assert set(SIGNATURES) | { 'yunet' } == set(STANDIN_FILE_NAMES)
	assert STANDIN_FILE_NAMES['yolo_face'] == 'yoloface_8n.onnx'
	assert STANDIN_FILE_NAMES['retinaface'] == 'retinaface_10g.onnx'
	assert STANDIN_FILE_NAMES['scrfd'] == 'scrfd_2.5g.onnx'
	assert STANDIN_FILE_NAMES['yunet'] == 'yunet_2023_mar.onnx'
	assert STANDIN_FILE_NAMES['inswapper_128_fp16'] == 'inswapper_128_fp16.onnx'


def test_files_and_hashes(model_directory: Path) -> None:
	for key, file_name in STANDIN_FILE_NAMES.items():
		path = model_directory / file_name
		hash_text = path.with_suffix('.hash').read_bytes()
		assert len(hash_text) == 8 and hash_text == hash_text.lower() and b'\n' not in hash_text, key
		assert hash_text.decode() == format(zlib.crc32(path.read_bytes()), '08x'), key
		if key != 'yunet':
			assert path.stat().st_size < 5 * 1024 * 1024, key
	# yunet is the real file, copied with its known CRC
	assert (model_directory / 'yunet_2023_mar.hash').read_text() == (DATA_DIRECTORY / 'yunet_2023_mar.hash').read_text()


@pytest.mark.parametrize('key', GENERATED_KEYS)
def test_signature_checker_and_run(model_directory: Path, key: str) -> None:
	path = model_directory / STANDIN_FILE_NAMES[key]
	model = onnx.load(str(path))
	onnx.checker.check_model(model, full_check=True)
	session = open_session(path)
	inputs, outputs = SIGNATURES[key]
	assert [ item.name for item in session.get_inputs() ] == list(inputs)
	for item in session.get_inputs():
		assert item.type == ('tensor(double)' if (key, item.name) in DOUBLE_INPUTS else 'tensor(float)')
		declared = [ 'B' if value == 'batch' else 'H' if value == 'height' else 'W' if value == 'width' else value for value in item.shape ]
		assert declared == inputs[item.name], (key, item.name, item.shape)
	state = numpy.random.RandomState(0)
	feed = { name: state.random_sample(concrete(shape)).astype(numpy.float64 if (key, name) in DOUBLE_INPUTS else numpy.float32) for name, shape in inputs.items() }
	results = session.run(None, feed)
	assert [ list(result.shape) for result in results ] == [ concrete(shape) for shape in outputs ]
	for result in results:
		assert result.dtype == (numpy.int64 if key == 'fairface' else numpy.float32)
		assert numpy.all(numpy.isfinite(result))


def test_generation_is_deterministic(model_directory: Path, tmp_path: Path) -> None:
	write_standin_models(tmp_path)
	for file_name in STANDIN_FILE_NAMES.values():
		assert (tmp_path / file_name).read_bytes() == (model_directory / file_name).read_bytes(), file_name
	assert build_model('hyperswap_1a_256').SerializeToString() == (model_directory / 'hyperswap_1a_256.onnx').read_bytes()


def test_write_subset_and_errors(tmp_path: Path) -> None:
	paths = write_standin_models(tmp_path / 'nested', [ 'fan_68_5', 'yunet' ])
	assert paths == [ tmp_path / 'nested' / 'fan_68_5.onnx', tmp_path / 'nested' / 'yunet_2023_mar.onnx' ]
	assert sorted(path.name for path in (tmp_path / 'nested').iterdir()) == [ 'fan_68_5.hash', 'fan_68_5.onnx', 'yunet_2023_mar.hash', 'yunet_2023_mar.onnx' ]
	with pytest.raises(KeyError):
		write_standin_models(tmp_path, [ 'no_such_model' ])
	with pytest.raises(ValueError):
		build_model('fan_68_5', 'huge')


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
	assert standin_models.main([ str(tmp_path), 'nsfw_2', 'crossface_ghost' ]) == 0
	assert capsys.readouterr().out.split() == [ str(tmp_path / 'nsfw_2.onnx'), str(tmp_path / 'crossface_ghost.onnx') ]
	assert standin_models.main([ str(tmp_path), 'bogus' ]) == 1


@pytest.mark.parametrize('key', [ 'inswapper_128', 'inswapper_128_fp16' ])
def test_inswapper_quirks(model_directory: Path, key: str) -> None:
	model = onnx.load(str(model_directory / STANDIN_FILE_NAMES[key]))
	emap = onnx.numpy_helper.to_array(model.graph.initializer[-1])
	assert emap.shape == (512, 512) and emap.dtype == numpy.float32
	for value_info in model.graph.input:
		assert value_info.type.tensor_type.shape.dim[0].dim_value == 1


def test_yolo_face_finds_the_portrait_face(model_directory: Path) -> None:
	session = open_session(model_directory / 'yoloface_8n.onnx')
	frame = cv2.imread(str(DATA_DIRECTORY / 'obama.jpg'))
	canvas, ratio, content_width, content_height = letterbox(frame, 640)
	found = decode_yolo(session.run(None, { 'input': canvas.transpose(2, 0, 1)[None].astype(numpy.float32) / 255 })[0], 0.5)
	assert len(found) == 1
	index, score, box, points = found[0]
	assert index != 0 and score == pytest.approx(0.9)
	expected_box, expected_points = standin_models.detector_face_for_content(content_width, content_height)
	# the graph measures the content in 16-pixel cells
	assert numpy.abs(box - expected_box).max() < 16
	assert numpy.abs(points - expected_points).max() < 16
	# eyes left of right, above the nose, above the mouth; all inside the box
	assert points[0, 0] < points[1, 0] and points[0, 1] < points[2, 1] < points[3, 1]
	assert numpy.all(points >= box[:2]) and numpy.all(points <= box[2:])
	# on obama.jpg the box overlaps YuNet's face box (374, 94, 232, 321)
	real = numpy.array([ 374, 94, 606, 415 ])
	scaled = box * ratio
	overlap = numpy.prod(numpy.clip(numpy.minimum(scaled[2:], real[2:]) - numpy.maximum(scaled[:2], real[:2]), 0, None))
	assert overlap / numpy.prod(real[2:] - real[:2]) > 0.6
	black = numpy.zeros((1, 3, 640, 640), numpy.float32)
	assert decode_yolo(session.run(None, { 'input': black })[0], 0.1) == []


@pytest.mark.parametrize('key', [ 'retinaface', 'scrfd' ])
@pytest.mark.parametrize('size', [ 160, 320, 480, 640 ])
def test_scrfd_like_detectors_at_every_size(model_directory: Path, key: str, size: int) -> None:
	session = open_session(model_directory / STANDIN_FILE_NAMES[key])
	frame = cv2.imread(str(DATA_DIRECTORY / 'biden.jpg'))
	canvas, _, content_width, content_height = letterbox(frame, size)
	tensor = ((canvas.astype(numpy.float32) - 127.5) / 128.0).transpose(2, 0, 1)[None]
	outputs = session.run(None, { 'input': tensor })
	for position, stride in enumerate((8, 16, 32)):
		count = (size // stride) ** 2 * 2
		assert [ outputs[position + offset * 3].shape for offset in range(3) ] == [ (count, 1), (count, 4), (count, 10) ]
	found = decode_scrfd(outputs, size, 0.5)
	assert len(found) == 1
	index, score, box, points = found[0]
	assert index != 0 and 0.8 < score < 0.95
	expected_box, expected_points = standin_models.detector_face_for_content(content_width, content_height)
	assert numpy.abs(box - expected_box).max() < 16
	assert numpy.abs(points - expected_points).max() < 16
	everything_else = numpy.concatenate([ output[:, 0] for output in outputs[:3] ])
	assert numpy.sort(everything_else)[-2] < 0.1
	black = numpy.full((1, 3, size, size), -127.5 / 128.0, numpy.float32)
	assert decode_scrfd(session.run(None, { 'input': black }), size, 0.1) == []


def test_fan_68_5_follows_a_similarity(model_directory: Path) -> None:
	session = open_session(model_directory / 'fan_68_5.onnx')
	template = numpy.array(standin_models.FFHQ_512_TEMPLATE, numpy.float32)
	base = session.run(None, { 'input': template[None] })[0][0]
	# a plausible face: jaw around the eyes and mouth, point 0 left of point 16 on one level
	assert base[0, 0] < template[0, 0] < template[1, 0] < base[16, 0]
	assert abs(base[0, 1] - base[16, 1]) < 0.01 and base[8, 1] > template[3, 1]
	angle = numpy.deg2rad(25.0)
	matrix = numpy.array([ [ numpy.cos(angle), -numpy.sin(angle), 0.1 ], [ numpy.sin(angle), numpy.cos(angle), -0.05 ] ], numpy.float32) * 1.3
	moved = session.run(None, { 'input': cv2.transform(template[None], matrix) })[0][0]
	assert numpy.abs(moved - cv2.transform(base[None], matrix)[0]).max() < 1e-4


def test_landmarkers_give_a_mean_face_with_low_scores(model_directory: Path) -> None:
	crop = numpy.random.RandomState(1).random_sample((1, 3, 256, 256)).astype(numpy.float32)
	fan = open_session(model_directory / '2dfan4.onnx').run(None, { 'input': crop })
	peppa = open_session(model_directory / 'peppa_wutz.onnx').run(None, { 'input': crop })
	for points in (fan[0][0], peppa[0][0]):
		assert numpy.all(points[:, :2] > 8) and numpy.all(points[:, :2] < 56)
		assert points[:, 2].max() <= 0.5
		# 5/68 as 3.5.0 derives it: eyes from 36-41 / 42-47, nose 30, mouth 48 / 54
		eyes = points[36:42, :2].mean(axis=0), points[42:48, :2].mean(axis=0)
		assert eyes[0][0] < points[30, 0] < eyes[1][0] and eyes[0][1] < points[30, 1] < points[48, 1]
	assert fan[1].max(axis=(2, 3)).mean() <= 0.5
	# the heat-map maxima sit on the points
	peak = numpy.unravel_index(fan[1][0, 30].argmax(), (64, 64))
	assert abs(peak[1] - fan[0][0, 30, 0]) <= 1 and abs(peak[0] - fan[0][0, 30, 1]) <= 1
	# the points follow the image a little
	shifted = open_session(model_directory / '2dfan4.onnx').run(None, { 'input': crop * numpy.linspace(0, 1, 256, dtype=numpy.float32) })
	assert 0 < numpy.abs(shifted[0][0, :, :2] - fan[0][0, :, :2]).max() <= 1.0


def test_arcface_separates_photos_and_is_stable(model_directory: Path) -> None:
	session = open_session(model_directory / 'arcface_w600k_r50.onnx')

	def embed(crop: numpy.ndarray) -> numpy.ndarray:
		embedding = session.run(None, { 'input': arcface_input(crop) })[0][0]
		assert numpy.linalg.norm(embedding) > 1
		return embedding / numpy.linalg.norm(embedding)

	obama = embed(crude_face_crop('obama'))
	biden = embed(crude_face_crop('biden'))
	obama_shifted = embed(crude_face_crop('obama', shift=3))
	obama_brighter = embed(numpy.clip(crude_face_crop('obama').astype(numpy.float32) * 1.1 + 4, 0, 255).astype(numpy.uint8))
	assert float(obama @ biden) < 0.5
	assert float(obama @ obama_shifted) > 0.9
	assert float(obama @ obama_brighter) > 0.9
	flat = session.run(None, { 'input': numpy.zeros((1, 3, 112, 112), numpy.float32) })[0]
	assert numpy.linalg.norm(flat) > 0


def test_fairface_classes(model_directory: Path) -> None:
	session = open_session(model_directory / 'fairface.onnx')
	state = numpy.random.RandomState(2)
	for _ in range(3):
		race, gender, age = session.run(None, { 'input': state.standard_normal((1, 3, 224, 224)).astype(numpy.float32) })
		assert 0 <= race[0] < 7 and 0 <= gender[0] < 2 and 0 <= age[0] < 9


def test_xseg_masks(model_directory: Path) -> None:
	crop = numpy.full((1, 256, 256, 3), 0.6, numpy.float32)
	for key in ('xseg_1', 'xseg_2', 'xseg_3'):
		session = open_session(model_directory / STANDIN_FILE_NAMES[key])
		mask = session.run(None, { 'input': crop })[0][0, :, :, 0]
		assert mask.min() >= 0 and mask.max() <= 1
		assert mask[140, 128] == pytest.approx(1.0) and mask[2, 2] == 0
		occluded = crop.copy()
		occluded[0, 120:160, 100:160] = 0
		assert session.run(None, { 'input': occluded })[0][0, 140, 128, 0] == 0


def test_bisenet_layout(model_directory: Path) -> None:
	for key in ('bisenet_resnet_18', 'bisenet_resnet_34'):
		logits = open_session(model_directory / STANDIN_FILE_NAMES[key]).run(None, { 'input': numpy.zeros((1, 3, 512, 512), numpy.float32) })[0][0]
		classes = logits.argmax(axis=0)
		assert classes[5, 5] == 0 and classes[505, 5] == 0
		assert classes[int(0.6 * 512), int(0.3 * 512)] == 1
		assert classes[int(0.44 * 512), int(0.37 * 512)] == 4 and classes[int(0.44 * 512), int(0.63 * 512)] == 5
		assert classes[int(0.55 * 512), 256] == 10
		assert classes[int(0.72 * 512), 256] in (11, 12, 13)
		numpy.testing.assert_allclose(logits, standin_models.bisenet_logits(512)[0], atol=1e-5)


@pytest.mark.parametrize('flagged', [ False, True ])
def test_nsfw_verdicts(tmp_path: Path, flagged: bool) -> None:
	write_standin_models(tmp_path, [ 'nsfw_1', 'nsfw_2', 'nsfw_3' ], nsfw_flagged=flagged)
	state = numpy.random.RandomState(3)
	first = open_session(tmp_path / 'nsfw_1.onnx').run(None, { 'input': state.random_sample((1, 3, 640, 640)).astype(numpy.float32) })[0]
	second = open_session(tmp_path / 'nsfw_2.onnx').run(None, { 'input': state.random_sample((1, 3, 384, 384)).astype(numpy.float32) })[0]
	third = open_session(tmp_path / 'nsfw_3.onnx').run(None, { 'input': state.random_sample((1, 3, 448, 448)).astype(numpy.float32) })[0]
	# 3.5.0's three rules
	assert (first[0, 4:].max() > 0.2) == flagged
	assert (second[0, 0] - second[0, 1] > 0.25) == flagged
	assert ((third[0, 2] + third[0, 3]) - (third[0, 0] + third[0, 1]) > 10.5) == flagged


@pytest.mark.parametrize('key', SWAPPER_KEYS)
def test_swappers_mix_source_and_target(model_directory: Path, key: str) -> None:
	session = open_session(model_directory / STANDIN_FILE_NAMES[key])
	inputs, _ = SIGNATURES[key]
	state = numpy.random.RandomState(4)
	single = { name: [ 1 ] + concrete(shape)[1:] for name, shape in inputs.items() }
	sources = [ state.standard_normal(single['source']).astype(numpy.float32) for _ in range(2) ]
	targets = [ state.standard_normal(single['target']).astype(numpy.float32) for _ in range(2) ]
	if len(single['source']) == 4:
		sources = [ numpy.abs(source) % 1 for source in sources ]
	base = session.run(None, { 'source': sources[0], 'target': targets[0] })
	other_source = session.run(None, { 'source': sources[1], 'target': targets[0] })[0]
	other_target = session.run(None, { 'source': sources[0], 'target': targets[1] })[0]
	assert numpy.abs(base[0] - other_source).max() > 0.05
	assert numpy.abs(base[0] - other_target).max() > 0.05
	low, high = (-1.0, 1.0) if key in SIGNED_OUTPUT else (0.0, 1.0)
	assert base[0].min() >= low and base[0].max() <= high
	if key.startswith('hyperswap'):
		assert base[1].min() >= 0 and base[1].max() <= 1
	if inputs['target'][0] == 'B':
		# a batch of two gives the same as two calls
		batched = session.run(None, { 'source': numpy.concatenate(sources), 'target': numpy.concatenate([ targets[0], targets[0] ]) })[0]
		numpy.testing.assert_allclose(batched[0], base[0][0], atol=1e-5)
		numpy.testing.assert_allclose(batched[1], other_source[0], atol=1e-5)


@pytest.mark.parametrize('key', [ 'inswapper_128', 'hyperswap_1a_256' ])
def test_heavy_swappers(tmp_path: Path, key: str) -> None:
	path = write_standin_models(tmp_path, [ key ], variant='heavy')[0]
	model = onnx.load(str(path))
	onnx.checker.check_model(model)
	convolutions = [ node for node in model.graph.node if node.op_type == 'Conv' ]
	assert len(convolutions) >= 20
	if key == 'inswapper_128':
		assert model.graph.initializer[-1].name == 'emap' and list(model.graph.initializer[-1].dims) == [ 512, 512 ]
	session = open_session(path)
	inputs, outputs = SIGNATURES[key]
	assert [ item.name for item in session.get_inputs() ] == list(inputs)
	state = numpy.random.RandomState(5)
	feed = { name: state.random_sample([ 1 ] + concrete(shape)[1:]).astype(numpy.float32) for name, shape in inputs.items() }
	results = session.run(None, feed)
	assert [ list(result.shape) for result in results ] == [ [ 1 ] + concrete(shape)[1:] for shape in outputs ]
	assert numpy.all(numpy.isfinite(results[0])) and results[0].min() >= -1 and results[0].max() <= 1
