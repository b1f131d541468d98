"""A tracer for `bench/crash.py --trace`: where a kill's duplicates come from.

Python imports `sitecustomize` at start-up from the path; bench/crash.py puts this
directory first on the workers' PYTHONPATH and names a directory in
TIDINGS_BENCH_TRACE_DIR. Each `tidings worker` then writes one line per event to
trace-<pid>.log there, each with os.write at once (a SIGKILL loses nothing written):

    H <time> <message id>            its content is written (SMTP), its reply awaited
    A <time> <message id> <kind>     its outcome handed to the recorder (s sent, f failed,
                                     q queued again, d deferred)
    WS <time> <count>                a record step starts
    WE <time> <count> <ids …>        a record step committed

It wraps private methods of the dispatcher and the SMTP channel: a bench tool, not a
product interface. Any other process, or without the variable, it does nothing.
"""

import os
import sys
import time

_DIR = os.environ.get("TIDINGS_BENCH_TRACE_DIR")


def _install(directory: str) -> None:
    from tidings.channels import smtp
    from tidings.dispatcher import recorder
    from tidings.outbox.status import MessageStatus

    path = os.path.join(directory, f"trace-{os.getpid()}.log")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def line(text: str) -> None:
        os.write(fd, (text + "\n").encode())

    kinds = {MessageStatus.SENT: "s", MessageStatus.FAILED: "f", MessageStatus.QUEUED: "q"}
    init, add, finish = recorder.Recorder.__init__, recorder.Recorder.add, smtp.SmtpChannel._finish

    def traced_init(self, write, **options):  # type: ignore[no-untyped-def]
        async def traced(outcomes):  # type: ignore[no-untyped-def]
            line(f"WS {time.time():.4f} {len(outcomes)}")
            await write(outcomes)
            ids = " ".join(str(o.message_id) for o in outcomes)
            line(f"WE {time.time():.4f} {len(outcomes)} {ids}")

        init(self, traced, **options)

    def traced_add(self, outcomes):  # type: ignore[no-untyped-def]
        now = time.time()
        for o in outcomes:
            line(f"A {now:.4f} {o.message_id} {'d' if o.deferred else kinds.get(o.status, '?')}")
        add(self, outcomes)

    async def traced_finish(self, connection, message, run, *, last):  # type: ignore[no-untyped-def]
        line(f"H {time.time():.4f} {run.batch[message.position].message_id}")
        return await finish(self, connection, message, run, last=last)

    recorder.Recorder.__init__ = traced_init
    recorder.Recorder.add = traced_add
    smtp.SmtpChannel._finish = traced_finish


if _DIR and sys.argv[-1:] == ["worker"]:
    _install(_DIR)
