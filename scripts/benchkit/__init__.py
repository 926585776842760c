"""Code shared by the scripts in scripts/ (not a script itself; run those).

Importing it puts the checkout's root on sys.path, for the test-process helpers the test
suite uses too (tests/support/processes.py: free ports, redis-server, Authly servers),
and the checkout's src/ when authly is not installed.
"""

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
if importlib.util.find_spec("authly") is None:  # no `pip install -e .`: the checkout's src/
    sys.path.insert(0, str(ROOT / "src"))
