NAME = 'FaceFusion'
# the upstream release whose commands, options and models this engine follows
COMPATIBLE_VERSION = '3.5.0'
VERSION = '0.1.0'
DESCRIPTION = 'FaceFusion 3.5.0 compatible face swapping, faster on NVIDIA GPUs and steadier on video'
