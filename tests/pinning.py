"""What a pooled connection cannot carry from one transaction to the next."""

from __future__ import annotations

import re

# What a pooled connection cannot carry from one transaction to the next, and what RDS Proxy
# pins a client for (docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-proxy-pinning.html):
# session-level SET and set_config(..., false), prepared statements in SQL, session advisory
# locks, LISTEN, temporary tables, holdable cursors, DISCARD and LOAD.
PINNING = re.compile(
    r"^\s*(SET\s+(?!LOCAL\b|TRANSACTION\b)|RESET\b|PREPARE\b|DEALLOCATE\b|LISTEN\b|"
    r"UNLISTEN\b|DISCARD\b|LOAD\b)"
    r"|\bpg_(try_)?advisory_lock(_shared)?\s*\(|\bpg_advisory_unlock"
    r"|\bCREATE\s+((GLOBAL|LOCAL)\s+)?TEMP(ORARY)?\b|\bWITH\s+HOLD\b"
    r"|\bset_config\s*\([^)]*,\s*false\s*\)",
    re.IGNORECASE,
)
# A statement in the server's log (log_statement = all), by the simple or the extended protocol.
LOGGED_STATEMENT = re.compile(r"LOG:  (?:statement|execute [^:]*): (.*)")
