"""What every command shares: the Typer app, the consoles, exit codes, `--json`, the one place
that turns a refusal into words and an exit code, the one place that does the same for a
failure of what the commands stand on (`failed`), and the job's fields as flags.

Exit codes: 0 done (with --wait, the job succeeded); 1 unexpected error; 2 bad input (nothing
stored; a bad filter or cursor); 3 the job finished with failed SKUs; 4 the job failed or was
cancelled; 5 not found; 6 nothing to do; 7 `doctor` found a problem; 8 the database cannot be
used; 9 the schema is not migrated; 10 Redis or the broker cannot be reached; 11 the
configuration cannot work (a bad setting, no Criteo credentials, a port in use, ...).
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import sys
import traceback
from collections.abc import Callable
from enum import Enum, IntEnum
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.text import Text

from worker.config import get_settings
from worker.domain.access import operator
from worker.domain.enums import JobStatus
from worker.failures import Kind, explain, redacted
from worker.jobs.documents import JobFields, JobOptions, parse
from worker.jobs.errors import (
    JobNotFound,
    JobsError,
    NothingToDo,
    Refused,
    SubmissionRejected,
)
from worker.jobs.service import Jobs

# Failures are put in words by `failed`; Typer's own traceback (with local variables) never
# shows.
app = typer.Typer(
    help="Bulk changes to Criteo Retail Media promoted products.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])


class Exit(IntEnum):
    OK = 0
    UNEXPECTED = 1
    BAD_INPUT = 2
    WITH_FAILURES = 3
    FAILED = 4
    NOT_FOUND = 5
    NOTHING_TO_DO = 6
    DOCTOR = 7
    DATABASE = 8
    SCHEMA = 9
    BROKER = 10
    CONFIGURATION = 11
    INTERRUPTED = 130  # Ctrl-C, as shells count it


EXIT_FOR_KIND = {
    Kind.DATABASE: Exit.DATABASE,
    Kind.SCHEMA: Exit.SCHEMA,
    Kind.BROKER: Exit.BROKER,
    Kind.CONFIGURATION: Exit.CONFIGURATION,
}


EXIT_FOR_STATUS = {
    JobStatus.SUCCEEDED: Exit.OK,
    JobStatus.COMPLETED_WITH_FAILURES: Exit.WITH_FAILURES,
    JobStatus.FAILED: Exit.FAILED,
    JobStatus.CANCELLED: Exit.FAILED,
}

AsJson = Annotated[bool, typer.Option("--json", help="Machine-readable output (JSON)")]
SubmittedBy = Annotated[str, typer.Option(help="Recorded on the new job")]


class _Run:
    """What the root command's options set for this run."""

    debug = False


@app.callback()
def _root(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the traceback when a command fails")
    ] = False,
) -> None:
    _Run.debug = debug


def _debugging() -> bool:
    try:
        level = get_settings().log_level or ""
    except ValidationError:
        level = os.environ.get("PROMOBULK_LOG_LEVEL", "")
    return _Run.debug or level.lower() == "debug"


def failed(error: Exception) -> Exit:
    """A failure no command handled, for every command: what failed, the fix and its exit code
    (`worker.failures`), or an unexpected error in one line. The traceback only with --debug or
    PROMOBULK_LOG_LEVEL=debug. With --json, the same as a JSON line on stdout."""
    if _debugging():
        traceback.print_exception(error)
    failure = explain(error)
    if failure is None:
        kind, code, what = "unexpected", Exit.UNEXPECTED, redacted(error)
        fix = "run it again with --debug for the traceback, and report it"
    else:
        kind, code, what, fix = (
            failure.kind.value,
            EXIT_FOR_KIND[failure.kind],
            failure.what,
            failure.fix,
        )
    if "--json" in sys.argv[1:]:
        print_json({"error": kind, "message": what, "fix": fix})
    err_console.print(Text.assemble(("error: ", "bold red"), what))
    err_console.print(Text.assemble(("  fix: ", "bold"), fix))
    return code


def jobs(submitted_by: str = "cli") -> Jobs:
    """The application layer, dispatching on the Celery broker of the settings. The CLI holds
    the database URL: it acts as an operator, named `submitted_by` on the jobs it makes."""
    from worker.tasks import dispatch_chunks

    return Jobs.open(get_settings(), dispatch_chunks, operator(submitted_by))


