"""bench/httpx_floor: the hand-written httpx script that `bench.engine` runs as the floor to beat.

What a user would write instead of a mission: one `httpx.AsyncClient` (its default
transport), plain loops, `asyncio.gather` for the branches, a semaphore for the
concurrency and a dict as the store. It does the same requests as the mission of the
same name in `bench.engine`, and is timed the same way: as a whole process, from the
shell. It imports nothing from reqon, so its start-up is that of httpx alone.

Run:  python -m bench.httpx_floor WORKLOAD BASE_URL [--items N]
      (WORKLOAD: startup, fanout, fanout_par, wide, throughput)
"""
from __future__ import annotations

import argparse
import asyncio

import httpx


async def list_items(client: httpx.AsyncClient, items: int) -> list[dict]:
    found: list[dict] = []
    page = 1
    while True:
        body = (await client.get("/pages", params={"size": 1000, "total": items, "page": page})).json()
        found.extend(body["items"])
        if len(body["items"]) < 1000:
            return found
        page += 1


async def startup(client: httpx.AsyncClient, _: int) -> int:
    store = {}
    item = (await client.get("/items/1")).json()
    store[str(item["id"])] = item
    return len(store)


async def fanout(client: httpx.AsyncClient, items: int) -> int:
    store = {str(i["id"]): i for i in await list_items(client, items)}
    for key in list(store):
        (await client.get(f"/items/{key}")).raise_for_status()
    return len(store)


async def fanout_par(client: httpx.AsyncClient, items: int, concurrency: int = 10) -> int:
    store = {str(i["id"]): i for i in await list_items(client, items)}
    gate = asyncio.Semaphore(concurrency)

    async def one(key: str) -> None:
        async with gate:
            (await client.get(f"/items/{key}")).raise_for_status()

    await asyncio.gather(*(one(k) for k in store))
    return len(store)


async def wide(client: httpx.AsyncClient, _: int, branches: int = 10, pages: int = 20) -> int:
    async def branch(b: int) -> int:
        page, seen = 1, 0
        while True:
            body = (await client.get("/pages", params={"size": 10, "total": pages * 10, "branch": b,
                                                       "page": page})).json()
            seen += len(body["items"])
            if len(body["items"]) < 10:
                return seen
            page += 1

    return sum(await asyncio.gather(*(branch(b) for b in range(branches))))


async def throughput(client: httpx.AsyncClient, items: int) -> int:
    listed = await list_items(client, items)
    results: dict[str, dict] = {}
    gate = asyncio.Semaphore(50)

    async def one(item: dict) -> None:
        async with gate:
            got = (await client.get(f"/items/{item['id']}")).json()
            results[str(got["id"])] = got

    await asyncio.gather(*(one(i) for i in listed))
    return len(results)


WORKLOADS = {"startup": startup, "fanout": fanout, "fanout_par": fanout_par, "wide": wide,
             "throughput": throughput}


async def main_async(workload: str, base: str, items: int) -> int:
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:
        return await WORKLOADS[workload](client, items)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workload", choices=sorted(WORKLOADS))
    parser.add_argument("base")
    parser.add_argument("--items", type=int, default=2008)
    args = parser.parse_args()
    print(asyncio.run(main_async(args.workload, args.base, args.items)))


if __name__ == "__main__":
    main()
