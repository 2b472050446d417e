#!/usr/bin/env bash
# Installs everything this project needs on a fresh Debian/Ubuntu machine with Python 3.10+:
# the Python packages (requirements.txt) and, for the browser test, Debian's chromium.
set -euo pipefail
cd "$(dirname "$0")"

SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO="sudo"; fi

if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

python3 -m pip install -q -r requirements.txt
# a package that depends on the plain opencv-python (scenedetect does) overwrites the contrib build's
# cv2 module, which then lacks ximgproc and ml: put the contrib build's files back
if ! python3 -c "import cv2; cv2.ximgproc.createGuidedFilter; cv2.ml.RTrees_create" 2>/dev/null; then
  python3 -m pip install -q --force-reinstall --no-deps \
    "opencv-contrib-python-headless==$(python3 -c 'import importlib.metadata as m; print(m.version("opencv-contrib-python-headless"))')"
fi
python3 -c "import cv2, av, maxflow, skimage; cv2.ximgproc.createGuidedFilter; print('set-up complete')"
