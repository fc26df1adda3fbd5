"""The errors the Python API raises for problems a user can fix, with the CLI's exit codes.

Every such error is a :class:`SparsedpError`: a one-line message (what, where, how to fix)
and the exit code ``sparsedp`` ends with for it (docs/faults.md). Anything else that escapes
the API is a bug in sparsedp.
"""

from __future__ import annotations

# Exit codes (docs/faults.md; README "Commands").
EXIT_OK = 0  # done: every trial of the experiment has a result
EXIT_INTERNAL = 1  # a bug in sparsedp (SPARSEDP_DEBUG=1 shows the traceback)
EXIT_BAD_INPUT = 2  # bad arguments, experiment file, data or environment; nothing was run
EXIT_TRIALS_FAILED = 3  # the run ended, but some trials are stored as failed
EXIT_STOPPED = 4  # the run stopped early (environment or systematic failure); rerun resumes
EXIT_BUSY = 5  # another run holds the results directory
EXIT_SIGINT = 130  # stopped by Ctrl-C (SIGINT); rerun resumes
EXIT_SIGTERM = 143  # stopped by SIGTERM; rerun resumes


class SparsedpError(Exception):
    """A problem the user can fix, as one line; ``exit_code`` is what the CLI exits with.

    ``2``: bad input or environment, nothing run; ``4``: a run stopped early (the stored
    trials are kept, run again to finish); ``5``: another run holds the results directory;
    ``130``/``143``: interrupted (:class:`RunInterrupted`). The original exception, where
    there was one, is ``__cause__``.
    """

    def __init__(self, message: str, exit_code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class RunInterrupted(SparsedpError, KeyboardInterrupt):
    """A run stopped by Ctrl-C (exit code 130) or SIGTERM (143); stored trials are kept.

    It is also a :class:`KeyboardInterrupt`, so code that handles Ctrl-C keeps working.
    """


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that every layer unwinds the same way."""
