#!/usr/bin/env bash
# Every GPU check and benchmark of the engine in one go, for a lent GPU machine (CUDA 13, CuPy, the CPU build of
# onnxruntime, no network):
#
#   bash benchmarks/gpu_check.sh [OUTPUT_DIR]        (default: $OUT, else /tmp/facefusion-gpu-check)
#
# Through the device tool: `bash benchmarks/pack_gpu_carry.sh` here first (a static ffmpeg, about 50 MB, once), then
# one run of `bash benchmarks/gpu_check.sh` there with carry [".gpu-carry"], GPU_CHECK_ALLOW_SKIPS=1 where no
# onnxruntime-gpu can be had (the CUDA-provider tests then skip and are listed), and a timeout that leaves a rerun.
#
# 1. installs what it needs without a network: wheels carried in .wheels/ or .whl/ (pip download ... -d .whl),
#    into a private folder; onnxruntime-gpu cannot be fetched there, so the CUDA / TensorRT providers are reported
#    as missing rather than installed; an ffmpeg, else the static one benchmarks/pack_gpu_carry.sh packs into
#    .gpu-carry (carry it: the lent machine's image lists no ffmpeg), and the Python packages it packs there
#    (PyNvVideoCodec, for the NVDEC route)
# 2. reports the machine: GPU, driver, Python packages, ONNX Runtime providers, the engine's own device probe
# 3. compiles the CUDA kernels with NVRTC, then runs every test marked `gpu` (pytest -m gpu tests)
# 4. runs benchmarks/bench_gpu_ops.py: CuPy against NumPy / OpenCV at 1080p (warp, pre, post, paste), IO binding on
#    ONNX Runtime's CPU provider fed from host and from CuPy arrays
# 4a. runs benchmarks/bench_blend.py --gpu: the paste per face (feather, multi-band, colour match) on CPU and GPU
# 4b. runs the whole pipeline on a 1080p clip (small stand-ins) with CPU decoding and with the NVDEC route, and the
#     analysis thread's time a frame (the serial limit)
# 4c. runs the heavy stand-ins on the CPU provider: the swapper in the run against alone, wall against model floor
# 5. prints a short markdown table (also in OUTPUT_DIR/summary.md) with every GPU test that skipped; exits 1 when a
#    check failed, 2 when GPU tests were skipped or none ran (GPU_CHECK_ALLOW_SKIPS=1 accepts skips), else 0
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

# ffmpeg: the engine's own search (FACEFUSION_FFMPEG, PATH, imageio-ffmpeg), else the static build that
# benchmarks/pack_gpu_carry.sh packed into .gpu-carry (the lent machine's image lists none); without one every video
# step below fails, so the table says so at the top
CARRY_DIR="${GPU_CARRY_DIR:-.gpu-carry}"
ffmpeg_path=$(python_value "from facefusion.video.ffmpeg import find_ffmpeg; print(find_ffmpeg())")
if [ -z "$ffmpeg_path" ] && [ -f "$CARRY_DIR/ffmpeg.xz" ]; then
	# beside, not under, the output folder: a lent machine sends that folder back, and 173 MB is over its limits
	unpacked="${TMPDIR:-/tmp}/facefusion-gpu-check/ffmpeg"
	mkdir -p "$(dirname "$unpacked")"
	if "$PYTHON" -c "import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], 'wb'))" "$CARRY_DIR/ffmpeg.xz" "$unpacked.partial" 2>"$OUTPUT_DIR/ffmpeg-unpack.log" \
		&& chmod +x "$unpacked.partial" && mv "$unpacked.partial" "$unpacked"; then
		export FACEFUSION_FFMPEG="$unpacked"
		ffmpeg_path=$FACEFUSION_FFMPEG
	else
		row 'carried ffmpeg' 'FAILED' "could not unpack $CARRY_DIR/ffmpeg.xz (see ffmpeg-unpack.log)"
	fi
