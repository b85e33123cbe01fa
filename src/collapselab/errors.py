"""The project's named errors and what each means as an exit code.

Every error raised on purpose (bad input a user can fix, an unreachable database) is a
`CollapselabError`: the CLI prints its message as one line, `error: <message>` (a
`ConfigErrors` as one such line per problem), and exits with its `exit_code`; the Python
API raises it as is. Anything else is a bug and keeps its
traceback.

Exit codes, the same for every command:
    0  done
    1  the command failed while running (a bug, or a step that crashed)
    2  bad input: a config key or value, a data or predictions file, a record or field,
       a run directory, a model name
    3  the results database cannot be opened or reached
    130, 143  stopped by Ctrl-C (SIGINT) or SIGTERM (`Interrupted`)
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_STORE = 3


class CollapselabError(Exception):
    """Base of every named error; the message is one line that names what is wrong."""

    exit_code: int = EXIT_BAD_INPUT


class ConfigError(CollapselabError, ValueError):
    """A config file or override is invalid; the message names the key path and value."""


class ConfigErrors(ConfigError):
    """Every problem `collapselab.checks` found in one config, each naming its key.

    The message is one line (all problems joined by "; "); the CLI prints a headline and
    then one line per problem.

    Attributes:
        problems: One line per problem, each starting with the config key it is about.
        source: Where the config came from (a YAML path, a sweep point), or None.
    """

    def __init__(self, problems: list[str], source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        prefix = f"{source}: " if source else ""
        if len(self.problems) == 1:
            super().__init__(prefix + self.problems[0])
        else:
            super().__init__(f"{self.headline()}: {'; '.join(self.problems)}")

    def headline(self) -> str:
        """`<source>: <n> problems`, the line the CLI prints above the problems."""
        return f"{self.source + ': ' if self.source else ''}{len(self.problems)} problems"


class RunError(CollapselabError, ValueError):
    """A run directory cannot be used as asked; the message says why and what to do."""


class RunLocked(RunError):
    """Another process is writing the run directory; the message names it (host, pid, start)."""


class StoreError(CollapselabError, RuntimeError):
    """A run directory, an export or a request (run id, arm, metric) is not what the store
    expects; says which. Bad input: exit code 2."""


class DatabaseUnreachable(StoreError):
    """The results database cannot be opened or reached: a URL that does not parse, a
    missing driver, a server that does not answer, a file that is not a database, a
    schema newer than this collapselab. Exit code 3."""

    exit_code = EXIT_STORE


class DiskFull(CollapselabError, OSError):
    """A write ran out of space (ENOSPC, or a disk quota); the message names the file, the
    space the write needed and the space free. Nothing partial is left behind (every write
    goes to a temporary name first), so the same command continues once space is freed.
    Exit code 1: the command failed while running, the input was fine."""

    exit_code = EXIT_FAILED


class DatabaseDown(DatabaseUnreachable):
    """The results database did not answer (a server restarting, a network blip, a SQLite
    file locked past its busy timeout): unlike a bad URL or a missing driver, worth trying
    again. Exit code 3."""


class ModelError(CollapselabError, ValueError):
    """A model could not be resolved or loaded; the message names it and where it was looked for."""


class Interrupted(KeyboardInterrupt):
    """The process was asked to stop (SIGTERM; Ctrl-C raises KeyboardInterrupt itself).

    A KeyboardInterrupt, so everything that cleans up after Ctrl-C cleans up after it too,
    and a run stopped either way is recorded as `interrupted`. The CLI exits 128 + the signal.
    """

    def __init__(self, signal_number: int, signal_name: str) -> None:
        super().__init__(signal_name)
        self.signal_number, self.signal_name = signal_number, signal_name
