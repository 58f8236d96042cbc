"""The execution providers of the installed onnxruntime build, without importing onnxruntime where it can be helped.

A command line's choices for --execution-providers are the providers the build offers. Asking onnxruntime means
importing it (0.2 s on two cores); the answer depends only on the build, so it is remembered per native module
(binary_facts.py). The command line then parses at once, and onnxruntime is imported later beside the target's probe.
"""
from __future__ import annotations

import glob
import importlib.util
import os
from typing import List, Optional

from facefusion.binary_facts import remembered


def native_module() -> Optional[str]:
	"""The path of the installed onnxruntime's native module (what a reinstall or another build replaces)."""
	spec = importlib.util.find_spec('onnxruntime')
	if spec is None or not spec.submodule_search_locations:
		return None
	found = sorted(glob.glob(os.path.join(list(spec.submodule_search_locations)[0], 'capi', 'onnxruntime_pybind11_state*')))
	return found[0] if found else None


def ask_onnxruntime() -> List[str]:
	try:
		import onnxruntime
	except ImportError:
		return ['CPUExecutionProvider']
	return list(onnxruntime.get_available_providers())


def installed_providers() -> List[str]:
	"""onnxruntime.get_available_providers() of the installed build (its long names)."""
	module = native_module()
	if module is None:
		return ask_onnxruntime()
	return remembered(module, 'onnxruntime-providers', ask_onnxruntime, keep=lambda providers: bool(providers))
