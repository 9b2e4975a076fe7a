"""Key bindings of the REPL prompt, one docstring per binding (as pgcli's `key_bindings.py`).

Ctrl-C and Ctrl-D keep prompt_toolkit's defaults: Ctrl-C abandons the input
(the loop catches the KeyboardInterrupt and prompts again) and Ctrl-D on an
empty line ends the session (EOFError, exit 0).
"""
from __future__ import annotations

from collections.abc import Callable

from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent

_OPENERS = "([{"


def repl_bindings(is_complete: Callable[[str], bool]) -> KeyBindings:
    """Bindings for a multi-line prompt whose Enter runs the input only once it is complete."""
    bindings = KeyBindings()

    @bindings.add("enter")
    def _enter(event: KeyPressEvent) -> None:
        """Take the selected completion; else run a complete input; else start a new, indented line."""
        buffer = event.current_buffer
        state = buffer.complete_state
        if state is not None and state.current_completion is not None:
            buffer.apply_completion(state.current_completion)
            return
        if is_complete(buffer.text):
            buffer.validate_and_handle()
            return
        buffer.insert_text("\n" + next_indent(buffer.document.current_line_before_cursor))

    @bindings.add("escape", "enter")
    def _newline(event: KeyPressEvent) -> None:
        """Alt-Enter: a line break even where Enter would run the input."""
        event.current_buffer.insert_text("\n" + next_indent(event.current_buffer.document.current_line_before_cursor))

    for closer in ")]}":
        bindings.add(closer)(_dedenting(closer))

    return bindings


def _dedenting(closer: str) -> Callable[[KeyPressEvent], None]:
    def insert(event: KeyPressEvent) -> None:
        """A closing bracket typed first on a line moves it back one level, under its opener."""
        buffer = event.current_buffer
        before = buffer.document.current_line_before_cursor
        if before and not before.strip():
            buffer.delete_before_cursor(min(2, len(before)))
        buffer.insert_text(closer)
    return insert


def next_indent(line: str) -> str:
    """Keep the current line's indentation, two spaces more after an opening bracket."""
    indent = line[:len(line) - len(line.lstrip())]
    return indent + "  " if line.rstrip().endswith(tuple(_OPENERS)) else indent
