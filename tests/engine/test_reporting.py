"""The live progress display starts only when a run lasts: short missions print nothing extra."""
from __future__ import annotations

import asyncio
import io

from reqon.engine.reporting import Reporter


class Terminal(io.StringIO):
    """A stream that says it is a terminal, as stderr does when a person watches the run."""

    def isatty(self) -> bool:
        return True


def test_a_run_that_ends_before_the_delay_never_starts_the_live_display() -> None:
    stream = Terminal()
    reporter = Reporter(mission="M", stream=stream, progress=True, progress_delay_s=3600)

    async def run() -> bool:
        reporter.start(1)
        await asyncio.sleep(0)
        waiting = reporter._live_timer is not None and reporter._live is None
        reporter.stop()
        return waiting

    assert asyncio.run(run()) is True
    assert reporter._live is None and reporter._live_timer is None
    assert stream.getvalue() == ""


def test_a_run_that_lasts_gets_the_live_display_until_it_stops() -> None:
    stream = Terminal()
    reporter = Reporter(mission="M", stream=stream, progress=True, progress_delay_s=0)

    async def run() -> bool:
        reporter.start(1)
        await asyncio.sleep(0.05)  # the zero-delay timer fires before this sleep's timer
        live = reporter._live is not None
        reporter.stop()
        return live

    assert asyncio.run(run()) is True
    assert reporter._live is None


def test_without_a_terminal_there_is_no_live_display_at_all() -> None:
    reporter = Reporter(mission="M", stream=io.StringIO(), progress=True, progress_delay_s=0)

    async def run() -> None:
        reporter.start(1)
        await asyncio.sleep(0.05)
        assert reporter._live is None and reporter._live_timer is None
        reporter.stop()

    asyncio.run(run())
