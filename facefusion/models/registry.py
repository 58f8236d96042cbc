"""Every model file the face path of FaceFusion 3.5.0 uses: where it is hosted and how it is fed.

One ``ModelSpec`` per model, keyed by FaceFusion's own model names (``yolo_face``, ``hyperswap_1a_256``, ...), so
option values map straight onto specs. Facts (files, release tags, templates, sizes, mean/std, vendor and licence)
are those of FaceFusion 3.5.0's model files and their code paths.

Normalisation convention for ``mean`` / ``std``: the model input is ``(pixel / 255 - mean) / std`` per channel,
in the channel order given by ``channel_order``. Upstream writes some of them differently (e.g. retinaface's
``(x - 127.5) / 128`` is mean 0.5, std 128/255 here; yunet's raw 0-255 input is mean 0, std 1/255), so one formula
covers every model. Consumers that follow 3.5.0 literally can ignore these fields; they are here so that batching
and GPU pre-processing code has a single source of truth.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Dict, List, Optional, Sequence, Tuple

from facefusion import choices

Triple = Tuple[float, float, float]

# providers in 3.5.0's order; each lists its base URLs (tried in order) and the path layout under a base
GITHUB_BASE_URLS: Tuple[str, ...] = ('https://github.com',)
GITHUB_PATH = '/facefusion/facefusion-assets/releases/download/{release}/{file_name}'
HUGGINGFACE_BASE_URLS: Tuple[str, ...] = ('https://huggingface.co', 'https://hf-mirror.com')
HUGGINGFACE_PATH = '/facefusion/{release}/resolve/main/{file_name}'
PROVIDER_LAYOUTS: Dict[str, Tuple[Tuple[str, ...], str]] = {
	'github': (GITHUB_BASE_URLS, GITHUB_PATH),
	'huggingface': (HUGGINGFACE_BASE_URLS, HUGGINGFACE_PATH),
}
# a mirror (or a test server) replaces every provider; its layout is flat per release: {base}/{release}/{file}.
# Several bases may be given separated by commas; they are tried in order.
BASE_URL_ENVIRONMENT_VARIABLE = 'FACEFUSION_DOWNLOAD_BASE_URL'

ZERO: Triple = (0.0, 0.0, 0.0)
ONE: Triple = (1.0, 1.0, 1.0)
HALF: Triple = (0.5, 0.5, 0.5)
IMAGENET_MEAN: Triple = (0.485, 0.456, 0.406)
IMAGENET_STD: Triple = (0.229, 0.224, 0.225)
CLIP_MEAN: Triple = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD: Triple = (0.26862954, 0.26130258, 0.27577711)
# retinaface / scrfd take (x - 127.5) / 128
SCRFD_STD: Triple = (128 / 255, 128 / 255, 128 / 255)
# yunet takes raw 0..255 values
RAW_STD: Triple = (1 / 255, 1 / 255, 1 / 255)


@dataclass(frozen=True)
class ModelSpec:
	name: str
	file_name: str
	release: str
	kind: str
	vendor: str
	license: str
	# warp template (a key of face_helper.WARP_TEMPLATES) used to crop the face fed to the model
	template: Optional[str] = None
	# model input size (w, h); for detectors the default of --face-detector-size
	size: Optional[Tuple[int, int]] = None
	mean: Optional[Triple] = None
	std: Optional[Triple] = None
	# channel order of the input tensor: 'BGR' (frames as read) or 'RGB'
	channel_order: Optional[str] = None
	# tensor layout of the image input
	layout: Optional[str] = None
	# face swappers: 3.5.0's model type, the embedding converter they need, their pixel boost choices
	swapper_type: Optional[str] = None
	converter: Optional[str] = None
	pixel_boost_choices: Tuple[str, ...] = ()
	# swappers fed a source image instead of an embedding (blendswap, uniface): how that image is cropped
	source_template: Optional[str] = None
	source_size: Optional[Tuple[int, int]] = None
	# detectors: the --face-detector-size choices
	size_choices: Tuple[str, ...] = ()

	@property
	def stem(self) -> str:
		return PurePosixPath(self.file_name).stem

	@property
	def hash_file_name(self) -> str:
		"""The CRC32 file beside the model: ``scrfd_2.5g.onnx`` -> ``scrfd_2.5g.hash``."""
		return self.stem + '.hash'


def _detector(name: str, file_name: str, release: str, vendor: str, license: str, mean: Triple,
	std: Triple) -> ModelSpec:
	return ModelSpec(
		name=name, file_name=file_name, release=release, kind='face_detector', vendor=vendor,
		license=license, size=(640, 640), mean=mean, std=std, channel_order='BGR', layout='NCHW',
		size_choices=tuple(choices.face_detector_set[name])
	)


def _swapper(name: str, release: str, swapper_type: str, template: str, size: int, mean: Triple, std: Triple,
	vendor: str, license: str, converter: Optional[str] = None, source_template: Optional[str] = None,
	source_size: Optional[int] = None) -> ModelSpec:
	return ModelSpec(
		name=name, file_name=name + '.onnx', release=release, kind='face_swapper', vendor=vendor,
		license=license, template=template, size=(size, size), mean=mean, std=std, channel_order='RGB',
		layout='NCHW', swapper_type=swapper_type, converter=converter,
		pixel_boost_choices=tuple(choices.face_swapper_set[name]), source_template=source_template,
		source_size=(source_size, source_size) if source_size else None
	)


def _enhancer(name: str, template: str, size: int, vendor: str, license: str) -> ModelSpec:
	# every enhancer takes RGB, x / 255, (x - 0.5) / 0.5 and returns -1..1
	return ModelSpec(
		name=name, file_name=name + '.onnx', release='models-3.0.0', kind='face_enhancer', vendor=vendor,
		license=license, template=template, size=(size, size), mean=HALF, std=HALF, channel_order='RGB',
		layout='NCHW'
	)


def _converter(name: str, vendor: str, license: str) -> ModelSpec:
	return ModelSpec(
		name=name, file_name=name + '.onnx', release='models-3.4.0', kind='embedding_converter',
		vendor=vendor, license=license
	)


_SPECS: Tuple[ModelSpec, ...] = (
	# face detectors; retinaface and scrfd share the SCRFD decoding and normalisation
	_detector('retinaface', 'retinaface_10g.onnx', 'models-3.0.0', 'InsightFace', 'Non-Commercial', HALF, SCRFD_STD),
	_detector('scrfd', 'scrfd_2.5g.onnx', 'models-3.0.0', 'InsightFace', 'Non-Commercial', HALF, SCRFD_STD),
	_detector('yolo_face', 'yoloface_8n.onnx', 'models-3.0.0', 'derronqi', 'GPL-3.0', ZERO, ONE),
	_detector('yunet', 'yunet_2023_mar.onnx', 'models-3.4.0', 'OpenCV', 'MIT', ZERO, RAW_STD),

	# face landmarkers; fan_68_5 takes five points, not an image
	ModelSpec(
		name='2dfan4', file_name='2dfan4.onnx', release='models-3.0.0', kind='face_landmarker',
		vendor='breadbread1984', license='MIT', size=(256, 256), mean=ZERO, std=ONE, channel_order='BGR',
		layout='NCHW'
	),
	ModelSpec(
		name='peppa_wutz', file_name='peppa_wutz.onnx', release='models-3.0.0', kind='face_landmarker',
		vendor='Unknown', license='Apache-2.0', size=(256, 256), mean=ZERO, std=ONE, channel_order='BGR',
		layout='NCHW'
	),
	ModelSpec(
		name='fan_68_5', file_name='fan_68_5.onnx', release='models-3.0.0', kind='face_landmarker',
		vendor='FaceFusion', license='OpenRAIL-M', template='ffhq_512'
	),

	# face recognizer: x / 127.5 - 1 in RGB
	ModelSpec(
		name='arcface_w600k_r50', file_name='arcface_w600k_r50.onnx', release='models-3.0.0',
		kind='face_recognizer', vendor='InsightFace', license='Non-Commercial', template='arcface_112_v2',
		size=(112, 112), mean=HALF, std=HALF, channel_order='RGB', layout='NCHW'
	),

	# face classifier: the arcface_112_v2 template scaled to a 224 crop
	ModelSpec(
		name='fairface', file_name='fairface.onnx', release='models-3.0.0', kind='face_classifier',
		vendor='dchen236', license='CC-BY-4.0', template='arcface_112_v2', size=(224, 224),
		mean=IMAGENET_MEAN, std=IMAGENET_STD, channel_order='RGB', layout='NCHW'
	),

	# face occluders: NHWC input
	ModelSpec(
		name='xseg_1', file_name='xseg_1.onnx', release='models-3.1.0', kind='face_occluder',
		vendor='DeepFaceLab', license='GPL-3.0', size=(256, 256), mean=ZERO, std=ONE, channel_order='BGR',
		layout='NHWC'
	),
	ModelSpec(
		name='xseg_2', file_name='xseg_2.onnx', release='models-3.1.0', kind='face_occluder',
		vendor='DeepFaceLab', license='GPL-3.0', size=(256, 256), mean=ZERO, std=ONE, channel_order='BGR',
		layout='NHWC'
	),
	ModelSpec(
		name='xseg_3', file_name='xseg_3.onnx', release='models-3.2.0', kind='face_occluder',
		vendor='DeepFaceLab', license='GPL-3.0', size=(256, 256), mean=ZERO, std=ONE, channel_order='BGR',
		layout='NHWC'
	),

	# face parsers
	ModelSpec(
		name='bisenet_resnet_18', file_name='bisenet_resnet_18.onnx', release='models-3.1.0', kind='face_parser',
		vendor='yakhyo', license='MIT', size=(512, 512), mean=IMAGENET_MEAN, std=IMAGENET_STD,
		channel_order='RGB', layout='NCHW'
	),
	ModelSpec(
		name='bisenet_resnet_34', file_name='bisenet_resnet_34.onnx', release='models-3.0.0', kind='face_parser',
		vendor='yakhyo', license='MIT', size=(512, 512), mean=IMAGENET_MEAN, std=IMAGENET_STD,
		channel_order='RGB', layout='NCHW'
	),

	# content analyser: all three always run; inputs are letterboxed to the model size
	ModelSpec(
		name='nsfw_1', file_name='nsfw_1.onnx', release='models-3.3.0', kind='content_analyser', vendor='EraX',
		license='Apache-2.0', size=(640, 640), mean=ZERO, std=ONE, channel_order='RGB', layout='NCHW'
	),
	ModelSpec(
		name='nsfw_2', file_name='nsfw_2.onnx', release='models-3.3.0', kind='content_analyser',
		vendor='Marqo', license='Apache-2.0', size=(384, 384), mean=HALF, std=HALF, channel_order='RGB',
		layout='NCHW'
	),
	ModelSpec(
		name='nsfw_3', file_name='nsfw_3.onnx', release='models-3.3.0', kind='content_analyser',
		vendor='Freepik', license='MIT', size=(448, 448), mean=CLIP_MEAN, std=CLIP_STD, channel_order='RGB',
		layout='NCHW'
	),

	# face swappers: the target crop is prepared as RGB, /255, (x - mean) / std
	_swapper(
		'blendswap_256', 'models-3.0.0', 'blendswap', 'ffhq_512', 256, ZERO, ONE, 'mapooon', 'Non-Commercial',
		source_template='arcface_112_v2', source_size=112
	),
	_swapper(
		'ghost_1_256', 'models-3.0.0', 'ghost', 'arcface_112_v1', 256, HALF, HALF, 'ai-forever', 'Apache-2.0',
		converter='crossface_ghost'
	),
	_swapper(
		'ghost_2_256', 'models-3.0.0', 'ghost', 'arcface_112_v1', 256, HALF, HALF, 'ai-forever', 'Apache-2.0',
		converter='crossface_ghost'
	),
	_swapper(
		'ghost_3_256', 'models-3.0.0', 'ghost', 'arcface_112_v1', 256, HALF, HALF, 'ai-forever', 'Apache-2.0',
		converter='crossface_ghost'
	),
	_swapper(
		'hififace_unofficial_256', 'models-3.1.0', 'hififace', 'mtcnn_512', 256, HALF, HALF, 'GuijiAI', 'Unknown',
		converter='crossface_hififace'
	),
	_swapper(
		'hyperswap_1a_256', 'models-3.3.0', 'hyperswap', 'arcface_128', 256, HALF, HALF, 'FaceFusion', 'ResearchRAIL'
	),
	_swapper(
		'hyperswap_1b_256', 'models-3.3.0', 'hyperswap', 'arcface_128', 256, HALF, HALF, 'FaceFusion', 'ResearchRAIL'
	),
	_swapper(
		'hyperswap_1c_256', 'models-3.3.0', 'hyperswap', 'arcface_128', 256, HALF, HALF, 'FaceFusion', 'ResearchRAIL'
	),
	_swapper(
		'inswapper_128', 'models-3.0.0', 'inswapper', 'arcface_128', 128, ZERO, ONE, 'InsightFace', 'Non-Commercial'
	),
	_swapper(
		'inswapper_128_fp16', 'models-3.0.0', 'inswapper', 'arcface_128', 128, ZERO, ONE, 'InsightFace',
		'Non-Commercial'
	),
	_swapper(
		'simswap_256', 'models-3.0.0', 'simswap', 'arcface_112_v1', 256, IMAGENET_MEAN, IMAGENET_STD, 'neuralchen',
		'Non-Commercial', converter='crossface_simswap'
	),
	_swapper(
		'simswap_unofficial_512', 'models-3.0.0', 'simswap', 'arcface_112_v1', 512, ZERO, ONE, 'neuralchen',
		'Non-Commercial', converter='crossface_simswap'
	),
	_swapper(
		'uniface_256', 'models-3.0.0', 'uniface', 'ffhq_512', 256, HALF, HALF, 'xc-csc101', 'Unknown',
		source_template='ffhq_512', source_size=256
	),

	# embedding converters ([1,512] -> [1,512]). 3.5.0 gives them no metadata of their own: they sit in their
	# swapper's model set under that swapper's vendor/licence block, so the licence here is the paired swapper's.
	_converter('crossface_ghost', 'FaceFusion', 'Apache-2.0'),
	_converter('crossface_hififace', 'FaceFusion', 'Unknown'),
	_converter('crossface_simswap', 'FaceFusion', 'Non-Commercial'),

	# face enhancers (--processors face_enhancer); codeformer alone has a `weight` input
	_enhancer('codeformer', 'ffhq_512', 512, 'sczhou', 'S-Lab-1.0'),
	_enhancer('gfpgan_1.2', 'ffhq_512', 512, 'TencentARC', 'Apache-2.0'),
	_enhancer('gfpgan_1.3', 'ffhq_512', 512, 'TencentARC', 'Apache-2.0'),
	_enhancer('gfpgan_1.4', 'ffhq_512', 512, 'TencentARC', 'Apache-2.0'),
	_enhancer('gpen_bfr_256', 'arcface_128', 256, 'yangxy', 'Non-Commercial'),
	_enhancer('gpen_bfr_512', 'ffhq_512', 512, 'yangxy', 'Non-Commercial'),
	_enhancer('gpen_bfr_1024', 'ffhq_512', 1024, 'yangxy', 'Non-Commercial'),
	_enhancer('gpen_bfr_2048', 'ffhq_512', 2048, 'yangxy', 'Non-Commercial'),
	_enhancer('restoreformer_plus_plus', 'ffhq_512', 512, 'wzhouxiff', 'Apache-2.0'),
)

_BY_NAME: Dict[str, ModelSpec] = {spec.name: spec for spec in _SPECS}


def get_model(name: str) -> ModelSpec:
	"""The spec of a model by its FaceFusion name; KeyError (naming the model) for an unknown one."""
	spec = _BY_NAME.get(name)
	if spec is None:
		raise KeyError('unknown model: ' + name)
	return spec


def all_models() -> List[ModelSpec]:
	return list(_SPECS)


def models_for_scope(scope: str) -> List[ModelSpec]:
	"""The models ``force-download --download-scope`` fetches.

	In 3.5.0 only deep_swapper's model set depends on the scope; deep_swapper is not on this engine's face path,
	so 'lite' and 'full' are the same set here: every model in the registry (all detectors, landmarkers, maskers,
	swappers, converters and enhancers), the way 3.5.0's force-download walks every module regardless of the options.
	"""
	if scope not in choices.download_scopes:
		raise ValueError('unknown download scope: ' + scope)
	return all_models()


def mirror_base_urls() -> List[str]:
	"""Base URLs from FACEFUSION_DOWNLOAD_BASE_URL (comma-separated), trailing slashes removed; empty when unset."""
	value = os.environ.get(BASE_URL_ENVIRONMENT_VARIABLE, '')
	return [base.strip().rstrip('/') for base in value.split(',') if base.strip()]


def download_urls(spec: ModelSpec, providers: Sequence[str], file_name: Optional[str] = None) -> List[str]:
	"""Every URL to try for the model file (or for ``file_name`` of the same release, e.g. its .hash), in order.

	Provider order is the caller's (``--download-providers``); within a provider, its base URLs in order. When
	FACEFUSION_DOWNLOAD_BASE_URL is set it replaces all providers (offline mirrors, tests).
	"""
	target = file_name or spec.file_name
	mirrors = mirror_base_urls()
	if mirrors:
		return [base + '/' + spec.release + '/' + target for base in mirrors]
	urls: List[str] = []
	for provider in providers:
		if provider not in PROVIDER_LAYOUTS:
			raise ValueError('unknown download provider: ' + provider)
		base_urls, path = PROVIDER_LAYOUTS[provider]
		for base_url in base_urls:
			url = base_url + path.format(release=spec.release, file_name=target)
			if url not in urls:
				urls.append(url)
	return urls
