"""A trainer's input loop, timed: figures 10 and 11 of `npm run bench` (bench/read-path.ts).

    trainer_alternative.py pil FOLDER ROUNDS
        An ImageFolder (FOLDER/<class>/<file>) read the way torchvision's default loader does:
        shuffled, each file opened with PIL, converted to RGB and copied into one uint8 array.
    trainer_alternative.py sensory URL KEY DATASET BATCH COUNT ROUNDS
        The same trainer through the sensory_client package: COUNT samples as batches of BATCH, each read
        into the client's reused buffer (reuse=True) as one uint8 array.
    trainer_alternative.py read URL KEY DATASET BATCH ROUNDS
        One batch of BATCH read ROUNDS times (reuse=True), from the service or from a bare server
        sending the same bytes: the client's own reading rate.

Each mode prints one JSON line: per round, the images (or bytes) per second and this process's
CPU time (user + sys, time.process_time) per image; a warm-up round comes first and is not
counted. Only the standard library, numpy, PIL (pil mode) and the client are used.
"""

import json
import os
import random
import sys
import time

import numpy as np


def timed(rounds, work):
    work()  # warm-up: page cache, imports, connections
    walls, cpus = [], []
    for _ in range(rounds):
        wall, cpu = time.perf_counter(), time.process_time()
        work()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return walls, cpus


def pil(folder, rounds):
    from PIL import Image

    paths = sorted(os.path.join(root, name) for root, _, names in os.walk(folder) for name in names)
    with Image.open(paths[0]) as first:
        width, height = first.size
    images = np.empty((len(paths), height, width, 3), dtype=np.uint8)
    order = list(range(len(paths)))

    def epoch():
        random.shuffle(order)
        for i, index in enumerate(order):
            with Image.open(paths[index]) as image:
                images[i] = np.asarray(image.convert("RGB"))

    walls, cpus = timed(rounds, epoch)
    return {"images": len(paths), "walls": walls, "cpus": cpus, "python": sys.version.split()[0]}


def sensory(url, key, dataset, batch, count, rounds):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients", "python"))
    from sensory_client import Client

    client = Client(url, key)
    seeds = iter(range(1, 1 << 30))
    checksum = [0]

    def epoch():
        for _ in range(count // batch):
            x, y = client.batch(dataset, batch, seed=next(seeds), reuse=True)
            checksum[0] += int(x[0, 0, 0, 0]) + int(y[0])

    walls, cpus = timed(rounds, epoch)
    client.close()
    return {"images": count // batch * batch, "walls": walls, "cpus": cpus, "python": sys.version.split()[0]}


def read(url, key, dataset, batch, rounds):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients", "python"))
    from sensory_client import Client

    client = Client(url, key)
    sizes = []

    def once():
        raw = client.batch_raw(dataset, batch, seed=1, reuse=True)
        sizes.append(len(raw))

    walls, cpus = timed(rounds, once)
    client.close()
    return {"images": batch, "bytes": sizes[-1], "walls": walls, "cpus": cpus, "python": sys.version.split()[0]}


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "pil":
        result = pil(args[0], int(args[1]))
    elif mode == "sensory":
        result = sensory(args[0], args[1], args[2], int(args[3]), int(args[4]), int(args[5]))
    elif mode == "read":
        result = read(args[0], args[1], args[2], int(args[3]), int(args[4]))
    else:
        raise SystemExit("mode must be pil, sensory or read")
    sys.stdout.write(json.dumps(result) + "\n")
