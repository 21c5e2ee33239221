#!/usr/bin/env bash
# The reference of the deployment verification statistics (engine/deploy/tests/scipy.rs): SciPy's
# scipy.stats.mannwhitneyu from PyPI (NumPy comes with it). Idempotent: installs only when
# `import scipy` fails. pip first; on an externally managed Python (PEP 668) retry with
# --break-system-packages.
set -euo pipefail
if ! python3 -c "import scipy.stats" >/dev/null 2>&1; then
  echo "installing test peer: scipy (PyPI)"
  python3 -m pip install --quiet scipy >/dev/null 2>&1 \
    || python3 -m pip install --quiet --break-system-packages scipy >/dev/null
fi
