#!/usr/bin/env python3
"""Patch an upstream FaceFusion 3.5.0 checkout with this engine's batched swapper and streaming video pipeline.

	python patches/apply.py UPSTREAM_DIR            apply (again: only what changed; a second run does nothing)
	python patches/apply.py UPSTREAM_DIR --check    say what applying would do, change nothing
	python patches/apply.py UPSTREAM_DIR --revert   give back the original files byte for byte

The originals of the files the patch changes are kept under UPSTREAM_DIR/.facefusion-engine-patch/, with a manifest
of what it added (the engine, vendored as facefusion_engine/); --revert puts them back and removes the rest.
"""
import argparse
import ast
import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from typing import Dict, List, Optional

PATCH_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, PATCH_DIR)

from hooks import HOOKS, INI_FILE, PatchError, apply_hooks, apply_ini, hooked_paths  # noqa: E402
from vendor import ENGINE_NAME, read_tree, vendored_files, write_vendored  # noqa: E402

SUPPORTED_VERSION = '3.5.0'
STATE_FOLDER = '.facefusion-engine-patch'
ORIGINALS_FOLDER = 'originals'
MANIFEST_NAME = 'manifest.json'
METADATA_MODULE = 'facefusion/metadata.py'
ENGINE_PACKAGE = os.path.join(os.path.dirname(PATCH_DIR), 'facefusion')
BRIDGE_DIR = os.path.join(PATCH_DIR, 'bridge')


@dataclass
class Plan:
	# relative path -> patched content, for files whose content must change
	writes: Dict[str, bytes] = field(default_factory=dict)
	vendor: Optional[Dict[str, bytes]] = None

	@property
	def empty(self) -> bool:
		return not self.writes and self.vendor is None


def read_bytes(path: str) -> bytes:
	with open(path, 'rb') as handle:
		return handle.read()


def upstream_version(upstream_dir: str) -> str:
	"""The version in upstream's metadata module (its METADATA dict), read without importing upstream."""
	path = os.path.join(upstream_dir, METADATA_MODULE)
	if not os.path.isfile(path):
		raise PatchError(f'{upstream_dir} is not a FaceFusion checkout: {METADATA_MODULE} is missing')
	tree = ast.parse(read_bytes(path).decode('utf-8'))
	for node in ast.walk(tree):
		if isinstance(node, ast.Dict):
			for key, value in zip(node.keys, node.values):
				if isinstance(key, ast.Constant) and key.value == 'version' and isinstance(value, ast.Constant):
					return str(value.value)
	raise PatchError(f'{METADATA_MODULE} holds no version')


def check_version(upstream_dir: str) -> None:
	version = upstream_version(upstream_dir)
	if version != SUPPORTED_VERSION:
		raise PatchError(
			f'this patch set is for FaceFusion {SUPPORTED_VERSION} only, and {upstream_dir} is FaceFusion {version}: '
			f'the hooks find upstream functions by name and were checked against {SUPPORTED_VERSION}'
		)


def state_dir(upstream_dir: str) -> str:
	return os.path.join(upstream_dir, STATE_FOLDER)


def original_path(upstream_dir: str, relative: str) -> str:
	return os.path.join(state_dir(upstream_dir), ORIGINALS_FOLDER, relative)


def original_bytes(upstream_dir: str, relative: str) -> bytes:
	"""The untouched upstream file: the kept original once patched, the checkout's file before."""
	kept = original_path(upstream_dir, relative)
	return read_bytes(kept if os.path.isfile(kept) else os.path.join(upstream_dir, relative))


def patched_bytes(relative: str, original: bytes) -> bytes:
	text = original.decode('utf-8')
	if relative == INI_FILE:
		return apply_ini(text).encode('utf-8')
	return apply_hooks(relative, text, [hook for hook in HOOKS if hook.path == relative]).encode('utf-8')


def changed_paths() -> List[str]:
	return hooked_paths() + [INI_FILE]


