"""The design card's name for the NVDEC / NVENC routes with CPU fallback; they live in facefusion/video/routes.py."""
from facefusion.video.routes import open_reader, select_video_routes  # noqa: F401
