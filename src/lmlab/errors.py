"""The one exception type for user mistakes and bad input.

Library code raises `LmlabError` with a message that says what was wrong and how to fix it; the CLI prints it on
one line and exits with status 2 instead of showing a traceback. Bugs stay ordinary exceptions, with tracebacks.
"""


class LmlabError(Exception):
    """A problem with the user's input (paths, options, files), explained in one line."""
