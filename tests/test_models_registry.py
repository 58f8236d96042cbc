"""The model registry: every model the 3.5.0 face path uses, with 3.5.0's files, releases and input facts."""
from __future__ import annotations

import dataclasses

import pytest

from facefusion import choices
from facefusion.inference.session import STAGE_OF_KIND
from facefusion.models import registry
from facefusion.models.registry import ModelSpec, all_models, download_urls, get_model

GITHUB = 'https://github.com/facefusion/facefusion-assets/releases/download/'


@pytest.fixture(autouse=True)
def no_mirror(monkeypatch: pytest.MonkeyPatch) -> None:
	monkeypatch.delenv(registry.BASE_URL_ENVIRONMENT_VARIABLE, raising=False)


def test_every_swapper_choice_has_a_spec() -> None:
	for name in choices.face_swapper_models:
		spec = get_model(name)
		assert spec.kind == 'face_swapper'
		assert spec.file_name == name + '.onnx'
		assert spec.pixel_boost_choices == tuple(choices.face_swapper_set[name])
	assert {spec.name for spec in all_models() if spec.kind == 'face_swapper'} == set(choices.face_swapper_models)


HALF = (0.5, 0.5, 0.5)


@pytest.mark.parametrize('name, swapper_type, template, size, mean, std, release, converter', [
	('blendswap_256', 'blendswap', 'ffhq_512', 256, (0, 0, 0), (1, 1, 1), 'models-3.0.0', None),
	('ghost_1_256', 'ghost', 'arcface_112_v1', 256, HALF, HALF, 'models-3.0.0', 'crossface_ghost'),
	('ghost_2_256', 'ghost', 'arcface_112_v1', 256, HALF, HALF, 'models-3.0.0', 'crossface_ghost'),
	('ghost_3_256', 'ghost', 'arcface_112_v1', 256, HALF, HALF, 'models-3.0.0', 'crossface_ghost'),
	('hififace_unofficial_256', 'hififace', 'mtcnn_512', 256, HALF, HALF, 'models-3.1.0',
		'crossface_hififace'),
	('hyperswap_1a_256', 'hyperswap', 'arcface_128', 256, HALF, HALF, 'models-3.3.0', None),
	('hyperswap_1b_256', 'hyperswap', 'arcface_128', 256, HALF, HALF, 'models-3.3.0', None),
	('hyperswap_1c_256', 'hyperswap', 'arcface_128', 256, HALF, HALF, 'models-3.3.0', None),
	('inswapper_128', 'inswapper', 'arcface_128', 128, (0, 0, 0), (1, 1, 1), 'models-3.0.0', None),
	('inswapper_128_fp16', 'inswapper', 'arcface_128', 128, (0, 0, 0), (1, 1, 1), 'models-3.0.0', None),
	('simswap_256', 'simswap', 'arcface_112_v1', 256, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), 'models-3.0.0',
		'crossface_simswap'),
	('simswap_unofficial_512', 'simswap', 'arcface_112_v1', 512, (0, 0, 0), (1, 1, 1), 'models-3.0.0',
		'crossface_simswap'),
	('uniface_256', 'uniface', 'ffhq_512', 256, HALF, HALF, 'models-3.0.0', None),
])
def test_swapper_table(name: str, swapper_type: str, template: str, size: int, mean: tuple, std: tuple, release: str,
	converter: str) -> None:
	spec = get_model(name)
	assert (spec.swapper_type, spec.template, spec.size, spec.release, spec.converter) == \
		(swapper_type, template, (size, size), release, converter)
	assert spec.mean == pytest.approx(mean)
	assert spec.std == pytest.approx(std)


def test_image_source_swappers() -> None:
	assert (get_model('blendswap_256').source_template, get_model('blendswap_256').source_size) == \
		('arcface_112_v2', (112, 112))
	assert (get_model('uniface_256').source_template, get_model('uniface_256').source_size) == ('ffhq_512', (256, 256))


def test_converters_exist_for_ghost_hififace_simswap() -> None:
	for name in ('crossface_ghost', 'crossface_hififace', 'crossface_simswap'):
		spec = get_model(name)
		assert spec.kind == 'embedding_converter'
		assert spec.release == 'models-3.4.0'
		assert spec.file_name == name + '.onnx'
	for spec in (spec for spec in all_models() if spec.kind == 'face_swapper'):
		if spec.swapper_type in ('ghost', 'hififace', 'simswap'):
			assert get_model(spec.converter).kind == 'embedding_converter'
		else:
			assert spec.converter is None


@pytest.mark.parametrize('name, file_name, release, kind', [
	('yolo_face', 'yoloface_8n.onnx', 'models-3.0.0', 'face_detector'),
	('retinaface', 'retinaface_10g.onnx', 'models-3.0.0', 'face_detector'),
	('scrfd', 'scrfd_2.5g.onnx', 'models-3.0.0', 'face_detector'),
	('yunet', 'yunet_2023_mar.onnx', 'models-3.4.0', 'face_detector'),
	('2dfan4', '2dfan4.onnx', 'models-3.0.0', 'face_landmarker'),
	('peppa_wutz', 'peppa_wutz.onnx', 'models-3.0.0', 'face_landmarker'),
	('fan_68_5', 'fan_68_5.onnx', 'models-3.0.0', 'face_landmarker'),
	('arcface_w600k_r50', 'arcface_w600k_r50.onnx', 'models-3.0.0', 'face_recognizer'),
	('fairface', 'fairface.onnx', 'models-3.0.0', 'face_classifier'),
	('xseg_1', 'xseg_1.onnx', 'models-3.1.0', 'face_occluder'),
	('xseg_2', 'xseg_2.onnx', 'models-3.1.0', 'face_occluder'),
	('xseg_3', 'xseg_3.onnx', 'models-3.2.0', 'face_occluder'),
	('bisenet_resnet_34', 'bisenet_resnet_34.onnx', 'models-3.0.0', 'face_parser'),
	('bisenet_resnet_18', 'bisenet_resnet_18.onnx', 'models-3.1.0', 'face_parser'),
	('nsfw_1', 'nsfw_1.onnx', 'models-3.3.0', 'content_analyser'),
	('nsfw_2', 'nsfw_2.onnx', 'models-3.3.0', 'content_analyser'),
	('nsfw_3', 'nsfw_3.onnx', 'models-3.3.0', 'content_analyser'),
])
def test_analysis_models(name: str, file_name: str, release: str, kind: str) -> None:
	spec = get_model(name)
	assert (spec.file_name, spec.release, spec.kind) == (file_name, release, kind)
	assert spec.vendor and spec.license


