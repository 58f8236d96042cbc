"""This engine, copied into an upstream checkout under another import name.

Both projects call their package `facefusion`, and upstream's must keep the name (its code imports itself as
`facefusion.*` everywhere). So the engine goes in as `facefusion_engine/`, next to upstream's package: its absolute
imports and dotted module names are rewritten from `facefusion` to `facefusion_engine` as the files are copied. The
two packages then live side by side in one process without touching each other's modules, loggers or caches.
"""
import hashlib
import os
import re
import shutil
from typing import Dict, List

ENGINE_NAME = 'facefusion_engine'
BRIDGE_FOLDER = 'upstream_bridge'
LOGGER_LINE = re.compile(r"^LOGGER_NAME = 'facefusion'$", re.MULTILINE)
SKIPPED_FOLDERS = {'__pycache__'}


def engine_modules(package_dir: str) -> List[str]:
	"""The engine's top-level module and subpackage names (what `facefusion.<name>` may refer to)."""
	names = []
	for entry in os.listdir(package_dir):
		if entry.endswith('.py'):
			names.append(entry[:-3])
		elif os.path.isdir(os.path.join(package_dir, entry)) and entry not in SKIPPED_FOLDERS:
			names.append(entry)
	return sorted(name for name in names if name != '__init__')


def rewrite_source(text: str, module_names: List[str]) -> str:
	"""`from facefusion import x`, `import facefusion.x`, `'facefusion.x...'` -> the same under facefusion_engine."""
	text = re.sub(r'(?m)^(\s*)from facefusion import ', r'\1from ' + ENGINE_NAME + ' import ', text)
	dotted = r'(?<![\w.])facefusion(?=\.(?:' + '|'.join(re.escape(name) for name in module_names) + r')\b)'
	text = re.sub(dotted, ENGINE_NAME, text)
	text = re.sub(r'(?m)^(\s*)import facefusion$', r'\1import ' + ENGINE_NAME, text)
	# the engine's logger gets its own name: upstream configures the `facefusion` logger for itself
	return LOGGER_LINE.sub("LOGGER_NAME = '" + ENGINE_NAME + "'", text)


def vendored_files(engine_package: str, bridge_dir: str) -> Dict[str, bytes]:
	"""Relative path under facefusion_engine/ -> content, for the engine package and the bridge."""
	module_names = engine_modules(engine_package)
	files: Dict[str, bytes] = {}
	# the bridge is written against both names already (upstream's facefusion, the engine's facefusion_engine)
	for source_root, prefix, rewrite in ((engine_package, '', True), (bridge_dir, BRIDGE_FOLDER + '/', False)):
		for folder, subfolders, file_names in os.walk(source_root):
			subfolders[:] = sorted(name for name in subfolders if name not in SKIPPED_FOLDERS)
			for file_name in sorted(file_names):
				if file_name.endswith(('.pyc', '.pyo')):
					continue
				path = os.path.join(folder, file_name)
				relative = prefix + os.path.relpath(path, source_root).replace(os.sep, '/')
				with open(path, 'rb') as handle:
					content = handle.read()
				if rewrite and file_name.endswith('.py'):
					content = rewrite_source(content.decode('utf-8'), module_names).encode('utf-8')
				files[relative] = content
	return files


def digest_of(files: Dict[str, bytes]) -> str:
	digest = hashlib.sha256()
	for relative in sorted(files):
		digest.update(relative.encode() + b'\0' + files[relative] + b'\0')
	return digest.hexdigest()


def write_vendored(target_dir: str, files: Dict[str, bytes]) -> None:
	if os.path.isdir(target_dir):
		shutil.rmtree(target_dir)
	for relative, content in files.items():
		path = os.path.join(target_dir, relative)
		os.makedirs(os.path.dirname(path), exist_ok=True)
		with open(path, 'wb') as handle:
			handle.write(content)


def read_tree(target_dir: str) -> Dict[str, bytes]:
	files: Dict[str, bytes] = {}
	for folder, subfolders, file_names in os.walk(target_dir):
		subfolders[:] = [name for name in subfolders if name not in SKIPPED_FOLDERS]
		for file_name in file_names:
			if file_name.endswith(('.pyc', '.pyo')):
				continue
			path = os.path.join(folder, file_name)
			with open(path, 'rb') as handle:
				files[os.path.relpath(path, target_dir).replace(os.sep, '/')] = handle.read()
	return files
