"""Drain throughput of the Python SDK: the bench's `drain` scenario (bench/run.ts) with a Python worker.

After a warm-up drain of 2,000 (not recorded), N no-op executions are pre-created on one lane; then one worker with C slots starts and completes
them all; jobs/s = N / (time from the worker's start to its last completion answered, i.e.
committed). The gateway runs in its own process (`node --import tsx gateway/src/main.ts`) with its
embedded redis-server, AOF fsync every second — as `npm run bench` runs the TS SDK's drain.

    PYTHONPATH=sdk-python/src:sdk-python/tests /usr/bin/python3 sdk-python/bench/drain.py \\
        [--n 5000] [--concurrency 10,100] [--worker thread|aio] [--batching] [--runs 1]

Compare with the TS SDK: `npm run bench -- --only flowfabric --scenarios drain --n 5000`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

from harness import Gateway  # noqa: E402

import flowfabric as ff  # noqa: E402
from flowfabric.aio import AsyncWorker  # noqa: E402

LANE = "bench"


def precreate(client: ff.Client, n: int) -> None:
    for i in range(0, n, 1000):
        client.create_executions([ff.ExecutionSpec(LANE, "noop", b'{"s":%d}' % s) for s in range(i, min(n, i + 1000))])


def drain_thread(address: str, n: int, concurrency: int, batching: bool) -> float:
    done = threading.Event()
    count = [0]
    lock = threading.Lock()

    def handler(task):
        with lock:
            count[0] += 1
            if count[0] == n:
                done.set()
        return b"ok"

    t0 = time.perf_counter()
    worker = ff.Worker(address, lanes=[LANE], max_concurrent_tasks=concurrency, handle_signals=False, batching=batching)
    worker.start(handler)
    if not done.wait(600):
        raise RuntimeError(f"only {count[0]} of {n} handled")
    while worker.active_task_count:  # the last completions' answers: committed
        time.sleep(0.001)
    elapsed = time.perf_counter() - t0
    worker.stop(5)
    return elapsed


def drain_aio(address: str, n: int, concurrency: int, batching: bool) -> float:
    async def main() -> float:
        done = asyncio.Event()
        count = [0]

        async def handler(task):
            count[0] += 1
            if count[0] == n:
                done.set()
            return b"ok"

        t0 = time.perf_counter()
        worker = AsyncWorker(address, lanes=[LANE], max_concurrent_tasks=concurrency, handle_signals=False,
                             batching=batching)
        await worker.start(handler)
        await asyncio.wait_for(done.wait(), 600)
        while worker.active_task_count:
            await asyncio.sleep(0.001)
        elapsed = time.perf_counter() - t0
        await worker.stop(5)
        return elapsed

    return asyncio.run(main())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=5000)
    p.add_argument("--concurrency", default="10,100")
    p.add_argument("--worker", choices=("thread", "aio"), default="thread")
    p.add_argument("--batching", action="store_true")
    p.add_argument("--runs", type=int, default=1)
    args = p.parse_args()
    run = drain_thread if args.worker == "thread" else drain_aio
    gateway = Gateway(env={"FLOWFABRIC_PARTITIONS": "16", "FLOWFABRIC_LEASE_TTL_MS": "30000",
                           "FLOWFABRIC_HEARTBEAT_INTERVAL_MS": "10000"}).start()
    try:
        client = ff.Client(gateway.grpc_address)
        precreate(client, 2000)  # warm-up, not recorded (as bench/run.ts does)
        run(gateway.grpc_address, 2000, 10, args.batching)
        print(f"| worker | concurrency | n | jobs/s (runs) |\n|---|---:|---:|---|")
        for c in (int(x) for x in args.concurrency.split(",")):
            rates = []
            for _ in range(args.runs):
                precreate(client, args.n)
                rates.append(args.n / run(gateway.grpc_address, args.n, c, args.batching))
            label = f"python {args.worker}{' +batching' if args.batching else ''}"
            print(f"| {label} | {c} | {args.n} | {statistics.median(rates):,.0f} "
                  f"({', '.join(f'{r:,.0f}' for r in rates)}) |", flush=True)
        client.close()
    finally:
        gateway.cleanup()


if __name__ == "__main__":
    main()
