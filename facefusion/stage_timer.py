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
	# batch items the calls carried (model stages: mean batch size = items / calls)
	items: int = 0


class StageTimer:
	def __init__(self) -> None:
		self.totals: Dict[str, StageTotal] = {}
		self.lock = threading.Lock()

	@contextmanager
	def measure(self, stage: str, items: int = 1) -> Iterator[None]:
		start = time.perf_counter()
		try:
			yield
		finally:
			self.add(stage, time.perf_counter() - start, items)

	def add(self, stage: str, seconds: float, items: int = 1) -> None:
		with self.lock:
			total = self.totals.setdefault(stage, StageTotal())
			total.seconds += seconds
			total.calls += 1
			total.items += items

	def snapshot(self) -> Dict[str, StageTotal]:
		with self.lock:
			return {stage: StageTotal(total.seconds, total.calls, total.items) for stage, total in self.totals.items()}

	def reset(self) -> None:
		with self.lock:
			self.totals.clear()


STAGE_TIMER = StageTimer()
