import sys
from pathlib import Path

# The helpers beside the tests (vectors.py), importable without a package.
sys.path.insert(0, str(Path(__file__).resolve().parent))
