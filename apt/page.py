"""Printed text folded to the book page's width.

A notebook's printed output is clipped, not wrapped, where the page ends (about 90 characters in the HTML book),
so the chapters print long status lines through ``wrapped``, commands through ``command_lines``, and lines that
introduce a table through ``show``. ``counted`` writes a count with its noun in the right number.
"""

from __future__ import annotations

import textwrap


def counted(n: int, noun: str) -> str:
    """'1 seed', '2 seeds', '0 seeds': ``n`` and ``noun``, plural (a trailing s) unless n is 1."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def wrapped(text: str, width: int = 80) -> str:
    """``text`` with every line wrapped at ``width`` characters, continuations indented by two spaces; words
    (and hyphenated words) are never split."""
    return "\n".join(textwrap.fill(line, width, subsequent_indent="  ", break_on_hyphens=False,
                                   break_long_words=False)
                     for line in text.splitlines())


def command_lines(command: str, width: int = 88) -> str:
    """A shell ``command`` folded at ``width`` characters with `` \\`` line continuations, so that it can still be
    copied and pasted into a shell as it is printed."""
    # each line keeps two characters for the " \\" continuation; the next line's indent counts in its width
    lines = textwrap.wrap(command, width - 2, subsequent_indent="    ", break_on_hyphens=False,
                          break_long_words=False)
    return " \\\n".join(lines)


def show(text: str, width: int | None = 80) -> None:
    """Display ``text`` (wrapped at ``width``; ``None``: as it is, for text already folded, such as a command from
    ``command_lines``, which wrapping again would break) as an output block of its own, in place.

    The book merges all printed (stream) outputs of a cell into its first one (myst-nb's ``nb_merge_streams``,
    which keeps a progress bar's many updates in one block). A line printed before each of several tables would
    therefore be moved above the first table; a display output is not merged and stays next to its table.
    """
    from IPython.display import Pretty, display

    display(Pretty(text if width is None else wrapped(text, width)))
