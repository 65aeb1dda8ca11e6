#!/usr/bin/env bash
# Create the virtualenv (if missing) and install packages into it:
#   .ci/venv.sh VENV -c requirements.lock -r requirements.txt [...]
# uv installs the locked wheels in parallel (pip alone spends ~30 s of CPU on the same ~55 wheels). It is a
# wheel from the package index, so nothing but Python is needed: the venv is made without pip (ensurepip
# costs ~8 s of CPU) and uv comes from the system's pip; where that fails, the plain venv + pip way.
set -euo pipefail
venv=$1; shift
UV_PIN=uv==0.13.9
PIP_PIN=pip==26.3
quiet() { "$@" 2> >(grep -v "is ignored: it is neither" >&2); }  # the machine's optional extra indexes
if [ ! -x "$venv/bin/python" ]; then
  if python3 -m venv --without-pip "$venv" &&
     quiet python3 -m pip --python "$venv/bin/python" install -q --disable-pip-version-check "$UV_PIN"; then
    "$venv/bin/uv" pip install -q --python "$venv/bin/python" "$PIP_PIN"  # `.venv/bin/pip install …` works as usual
  else
    rm -rf "$venv"
    python3 -m venv "$venv"
    quiet "$venv/bin/pip" install -q "$UV_PIN" || echo "uv 安装失败，改用 pip（较慢）" >&2
  fi
fi
if [ -x "$venv/bin/uv" ]; then
  "$venv/bin/uv" pip install -q --python "$venv/bin/python" "$@"
else
  quiet "$venv/bin/pip" install -q "$@"
fi
