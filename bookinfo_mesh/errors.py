"""The operator tools' one error type and exit codes: every failure ends as one message."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1  # the command ran and found a problem: invalid manifests, a mismatch, not ready
EXIT_BAD_INPUT = 2  # bad input, or nothing to work on (no stack, no URL, nothing answered)
EXIT_INCONCLUSIVE = 3  # the command ran, but the evidence decides neither way (analyze)
EXIT_INTERRUPTED = 130  # the shell's code for SIGINT (Ctrl-C)


class ToolError(Exception):
    """A failure to report to the user as its message alone, and the exit code it means."""

    def __init__(self, message: str, exit_code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.exit_code = exit_code
