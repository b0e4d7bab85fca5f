#!/usr/bin/env bash
# The sanitizer job: build the C++ core with AddressSanitizer and UndefinedBehaviorSanitizer
# and run the tests that drive the engine under them.
#
#   scripts/sanitize.sh                  # build (first run ~10 min on 2 cores), then test
#   scripts/sanitize.sh tests/test_io.py # other tests instead of the default set
#
# Everything goes to its own places, so the normal build and venv are left alone:
#   .venv-asan/   a venv (system site packages visible: numpy, pytest, scikit-build-core)
#   build/asan/   the CMake build directory (rebuilds are incremental)
# Python itself is not instrumented, so libasan is preloaded into the test process; leak
# detection is off (the interpreter keeps its allocations to the end by design). Any ASan or
# UBSan report aborts the run with a non-zero status (halt_on_error). Not part of .ci/run:
# it takes far longer than the normal suite.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${SANITIZE_VENV:-.venv-asan}
CXX=${CXX:-g++}
FLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g"

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv --system-site-packages "$VENV"
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"

# --no-build-isolation: the build dependencies (scikit-build-core, pybind11) come from the
# system site packages, and build/asan is reused between runs. A regular (not editable)
# install: this venv gets its own instrumented copy of textlrp.
pip install -q --no-build-isolation \
  -Cbuild-dir=build/asan \
  -Ccmake.build-type=RelWithDebInfo \
  -Ccmake.define.CMAKE_CXX_COMPILER="$CXX" \
  -Ccmake.define.CMAKE_CXX_FLAGS="$FLAGS" \
  -Ccmake.define.CMAKE_SHARED_LINKER_FLAGS="-fsanitize=address,undefined" \
  -Ccmake.define.CMAKE_MODULE_LINKER_FLAGS="-fsanitize=address,undefined" \
  .

LIBASAN=$("$CXX" -print-file-name=libasan.so)
LIBUBSAN=$("$CXX" -print-file-name=libubsan.so)
if [ ! -e "$LIBASAN" ]; then
  echo "sanitize.sh: $CXX has no libasan.so ($LIBASAN); install the compiler's sanitizer runtime" >&2
  exit 2
fi
export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=1:strict_string_checks=1:check_initialization_order=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export LD_PRELOAD="$LIBASAN:$LIBUBSAN"

# The module the tests import must be the instrumented one, not a copy found elsewhere.
python - <<'PY'
import pathlib
import textlrp._core as core
assert b"__asan_init" in pathlib.Path(core.__file__).read_bytes(), f"{core.__file__} lacks ASan"
print(f"instrumented: {core.__file__}")
PY

# Negative control: the preloaded runtime reports a real overflow (a memmove past a 4 KiB
# buffer, through ctypes) and fails the process, as a finding in the engine would.
if python -c "import ctypes; b = ctypes.create_string_buffer(4096); \
ctypes.memmove(b, ctypes.create_string_buffer(8192), 8192)" 2>/tmp/textlrp-asan-check.$$; then
  echo "sanitize.sh: AddressSanitizer did not report a deliberate overflow" >&2
  exit 2
fi
grep -q "AddressSanitizer: heap-buffer-overflow" /tmp/textlrp-asan-check.$$
rm -f /tmp/textlrp-asan-check.$$
echo "AddressSanitizer is live (a deliberate overflow was reported)"

if [ $# -eq 0 ]; then
  # Every test that calls into the compiled core (tests/test_engine_*.py: passes, errors,
  # threads, hypothesis properties), the API edges and the model-file corruption tests.
  set -- tests/test_engine_*.py tests/test_api_edges.py tests/test_io.py
fi
# -p no:cacheprovider: no .pytest_cache writes from this run; the tests import the textlrp
# installed in this venv (the sources under python/ are not on sys.path).
python -m pytest -q -p no:cacheprovider "$@"
