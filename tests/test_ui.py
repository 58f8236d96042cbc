"""The UI: its event handlers without a browser (real stand-in models, the real YuNet, real ffmpeg), and the whole UI
in headless Chromium (Debian's chromium driven by Playwright): uploads, Start, the output, Stop, a screenshot."""
from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Iterator

import cv2
import numpy as np
import pytest

from facefusion.cli import program
from facefusion.uis import options
from facefusion.uis.session import UISession, describe_status
from facefusion.uis.uploads import UploadFolder

from conftest import PROJECT_DIR, cli_environment

# a mark, not a module-level skip: a run that selects none of these tests (pytest -m gpu) reports no skip for them
pytestmark = pytest.mark.skipif(importlib.util.find_spec('gradio') is None, reason='the UI needs gradio (pip install -r requirements.txt)')

CHROMIUM = '/usr/bin/chromium'
# the screenshot goes into the repository only when asked for (FACEFUSION_UI_SCREENSHOT=1): a test run leaves the tree as it was
SCREENSHOT_PATH = PROJECT_DIR / 'benchmarks' / 'results' / 'ui.png' if os.environ.get('FACEFUSION_UI_SCREENSHOT') else Path(tempfile.gettempdir()) / 'facefusion-ui.png'


@pytest.fixture
def session(standin_models_dir: Path, tmp_path: Path) -> Iterator[UISession]:
	config = program.build_config(['run', f'--models-path={standin_models_dir}', '--face-detector-model', 'yunet', f'--temp-path={tmp_path}', '--execution-thread-count', '2'])
	ui_session = UISession(config, UploadFolder.create(config.temp_path))
	yield ui_session
	ui_session.close()


def upload(session: UISession, path: Path) -> str:
	return shutil.copy(path, session.uploads.path)


def face_changed(target: np.ndarray, output: np.ndarray) -> float:
	return float(np.abs(target.astype(np.int16) - output.astype(np.int16)).mean())


def test_controls_come_from_the_parser() -> None:
	groups = {group.title: group for group in options.option_groups()}
	for title in ('face detector', 'face landmarker', 'face selector', 'face masker', 'output creation', 'execution', 'memory', 'frame extraction', 'face tracker', 'quality monitor'):
		assert title in groups
	specs = {spec.dest: spec for spec in options.all_specs(list(groups.values()))}
	# the engine's toggles, whatever their kind
	assert specs['face_swapper_batching'].kind == 'choice' and specs['face_swapper_use_trt'].kind == 'bool'
	assert specs['face_swapper_trt_max_batch'].kind == 'slider' and specs['face_swapper_trt_max_batch'].high == 64
	assert specs['face_tracker_detect_interval'].kind == 'slider' and specs['temporal_smoothing_beta'].kind == 'slider'
	assert specs['face_swapper_blend_mode'].kind == 'choice' and specs['face_swapper_linear_light'].kind == 'bool'
	assert specs['quality_report'].kind == 'path' and specs['processors'].kind == 'multi'
	# every step option of the CLI has a control (paths come from the uploads)
	step_parser = program.create_program().commands['headless-run']
	missing = [action.dest for group in step_parser._action_groups if group.title in options.UI_GROUPS for action in group._group_actions if action.dest not in specs]
	assert missing == []


def test_values_become_the_cli_config(session: UISession) -> None:
	target = upload(session, PROJECT_DIR / 'tests' / 'data' / 'biden.jpg')
	values = session.initial_values()
	values.update(face_swapper_batching='never', face_tracker_detect_interval=3, face_mask_padding='1 2', face_selector_age_start=None, quality_report=True, face_swapper_use_trt=True)
	request = session.build_request(values, [], target, str(session.uploads.path))
	assert request.config.face_swapper_batching == 'never' and request.config.face_tracker_detect_interval == 3
	assert request.config.face_mask_padding == (1, 2, 1, 2) and request.config.face_swapper_use_trt
	assert request.config.quality_report == os.path.splitext(request.output_path)[0] + '.quality.csv'
	assert request.config.face_detector_model == 'yunet'


def test_bad_values_give_the_cli_message(session: UISession) -> None:
	target = upload(session, PROJECT_DIR / 'tests' / 'data' / 'biden.jpg')
	values = dict(session.initial_values(), face_swapper_model='blendswap_256', face_swapper_pixel_boost='384x384')
	result = session.start(values, [], target, str(session.uploads.path))
	assert not result.started and 'cannot work with blendswap_256' in result.message
	assert result.message.startswith('[FACEFUSION]') and '\n' not in result.message
	assert not session.start(session.initial_values(), [], None, None).started
	# a file outside the uploads is refused: the UI reads nothing else
	assert 'only its uploads' in session.start(session.initial_values(), [], str(PROJECT_DIR / 'tests' / 'data' / 'biden.jpg'), None).message
	corrupt = session.uploads.path / 'corrupt.jpg'
	corrupt.write_text('not an image')
	frame, message = session.preview(session.initial_values(), [], str(corrupt), 0)
	assert frame is None and message


