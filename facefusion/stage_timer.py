"""Wall time per pipeline stage (decode, detect, landmark, embed, swap, mask, paste, encode), for the benchmark
and for --log-level debug. One explicit, process-wide registry: stages run in several threads and modules, and
threading a timer object through every call would clutter the face-analysis API for a measuring tap."""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Dict, Iterator


@dataclass
class StageTotal:
	seconds: float = 0.0
	calls: int = 0


class StageTimer:
	def __init__(self) -> None:
		self.totals: Dict[str, StageTotal] = {}
		self.lock = threading.Lock()

	@contextmanager
	def measure(self, stage: str) -> Iterator[None]:
		start = time.perf_counter()
		try:
			yield
		finally:
			self.add(stage, time.perf_counter() - start)

	def add(self, stage: str, seconds: float) -> None:
		with self.lock:
			total = self.totals.setdefault(stage, StageTotal())
			total.seconds += seconds
			total.calls += 1

	def snapshot(self) -> Dict[str, StageTotal]:
		with self.lock:
			return {stage: StageTotal(total.seconds, total.calls) for stage, total in self.totals.items()}

	def reset(self) -> None:
		with self.lock:
			self.totals.clear()


STAGE_TIMER = StageTimer()