def make_plan(upstream_dir: str) -> Plan:
	check_version(upstream_dir)
	engine_dir = os.path.join(upstream_dir, ENGINE_NAME)
	if os.path.exists(engine_dir) and not os.path.isdir(state_dir(upstream_dir)):
		raise PatchError(f'{engine_dir} exists but was not made by this patch; move it away first')
	plan = Plan()
	for relative in changed_paths():
		path = os.path.join(upstream_dir, relative)
		if not os.path.isfile(path):
			raise PatchError(f'{relative} is missing from {upstream_dir}; is this a complete FaceFusion 3.5.0 checkout?')
		patched = patched_bytes(relative, original_bytes(upstream_dir, relative))
		if read_bytes(path) != patched:
			plan.writes[relative] = patched
	files = vendored_files(ENGINE_PACKAGE, BRIDGE_DIR)
	if not os.path.isdir(engine_dir) or read_tree(engine_dir) != files:
		plan.vendor = files
	return plan


def write_manifest(upstream_dir: str) -> None:
	manifest = {'upstream_version': SUPPORTED_VERSION, 'modified': changed_paths(), 'added': [ENGINE_NAME]}
	with open(os.path.join(state_dir(upstream_dir), MANIFEST_NAME), 'w') as handle:
		json.dump(manifest, handle, indent='\t')


def apply(upstream_dir: str) -> List[str]:
	plan = make_plan(upstream_dir)
	if plan.empty:
		return []
	for relative in changed_paths():
		kept = original_path(upstream_dir, relative)
		if not os.path.isfile(kept):
			os.makedirs(os.path.dirname(kept), exist_ok=True)
			shutil.copy2(os.path.join(upstream_dir, relative), kept)
	write_manifest(upstream_dir)
	done = []
	for relative, content in plan.writes.items():
		with open(os.path.join(upstream_dir, relative), 'wb') as handle:
			handle.write(content)
		done.append('hooked ' + relative)
	if plan.vendor is not None:
		write_vendored(os.path.join(upstream_dir, ENGINE_NAME), plan.vendor)
		done.append(f'vendored the engine as {ENGINE_NAME}/ ({len(plan.vendor)} files)')
	return done


def describe(plan: Plan) -> List[str]:
	lines = []
	for relative in plan.writes:
		functions = ', '.join(hook.function + '()' for hook in HOOKS if hook.path == relative) or 'new option keys'
		lines.append(f'would hook {relative}: {functions}')
	if plan.vendor is not None:
		lines.append(f'would vendor the engine as {ENGINE_NAME}/ ({len(plan.vendor)} files)')
	return lines


def revert(upstream_dir: str) -> List[str]:
	folder = state_dir(upstream_dir)
	if not os.path.isdir(folder):
		return []
	with open(os.path.join(folder, MANIFEST_NAME)) as handle:
		manifest = json.load(handle)
	done = []
	for relative in manifest['modified']:
		kept = original_path(upstream_dir, relative)
		if os.path.isfile(kept):
			shutil.copy2(kept, os.path.join(upstream_dir, relative))
			done.append('restored ' + relative)
	for relative in manifest['added']:
		path = os.path.join(upstream_dir, relative)
		if os.path.isdir(path):
			shutil.rmtree(path)
			done.append('removed ' + relative + '/')
	shutil.rmtree(folder)
	return done


def main(argv: Optional[List[str]] = None) -> int:
	parser = argparse.ArgumentParser(prog='patches/apply.py', description=f'patch an upstream FaceFusion {SUPPORTED_VERSION} checkout with this engine')
	parser.add_argument('upstream_dir', help='the root of the upstream checkout (where facefusion.py is)')
	mode = parser.add_mutually_exclusive_group()
	mode.add_argument('--check', action='store_true', help='say what applying would do; change nothing')
	mode.add_argument('--revert', action='store_true', help='give back the original files byte for byte')
	args = parser.parse_args(argv)
	upstream_dir = os.path.abspath(args.upstream_dir)
	try:
		if args.revert:
			lines = revert(upstream_dir) or ['not patched: nothing to revert']
		elif args.check:
			lines = describe(make_plan(upstream_dir)) or ['already applied: nothing to do']
		else:
			lines = apply(upstream_dir) or ['already applied: nothing to do']
	except PatchError as error:
		print('[FACEFUSION ENGINE PATCH] ' + str(error), file=sys.stderr)
		return 1
	for line in lines:
		print(line)
	return 0


if __name__ == '__main__':
	sys.exit(main())
