"""Benchmark of the rendered stacks: what the safety features cost, and how far the ORM stack
is from a hand-written app on the raw driver's own pool. Run `uv run python -m bench`.

The bench reuses the template's own test helpers: tests/rendering.py (combinations, project
environments) and template/tests/local_postgres.py (a throwaway PostgreSQL).
"""

import sys
from pathlib import Path

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
for helpers in (REPOSITORY_ROOT / "tests", REPOSITORY_ROOT / "template" / "tests"):
    if str(helpers) not in sys.path:
        sys.path.append(str(helpers))