fi
if [ -n "$ffmpeg_path" ]; then
	ffmpeg_version=$("$ffmpeg_path" -hide_banner -version 2>/dev/null | sed -n 1p)
	ffmpeg_hwaccels=$("$ffmpeg_path" -hide_banner -hwaccels 2>/dev/null | tail -n +2 | tr -s '\n' ' ')
	row 'ffmpeg' 'present' "${ffmpeg_path}: ${ffmpeg_version:-no version}; hwaccels: ${ffmpeg_hwaccels:-none}"
else
	row 'ffmpeg' 'missing' 'none found: run benchmarks/pack_gpu_carry.sh where the session runs and carry .gpu-carry; the video steps fail'
fi
# Python packages the image lacks (PyNvVideoCodec for the NVDEC route), packed by pack_gpu_carry.sh for the lent
# machine's Python: unpacked beside the output folder too, and put first on the path
if [ -f "$CARRY_DIR/python-packages.tar.xz" ]; then
	site="${TMPDIR:-/tmp}/facefusion-gpu-check/site"
	if rm -rf "$site" && mkdir -p "$site" && "$PYTHON" -c "import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2], **({'filter': 'data'} if hasattr(tarfile, 'data_filter') else {}))" "$CARRY_DIR/python-packages.tar.xz" "$site" 2>"$OUTPUT_DIR/packages-unpack.log"; then
		export PYTHONPATH="$site:$PYTHONPATH"
		row 'carried Python packages' 'unpacked' "$(cd "$site" && ls -d -- */ | grep -v -e '\.dist-info/$' -e '\./$' -e '\.libs/$' | tr -d '/' | tr '\n' ' ')into $site"
	else
		row 'carried Python packages' 'FAILED' "could not unpack $CARRY_DIR/python-packages.tar.xz (see packages-unpack.log)"
	fi
fi

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
# installed is not enough: its import asks the driver for the video libraries
nvdec_decoder=$(python_value "from facefusion.video.routes import pynvvideocodec_status; ok, reason = pynvvideocodec_status(); print(('present: ' if ok else 'missing: ') + reason)")
row 'PyNvVideoCodec (NVDEC route)' "${nvdec_decoder%%:*}" "${nvdec_decoder#*: }"
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
if [ "${GPU_CHECK_STEPS:-all}" = 'machine' ]; then
	: # the machine report alone (how the test suite checks the ffmpeg step quickly)
elif python_value "import pytest; print('ok')" | grep -q ok; then
	"$PYTHON" -m pytest -m gpu -q -rs -p no:cacheprovider tests >"$OUTPUT_DIR/pytest-gpu.log" 2>&1
	status=$?
	summary=$(grep -E '[0-9]+ (passed|failed|skipped|error|deselected)' "$OUTPUT_DIR/pytest-gpu.log" | tail -n 1)
	# a GPU test that skipped did not prove anything on this machine: never report "passed" over skips
	skipped_count=$(echo "$summary" | grep -oE '[0-9]+ skipped' | grep -oE '[0-9]+')
	case $status in
		0) if [ -n "$skipped_count" ]; then row 'pytest -m gpu' 'INCOMPLETE' "$summary: $skipped_count GPU tests did not run here (listed below)"
			elif echo "$summary" | grep -q passed; then row 'pytest -m gpu' 'passed' "$summary"
			else row 'pytest -m gpu' 'none ran' "$summary"; fi ;;
		5) row 'pytest -m gpu' 'none ran' "$summary" ;;
		*) row 'pytest -m gpu' 'FAILED' "$summary (see pytest-gpu.log)" ;;
	esac
	# the CPU halves of the same files: proves the shared array-module code on this machine's package versions
	[ "${GPU_CHECK_STEPS:-all}" = 'gpu-tests' ] || "$PYTHON" -m pytest -q -p no:cacheprovider -m 'not gpu' tests/test_gpu_ops.py tests/test_blending.py tests/test_io_binding.py tests/test_batch_processor.py tests/test_batch_conversion.py >"$OUTPUT_DIR/pytest-cpu.log" 2>&1
	status=$?
	if [ "${GPU_CHECK_STEPS:-all}" != 'gpu-tests' ]; then
		summary=$(grep -E '[0-9]+ (passed|failed|skipped|error)' "$OUTPUT_DIR/pytest-cpu.log" | tail -n 1)
		row 'pytest (CPU parts, same files)' "$( [ $status -eq 0 ] && echo passed || echo FAILED )" "$summary"
	fi
