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
# scenedetect pulls in opencv-python, whose cv2 may shadow the contrib build's (ximgproc):
# put the contrib files back when that happened.
python3 -c "import cv2; cv2.ximgproc" 2>/dev/null || \
  python3 -m pip install -q --force-reinstall --no-deps "opencv-contrib-python-headless>=4.10"
python3 -c "import cv2, av, maxflow, skimage; print('set-up complete')"
