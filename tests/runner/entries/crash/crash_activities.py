"""An activity that appends every call to a file, so a test can count executions across processes."""

import os


def record(args: dict) -> str:
    with open(os.environ["CRASH_LOG"], "a", encoding="utf-8") as log:
        log.write(args["step"] + "\n")
    return args["step"] + " recorded by pid " + str(os.getpid())
