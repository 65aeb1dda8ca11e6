"""The one error of reading an upload."""


class BatchFileError(Exception):
    """The file cannot be read as a table; the message says why in the clerk's words."""
