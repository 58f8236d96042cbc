"""`python facefusion.py run`: the UI's server on 127.0.0.1:7860 (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT win), no
public share link. Uploads go to a folder of its own under --temp-path (Gradio's GRADIO_TEMP_DIR), removed on exit
with any job still running stopped first."""
from __future__ import annotations

import importlib
import importlib.util
import os
import time

from facefusion import logger
from facefusion.config import RunConfig
from facefusion.errors import FaceFusionError
from facefusion.uis.uploads import UploadFolder

DEFAULT_SERVER_NAME = '127.0.0.1'
DEFAULT_SERVER_PORT = 7860
GRADIO_MISSING_MESSAGE = 'the UI needs Gradio: pip install -r requirements.txt (or use headless-run)'


def server_address() -> tuple:
	name = os.environ.get('GRADIO_SERVER_NAME') or DEFAULT_SERVER_NAME
	port_text = os.environ.get('GRADIO_SERVER_PORT') or str(DEFAULT_SERVER_PORT)
	if not port_text.isdigit():
		raise FaceFusionError(f'GRADIO_SERVER_PORT must be a port number, not {port_text!r}', exit_code=2)
	return name, int(port_text)


def launch(config: RunConfig) -> int:
	"""Serve the UI until interrupted (Ctrl-C, SIGTERM); the cleanup runs either way."""
	server_name, server_port = server_address()
	if importlib.util.find_spec('gradio') is None:
		raise FaceFusionError(GRADIO_MISSING_MESSAGE)
	if config.ui_layouts != ['default']:
		logger.get_logger().warning('this build has the default UI layout only; showing it')
	uploads = UploadFolder.create(config.temp_path)
	# before gradio is imported: its uploads and cache go into our folder, and it reports nothing home
	os.environ['GRADIO_TEMP_DIR'] = str(uploads.path)
	os.environ.setdefault('GRADIO_ANALYTICS_ENABLED', 'False')
	from facefusion.uis.session import UISession
	session = UISession(config, uploads)
	blocks = None
	try:
		layout = importlib.import_module('facefusion.uis.layouts.default')
		blocks = layout.create(session)
		blocks.queue(default_concurrency_limit=4)
		blocks.launch(
			server_name=server_name, server_port=server_port, share=False, inbrowser=config.open_browser,
			allowed_paths=layout.allowed_paths(session), prevent_thread_lock=True, show_api=False, quiet=True
		)
		logger.get_logger().info(f'UI running on http://{server_name}:{server_port}')
		while True:
			time.sleep(0.5)
	finally:
		session.close()
		if blocks is not None:
			blocks.close()
