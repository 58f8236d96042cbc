"""FaceFusion-compatible face-swapping engine, rewritten for speed and temporal stability."""
from facefusion.metadata import VERSION as __version__

__all__ = ['__version__']
