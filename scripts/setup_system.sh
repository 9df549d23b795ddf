#!/usr/bin/env bash
# Installs QGIS and the Debian Python packages the plugin uses, when missing.
set -euo pipefail
# proj-bin: pyproj 3.7 (Debian 13) finds PROJ's data from a venv only through the `proj` program;
# xauth: xvfb-run needs it (only recommended by xvfb, so absent from a minimal system).
# python3-setuptools: `make venv` installs the checkout (editable) with it, offline.
pkgs=(qgis python3-qgis qgis-providers python3-rasterio python3-skimage python3-scipy python3-pyproj
      python3-pip python3-venv python3-setuptools gdal-bin xvfb xauth proj-bin)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
echo "Installing Debian packages: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
