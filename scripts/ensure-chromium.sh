#!/usr/bin/env bash
# Debian's headless chromium and chromedriver, for the review pages' browser test: installed
# when missing and this user may (root with apt-get), else a warning naming what to install.
set -euo pipefail
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    chromium chromium-driver >/dev/null
else
  echo "WARNING: chromium and chromedriver are missing and cannot be installed here" \
       "(install Debian's chromium and chromium-driver): the review browser test will fail" >&2
fi
