"""Uses the example library a little, then exits: for counting exits that are not clean.

python examples/store_pyo3/exit_check.py store_pyo3     # or: store (the asyncffi build)
for i in $(seq 30); do python examples/store_pyo3/exit_check.py store_pyo3 || echo $?; done
"""

import asyncio
import importlib
import sys

store = importlib.import_module(sys.argv[1] if len(sys.argv) > 1 else "store_pyo3")


async def main() -> None:
    async for _ in store.events(3, 10):
        pass
    await store.for_each(lambda i: i * 2, 5)
    with store.Store(2) as s:
        await s.set("a", b"1")
        await s.get("a")


asyncio.run(main())
