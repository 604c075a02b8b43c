"""The `promobulk` command (`worker.cli.main`): a package of small modules that parse, call one
operation of `worker.jobs`, and print."""
