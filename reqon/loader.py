"""From a path on the command line to parsed, merged missions (LANGUAGE.md §2.1, §2.4).

A file is one program; a directory is one multi-file mission: `mission.vague`
(or `mission.reqon`) plus every part file below it. Part declarations are merged
into the mission they belong to, keeping their own spans, so every later
diagnostic names the file that holds the offending text.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from reqon import ast
from reqon.diagnostics import Diagnostic, error
from reqon.parser import parse_text

EXTENSIONS = (".vague", ".reqon")
DATA_DIR_NAME = ".reqon-data"


@dataclass
class Loaded:
    """Everything read for one command-line path."""

    files: dict[str, str] = field(default_factory=dict)  # display name -> text
    programs: list[ast.Program] = field(default_factory=list)
    missions: list[ast.Mission] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    directory: Path | None = None  # set for multi-file missions

    @property
    def has_errors(self) -> bool:
        return any(d.is_error for d in self.diagnostics)

    def file_order(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.files)}


def load_path(path: str, *, parts_allowed: bool = True) -> Loaded:
    """Load a file or a multi-file directory; problems become diagnostics, never exceptions."""
    p = Path(path)
    loaded = Loaded()
    if p.is_dir():
        _load_directory(p, path, loaded)
    elif p.exists():
        program = _read_and_parse(p, path, loaded)
        if program is not None:
            loaded.missions = _assemble_single(program, loaded)
    else:
        loaded.diagnostics.append(error("E216", ast.Span(path, 1, 1, 1, 1), f"no such file or directory: {path}"))
    return loaded


def load_text(text: str, name: str = "<input>") -> Loaded:
    """Load source text that is not on disk (the REPL, tests, the library API)."""
    loaded = Loaded()
    loaded.files[name] = text
    program, diags = parse_text(text, name)
    loaded.diagnostics.extend(diags)
    if program is not None:
        loaded.programs.append(program)
        loaded.missions = _assemble_single(program, loaded)
    return loaded


def _read_and_parse(p: Path, display: str, loaded: Loaded) -> ast.Program | None:
    try:
        raw = p.read_bytes()
    except OSError as exc:
        loaded.diagnostics.append(error("E216", ast.Span(display, 1, 1, 1, 1),
                                        f"cannot read {display}: {exc.strerror or exc}"))
        return None
    text = _decode(raw, display, loaded)
    if text is None:
        return None
    loaded.files[display] = text
    program, diags = parse_text(text, display)
    loaded.diagnostics.extend(diags)
    if program is not None:
        loaded.programs.append(program)
    return program


def _decode(raw: bytes, display: str, loaded: Loaded) -> str | None:
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        from reqon.syntax_errors import position

        prefix = raw[:exc.start].decode("utf-8", errors="replace")
        loaded.files[display] = raw.decode("utf-8", errors="replace")
        span = position(prefix + "?", len(prefix), display)
        loaded.diagnostics.append(error("E105", span, f"the file is not valid UTF-8 (byte 0x{raw[exc.start]:02x})",
                                        "save the file as UTF-8"))
        return None


def _assemble_single(program: ast.Program, loaded: Loaded) -> list[ast.Mission]:
    missions = [d for d in program.declarations if isinstance(d, ast.Mission)]
    parts = [d for d in program.declarations if not isinstance(d, ast.Mission)]
    if not missions:
        loaded.diagnostics.append(error("E216", _file_start(program.file),
                                        "the file holds no mission", "declare one with 'mission Name { … }'"))
        return []
    if len(missions) > 1 and parts:
        for part in parts:
            loaded.diagnostics.append(error(
                "E216", part.name.span,
                f"top-level {_kind(part)} '{part.name.name}' in a file with several missions",
                "move it into the mission block it belongs to"))
        return missions
    if parts:
        return [_merge(missions[0], parts)]
    return missions


def _load_directory(directory: Path, display: str, loaded: Loaded) -> None:
    loaded.directory = directory
    root, ext = _root_file(directory)
    if root is None:
        loaded.diagnostics.append(error("E216", ast.Span(display, 1, 1, 1, 1),
                                        f"directory {display} has no mission.vague",
                                        "a multi-file mission needs a root file named mission.vague",
                                        *_separate_files_hint(directory, display)))
        return
    root_display = str(Path(display) / root.name)
    program = _read_and_parse(root, root_display, loaded)
    part_programs = []
    for part in _part_files(directory, root, ext):
        part_display = str(Path(display) / part.relative_to(directory))
        part_program = _read_and_parse(part, part_display, loaded)
        if part_program is not None:
            part_programs.append(part_program)
    if program is None:
        return
    missions = [d for d in program.declarations if isinstance(d, ast.Mission)]
    if len(missions) != 1:
        loaded.diagnostics.append(error("E216", _file_start(root_display),
                                        f"the root file must hold exactly one mission, found {len(missions)}"))
        return
    parts = [d for d in program.declarations if not isinstance(d, ast.Mission)]
    for part_program in part_programs:
        parts.extend(_part_declarations(part_program, loaded))
    loaded.missions = [_merge(missions[0], parts)]


def _separate_files_hint(directory: Path, display: str) -> tuple[str, ...]:
    """A folder of independent missions (like `examples/`) is checked file by file."""
    if any(directory.glob("*.vague")):
        return (f"to check each file on its own: reqon check {Path(display) / '*.vague'}",)
    return ()


def _root_file(directory: Path) -> tuple[Path | None, str]:
    for ext in EXTENSIONS:
        candidate = directory / f"mission{ext}"
        if candidate.is_file():
            return candidate, ext
    return None, EXTENSIONS[0]


def _part_files(directory: Path, root: Path, ext: str) -> list[Path]:
    found = []
    for path in directory.rglob(f"*{ext}"):
        rel = path.relative_to(directory)
        if path == root or any(part.startswith(".") or part == DATA_DIR_NAME for part in rel.parts[:-1]):
            continue
        if path.is_file():
            found.append(path)
    return sorted(found, key=lambda p: p.relative_to(directory).as_posix())


def _part_declarations(program: ast.Program, loaded: Loaded) -> list[ast.Part]:
    parts: list[ast.Part] = []
    for decl in program.declarations:
        if isinstance(decl, ast.Mission):
            loaded.diagnostics.append(error("E216", decl.name.span,
                                            "a part file may not hold a mission block",
                                            "sources, stores and the run pipeline belong in mission.vague"))
        else:
            parts.append(decl)
    return parts


def _merge(mission: ast.Mission, parts: list[ast.Part]) -> ast.Mission:
    return dataclasses.replace(
        mission,
        actions=mission.actions + tuple(p for p in parts if isinstance(p, ast.Action)),
        schemas=mission.schemas + tuple(p for p in parts if isinstance(p, ast.Schema)),
        transforms=mission.transforms + tuple(p for p in parts if isinstance(p, ast.Transform)),
    )


def _kind(part: ast.Part) -> str:
    return {ast.Action: "action", ast.Schema: "schema", ast.Transform: "transform"}[type(part)]


def _file_start(file: str) -> ast.Span:
    return ast.Span(file, 1, 1, 1, 1)
