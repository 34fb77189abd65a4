# shellcheck shell=bash
# Sourced by wb_scripts/demo and wb_scripts/test: make sure .venv exists and matches the pins.
#
# The venv is (re)built when requirements.txt or setup.py changed since the last install, so a
# fresh clone and a pull that moves a pin both just work. Python 3.11 is required (the pinned
# torch/torchvision wheels are cp311).

REPO_ROOT="$(cd -P "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${REPO_ROOT}/.venv"

find_python311() {
    local candidate
    for candidate in "${PYTHON:-}" python3.11 python3; do
        [ -n "$candidate" ] || continue
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

ensure_venv() {
    local stamp want python
    stamp="${VENV}/.installed"
    want="$(cat "${REPO_ROOT}/requirements.txt" "${REPO_ROOT}/setup.py" | sha256sum | cut -d' ' -f1)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return 0
    fi
    if ! python="$(find_python311)"; then
        echo "error: Python 3.11 is needed to build .venv (set PYTHON=/path/to/python3.11)" >&2
        exit 1
    fi
    echo "Setting up ${VENV} (pinned dependencies; a few minutes the first time)..." >&2
    [ -x "${VENV}/bin/python" ] || "$python" -m venv "$VENV"
    "${VENV}/bin/python" -m pip install --quiet --disable-pip-version-check \
        -r "${REPO_ROOT}/requirements.txt"
    "${VENV}/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
        --no-build-isolation --config-settings editable_mode=compat -e "${REPO_ROOT}"
    echo "$want" >"$stamp"
}

ensure_venv
export PATH="${VENV}/bin:${PATH}"
# Raster Vision writes temporaries under /opt/data/tmp unless told otherwise.
export RV_TMP_DIR="${RV_TMP_DIR:-${REPO_ROOT}/out/tmp}"
mkdir -p "$RV_TMP_DIR"
# albumentations checks PyPI for a newer version on import and warns when it cannot: no news
# for anyone running this pipeline (the versions are pinned), and noise on every offline run.
export NO_ALBUMENTATIONS_UPDATE="${NO_ALBUMENTATIONS_UPDATE:-1}"
