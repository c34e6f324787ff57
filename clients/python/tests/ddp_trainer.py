"""A data-parallel (DDP) training script over one Sensory order, as the README shows it.

Run one process per rank, as torchrun does (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT):

    torchrun --nproc-per-node 2 ddp_trainer.py URL KEY DATASET --epochs 2 --checkpoint ckpt.pt

Every rank logs what it trained on to LOG.rank<r> (one line per step: step, epoch, then the
batch's slots, then its sample ids; one line per epoch: "epoch", the epoch, its batches), so that a test can check
that the ranks got equal, disjoint parts of the order. --pause-after N stops every rank after
step N (prints "paused" and sleeps) for a test to kill it there; --resume starts from the
checkpoint, on any number of ranks.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn.parallel import DistributedDataParallel  # noqa: E402

from sensory_client import Client  # noqa: E402
from sensory_client.torch import SensoryDataLoader, SensoryIterableDataset  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("api_key")
    parser.add_argument("dataset")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--checkpoint", default="checkpoint.pt")
    parser.add_argument("--checkpoint-every", type=int, default=0)
    parser.add_argument("--log", default=None)
    parser.add_argument("--pause-after", type=int, default=0)
    parser.add_argument("--pause-rank", type=int, default=None, help="only this rank pauses")
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args()

    dist.init_process_group("gloo")  # "nccl" on GPUs; RANK and WORLD_SIZE come from the launcher
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)

    # One order for the run: rank 0 draws its key and counts an epoch, every rank and DataLoader
    # worker reads its own part of it. Torch-ready: x (B, C, H, W) uint8, y (B,) int64.
    data = SensoryIterableDataset(lambda: Client(args.url, args.api_key), args.dataset, batch_size=args.batch_size, epochs=args.epochs, seed=args.seed)
    loader = SensoryDataLoader(data, num_workers=args.workers)

    classes = len(Client(args.url, args.api_key).categories(args.dataset))
    model = DistributedDataParallel(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, classes)))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    step = 0
    if args.resume and os.path.exists(args.checkpoint):
        checkpoint = torch.load(args.checkpoint)
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        step = checkpoint["step"]
        # Every rank's data state: resumes exactly after the checkpoint's last batch, and
        # reshapes the order if the number of ranks (or workers) changed.
        loader.load_state_dict(checkpoint["data"])

    log = open("%s.rank%d" % (args.log, rank), "a") if args.log else None
    if rank == 0:
        print("order %s" % loader.order_id, flush=True)
    for epoch in range(loader.epoch, loader.epochs):
        batches = 0
        for x, y in loader:
            loss = F.cross_entropy(model(x.float() / 255), y)
            optimizer.zero_grad()
            loss.backward()  # DDP all-reduces the gradients: every rank must have this batch
            optimizer.step()
            step += 1
            batches += 1
            if log:
                log.write("%d %d %s %s\n" % (step, epoch, ",".join(map(str, loader.info["slots"])), ",".join(map(str, loader.info["ids"]))))
                log.flush()
            if args.checkpoint_every and step % args.checkpoint_every == 0:
                save(args.checkpoint, model, optimizer, step, loader, rank, world)
            if step == args.pause_after and args.pause_rank in (None, rank):
                print("paused at step %d" % step, flush=True)
                time.sleep(3600)
        # Validation at the epoch's end, on every rank in step: each ran the same number of batches.
        count = torch.tensor([batches])
        dist.all_reduce(count)
        if log:
            log.write("epoch %d %d %d\n" % (epoch, batches, int(count)))
            log.flush()
    loader.close()
    dist.destroy_process_group()
    print("done at step %d" % step, flush=True)


def save(path, model, optimizer, step, loader, rank, world):
    """Every rank's data state, gathered, with the model: resumable on any number of ranks."""
    states = [None] * world
    dist.all_gather_object(states, loader.state_dict())
    if rank == 0:
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step, "data": states}, path + ".tmp")
        os.replace(path + ".tmp", path)
    dist.barrier()


if __name__ == "__main__":
    main()
