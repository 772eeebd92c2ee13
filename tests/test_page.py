"""apt.page: printed text folded to the page without losing or splitting a word."""

from __future__ import annotations

import subprocess

from hypothesis import given
from hypothesis import strategies as st

from apt.page import command_lines, counted, show, wrapped

WORDS = st.lists(st.text(alphabet="abcdefghij-=/.,0123456789", min_size=1, max_size=30), min_size=1, max_size=40)


def test_wrapped_folds_every_line_at_the_width_and_indents_continuations():
    text = "a " * 60 + "\n" + "short line"
    folded = wrapped(text.strip(), width=30)
    lines = folded.splitlines()
    assert max(map(len, lines)) <= 30 and lines[-1] == "short line"
    assert all(line.startswith("  ") for line in lines[1:-1]) and not lines[0].startswith(" ")
    assert folded.replace("\n  ", " ").replace("\n", " ").split() == text.split()


@given(words=WORDS)
def test_wrapped_keeps_every_word_whole(words):
    folded = wrapped(" ".join(words), width=20)
    assert folded.split() == words


@given(words=WORDS)
def test_command_lines_only_insert_continuations_between_words(words):
    command = " ".join(words)
    folded = command_lines(command, width=24)
    # bash reads " \\<newline>    " as the single space it replaced (shlex does not know continuations)
    assert folded.replace(" \\\n    ", " ") == command
    assert all(len(line) <= 24 or " " not in line.strip(" \\") for line in folded.splitlines())


def test_a_folded_command_runs_in_a_shell_as_printed():
    command = "printf '%s|' " + " ".join(f"--option-{i}=value" for i in range(12))
    folded = command_lines(command, width=40)
    assert folded.count("\n") >= 3
    out = subprocess.run(["bash", "-c", folded], capture_output=True, text=True, check=True, timeout=30).stdout
    assert out == "".join(f"--option-{i}=value|" for i in range(12))


def displayed(text: str, **kwargs):
    """What ``show(text, **kwargs)`` publishes inside an IPython shell (as in a notebook), and what it printed."""
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    InteractiveShell.instance()  # display() publishes outputs only inside an IPython shell
    try:
        with capture_output() as captured:
            show(text, **kwargs)
    finally:
        InteractiveShell.clear_instance()
    return [o.data["text/plain"] for o in captured.outputs], captured.stdout


def test_show_displays_the_wrapped_text_as_its_own_output_not_as_printed_text():
    outputs, printed = displayed("profile cpu: " + "a " * 50)
    assert printed == ""
    assert outputs == [wrapped("profile cpu: " + "a " * 50)]


def test_show_leaves_already_folded_text_as_it_is():
    folded = command_lines("python run.py " + " ".join(f"--flag-{i} value" for i in range(12)), width=40)
    assert displayed(folded, width=None)[0] == [folded]
    assert wrapped(folded, 30) != folded  # wrapping it again would have broken the continuations


def test_counted_uses_the_singular_for_one_only() -> None:
    assert [counted(n, "seed") for n in (0, 1, 2)] == ["0 seeds", "1 seed", "2 seeds"]
