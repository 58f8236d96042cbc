"""The UI's own folder under --temp-path: Gradio's uploads land there (GRADIO_TEMP_DIR), and it is removed on exit."""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional


@dataclass
class UploadFolder:
	path: Path

	@classmethod
	def create(cls, temp_path: str) -> 'UploadFolder':
		base = Path(temp_path) / 'facefusion'
		base.mkdir(parents=True, exist_ok=True)
		return cls(Path(tempfile.mkdtemp(prefix=f'ui.{os.getpid()}.', dir=base)))

	def holds(self, path: Optional[str]) -> bool:
		"""Whether a path lies inside this folder (the UI reads nothing else)."""
		if not path:
			return False
		try:
			Path(path).resolve().relative_to(self.path.resolve())
			return True
		except ValueError:
			return False

	def remove(self) -> None:
		shutil.rmtree(self.path, ignore_errors=True)
