"""The HTTP API: `create_app` builds it, `promobulk api` serves it."""

from worker.api.app import create_app, run_api

__all__ = ["create_app", "run_api"]
