import sys
from pathlib import Path

# Let test packages import their helpers (e2e/paho_device.py etc.) by folder name.
sys.path.insert(0, str(Path(__file__).parent))
