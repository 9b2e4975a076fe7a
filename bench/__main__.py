"""`python -m bench` (or `make bench`): every benchmark, one after another."""
from __future__ import annotations

import sys

from bench import daemon, engine, parse, patterns


def main() -> None:
    print("## bench/parse\n")
    sys.argv = [sys.argv[0]]
    parse.main()
    print("\n## bench/patterns\n")
    patterns.main()
    print("\n## bench/engine\n")
    engine.main()
    print("\n## bench/daemon\n")
    daemon.main()


if __name__ == "__main__":
    main()