def print_json(document: BaseModel | dict[str, Any] | list[Any]) -> None:
    if isinstance(document, BaseModel):
        print(document.model_dump_json())
    else:
        print(json.dumps(document, default=str))


def _refusal(error: JobsError, as_json: bool) -> Exit:
    """What an operation refused on purpose: said once, the same way for every command."""
    if isinstance(error, SubmissionRejected):
        errors = [{"row": e.row, "field": e.field, "reason": e.reason} for e in error.errors]
        if as_json:
            print_json({"rejected": True, "total_errors": error.total_errors, "errors": errors})
        else:
            err_console.print(f"[red]rejected, nothing stored:[/] {error.total_errors} problem(s)")
            for e in error.errors:
                err_console.print(f"  {e}", markup=False, highlight=False)
            if error.total_errors > len(error.errors):
                err_console.print(f"  ... and {error.total_errors - len(error.errors)} more")
        return Exit.BAD_INPUT
    if isinstance(error, NothingToDo) and as_json:
        print_json({"nothing_to_do": str(error)})
    err_console.print(str(error), markup=False, highlight=False)
    if isinstance(error, JobNotFound):
        return Exit.NOT_FOUND
    if isinstance(error, NothingToDo):
        return Exit.NOTHING_TO_DO
    return Exit.BAD_INPUT if isinstance(error, Refused) else Exit.UNEXPECTED


def reports(func: F) -> F:
    """A command whose refusals (bad input, no such job, nothing to do) end in words and the
    matching exit code instead of a traceback."""

    @functools.wraps(func)
    def command(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except JobsError as error:
            raise typer.Exit(_refusal(error, bool(kwargs.get("as_json")))) from None

    return command  # type: ignore[return-value]


# --- the job's fields as flags, from the model ----------------------------------------------------

_OPTIONS = frozenset(JobOptions.model_fields)


def _flag(name: str, model: type[BaseModel]) -> inspect.Parameter:
    info = model.model_fields[name]
    dashed = name.replace("_", "-")
    help_text = info.description
    annotation: Any
    if info.annotation is bool:
        option = typer.Option(f"--{dashed}/--no-{dashed}", help=help_text, show_default=False)
        annotation = Annotated[bool | None, option]
    elif isinstance(info.annotation, type) and issubclass(info.annotation, Enum):
        annotation = Annotated[info.annotation | None, typer.Option(f"--{dashed}", help=help_text)]
    else:
        annotation = Annotated[str | None, typer.Option(f"--{dashed}", help=help_text)]
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation
    )


def job_fields(*, exclude: tuple[str, ...] = (), options_only: bool = False) -> Callable[[F], F]:
    """Give a command one flag per field of `JobFields` (and of its options), and pass it the
    parsed `fields: JobFields`: a field added to the model is a flag here without more code, with
    the model's limits and messages."""
    flags: list[tuple[str, type[BaseModel]]] = []
    if not options_only:
        flags += [(n, JobFields) for n in JobFields.model_fields if n not in (*exclude, "options")]
    flags += [(n, JobOptions) for n in JobOptions.model_fields if n not in exclude]
    names = [n for n, _ in flags]

    def decorate(func: F) -> F:
        # Resolved here: a signature set on the command is taken as it is, strings and all.
        signature = inspect.signature(func, eval_str=True)
        own = [p for p in signature.parameters.values() if p.name != "fields"]

        @functools.wraps(func)
        def command(*args: Any, **kwargs: Any) -> Any:
            given = {n: kwargs.pop(n) for n in names if kwargs.get(n) is not None}
            for n in names:
                kwargs.pop(n, None)
            data: dict[str, Any] = {k: v for k, v in given.items() if k not in _OPTIONS}
            data["options"] = {k: v for k, v in given.items() if k in _OPTIONS}
            return func(*args, fields=parse(JobFields, data), **kwargs)

        command.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=[*own, *(_flag(n, model) for n, model in flags)]
        )
        return command  # type: ignore[return-value]

    return decorate