else
	row 'pytest' 'unavailable' 'pytest is not installed: carry its wheel in .whl/'
fi

# GPU_CHECK_STEPS=machine stops after the machine report, tests after the tests, gpu-tests after the GPU-marked ones
# (how the test suite checks the script's verdict quickly)
if [ "${GPU_CHECK_STEPS:-all}" != 'all' ]; then SKIP_BENCHMARKS=1; else SKIP_BENCHMARKS=0; fi

# --- 4. benchmark ----------------------------------------------------------------------------------------------
if [ "$SKIP_BENCHMARKS" = 0 ]; then
if "$PYTHON" benchmarks/bench_gpu_ops.py --repeats 30 --markdown "$OUTPUT_DIR/bench_gpu_ops.md" --json "$OUTPUT_DIR/bench_gpu_ops.json" >"$OUTPUT_DIR/bench.log" 2>&1; then
	row 'bench_gpu_ops (1080p, 4 faces, boost 512)' 'ran' 'table below'
else
	row 'bench_gpu_ops' 'FAILED' "$(tail -n 1 "$OUTPUT_DIR/bench.log")"
fi

# --- 4a. the looks of the paste: blend cost per face on CPU and GPU (the gpu tests above compare their pixels) ----
if "$PYTHON" benchmarks/bench_blend.py --skip-video --gpu --repeats 20 --output-dir "$OUTPUT_DIR/looks" >"$OUTPUT_DIR/looks.log" 2>&1; then
	if grep -q 'GPU (CuPy) was not timed' "$OUTPUT_DIR/looks/looks.md" 2>/dev/null; then
		row 'bench_blend (paste per face, 128/256/512)' 'CPU only' "$(grep 'GPU (CuPy) was not timed' "$OUTPUT_DIR/looks/looks.md")"
	else
		row 'bench_blend (paste per face, 128/256/512)' 'ran' 'looks/looks.md'
	fi
else
	row 'bench_blend' 'FAILED' "$(tail -n 1 "$OUTPUT_DIR/looks.log")"
fi

# --- 4b. end to end: 1080p, 150 frames, small stand-in swapper, CPU decoding against the NVDEC route, and two
# device workers sharing GPU 0 (--execution-device-ids 0 0: the split-video path of issue 16 on one GPU) ----------
if "$PYTHON" benchmarks/bench_pipeline.py --standins small --resolution 1080p --frames 150 --variants optimized,nvdec,batching-always,two-workers \
	--define 'nvdec=--video-decoder nvdec' --define 'two-workers=--execution-device-ids 0 0' --out "$OUTPUT_DIR/pipeline" >"$OUTPUT_DIR/pipeline.log" 2>&1; then
	# the fps column of the first table only (the later tables repeat the variant names)
	row 'pipeline 1080p end to end' 'ran' "$(awk -F'|' '/^\| variant \| wall/ {inside = 1; next} inside && !/^\|/ {exit} inside && /^\| [a-z]/ {printf "%s %s fps; ", $2, $4}' "$OUTPUT_DIR/pipeline/results.md")"
else
	row 'pipeline 1080p end to end' 'FAILED' "$(tail -n 1 "$OUTPUT_DIR/pipeline.log")"
fi
# the one analysis thread (frames in order): when the fps it allows is near the end-to-end fps, it is the limit
if [ -f "$OUTPUT_DIR/pipeline/results.md" ]; then
	analysis=$(awk -F' *[|] *' '/^\| variant \| analysis/ {inside = 1; next} inside && !/^\|/ {exit} inside && /^\| [a-z]/ {printf "%s %s ms a frame (at most %s fps); ", $2, $3, $4}' "$OUTPUT_DIR/pipeline/results.md")
	if [ -n "$analysis" ]; then row 'pipeline analysis thread (1080p)' 'ran' "$analysis"; fi
