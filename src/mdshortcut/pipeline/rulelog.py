"""A rule's log as the job's stderr: every ``workflow/scripts/*.py`` starts with ``to_rule_log``."""

from __future__ import annotations

import logging
import os
import sys
import traceback
from pathlib import Path


def to_rule_log(path: str | os.PathLike) -> logging.Logger:
    """Send this process's stderr (Python's and the C libraries' file descriptor 2: LAMMPS,
    torch), warnings, ``logging`` records (INFO and up, timestamped) and an uncaught exception's
    traceback to the log file ``path`` (emptied first); the terminal gets the exception's one
    line and where the traceback is. Returns the script's logger."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("")
    log = open(path, "a", buffering=1)  # noqa: SIM115 - the job's stderr until it exits
    terminal = os.fdopen(os.dup(2), "w", buffering=1)
    sys.stderr.flush()
    os.dup2(log.fileno(), 2)
    sys.stderr = log
    logging.basicConfig(stream=log, level=logging.INFO, format="%(asctime)s %(message)s", force=True)
    logging.captureWarnings(True)

    def excepthook(kind, value, tb) -> None:
        traceback.print_exception(kind, value, tb, file=log)
        print(f"{kind.__name__}: {value} (traceback in {path})", file=terminal)

    sys.excepthook = excepthook
    return logging.getLogger("rule")
