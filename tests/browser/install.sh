#!/usr/bin/env bash
# What the tests marked `browser` need: a headless Chromium and its WebDriver (Debian 12's
# `chromium` and `chromium-driver`, as root), and Selenium in the Python environment that runs
# pytest (the `test` extra of pyproject.toml has it). tests/conftest.py runs this itself when
# pytest runs as root and Chromium is missing; CI always does.
#   sudo bash tests/browser/install.sh [PYTHON]
set -euo pipefail
python="${1:-python3}"
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    if [ "$(id -u)" != 0 ]; then
        echo "tests/browser/install.sh: installing chromium needs root; run it with sudo" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q chromium chromium-driver
fi
"$python" -c "import selenium" 2>/dev/null || "$python" -m pip install -q selenium
chromium --version
chromedriver --version