def test_preview_and_gallery(session: UISession) -> None:
	source = upload(session, PROJECT_DIR / 'tests' / 'data' / 'obama.jpg')
	target = upload(session, PROJECT_DIR / 'tests' / 'data' / 'obama_and_biden.jpg')
	values = dict(session.initial_values(), face_selector_mode='many')
	frame, message = session.preview(values, [source], target, 0)
	assert message == '' and frame is not None
	target_rgb = cv2.cvtColor(cv2.imread(target), cv2.COLOR_BGR2RGB)
	assert frame.shape == target_rgb.shape and face_changed(target_rgb, frame) > 0.5
	faces, message = session.gallery(values, target, 0)
	assert message == '' and len(faces) >= 2


def test_image_job_and_a_second_start_refused(session: UISession) -> None:
	source = upload(session, PROJECT_DIR / 'tests' / 'data' / 'obama.jpg')
	target = upload(session, PROJECT_DIR / 'tests' / 'data' / 'biden.jpg')
	values = session.initial_values()
	assert session.start(values, [source], target, str(session.uploads.path)).started
	refused = session.start(values, [source], target, str(session.uploads.path))
	assert not refused.started and 'already running' in refused.message
	assert session.runner.wait(60)
	state = session.status()
	assert state.exit_code == 0 and os.path.isfile(state.output_path)
	assert describe_status(state) == f'done: {state.output_path}'
	assert face_changed(cv2.imread(target), cv2.imread(state.output_path)) > 0.1


def test_stop_leaves_nothing(session: UISession, tmp_path_factory: pytest.TempPathFactory) -> None:
	from facefusion.testing.synthetic_video import make_synthetic_video
	clip = make_synthetic_video(session.uploads.path / 'long.mp4', frame_count=400, width=320, height=240)
	source = upload(session, PROJECT_DIR / 'tests' / 'data' / 'obama.jpg')
	output_folder = tmp_path_factory.mktemp('ui_output')
	values = dict(session.initial_values(), face_selector_mode='many', face_tracker='none')
	assert session.start(values, [source], str(clip.path), str(output_folder)).started
	deadline = time.monotonic() + 60
	while session.status().progress.frames < 5 and time.monotonic() < deadline and session.runner.is_running():
		time.sleep(0.1)
	state = session.status()
	assert state.running and state.progress.total == 400 and state.progress.fps > 0
	stopped_at = time.monotonic()
	session.stop()
	# within a second or two, cleanup included
	assert time.monotonic() - stopped_at < 3
	state = session.status()
	assert state.exit_code == 143 and describe_status(state) == 'stopped; no partial output was written'
	assert list(output_folder.iterdir()) == []


# ---- the browser ---------------------------------------------------------------------------------------------------

def free_port() -> int:
	with socket.socket() as probe:
		probe.bind(('127.0.0.1', 0))
		return probe.getsockname()[1]


def wait_for_server(port: int, process: subprocess.Popen, timeout: float) -> None:
	deadline = time.monotonic() + timeout
	while time.monotonic() < deadline:
		if process.poll() is not None:
			raise AssertionError(f'the UI exited with {process.returncode}')
		try:
			with socket.create_connection(('127.0.0.1', port), timeout=0.5):
				return
		except OSError:
			time.sleep(0.2)
	raise AssertionError('the UI did not start')


def wait_for_text(page: Any, selector: str, predicate: Any, timeout: float) -> str:
	deadline = time.monotonic() + timeout
	text = ''
	while time.monotonic() < deadline:
		text = page.locator(selector).input_value()
		if predicate(text):
			return text
		time.sleep(0.2)
	raise AssertionError(f'{selector} stayed {text!r}')


def wait_for_value(page: Any, selector: str, expected: str, timeout: float) -> None:
	wait_for_text(page, selector, lambda text: text == expected, timeout)


def choose(page: Any, selector: str, option: str) -> None:
	"""Pick an option of a Gradio dropdown as a user does: open it, click the entry."""
	page.locator(f'{selector} input').click()
	page.get_by_role('option', name=option, exact=True).click()
	wait_for_value(page, f'{selector} input', option, 10)


