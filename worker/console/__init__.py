"""The operations console: server-rendered pages served by `promobulk api` at `/`, beside the
HTTP API and on the same `worker.jobs.Jobs`: jobs, a job and its SKUs, retry / revert / cancel,
new jobs and dry runs, a SKU's history, the health strip. See the README's "Console"."""

from worker.console.app import add_console

__all__ = ["add_console"]