def test_option_choices_are_covered() -> None:
	for names in (choices.face_detector_models, choices.face_landmarker_models, choices.face_occluder_models,
		choices.face_parser_models):
		for name in names:
			if name != 'many':
				assert get_model(name)
	assert get_model('scrfd').size_choices == tuple(choices.face_detector_set['scrfd'])


def test_input_facts() -> None:
	arcface = get_model('arcface_w600k_r50')
	assert (arcface.template, arcface.size, arcface.mean, arcface.std) == ('arcface_112_v2', (112, 112), HALF, HALF)
	fairface = get_model('fairface')
	assert (fairface.template, fairface.size, fairface.mean, fairface.std) == \
		('arcface_112_v2', (224, 224), (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
	assert [get_model(name).size for name in ('nsfw_1', 'nsfw_2', 'nsfw_3')] == [(640, 640), (384, 384), (448, 448)]
	assert get_model('nsfw_2').mean == (0.5, 0.5, 0.5)
	assert get_model('nsfw_3').mean == pytest.approx((0.48145466, 0.4578275, 0.40821073))
	assert get_model('nsfw_3').std == pytest.approx((0.26862954, 0.26130258, 0.27577711))
	assert get_model('xseg_1').layout == 'NHWC'
	# retinaface's (x - 127.5) / 128 expressed as (x / 255 - mean) / std
	retinaface = get_model('retinaface')
	assert (200 / 255 - retinaface.mean[0]) / retinaface.std[0] == pytest.approx((200 - 127.5) / 128)


def test_metadata() -> None:
	assert (get_model('yolo_face').vendor, get_model('yolo_face').license) == ('derronqi', 'GPL-3.0')
	assert (get_model('yunet').vendor, get_model('yunet').license) == ('OpenCV', 'MIT')
	hyperswap = get_model('hyperswap_1a_256')
	assert (hyperswap.vendor, hyperswap.license) == ('FaceFusion', 'ResearchRAIL')
	assert get_model('inswapper_128').license == 'Non-Commercial'
	assert get_model('fan_68_5').license == 'OpenRAIL-M'


def test_lookup() -> None:
	with pytest.raises(KeyError):
		get_model('no_such_model')
	# every kind is one the benchmark's stage breakdown knows
	assert {spec.kind for spec in all_models()} == set(STAGE_OF_KIND)
	names = [spec.name for spec in all_models()]
	assert len(names) == len(set(names)) == 42
	assert len({spec.file_name for spec in all_models()}) == 42
	with pytest.raises(dataclasses.FrozenInstanceError):
		get_model('yolo_face').release = 'x'  # type: ignore[misc]
	assert isinstance(get_model('yolo_face'), ModelSpec)


def test_hash_file_name() -> None:
	assert get_model('scrfd').hash_file_name == 'scrfd_2.5g.hash'
	assert get_model('yolo_face').hash_file_name == 'yoloface_8n.hash'


def test_download_urls_in_provider_order() -> None:
	spec = get_model('hyperswap_1a_256')
	assert download_urls(spec, ['github', 'huggingface']) == [
		GITHUB + 'models-3.3.0/hyperswap_1a_256.onnx',
		'https://huggingface.co/facefusion/models-3.3.0/resolve/main/hyperswap_1a_256.onnx',
		'https://hf-mirror.com/facefusion/models-3.3.0/resolve/main/hyperswap_1a_256.onnx',
	]
	assert download_urls(spec, ['huggingface', 'github'])[-1] == GITHUB + 'models-3.3.0/hyperswap_1a_256.onnx'
	assert download_urls(spec, ['github'], spec.hash_file_name) == [GITHUB + 'models-3.3.0/hyperswap_1a_256.hash']
	assert download_urls(spec, []) == []
	with pytest.raises(ValueError):
		download_urls(spec, ['ftp'])


def test_download_base_url_override(monkeypatch: pytest.MonkeyPatch) -> None:
	spec = get_model('xseg_3')
	monkeypatch.setenv(registry.BASE_URL_ENVIRONMENT_VARIABLE, 'http://127.0.0.1:8000/mirror/')
	assert download_urls(spec, ['github', 'huggingface']) == ['http://127.0.0.1:8000/mirror/models-3.2.0/xseg_3.onnx']
	monkeypatch.setenv(registry.BASE_URL_ENVIRONMENT_VARIABLE, 'http://a.test, http://b.test')
	assert download_urls(spec, [], 'xseg_3.hash') == ['http://a.test/models-3.2.0/xseg_3.hash',
		'http://b.test/models-3.2.0/xseg_3.hash']


def test_scopes() -> None:
	assert registry.models_for_scope('lite') == registry.models_for_scope('full') == all_models()
	with pytest.raises(ValueError):
		registry.models_for_scope('huge')
