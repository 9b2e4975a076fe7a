"""`reqon repl`: an interactive session for exploring APIs and shaping missions (LANGUAGE.md §8).

Layout by concern, after pgcli:

* `inputs` — what an input is (expression, steps, declarations, mission, command) and its parse;
* `session` — the `Session` (state, evaluation, commands) and the `run_repl` entry point;
* `display` — values as JSON, diagnostics, store tables;
* `completion` — pure completion logic and the prompt_toolkit `Completer`;
* `keys` — key bindings (Enter submits only a complete input);
* `terminal` — the prompt_toolkit session and the interactive loop.
"""
