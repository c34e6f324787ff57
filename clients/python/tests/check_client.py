"""Drives the sensory_client package against a running service for test/python-client.test.ts.

    check_client.py MODE URL KEY DATASET [options]

Modes print one JSON line at the end (the test checks it against the service):
  batch     the same batch as uint8/index, float32/one-hot and nchw/int64 (read into the
            client's reused buffer): shapes, dtypes, labels, a digest
  order     iterates an order, appending each chunk's slots to --slots as they arrive and
            keeping the cursor after it in --checkpoint (read back at start to resume);
            --order-id resumes one; --stop-after K pauses (prints "paused") after K chunks,
            as a trainer busy training when it is killed
  upload    uploads --file into --category twice (stored, then a duplicate)
  errors    the exceptions of a missing dataset, a wrong key and a too-large batch
  adapters  SensorySequence and SensoryIterableDataset, without importing keras or torch
"""

import argparse
import hashlib
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402

from sensory_client import Client, SensoryError, SensoryIterableDataset, SensorySequence  # noqa: E402


def emit(value):
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()


def digest(array):
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def check_batch(client, args):
    x, y = client.batch(args.dataset, args.size, seed=args.seed)
    fx, fy = client.batch(args.dataset, args.size, seed=args.seed, dtype="float32", labels="onehot")
    assert np.array_equal(fx, (x.astype(np.float32) / np.float32(255)).astype(np.float32)), "float32 is uint8/255"
    assert np.array_equal(fy.argmax(axis=1), y), "one-hot rows match the index labels"
    tx, ty = client.batch(args.dataset, args.size, seed=args.seed, layout="nchw", label_dtype="int64", reuse=True)
    assert np.array_equal(tx, x.transpose(0, 3, 1, 2)), "channels first holds the same pixels"
    assert ty.dtype == np.int64 and np.array_equal(ty, y), "int64 labels are the same indexes"
    reused = tx.ctypes.data
    rx, _ = client.batch(args.dataset, args.size, seed=args.seed, reuse=True)
    assert rx.ctypes.data == reused, "reuse=True reads into the same buffer again"
    assert np.array_equal(rx, x)
    emit(
        {
            "uint8": {"shape": list(x.shape), "dtype": str(x.dtype), "labels": y.tolist(), "labelsDtype": str(y.dtype), "sha256": digest(x)},
            "float32": {"shape": list(fx.shape), "dtype": str(fx.dtype), "labelsShape": list(fy.shape), "labelsDtype": str(fy.dtype)},
            "torch": {"shape": list(tx.shape), "labelsDtype": str(ty.dtype)},
        }
    )


def check_order(client, args):
    # A trainer's checkpoint: the cursor after the last chunk it trained on, kept with its slots.
    cursor = None
    if args.checkpoint and os.path.exists(args.checkpoint):
        with open(args.checkpoint) as checkpoint:
            cursor = checkpoint.read().strip() or None
    orders = client.order(args.dataset, args.size, order_id=args.order_id, max=args.max, wait_ms=args.wait_ms, cursor=cursor, seed=args.seed, shardSize=args.shard_size)
    sys.stdout.write("order %s\n" % orders.order_id)
    sys.stdout.flush()
    chunks = 0
    samples = 0
    with open(args.slots, "a") as slots_file:
        for x, y in orders:
            assert x.shape[0] == y.shape[0] == len(orders.slots), "a chunk's data, labels and slots agree"
            assert x.dtype == np.uint8 and y.dtype == np.int32
            slots_file.write("".join("%d\n" % slot for slot in orders.slots))
            slots_file.flush()
            os.fsync(slots_file.fileno())
            if args.checkpoint:
                with open(args.checkpoint + ".tmp", "w") as checkpoint:
                    checkpoint.write(orders.cursor)
                    checkpoint.flush()
                    os.fsync(checkpoint.fileno())
                os.replace(args.checkpoint + ".tmp", args.checkpoint)
            assert orders.epochs and len(orders.epochs) == len(orders.slots), "each sample's epoch"
            chunks += 1
            samples += x.shape[0]
            sys.stdout.write("chunk %d %d\n" % (chunks, x.shape[0]))
            sys.stdout.flush()
            if args.stop_after and chunks >= args.stop_after:
                sys.stdout.write("paused\n")
                sys.stdout.flush()
                while True:  # training on this chunk… until the test kills the process
                    time.sleep(1)
    emit({"orderId": orders.order_id, "chunks": chunks, "samples": samples, "remaining": orders.remaining})


