"""Execution providers: which ones the installed onnxruntime offers and the options each one gets."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from facefusion import choices

ProviderEntry = Tuple[str, Dict[str, Any]]


def available_execution_providers() -> List[str]:
	"""Our short names of the providers the installed onnxruntime offers, fastest first."""
	from facefusion.inference.installed_providers import installed_providers
	installed = set(installed_providers())
	return [short for short, long in choices.execution_provider_names.items() if long in installed]


def provider_list(
	short_names: List[str],
	device_id: str = '0',
	cache_dir: Optional[Path] = None,
	trt_fp16: bool = False,
	trt_profile: Optional[Dict[str, str]] = None
) -> List[ProviderEntry]:
	"""Provider names with their options, in the order asked; CPU always comes last as the safety net."""
	entries: List[ProviderEntry] = []
	for short in short_names:
		if short == 'tensorrt':
			options: Dict[str, Any] = {
				'device_id': device_id,
				'trt_engine_cache_enable': True,
				'trt_timing_cache_enable': True,
				'trt_builder_optimization_level': 4,
				'trt_fp16_enable': trt_fp16,
			}
			if cache_dir is not None:
				options['trt_engine_cache_path'] = str(cache_dir)
				options['trt_timing_cache_path'] = str(cache_dir)
			if trt_profile:
				# explicit min/opt/max shapes so a new batch size never triggers an engine rebuild
				options.update(trt_profile)
			entries.append(('TensorrtExecutionProvider', options))
		elif short == 'cuda':
			entries.append(('CUDAExecutionProvider', {
				'device_id': device_id,
				# EXHAUSTIVE benchmarks every convolution algorithm per new input shape, and batch sizes vary from call
				# to call (1..64): seconds of stall on early frames for each; the heuristic choice costs nothing
				'cudnn_conv_algo_search': 'HEURISTIC',
			}))
		elif short == 'cpu':
			entries.append(('CPUExecutionProvider', {}))
	if not any(name == 'CPUExecutionProvider' for name, _ in entries):
		entries.append(('CPUExecutionProvider', {}))
	return entries
