"""One promobulk stack on one machine, started and stopped in order: the one place that does it,
for `promobulk up` and `promobulk demo`.

Start: hold the state folder (one stack at a time; what a killed predecessor left running is
stopped first), Postgres and Valkey (embedded, their data in the state folder, unless given),
the schema, the simulator when asked, the workers (which also sweep), the HTTP API when asked,
and the file that lets other shells find it all (`worker.stackfile`); each step reported as it
ends. Stop, in reverse, so that nothing is lost: other shells stop finding the stack; the API
stops taking requests; the workers get a warm shutdown, in which a running chunk is released at
its next call and sent again; the simulator saves its state for the next start; then Valkey
(its queue kept on disk) and Postgres.

A stop that must not wait (a second Ctrl-C, or workers still busy after the grace period) kills
the workers instead: their chunks stay `running` until their leases expire, except on an
embedded database, which no other worker can use, where the next start queues them again at
once.
"""

from worker.stack.spec import Interrupted, Report, SimulatorSpec, StackFailed, StackSpec, Started
from worker.stack.stack import Stack

__all__ = [
    "Interrupted",
    "Report",
    "SimulatorSpec",
    "Stack",
    "StackFailed",
    "StackSpec",
    "Started",
]
