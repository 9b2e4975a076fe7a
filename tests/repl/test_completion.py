"""Completion: the pure analysis (`suggest`) over fixed names, and over a live session's names."""
from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document

from reqon.repl.completion import ReqonCompleter, Suggestion, suggest
from reqon.repl.display import Printer
from reqon.repl.commands import Names
from reqon.repl.session import Session

NAMES = Names(
    sources=["Shop"], stores=["books", "prices"], actions=["Fetch", "FetchAll", "Report"], transforms=["ToRow"],
    schemas=["Book"], variables={"response": {"items": [{"isbn": "1", "title": "A"}], "page": 1}, "bookCount": 3},
    store_fields={"books": ["isbn", "title", "pages"], "prices": ["isbn", "amount"]},
)


def texts(before_cursor: str, names: Names = NAMES) -> list[str]:
    return [s.text for s in suggest(before_cursor, names)]


def test_keywords_come_from_the_grammar() -> None:
    assert suggest("miss", NAMES) == [Suggestion("mission", "keyword")]
    assert "validate" in texts("val")
    assert "parallelMode" in texts("parallel")


def test_builtins_are_offered_as_functions() -> None:
    assert suggest("leng", NAMES) == [Suggestion("length", "function")]
    assert texts("sort") == ["sortBy"]  # the word typed in full is not offered again


def test_commands_and_their_arguments() -> None:
    assert texts(":s") == [":stores", ":show"]
    assert texts(":") == [":help", ":load", ":run", ":stores", ":show", ":ast", ":reset", ":quit"]
    assert suggest(":show b", NAMES) == [Suggestion("books", "store")]
    assert texts(":run Fe") == ["Fetch", "FetchAll"]
    assert texts(":show ") == ["books", "prices"]


def test_declared_names_and_variables_come_first() -> None:
    assert suggest("boo", NAMES) == [Suggestion("bookCount", "variable"), Suggestion("books", "store")]
    assert suggest("Sh", NAMES) == [Suggestion("Shop", "source")]
    assert suggest("ToR", NAMES) == [Suggestion("ToRow", "transform")]


def test_position_decides_the_kind_of_name() -> None:
    assert texts("store response -> ") == ["books", "prices", "Book"]
    assert texts("  jump F") == ["Fetch", "FetchAll"]
    assert texts("apply ") == ["ToRow"]
    assert texts("run [Fetch, R") == ["Report"]
    assert texts("run Fetch then ") == ["Fetch", "FetchAll", "Report"]


def test_fields_of_variables_and_store_records() -> None:
    assert texts("response.") == ["items", "page"]
    assert texts("response.items.") == ["isbn", "title"]
    assert texts("books.ti") == ["title"]
    assert texts("filter(books, .p") == ["pages"]
    assert texts("sortBy(prices, .am") == ["amount"]


def test_completer_replaces_the_word_being_typed(tmp_path: Path) -> None:
    completer = ReqonCompleter(lambda: NAMES)
    found = list(completer.get_completions(Document("count(boo"), CompleteEvent(completion_requested=True)))
    assert [(c.text, c.start_position, c.display_meta_text) for c in found] == [
        ("bookCount", -3, "variable"), ("books", -3, "store")]
    command = list(completer.get_completions(Document(":sho"), CompleteEvent(completion_requested=True)))
    assert [(c.text, c.start_position) for c in command] == [(":show", -4)]


def test_load_completes_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "shop.vague").write_text("", "utf-8")
    monkeypatch.chdir(tmp_path)
    completer = ReqonCompleter(lambda: NAMES)
    found = list(completer.get_completions(Document(":load sh"), CompleteEvent(completion_requested=True)))
    assert [c.text for c in found] == ["op.vague"]


def test_a_live_session_offers_what_was_declared_and_stored(tmp_path: Path) -> None:
    async def names() -> Names:
        session = Session(Printer(io.StringIO(), io.StringIO()), data_dir=tmp_path)
        await session.start()
        for text in ['store seen: memory("seen")', 'store {id: 1, colour: "red"} -> seen',
                     "action Tally {\n  let n = count(seen)\n}", 'let palette = {warm: "red"}']:
            await session.execute(text)
        found = session.names()
        await session.close()
        return found

    live = asyncio.run(names())
    assert texts("Ta", live) == ["Tally"]
    assert texts("pal", live) == ["palette"]
    assert texts("palette.", live) == ["warm"]
    assert texts("seen.co", live) == ["colour"]
    assert texts(":show s", live) == ["seen"]
    assert "response" not in live.variables  # bound to nothing yet: not worth offering


def test_call_completes_operation_ids_and_show_source_names_openapi_sources() -> None:
    names = Names(sources=["Shop", "Hub"], stores=["books"], actions=[], transforms=[], schemas=[], variables={},
                  store_fields={}, operations={"Hub": ["repos/list-for-org", "listThings", "getThing"]})
    assert suggest("call Hub.", names) == [Suggestion("getThing", "operation"), Suggestion("listThings", "operation"),
                                           Suggestion('"repos/list-for-org"', "operation")]
    assert texts("  call Hub.li", names) == ["listThings"]
    assert texts("call Shop.", names) != texts("call Hub.", names)  # a source without document: no operations
    assert texts(":show ", names) == ["books", "source"]
    assert suggest(":show source H", names) == [Suggestion("Hub", "source")]


def test_a_source_is_offered_between_the_method_and_the_path() -> None:
    """`get Shop "/books"` (§4.1): after a method, sources come first."""
    assert suggest("get Sh", NAMES) == [Suggestion("Shop", "source")]
    assert texts("  POST ")[0] == "Shop"


def test_builtins_are_offered_method_style_when_no_field_fits() -> None:
    """`response.items.filter(…)` (§5.8): fields win; built-ins (and `map`) when none fits."""
    assert texts("response.items.") == ["isbn", "title"]
    assert texts("response.items.ti") == ["title"]
    assert suggest("response.items.fil", NAMES) == [Suggestion("filter", "function")]
    assert texts("books.ma") == ["map", "mapEach", "matches", "max"]
