#!/usr/bin/env bash
# Every GPU check and benchmark of the engine in one go, for a lent GPU machine (CUDA 13, CuPy, the CPU build of
# onnxruntime, no network):
#
#   bash benchmarks/gpu_check.sh [OUTPUT_DIR]        (default: $OUT, else /tmp/facefusion-gpu-check)
#
# 1. installs what it needs without a network: wheels carried in .wheels/ or .whl/ (pip download ... -d .whl),
#    into a private folder; onnxruntime-gpu cannot be fetched there, so the CUDA / TensorRT providers are reported
#    as missing rather than installed
# 2. reports the machine: GPU, driver, Python packages, ONNX Runtime providers, the engine's own device probe
# 3. compiles the CUDA kernels with NVRTC, then runs every test marked `gpu` (pytest -m gpu tests)
# 4. runs benchmarks/bench_gpu_ops.py: CuPy against NumPy / OpenCV at 1080p (warp, pre, post, paste), IO binding on
#    ONNX Runtime's CPU provider fed from host and from CuPy arrays
# 4b. runs the whole pipeline on a 1080p clip (small stand-ins) with CPU decoding and with the NVDEC route
# 5. prints a short markdown table (also in OUTPUT_DIR/summary.md) and exits 0 even when parts are unavailable,
#    saying which
set -u
cd "$(dirname "$0")/.." || exit 0
OUTPUT_DIR="${1:-${OUT:-/tmp/facefusion-gpu-check}}"
mkdir -p "$OUTPUT_DIR"
PYTHON="${PYTHON:-python3}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
ROWS=()

row() {
	ROWS+=("| $1 | $2 | $3 |")
}

python_value() {
	"$PYTHON" -c "$1" 2>/dev/null | tail -n 1
}