@pytest.fixture
def ui_server(standin_models_dir: Path, tmp_path: Path) -> Iterator[Dict[str, Any]]:
	port = free_port()
	environment = cli_environment(standin_models_dir)
	environment.update(GRADIO_SERVER_PORT=str(port), GRADIO_SERVER_NAME='127.0.0.1')
	temp_path = tmp_path / 'temp'
	output_folder = tmp_path / 'out'
	temp_path.mkdir()
	output_folder.mkdir()
	process = subprocess.Popen(
		[sys.executable, str(PROJECT_DIR / 'facefusion.py'), 'run', '--face-detector-model', 'yunet', f'--temp-path={temp_path}', '--execution-thread-count', '2'],
		cwd=str(tmp_path), env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
	)
	try:
		wait_for_server(port, process, 60)
		yield {'url': f'http://127.0.0.1:{port}', 'temp_path': temp_path, 'output_folder': output_folder, 'process': process}
	finally:
		process.terminate()
		process.wait(20)
	# uploads removed on exit
	assert list((temp_path / 'facefusion').glob('ui.*')) == []


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"the browser test needs Debian's chromium at {CHROMIUM} (apt-get install -y chromium)")
def test_ui_in_a_real_browser(ui_server: Dict[str, Any], tmp_path: Path) -> None:
	playwright_api = pytest.importorskip('playwright.sync_api', reason='the browser test needs playwright (pip install -r requirements-test.txt)')
	from facefusion.testing.synthetic_video import make_synthetic_video
	from facefusion.video.probe import probe_audio
	short_clip = make_synthetic_video(tmp_path / 'short.mp4', frame_count=12, audio=True)
	long_clip = make_synthetic_video(tmp_path / 'long.mp4', frame_count=400)
	output_folder = ui_server['output_folder']
	data = PROJECT_DIR / 'tests' / 'data'
	with playwright_api.sync_playwright() as playwright:
		browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=['--no-sandbox'])
		page = browser.new_page(viewport={'width': 1600, 'height': 1300})
		page.goto(ui_server['url'])
		page.locator('#output-folder textarea').fill(str(output_folder))
		page.locator('#source-file input[type=file]').set_input_files(str(data / 'obama.jpg'))
		page.locator('#target-file input[type=file]').set_input_files(str(data / 'obama_and_biden.jpg'))
		# the gallery picks the reference face: its index becomes --reference-face-position
		page.wait_for_selector('#reference-gallery img', timeout=30000)
		page.locator('#reference-gallery button.thumbnail-item').nth(1).click()
		wait_for_value(page, '#option-reference-face-position input', '1', 10)
		# an engine toggle: 3.5.0's paste
		choose(page, '#option-face-swapper-blend-mode', 'feather')
		page.wait_for_selector('#preview-image img', state='attached', timeout=30000)
		page.locator('#start-button').click()
		status = wait_for_text(page, '#job-status textarea', lambda text: text.startswith('done') or text.startswith('[FACEFUSION]'), 120)
		assert status.startswith('done'), status
		image_path = Path(page.locator('#output-path textarea').input_value())
		assert image_path.parent == output_folder and image_path.is_file()
		assert face_changed(cv2.imread(str(data / 'obama_and_biden.jpg')), cv2.imread(str(image_path))) > 0.1
		page.wait_for_selector('#output-image img', state='attached', timeout=10000)

		# a short video: faces changed, audio kept, a playable video shown
		choose(page, '#option-face-selector-mode', 'many')
		page.locator('#target-file button[aria-label="Clear"]').first.click()
		page.locator('#target-file input[type=file]').set_input_files(str(short_clip.path))
		# Start only once the upload has landed, or it would run the previous target (the image) again; on a loaded
		# machine the upload waits in Gradio's queue behind the preview that the option change above redraws
		# (the file row names the file in its aria-label; its text is the stem and the extension in two spans)
		page.wait_for_selector('#target-file td.filename[aria-label="short.mp4"]', timeout=150000)
		page.locator('#start-button').click()
		status = wait_for_text(page, '#job-status textarea', lambda text: (text.startswith('done') and text.endswith('.mp4')) or text.startswith('[FACEFUSION]'), 120)
		assert status.startswith('done'), status
		wait_for_text(page, '#output-path textarea', lambda text: text.endswith('.mp4'), 10)
		video_path = Path(page.locator('#output-path textarea').input_value())
		assert video_path.is_file()
		audio = probe_audio(str(video_path))
		assert audio.codec and audio.duration and audio.duration > 0.3
		first_in = cv2.VideoCapture(str(short_clip.path)).read()[1]
		first_out = cv2.VideoCapture(str(video_path)).read()[1]
		assert face_changed(first_in, first_out) > 0.1
		page.wait_for_selector('#output-video video', state='attached', timeout=10000)
		# the preview redraws after the option change above; let it settle so the picture shows the finished page
		page.wait_for_timeout(1500)
		page.screenshot(path=str(SCREENSHOT_PATH), full_page=True)

		# a longer run, stopped: nothing partial left
		page.locator('#target-file button[aria-label="Clear"]').first.click()
		page.locator('#target-file input[type=file]').set_input_files(str(long_clip.path))
		# Start only once the upload has landed, or it would run the previous target again
		page.wait_for_selector('#target-file td.filename[aria-label="long.mp4"]', timeout=150000)
		page.locator('#start-button').click()
		wait_for_text(page, '#job-status textarea', lambda text: 'frames' in text, 120)
		page.locator('#start-button').click()
		page.wait_for_selector('#job-message :text("already running")', timeout=10000)
		page.locator('#stop-button').click()
		wait_for_text(page, '#job-status textarea', lambda text: text.startswith('stopped'), 30)
		left = sorted(path.name for path in output_folder.iterdir())
		assert left == sorted([image_path.name, video_path.name])
		browser.close()
