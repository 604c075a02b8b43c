"""Where the console's signing secret comes from: PROMOBULK_CONSOLE_SECRET, or a file made once
in the state folder, so that restarts keep sessions and processes on one machine agree."""

from __future__ import annotations

import logging
import os
import secrets
import tempfile
from pathlib import Path

from worker.config import Settings

log = logging.getLogger("promobulk.console")
SECRET_FILE = "console-secret"  # noqa: S105 (a file name)


def console_secret(settings: Settings, state_dir: Path) -> bytes:
    configured = settings.console_secret.get_secret_value()
    if configured:
        return configured.encode()
    path = state_dir / SECRET_FILE
    if not path.exists():
        state_dir.mkdir(parents=True, exist_ok=True)
        # Written aside, then linked into place: of two processes starting at once, one wins
        # and both read the same whole secret.
        fd, aside = tempfile.mkstemp(dir=state_dir, prefix=".console-secret-")
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32))
        try:
            os.link(aside, path)
            log.warning(
                "PROMOBULK_CONSOLE_SECRET is not set: console sessions are signed with a secret"
                " kept in %s; set it, the same on every API process, to share sessions",
                path,
            )
        except FileExistsError:
            pass
        finally:
            os.unlink(aside)
    secret = path.read_text().strip()
    if len(secret) < 16:
        raise RuntimeError(f"{path} holds no usable console secret: delete it to make a new one")
    return secret.encode()
