"""A FlowFabric worker on the Python SDK: `pip install ./sdk-python`, then
`python3 examples/python-worker/worker.py [address]` next to `npm start`. Ctrl-C/SIGTERM drains it."""
import sys

import flowfabric

worker = flowfabric.Worker(sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:50051",
                           lanes=["default"], max_concurrent_tasks=8, worker_id="py-example")


@worker.task("greet")
def greet(task: flowfabric.ClaimedTask):
    name = task.input_json()["name"]
    task.update_progress(50, f"greeting {name}")
    return {"greeting": f"hello, {name}", "attempt": task.attempt_index}


@worker.task()  # every other kind: the result is the input, byte-exact
def echo(task: flowfabric.ClaimedTask):
    return task.input


if __name__ == "__main__":
    worker.run()