# --- 1. offline installs ---------------------------------------------------------------------------------------
for wheel_dir in .wheels .whl; do
	if ls "$wheel_dir"/*.whl >/dev/null 2>&1; then
		if "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --target /tmp/facefusion-site "$wheel_dir"/*.whl >"$OUTPUT_DIR/pip.log" 2>&1; then
			export PYTHONPATH="$PYTHONPATH:/tmp/facefusion-site"
			row 'carried wheels' 'installed' "$(ls "$wheel_dir"/*.whl | wc -l) from $wheel_dir"
		else
			row 'carried wheels' 'FAILED' "see pip.log"
		fi
	fi
done

# --- 2. the machine --------------------------------------------------------------------------------------------
gpu=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -n 1)
if [ -n "$gpu" ]; then row 'GPU' 'present' "$gpu"; else row 'GPU' 'missing' 'nvidia-smi found no device'; fi
row 'Python' 'present' "$("$PYTHON" --version 2>&1)"
for module in numpy cupy onnxruntime onnx cv2 pytest; do
	version=$(python_value "import $module; print(getattr($module, '__version__', '?'))")
	if [ -n "$version" ]; then row "$module" 'present' "$version"; else row "$module" 'missing' 'not importable'; fi
done
providers=$(python_value "import onnxruntime; print(', '.join(onnxruntime.get_available_providers()))")
row 'ONNX Runtime providers' "${providers:+present}" "${providers:-onnxruntime missing}"
if ! echo "$providers" | grep -q CUDAExecutionProvider; then
	row 'ORT CUDA / TensorRT' 'unavailable' 'CPU onnxruntime only: CUDA IO binding and TensorRT tests skip'
fi
probe=$(python_value "from facefusion.gpu.device import detect_device; print(detect_device().describe())")
row 'engine device probe' "$(echo "$probe" | grep -q 'no usable' && echo unavailable || echo ok)" "${probe:-probe failed to run}"

# --- 3. kernels and gpu tests ----------------------------------------------------------------------------------
compile_result=$(python_value "from facefusion.gpu.kernels import compile_check; print(compile_check() or 'ok')")
if [ "$compile_result" = 'ok' ]; then
	row 'CUDA kernels compile (NVRTC)' 'ok' 'warp_affine_u8/f32, blend_box, paste_u8/f32'
elif echo "$compile_result" | grep -qi 'no module named'; then
	row 'CUDA kernels compile (NVRTC)' 'unavailable' "$compile_result"
else
	row 'CUDA kernels compile (NVRTC)' 'FAILED' "${compile_result:-could not run}"
fi
if python_value "import pytest; print('ok')" | grep -q ok; then
	"$PYTHON" -m pytest -m gpu -q -rs -p no:cacheprovider tests >"$OUTPUT_DIR/pytest-gpu.log" 2>&1
	status=$?
	summary=$(grep -E '[0-9]+ (passed|failed|skipped|error|deselected)' "$OUTPUT_DIR/pytest-gpu.log" | tail -n 1)
	case $status in
		0) if echo "$summary" | grep -q passed; then row 'pytest -m gpu' 'passed' "$summary"; else row 'pytest -m gpu' 'all skipped' "$summary"; fi ;;
		5) row 'pytest -m gpu' 'none ran' "$summary" ;;
		*) row 'pytest -m gpu' 'FAILED' "$summary (see pytest-gpu.log)" ;;
	esac
	# the CPU halves of the same files: proves the shared array-module code on this machine's package versions
	"$PYTHON" -m pytest -q -p no:cacheprovider -m 'not gpu' tests/test_gpu_ops.py tests/test_io_binding.py tests/test_batch_processor.py tests/test_batch_conversion.py >"$OUTPUT_DIR/pytest-cpu.log" 2>&1
	status=$?
	summary=$(grep -E '[0-9]+ (passed|failed|skipped|error)' "$OUTPUT_DIR/pytest-cpu.log" | tail -n 1)
	row 'pytest (CPU parts, same files)' "$( [ $status -eq 0 ] && echo passed || echo FAILED )" "$summary"
else
	row 'pytest' 'unavailable' 'pytest is not installed: carry its wheel in .whl/'
fi

# --- 4. benchmark ----------------------------------------------------------------------------------------------
if "$PYTHON" benchmarks/bench_gpu_ops.py --repeats 30 --markdown "$OUTPUT_DIR/bench_gpu_ops.md" --json "$OUTPUT_DIR/bench_gpu_ops.json" >"$OUTPUT_DIR/bench.log" 2>&1; then
	row 'bench_gpu_ops (1080p, 4 faces, boost 512)' 'ran' 'table below'
else
	row 'bench_gpu_ops' 'FAILED' "$(tail -n 1 "$OUTPUT_DIR/bench.log")"
fi

# --- 4b. end to end: 1080p, 150 frames, small stand-in swapper, CPU decoding against the NVDEC route ------------
if "$PYTHON" benchmarks/bench_pipeline.py --standins small --resolution 1080p --frames 150 --variants optimized,nvdec,batching-always \
	--define 'nvdec=--video-decoder nvdec' --out "$OUTPUT_DIR/pipeline" >"$OUTPUT_DIR/pipeline.log" 2>&1; then
	row 'pipeline 1080p end to end' 'ran' "$(grep -E '^\| (optimized|nvdec|batching-always) ' "$OUTPUT_DIR/pipeline/results.md" | awk -F'|' '{printf "%s %s fps; ", $2, $4}')"
else
	row 'pipeline 1080p end to end' 'FAILED' "$(tail -n 1 "$OUTPUT_DIR/pipeline.log")"
fi

# --- 5. the table ----------------------------------------------------------------------------------------------
{
	echo '## GPU check'
	echo
	echo '| check | result | detail |'
	echo '|---|---|---|'
	printf '%s\n' "${ROWS[@]}"
	echo
	if [ -f "$OUTPUT_DIR/bench_gpu_ops.md" ]; then cat "$OUTPUT_DIR/bench_gpu_ops.md"; fi
	if grep -qE 'FAILED|ERROR' "$OUTPUT_DIR/pytest-gpu.log" 2>/dev/null; then
		echo
		echo '### failing gpu tests'
		grep -E '^(FAILED|ERROR)' "$OUTPUT_DIR/pytest-gpu.log" | head -n 20
	fi
} | tee "$OUTPUT_DIR/summary.md"
exit 0
