"""Printing for the commands: a reader that closes the pipe (`| head`) chose to stop reading.

A closed stdout is never a failure: the command's exit code stays its own (a verdict's
exit code is the verdict's), and nothing is printed about it.
"""

from __future__ import annotations

import os
import sys


def say(*lines: str) -> bool:
    """Print lines on stdout; False when the reader has gone (stdout then discards)."""
    try:
        for line in lines:
            print(line)
        sys.stdout.flush()
    except BrokenPipeError:
        quiet()
        return False
    return True


def quiet() -> None:
    """Send whatever stdout still holds nowhere, so the interpreter's last flush at exit
    does not fail on the closed pipe (Python's own advice for SIGPIPE)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