fi
# what a variant fell back from (NVDEC, NVENC, CUDA, TensorRT): its fps above is then not that route's
fallbacks=$(for log in "$OUTPUT_DIR"/pipeline/logs/*.log; do
	[ -f "$log" ] || continue
	variant=$(basename "$log" .log)
	grep -hE '^\[FACEFUSION\] .*(unavailable|not available)' "$log" | sed "s/^\[FACEFUSION\] /${variant%-*}: /"
done | sort -u | head -n 8 | tr '|' '/' | sed 's/$/;/' | tr '\n' ' ')
if [ -n "$fallbacks" ]; then row 'pipeline fallbacks' 'warned' "$fallbacks"; fi

# --- 4c. cores used once, on this machine's cores: the heavy stand-ins (a swapper that costs like the real one) on
# the CPU provider, 360p, 250 frames; the swapper per item in the run against alone, and the wall against the model
# floor, with as many cores as a GPU host has (a 2-core machine spends a sixth of its time on ffmpeg alone) -------
if "$PYTHON" benchmarks/bench_pipeline.py --standins heavy --resolution 360p --frames 250 --variants optimized --quality off \
	--out "$OUTPUT_DIR/cores" >"$OUTPUT_DIR/cores.log" 2>&1; then
	# the row of the "thread plan" table, then the "floor with ffmpeg" one: plan, swapper run / isolated, wall / floor
	row 'cores used once (CPU provider, heavy, 360p)' 'ran' "$(awk -F' *[|] *' '
		/^\| variant \| thread plan/ {table = 1; next}
		/^\| variant \| core time/ {table = 2; next}
		!/^\|/ {table = 0}
		table == 1 && /^\| [a-z]/ {printf "plan %s, swapper ms / item %s in run against %s alone (%s), wall / model floor %s; ", $3, $4, $5, $6, $9}
		table == 2 && /^\| [a-z]/ {printf "ffmpeg %s CPU s, rest of the engine %s, wall / floor with ffmpeg %s", $6, $7, $14}
	' "$OUTPUT_DIR/cores/results.md")"
else
	row 'cores used once (CPU provider, heavy, 360p)' 'FAILED' "$(tail -n 1 "$OUTPUT_DIR/cores.log")"
fi

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
	if [ -f "$OUTPUT_DIR/looks/looks.md" ]; then echo; grep -A 5 'GPU (CuPy)' "$OUTPUT_DIR/looks/looks.md"; fi
	if grep -qE '^SKIPPED' "$OUTPUT_DIR/pytest-gpu.log" 2>/dev/null; then
		echo
		echo '### gpu tests that did not run on this machine'
		grep -E '^SKIPPED' "$OUTPUT_DIR/pytest-gpu.log" | head -n 40
	fi
	if grep -qE 'FAILED|ERROR' "$OUTPUT_DIR/pytest-gpu.log" 2>/dev/null; then
		echo
		echo '### failing gpu tests'
		grep -E '^(FAILED|ERROR)' "$OUTPUT_DIR/pytest-gpu.log" | head -n 20
	fi
} | tee "$OUTPUT_DIR/summary.md"
# exit status: 1 when a check failed, 2 when GPU tests were skipped or none ran (GPU_CHECK_ALLOW_SKIPS=1 accepts
# that, for a machine known to lack e.g. onnxruntime-gpu), else 0
if printf '%s\n' "${ROWS[@]}" | grep -q '| FAILED |'; then
	exit 1
fi
if printf '%s\n' "${ROWS[@]}" | grep -qE '\| pytest -m gpu \| (INCOMPLETE|none ran) \|' && [ "${GPU_CHECK_ALLOW_SKIPS:-0}" != '1' ]; then
	echo 'gpu_check: GPU tests were skipped (see the list above); GPU_CHECK_ALLOW_SKIPS=1 to accept' >&2
	exit 2
fi
exit 0
