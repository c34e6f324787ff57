"""Drives sensory_client.torch against a running service for test/python-torch.test.ts.

    check_torch.py MODE URL KEY DATASET [options]

Modes print one JSON line at the end:
  plain     a plain torch DataLoader with --workers workers and no order id, over the dataset
            and over the legacy SensoryIterableDataset(...).torch(): how many orders each placed,
            the samples, the batches' shapes and dtypes
  stateful  the dataset's own state_dict()/load_state_dict() (what torchdata's
            StatefulDataLoader calls in each worker): --stop-after batches, the state through
            JSON, a new dataset resumed from it; the slots before and after
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from torch.utils.data import DataLoader  # noqa: E402

import sensory_client  # noqa: E402
from sensory_client import Client  # noqa: E402
from sensory_client.torch import SensoryIterableDataset  # noqa: E402


def emit(value):
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()


def check_plain(factory, args):
    client = factory()
    before = len(client.orders())
    dataset = SensoryIterableDataset(factory, args.dataset, batch_size=args.batch, size=args.size, seed=3)
    batches = [(list(x.shape), str(x.dtype), str(y.dtype)) for x, y in DataLoader(dataset, batch_size=None, num_workers=args.workers)]
    placed = client.orders()[: len(client.orders()) - before]
    legacy = sensory_client.SensoryIterableDataset(factory, args.dataset, args.size, args.batch, seed=4).torch()
    middle = len(client.orders())
    legacy_batches = [list(x.shape) for x, y in DataLoader(legacy, batch_size=None, num_workers=args.workers)]
    legacy_placed = client.orders()[: len(client.orders()) - middle]
    emit(
        {
            "placed": [{"id": o["id"], "ranks": o["ranks"], "status": o["status"], "delivered": o["samples"]["delivered"]} for o in placed],
            "samples": sum(shape[0] for shape, _, _ in batches),
            "batches": batches,
            "legacyPlaced": [{"ranks": o["ranks"], "status": o["status"], "delivered": o["samples"]["delivered"]} for o in legacy_placed],
            "legacySamples": sum(shape[0] for shape in legacy_batches),
            "legacyShape": legacy_batches[0],
        }
    )


def check_stateful(factory, args):
    dataset = SensoryIterableDataset(factory, args.dataset, batch_size=args.batch, size=args.size, seed=5)
    before = []
    stream = iter(dataset)
    for _ in range(args.stop_after):
        next(stream)
        before.extend(dataset.info["slots"])
    state = json.loads(json.dumps(dataset.state_dict()))
    stream.close()  # abandoned mid-stream, as a killed trainer
    resumed = SensoryIterableDataset(factory, args.dataset, batch_size=args.batch, size=args.size, seed=5)
    resumed.load_state_dict(state)
    after = []
    for _ in resumed:
        after.extend(resumed.info["slots"])
    emit({"order": state["plan"]["order"], "before": before, "after": after, "state": state["parts"]})


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["plain", "stateful"])
    parser.add_argument("url")
    parser.add_argument("key")
    parser.add_argument("dataset")
    parser.add_argument("--size", type=int, default=40)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--stop-after", type=int, default=3)
    args = parser.parse_args()
    factory = lambda: Client(args.url, args.key)  # noqa: E731
    {"plain": check_plain, "stateful": check_stateful}[args.mode](factory, args)


if __name__ == "__main__":
    main()