def check_upload(client, args):
    first = client.upload(args.dataset, args.file, args.category)
    second = client.upload(args.dataset, args.file, args.category)
    emit({"first": first, "second": second})


def check_bulk(client, args):
    files = sorted(os.path.join(args.dir, name) for name in os.listdir(args.dir))
    items = [("c%d" % (i % 2), path) for i, path in enumerate(files)] + [("c0", b"not an image", "notes.txt")]
    first = client.upload_bulk(args.dataset, items)
    second = client.upload_bulk(args.dataset, items)
    emit({"first": first, "second": second})


def check_feedback(client, args):
    categories = client.categories(args.dataset)
    ids = [s["id"] for s in client._json("GET", "/v1/datasets/%s/samples" % args.dataset, query={"limit": 100})["samples"]]
    # The model sure of the next class for the first sample, right about the others.
    items = []
    for i, sample_id in enumerate(ids):
        probs = np.full(len(categories), 0.02, dtype=np.float32)
        probs[(i + 1) % len(categories) if i == 0 else 0] = 1 - 0.02 * (len(categories) - 1)
        items.append({"id": np.int64(sample_id), "probs": probs, "loss": np.float32(0.1 if i else 4.0)})
    sent = client.feedback(args.dataset, items + [{"id": 999999, "loss": 1.0}], chunk=3)
    queue = client.review(args.dataset, limit=5)
    decided = client.decide(args.dataset, ids[0], "confirm")
    emit({"sent": sent, "queue": queue, "decided": decided, "after": client.review(args.dataset), "first": ids[0], "wrong": caught(lambda: client.feedback(args.dataset, [{"id": ids[0], "loss": -1}]))})


def caught(call):
    try:
        call()
    except SensoryError as error:
        return {"status": error.status, "code": error.code, "message": error.message, "requestId": error.request_id}
    return None


def check_errors(client, args):
    stranger = Client(client.url, "not-a-known-key-0123")
    emit(
        {
            "missingDataset": caught(lambda: client.batch("no-such-dataset", 1)),
            "wrongKey": caught(lambda: stranger.batch(args.dataset, 1)),
            "tooMany": caught(lambda: client.batch(args.dataset, 100000)),
            "missingOrder": caught(lambda: client.get_order("no-such-order")),
        }
    )


def check_adapters(client, args):
    sequence = SensorySequence(client, args.dataset, 4, steps=3, seed=5)
    first = sequence[0]
    again = sequence[0]
    shapes = [list(sequence[i][0].shape) for i in range(len(sequence))]
    dataset = SensoryIterableDataset(lambda: Client(client.url, client._key), args.dataset, args.size, batch_size=8, max=5, seed=9)
    batches = [(list(x.shape), list(y.shape)) for x, y in dataset]
    emit(
        {
            "sequenceLength": len(sequence),
            "sequenceShapes": shapes,
            "sequenceRepeatable": bool(np.array_equal(first[0], again[0]) and np.array_equal(first[1], again[1])),
            "iterableBatches": batches,
            "iterableOrderId": dataset.order_id,
            "frameworksImported": sorted(name for name in ("keras", "tensorflow", "torch") if name in sys.modules),
        }
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["batch", "order", "upload", "bulk", "errors", "adapters", "feedback"])
    parser.add_argument("url")
    parser.add_argument("key")
    parser.add_argument("dataset")
    parser.add_argument("--size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max", type=int, default=64)
    parser.add_argument("--wait-ms", type=int, default=2000)
    parser.add_argument("--shard-size", type=int, default=None)
    parser.add_argument("--order-id", default=None)
    parser.add_argument("--slots", default=os.devnull)
    parser.add_argument("--stop-after", type=int, default=0)
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--file")
    parser.add_argument("--category")
    parser.add_argument("--dir")
    args = parser.parse_args()
    with Client(args.url, args.key, retry_delay=0.05) as client:
        {"batch": check_batch, "order": check_order, "upload": check_upload, "bulk": check_bulk, "errors": check_errors, "adapters": check_adapters, "feedback": check_feedback}[args.mode](client, args)


if __name__ == "__main__":
    main()
