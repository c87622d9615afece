"""The build's input errors, apart from the modules that raise them so the CLI can catch them
without importing torch (`reportgen --help` and config mistakes answer at once).

Each message is one line naming the key, file or folder and what is accepted.
"""


def first_line(e: BaseException) -> str:
    """An exception's message cut to its first line (torch's run to pages), or its type when empty."""
    return str(e).splitlines()[0] if str(e) else e.__class__.__name__


class DataError(Exception):
    """Bad data input: a folder, file or image the build cannot use."""


class ModelError(Exception):
    """An architecture, checkpoint or weights file that cannot be used, or a run that diverged."""


class SettingError(Exception):
    """A setting that passed its own checks but does not fit the data or a model (a layer the model
    lacks, a query beyond the mapped images): one line naming the key; a config problem (exit 2)."""


class LayerError(Exception):
    """A layer name that the model does not have; the message lists the known names."""


class EvaluateError(Exception):
    """An evaluation setting that does not fit the data."""


class SiteError(Exception):
    """An output folder or template problem."""


class Problems(Exception):
    """Several of the errors above, found by the checks that run before any model trains, reported
    together (one line each) so that one mistake does not hide the next."""

    def __init__(self, problems: list[Exception]) -> None:
        self.problems = problems
        super().__init__("; ".join(map(str, problems)))

    @property
    def settings_only(self) -> bool:
        """All of them config problems (exit 2, as for one SettingError)."""
        return all(isinstance(p, SettingError) for p in self.problems)
