"""How freed memory goes back to the system, tuned for a frame loop (glibc only; elsewhere nothing changes).

Every frame allocates the same few large buffers (frames, crops, paste boxes, float copies) and frees them again. By
default glibc hands a freed block of 128 KiB or more back to the kernel (its dynamic mmap threshold), so the next
frame's buffer of the same size is faulted in and zeroed page by page once more: on 2 cores at 360p that was half the
cost of the CPU paste's blend. Serving such blocks from the heap and keeping freed heap memory (instead of trimming
it) lets each frame reuse the previous frame's pages. The resident size stays at the run's peak instead of falling
between frames.
"""
from __future__ import annotations

import ctypes
import platform

# mallopt parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# blocks up to this size come from the heap (a 4K frame in float32 is 100 MB and still gets its own mapping)
MMAP_THRESHOLD_BYTES = 64 * 1024 * 1024
# free memory at the top of a heap kept for reuse up to this size
TRIM_THRESHOLD_BYTES = 256 * 1024 * 1024


def keep_freed_memory() -> bool:
	"""Apply the tuning to this process; False where the C library is not glibc or refuses it."""
	if platform.system() != 'Linux' or platform.libc_ver()[0] != 'glibc':
		return False
	try:
		# the process's own symbols, libc's among them (find_library would start ldconfig)
		libc = ctypes.CDLL(None)
		mallopt = libc.mallopt
	except (OSError, AttributeError):
		return False
	mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
	mallopt.restype = ctypes.c_int
	return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
