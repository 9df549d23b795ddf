"""Runs the test suite; "no tests collected" (pytest exit 5) is a failure, not a pass."""
import os
import subprocess
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
rc = subprocess.call([sys.executable, "-m", "pytest", *sys.argv[1:]])
if rc == 5:
    print("pytest collected no tests: treating as a failure", file=sys.stderr)
    sys.exit(1)
sys.exit(rc)
