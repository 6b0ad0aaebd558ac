"""User-facing errors: one paragraph that says what is wrong and how to fix it."""


class PodexpError(Exception):
    """An error caused by the user's input (config, data, checkpoint), not by a bug.

    The trainer prints ``str(err)`` without a traceback and exits with code 2.
    """


class ConfigError(PodexpError):
    """The composed configuration is invalid."""


class DataError(PodexpError):
    """A dataset is missing, incomplete or unreadable."""


def unknown_name(kind: str, name: str, valid) -> ConfigError:
    """The error for ``kind=name`` where ``name`` is not one of ``valid``."""
    options = ", ".join(sorted(valid))
    return ConfigError(
        f"Unknown {kind} '{name}'. Valid {kind} names: {options}. "
        f"Pick one of them on the command line, e.g. `{kind}={sorted(valid)[0]}`."
    )
