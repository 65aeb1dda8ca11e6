#!/usr/bin/env bash
# Debian packages the project needs: a CJK font and Pango for WeasyPrint's PDFs (`run`), plus the
# PostgreSQL server, Redis (background jobs) and Chromium for the test suite (`test`). Installed with apt-get when missing
# and running as root; otherwise say what is missing and go on.
set -euo pipefail
want=(fonts-noto-cjk libpango-1.0-0 libpangoft2-1.0-0)
if [ "${1:-run}" = test ]; then
  want+=(postgresql redis-server chromium poppler-utils)  # poppler-utils: pdftotext/pdftoppm read the PDFs back
fi
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
  echo "安装系统软件包: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "缺少系统软件包（需要 root 安装）: ${missing[*]}" >&2
  echo "  sudo apt-get install -y ${missing[*]}" >&2
fi
