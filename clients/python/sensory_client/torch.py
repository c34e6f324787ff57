"""PyTorch data loading over one Sensory batch order, for data-parallel training (DDP).

    from sensory_client.torch import SensoryDataLoader, SensoryIterableDataset

    ds = SensoryIterableDataset(lambda: Client(url, key), "digits", batch_size=32, epochs=10, seed=7)
    loader = SensoryDataLoader(ds, num_workers=2)
    for epoch in range(loader.epoch, loader.epochs):
        for x, y in loader:            # x (32, C, H, W) uint8, y (32,) int64
            ...
        validate()                     # every rank reaches it after the same number of batches

One order serves the whole run. It has S = W × K ranks (W data-parallel ranks, K DataLoader
workers each, at least 1), and worker k of rank r polls the order's rank r·K + k with cursors:
the service gives every one of them the same number of samples, disjoint, together the order,
each a pure function of (seed, size, S). Each worker batches its own part: every rank therefore
yields the same number of batches, and DDP never waits on a rank that ran out.

Placing it once. The order is placed with an idempotency key, the run key: every rank and worker
places "the same" order and the service returns the one placed first, so no coordinator is
needed and several workers never place several orders. With torch.distributed initialised, rank
0 draws the run key, the seed and the size of an epoch and broadcasts them (one collective, in
the constructor); without it, every rank must be given the same `key` (a run of WORLD_SIZE 1 draws
its own).

Epochs. `epochs=N` asks N epochs of the eligible samples (counted at one revision, which the order
is pinned to); the order holds them one after the other, each a fresh seeded permutation. One
iteration of the loader is one epoch: every worker stops at the same position of its part (the
position whose first slot starts the next epoch), so all ranks finish an epoch in step and can
run validation together. A rank's part crosses into the next epoch within one sample of the
others, so at most one sample per worker and epoch is served in the epoch next to its own.

Checkpoints. `SensoryDataLoader.state_dict()` holds, for each of the rank's parts, the cursor of
the chunk holding the first sample not yet yielded and how many of that chunk's samples were;
`load_state_dict()` resumes exactly there (the service takes back, `resume: true`, what it had
sent after it). Given every rank's state (a list) and a different number of ranks or workers, it
reshapes the order: rank 0 rolls every old part back to its checkpoint and deals the rest over
the new ranks. The dataset's own `state_dict()`/`load_state_dict()` are the per-worker form
torchdata's StatefulDataLoader calls.

Torch-ready samples: channels first and int64 labels are asked of the service for the order
(`layout`, `labelDtype`); against an earlier release whose orders do not take them, the order is
placed without them and the loader converts each batch instead.
"""

from __future__ import annotations

import os
import secrets
import zlib
from collections import deque
from typing import Any, Callable, Deque, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from sensory_client import Client, Poll, SensoryError, SensoryOrderEnded

__all__ = ["SensoryDataLoader", "SensoryIterableDataset", "distributed_rank", "epoch_cuts", "reshaped_cuts"]

STATE_VERSION = 1
_MAX_POLL = 4096
_ORDER_FIELDS_UNKNOWN = ("layout", "labelDtype")


def distributed_rank() -> Tuple[int, int]:
    """(rank, world size): from torch.distributed when initialised, else RANK and WORLD_SIZE, else (0, 1)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def epoch_cuts(epoch_size: Optional[int], epochs: int, streams: int, length: int) -> List[int]:
    """Where each epoch starts in every part of an order dealt to `streams` ranks (generation 0).

    Position p of every part holds slots p·S … p·S + S − 1; it belongs to the epoch of its first
    slot, so epoch e starts at ⌈e·E / S⌉ in every part alike. The last entry is the part's length.
    """
    if not epoch_size:
        return [0, length]
    return [min(-(-e * epoch_size // streams), length) for e in range(epochs)] + [length]


def reshaped_cuts(cuts: Sequence[int], positions: Sequence[int], streams: int, length: int) -> Tuple[int, List[int]]:
    """The epochs' starts after a reshape, and how many epochs of the old cuts were left behind.

    The service deals the positions not delivered yet ([p, old length) of each old part), in
    entry order (position-major), over the new parts. Old epoch e starts at entry K_e, the number
    of those entries at a position before cuts[e]; in the new parts it starts at ⌈K_e / S⌉.
    """
    first = max(i for i in range(len(cuts) - 1) if cuts[i] <= min(positions)) if min(positions) < cuts[-1] else len(cuts) - 2
    starts = [0]
    for cut in cuts[first + 1 : -1]:
        before = sum(max(0, cut - position) for position in positions)
        starts.append(min(-(-before // streams), length))
    return first, starts + [length]


# ---------------------------------------------------------------------------------------------
# One part of the order, read with cursors


class _Chunk:
    __slots__ = ("cursor", "data", "labels", "slots", "ids", "epochs", "offset")

    def __init__(self, cursor: str, poll: Poll) -> None:
        self.cursor = cursor  # the cursor this chunk was polled with: it starts at its first sample
        self.data = poll.data
        self.labels = poll.labels
        self.slots = poll.slots
        self.ids = poll.ids
        self.epochs = poll.epochs
        self.offset = 0

    def __len__(self) -> int:
        return len(self.ids) - self.offset


class _PartReader:
    """One rank of the order polled with cursors. Its state is (cursor, skip): the cursor of the
    chunk holding the first sample not taken yet, and how many of that chunk's samples were."""

    def __init__(self, client: Client, order_id: str, rank: int, length: int, start: Optional[Dict[str, Any]], max: int, wait_ms: int) -> None:
        self.client = client
        self.order_id = order_id
        self.rank = rank
        self.length = length
        self.max = max
        self.wait_ms = wait_ms
        self._chunks: Deque[_Chunk] = deque()
        start = start or {}
        self._next: str = start.get("cursor") or "start"
        self._resume = start.get("cursor") is not None
        self._drop = int(start.get("skip", 0))
        self._fetched: Optional[int] = None  # the position after what was polled
        self.position: Optional[int] = None  # the first sample not taken yet

    def state(self) -> Dict[str, Any]:
        if self._chunks:
            head = self._chunks[0]
            return {"cursor": head.cursor, "skip": head.offset, "position": self.position}
        return {"cursor": self._next, "skip": self._drop, "position": self.position}

    def locate(self) -> int:
        """Asks where the part stands (a poll of nothing); with a checkpoint's cursor, goes back to it."""
        if self.position is None:
            cursor = self._next
            poll = self.client.poll(self.order_id, 0, 0, rank=self.rank, cursor=cursor, ack=None if cursor == "start" else cursor, resume=True if self._resume else None)
            self._resume = False
            self._next = poll.cursor or cursor
            self._fetched = self.length - poll.remaining
            self.position = self._fetched + self._drop
        return self.position

    def buffered(self) -> int:
        return sum(len(chunk) for chunk in self._chunks)

    def fetch(self, end: int) -> None:
        """Polls samples up to position `end` at most (never past an epoch's end)."""
        assert self._fetched is not None
        want = min(self.max, end - self._fetched, _MAX_POLL)
        ack = self.state()["cursor"]
        poll = self.client.poll(self.order_id, want, self.wait_ms, rank=self.rank, cursor=self._next, ack=ack)
        count = len(poll.ids)
        if count == 0 and poll.done and poll.remaining > 0:
            order = self.client.get_order(self.order_id)
            raise SensoryOrderEnded(self.order_id, order.get("status", poll.status or "?"), poll.remaining, order.get("error"))
        if count:
            chunk = _Chunk(self._next, poll)
            dropped = min(self._drop, count)
            chunk.offset = dropped
            self._drop -= dropped
            if len(chunk):
                self._chunks.append(chunk)
        self._next = poll.cursor or self._next
        self._fetched = self.length - poll.remaining

    def take(self, count: int) -> Tuple[np.ndarray, np.ndarray, List[int], List[int], List[int]]:
        """The next `count` samples (at most what is buffered): data, labels, slots, ids, epochs."""
        parts: List[Tuple[_Chunk, int, int]] = []
        while count > 0 and self._chunks:
            chunk = self._chunks[0]
            n = min(count, len(chunk))
            parts.append((chunk, chunk.offset, chunk.offset + n))
            chunk.offset += n
            count -= n
            if not len(chunk):
                self._chunks.popleft()
        taken = sum(b - a for _, a, b in parts)
        assert self.position is not None
        self.position += taken
        data = np.concatenate([c.data[a:b] for c, a, b in parts]) if len(parts) != 1 else parts[0][0].data[parts[0][1] : parts[0][2]]
        labels = np.concatenate([c.labels[a:b] for c, a, b in parts]) if len(parts) != 1 else parts[0][0].labels[parts[0][1] : parts[0][2]]
        slots = [s for c, a, b in parts for s in c.slots[a:b]]
        ids = [i for c, a, b in parts for i in c.ids[a:b]]
        epochs = [e for c, a, b in parts for e in c.epochs[a:b]]
        return data, labels, slots, ids, epochs

    def acknowledge(self) -> None:
        """Acknowledges everything taken (a poll of nothing): at an epoch's end, or the part's."""
        cursor = self.state()["cursor"]
        self.client.poll(self.order_id, 0, 0, rank=self.rank, cursor=self._next, ack=cursor)


def seek(client: Client, order_id: str, rank: int, state: Dict[str, Any]) -> int:
    """Moves a part's acknowledgement exactly to a checkpoint's state (cursor, then `skip` more
    samples), taking back what came after; returns that position."""
    poll = client.poll(order_id, 0, 0, rank=rank, cursor=state["cursor"], ack=None if state["cursor"] == "start" else state["cursor"], resume=True)
    cursor = poll.cursor
    skip = int(state.get("skip", 0))
    while skip > 0:
        poll = client.poll(order_id, min(skip, _MAX_POLL), 2000, rank=rank, cursor=cursor, ack=cursor)
        if not poll.ids and poll.done:
            raise SensoryError(409, "SENSORY_ERR_CURSOR_CONFLICT", "rank %d of order %s ended before the checkpoint's position" % (rank, order_id))
        skip -= len(poll.ids)
        cursor = poll.cursor
    poll = client.poll(order_id, 0, 0, rank=rank, cursor=cursor, ack=cursor)
    return poll_position(poll, client, order_id, rank)


def poll_position(poll: Poll, client: Client, order_id: str, rank: int) -> int:
    length = next(s["length"] for s in client.get_order(order_id)["streams"] if s["rank"] == rank)
    return length - poll.remaining


# ---------------------------------------------------------------------------------------------
# The dataset


def _to_torch_ready(data: np.ndarray, labels: np.ndarray, layout: Optional[str], label_dtype: Optional[str], shape: Sequence[int]) -> Tuple[np.ndarray, np.ndarray]:
    """Converts what the service did not: channels first (from N×H×W×C), int64 labels."""
    height, width, channels = shape
    if layout == "nchw" and tuple(data.shape[1:]) == (height, width, channels) != (channels, height, width):
        data = np.ascontiguousarray(data.transpose(0, 3, 1, 2))
    if label_dtype is not None and labels.ndim == 1 and labels.dtype != np.dtype(label_dtype):
        labels = labels.astype(label_dtype)
    return data, labels


class SensoryIterableDataset(IterableDataset):
    """Batches of one rank of one Sensory order, split over the DataLoader's workers by itself.

    client_factory: makes a Client (each worker process opens its own connection).
    epochs / epoch_size: N epochs of `epoch_size` samples (by default the eligible samples of the
      split and categories, counted at one revision that the order is pinned to); or `size`
      samples as one epoch. `rounding` ("repeat", the default, or "drop") makes the order's size
      a multiple of the parts, as DistributedSampler pads or drops.
    key: the run key every rank shares (drawn by rank 0 when torch.distributed is initialised;
      required when WORLD_SIZE > 1 without it). seed: the order's seed (from the key by default).
    order_id: an order already placed, with W × K ranks.
    layout / label_dtype: "nchw" and "int64" (the default, torch-ready), or None as the service sends.
    Other keyword arguments are fields of the order (dtype, labels, noise, split, categories,
    shardSize…).

    Use it with `SensoryDataLoader` (checkpoints, reshape) or `DataLoader(ds, batch_size=None)`.
    Each yielded item is (data, labels) as numpy arrays, which the DataLoader makes tensors.
    """

    def __init__(
        self,
        client_factory: Callable[[], Client],
        dataset: str,
        batch_size: int,
        *,
        epochs: Optional[int] = None,
        size: Optional[int] = None,
        epoch_size: Optional[int] = None,
        seed: Optional[int] = None,
        key: Optional[str] = None,
        order_id: Optional[str] = None,
        revision: Optional[int] = None,
        rounding: str = "repeat",
        layout: Optional[str] = "nchw",
        label_dtype: Optional[str] = "int64",
        max: int = 1024,
        wait_ms: int = 2000,
        **fields: Any,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if epochs is not None and epochs < 1:
            raise ValueError("epochs must be at least 1")
        if epochs is not None and size is not None:
            raise ValueError("give epochs (of epoch_size samples) or size (one epoch), not both")
        if rounding not in ("repeat", "drop", "exact"):
            raise ValueError('rounding must be "repeat", "drop" or "exact"')
        self.client_factory = client_factory
        self.dataset = dataset
        self.batch_size = batch_size
        self.max = max
        self.wait_ms = wait_ms
        self.layout = layout
        self.label_dtype = label_dtype if fields.get("labels", "index") == "index" else None
        self.fields = fields
        self.rank, self.world_size = distributed_rank()
        # Which ranks of the order this instance reads, where they start, and the order's plan.
        self._plan: Optional[Dict[str, Any]] = None
        self._starts: Dict[int, Dict[str, Any]] = {}
        self._readers: Dict[int, _PartReader] = {}
        self._tagged = False  # SensoryDataLoader: yield (data, labels, info), acknowledge the ends itself
        self.info: Optional[Dict[str, Any]] = None  # the last batch: part, epoch, slots, ids, epochs
        self._server_torch_ready = layout is not None or self.label_dtype is not None
        if order_id is not None:
            self.run: Dict[str, Any] = {"orderId": order_id, "epochs": 1 if epochs is None else epochs, "epochSize": epoch_size}
        else:
            self.run = self._agree(lambda: self._draw_run(key, seed, epochs, size, epoch_size, revision, rounding), key)

    # -- the run: one order, agreed by every rank ------------------------------------------------

    def _draw_run(self, key: Optional[str], seed: Optional[int], epochs: Optional[int], size: Optional[int], epoch_size: Optional[int], revision: Optional[int], rounding: str) -> Dict[str, Any]:
        if key is None:
            key = "run-" + secrets.token_hex(8)
            seed = secrets.randbelow(2**31) if seed is None else seed
        if seed is None:
            seed = zlib.crc32(key.encode("utf-8")) & 0x7FFFFFFF
        if size is None:
            epochs = 1 if epochs is None else epochs
            if epoch_size is None:
                client = self.client_factory()
                try:
                    epoch_size, revision = self._eligible(client, revision)
                finally:
                    client.close()
            size = epochs * epoch_size
        else:
            epochs, epoch_size = 1, None
        return {"key": key, "seed": seed, "epochs": epochs, "epochSize": epoch_size, "size": size, "revision": revision, "rounding": rounding}

    def _eligible(self, client: Client, revision: Optional[int]) -> Tuple[int, int]:
        """The samples of one epoch (the split and categories asked, at the stats' revision)."""
        stats = client.stats(self.dataset)
        if revision is not None and revision != stats["revision"]:
            raise ValueError("epoch_size is counted at the dataset's current revision %d; give epoch_size with revision=%d" % (stats["revision"], revision))
        split = self.fields.get("split", "all")
        wanted = self.fields.get("categories")
        rows = [c for c in stats["categories"] if wanted is None or c["name"] in wanted]
        count = sum((c["train"] if split in ("train", "all") else 0) + (c["test"] if split in ("test", "all") else 0) for c in rows)
        if count == 0:
            raise ValueError("dataset %s has no %s samples to train on" % (self.dataset, split))
        return count, stats["revision"]

    def _agree(self, draw: Callable[[], Dict[str, Any]], key: Optional[str]) -> Dict[str, Any]:
        if dist.is_available() and dist.is_initialized() and self.world_size > 1:
            box: List[Any] = [draw() if self.rank == 0 else None]
            dist.broadcast_object_list(box, src=0)
            return box[0]
        if self.world_size > 1 and key is None:
            raise ValueError("WORLD_SIZE is %d without torch.distributed: give every rank the same key= (the run's order key)" % self.world_size)
        return draw()

    @property
    def epochs(self) -> int:
        return int(self.run.get("epochs") or 1)

    def _order_body(self, streams: int, torch_ready: bool) -> Dict[str, Any]:
        run = self.run
        body = dict(self.fields)
        body.update(size=run["size"], seed=run["seed"], ranks=streams, rounding=run["rounding"], key=run["key"])
        if run.get("revision") is not None:
            body["revision"] = run["revision"]
        if torch_ready:
            body.update(layout=self.layout, label_dtype=self.label_dtype)
        return body

    def _place(self, client: Client, streams: int) -> str:
        """The run's order, placed once whoever asks first (its key), with `streams` ranks."""
        body = self._order_body(streams, self._server_torch_ready)
        try:
            return client.create_order(self.dataset, **body)["id"]
        except SensoryError as error:
            # Orders that do not take layout/labelDtype yet (400 naming them; or 409 for a run
            # placed before the service took them): the loader converts each batch instead.
            refused = error.status == 400 and any(field in error.message for field in _ORDER_FIELDS_UNKNOWN)
            if not self._server_torch_ready or not (refused or error.code == "SENSORY_ERR_ORDER_KEY_CONFLICT"):
                if error.code == "SENSORY_ERR_ORDER_KEY_CONFLICT":
                    raise SensoryError(error.status, error.code, "the ranks or workers asked different orders under one key (%s): give every rank the same key, epoch_size and revision, and the same num_workers" % error.message, error.request_id) from error
                raise
            self._server_torch_ready = False
            return client.create_order(self.dataset, **self._order_body(streams, False))["id"]

    def plan(self, client: Client, workers: int) -> Dict[str, Any]:
        """The order of the run (placed now if need be) and where its epochs start in every part."""
        streams = self.world_size * workers
        if self._plan is not None:
            if self._plan["streams"] != streams:
                raise ValueError("the loader's state is for %d parts of the order, this run reads %d (%d ranks × %d workers): load every rank's state (a list) to reshape" % (self._plan["streams"], streams, self.world_size, workers))
            return self._plan
        order_id = self.run.get("orderId") or self._place(client, streams)
        view = client.get_order(order_id)
        if view["ranks"] != streams:
            raise ValueError("order %s has %d rank(s); this run reads %d (%d ranks × %d DataLoader workers): place it with ranks=%d, or leave order_id out" % (order_id, view["ranks"], streams, self.world_size, workers, streams))
        if view["generation"] != 0:
            raise ValueError("order %s was reshaped: resume it from a state saved after the reshape (SensoryDataLoader.load_state_dict)" % order_id)
        length = view["streams"][0]["length"]
        described = client.dataset(self.dataset)
        shape = [described["height"], described["width"], described["channels"]]
        self._plan = {"order": order_id, "generation": 0, "streams": streams, "length": length, "firstEpoch": 0, "cuts": epoch_cuts(self.run.get("epochSize"), self.epochs, streams, length), "shape": shape}
        return self._plan

    def set_epoch(self, epoch: int) -> None:
        """Kept for DistributedSampler-style loops: the epoch follows from the cursors, so nothing changes."""

    # -- iteration (in each DataLoader worker) ---------------------------------------------------

    def __iter__(self) -> Iterator[Any]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        client = self.client_factory()
        try:
            plan = self.plan(client, workers)
            yield from self._serve(client, plan, self.rank * workers + worker)
        finally:
            self._readers.clear()
            client.close()

    def _reader(self, client: Client, plan: Dict[str, Any], part: int) -> _PartReader:
        # From where the last batch left the part (a checkpoint's state, or the loader's last
        # batch): the service takes back anything polled after it that no trainer saw.
        reader = _PartReader(client, plan["order"], part, plan["length"], self._starts.get(part), self.max, self.wait_ms)
        self._readers[part] = reader
        return reader

    def _serve(self, client: Client, plan: Dict[str, Any], part: int) -> Iterator[Any]:
        """One epoch of one part: batches from where it stands to the start of the next epoch."""
        if plan["length"] == 0:
            return
        reader = self._reader(client, plan, part)
        position = reader.locate()
        cuts = plan["cuts"]
        if position >= cuts[-1]:
            return
        index = max(i for i in range(len(cuts) - 1) if cuts[i] <= position)
        end = cuts[index + 1]
        epoch = plan["firstEpoch"] + index
        while reader.position is not None and reader.position < end:
            while reader.buffered() < self.batch_size and reader._fetched is not None and reader._fetched < end:
                reader.fetch(end)
            if not reader.buffered():
                order = client.get_order(plan["order"])
                raise SensoryOrderEnded(plan["order"], order["status"], end - reader.position, "rank %d ended before this part's position %s" % (part, reader.position))
            data, labels, slots, ids, epochs = reader.take(self.batch_size)
            data, labels = _to_torch_ready(data, labels, self.layout, self.label_dtype, plan["shape"])
            state = reader.state()
            self._starts[part] = state
            info = {"part": part, "epoch": epoch, "end": reader.position >= end, "slots": slots, "ids": ids, "epochs": epochs, "state": state, "generation": plan["generation"]}
            self.info = info
            if self._tagged:
                yield data, labels, info
            else:
                yield data, labels
        if not self._tagged:
            reader.acknowledge()

    # -- the per-worker state torchdata's StatefulDataLoader saves and restores -----------------

    def state_dict(self) -> Dict[str, Any]:
        return {"version": STATE_VERSION, "run": self.run, "plan": self._plan, "parts": {str(part): state for part, state in self._starts.items()}}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        if state.get("version") != STATE_VERSION:
            raise ValueError("not a Sensory data state of version %d" % STATE_VERSION)
        self.run = state["run"]
        self._plan = state.get("plan")
        self._starts = {int(part): value for part, value in state.get("parts", {}).items()}
        self._readers.clear()


# ---------------------------------------------------------------------------------------------
# The loader


class SensoryDataLoader(DataLoader):
    """A DataLoader over a SensoryIterableDataset (batch_size=None: the dataset batches) that knows
    where each of the rank's parts stands, so it can checkpoint, resume and reshape exactly.

    One iteration is one epoch (`epoch`: the one the next iteration serves; `epochs` in all).
    `info` describes the last batch: its `slots`, sample `ids`, their `epochs`, its `part`.
    The acknowledgement that ends an epoch (the run's end included) is sent once the loop asked
    for a batch after the last one, so a trainer killed before it gets those batches again.
    """

    def __init__(self, dataset: SensoryIterableDataset, **kwargs: Any) -> None:
        if not isinstance(dataset, SensoryIterableDataset):
            raise TypeError("SensoryDataLoader reads a SensoryIterableDataset")
        kwargs["batch_size"] = None
        super().__init__(dataset, **kwargs)
        self.sensory = dataset
        self.sensory._tagged = True
        self.info: Optional[Dict[str, Any]] = None
        self._client: Optional[Client] = None

    @property
    def workers(self) -> int:
        return max(1, self.num_workers)

    @property
    def parts(self) -> List[int]:
        """The order's ranks this loader reads: rank·K … rank·K + K − 1."""
        first = self.sensory.rank * self.workers
        return list(range(first, first + self.workers))

    @property
    def epochs(self) -> int:
        return self.sensory.epochs

    @property
    def order_id(self) -> str:
        """The run's order (placed now if need be)."""
        return str(self._prepare()["order"])

    @property
    def epoch(self) -> int:
        """The epoch the next iteration serves (`epochs` once the run is over)."""
        plan = self._prepare()
        positions = [self.sensory._starts[part]["position"] for part in self.parts]
        cuts = plan["cuts"]
        position = min(positions)
        if position >= cuts[-1]:
            return self.epochs
        return plan["firstEpoch"] + max(i for i in range(len(cuts) - 1) if cuts[i] <= position)

    def client(self) -> Client:
        if self._client is None:
            self._client = self.sensory.client_factory()
        return self._client

    def _prepare(self) -> Dict[str, Any]:
        """Places the order (once, here rather than in every worker) and finds where each part stands."""
        plan = self.sensory.plan(self.client(), self.workers)
        for part in self.parts:
            state = self.sensory._starts.get(part)
            if state is None or state.get("position") is None or state.get("cursor") in (None, "start") or state.get("resume"):
                reader = _PartReader(self.client(), plan["order"], part, plan["length"], None if state is None else {k: v for k, v in state.items() if k != "resume"}, self.sensory.max, self.sensory.wait_ms)
                reader.locate()
                self.sensory._starts[part] = reader.state()
        return plan

    def __iter__(self) -> Iterator[Tuple[Any, Any]]:  # type: ignore[override]
        plan = self._prepare()
        ends: Dict[int, Dict[str, Any]] = {}
        for data, labels, info in super().__iter__():
            self.sensory._starts[info["part"]] = info["state"]
            if info["end"]:
                ends[info["part"]] = info["state"]
            self.info = info
            yield data, labels
        # The loop asked for more after the last batch: the epoch was trained on; acknowledge it.
        for part, state in ends.items():
            self.client().poll(plan["order"], 0, 0, rank=part, cursor=state["cursor"], ack=state["cursor"])

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- checkpoints ---------------------------------------------------------------------------

    def state_dict(self) -> Dict[str, Any]:
        """This rank's data state: the order, its plan, and where each of the rank's parts stands."""
        plan = self._prepare()
        return {
            "version": STATE_VERSION,
            "rank": self.sensory.rank,
            "world": self.sensory.world_size,
            "workers": self.workers,
            "run": self.sensory.run,
            "plan": plan,
            "parts": {str(part): dict(self.sensory._starts[part]) for part in self.parts},
        }

    def load_state_dict(self, state: Union[Dict[str, Any], Sequence[Dict[str, Any]]]) -> None:
        """Resumes from a state_dict(): this rank's own, or every rank's (a list, in any order).

        With every rank's state and another number of ranks or workers than when it was saved,
        the order is reshaped: rank 0 (or the only process) rolls each old part back to its
        checkpoint and deals what follows over the new parts; the others wait for its plan (a
        broadcast). Call it on every rank, before iterating.
        """
        states = [state] if isinstance(state, dict) else list(state)
        if not states or any(s.get("version") != STATE_VERSION for s in states):
            raise ValueError("not a Sensory data state of version %d" % STATE_VERSION)
        plan = states[0]["plan"]
        if any(s["plan"]["order"] != plan["order"] or s["plan"]["generation"] != plan["generation"] for s in states):
            raise ValueError("the states are of different orders or generations")
        parts: Dict[int, Dict[str, Any]] = {}
        for s in states:
            parts.update({int(part): value for part, value in s["parts"].items()})
        self.sensory.run = states[0]["run"]
        self.sensory._readers.clear()
        streams = self.sensory.world_size * self.workers
        if plan["streams"] == streams:
            missing = [part for part in self.parts if part not in parts]
            if missing:
                raise ValueError("the state has no position for part(s) %s of this rank: load this rank's own state, or every rank's" % missing)
            self.sensory._plan = plan
            self.sensory._starts = {part: dict(parts[part], resume=True) for part in self.parts}
            return
        if sorted(parts) != list(range(plan["streams"])):
            raise ValueError("the order had %d parts when saved and this run reads %d: load every rank's state (a list) to reshape it" % (plan["streams"], streams))
        distributed = dist.is_available() and dist.is_initialized() and self.sensory.world_size > 1
        if not distributed and self.sensory.world_size > 1:
            raise ValueError("reshaping needs torch.distributed (rank 0 reshapes, the others wait for it) or a single process")
        new_plan = self._reshape(plan, parts, streams) if self.sensory.rank == 0 else None
        if distributed:
            box: List[Any] = [new_plan]
            dist.broadcast_object_list(box, src=0)
            new_plan = box[0]
        self.sensory._plan = new_plan
        self.sensory._starts = {}

    def _reshape(self, plan: Dict[str, Any], parts: Dict[int, Dict[str, Any]], streams: int) -> Dict[str, Any]:
        client = self.client()
        order_id = plan["order"]
        view = client.get_order(order_id)
        if view["generation"] != plan["generation"]:
            raise ValueError("order %s was reshaped after this checkpoint (generation %d, the state's %d): resume from a state saved after it" % (order_id, view["generation"], plan["generation"]))
        positions = [seek(client, order_id, part, parts[part]) for part in range(plan["streams"])]
        if min(positions) >= plan["length"]:
            return dict(plan, streams=streams, length=0, cuts=[0, 0])
        view = client.reshape(order_id, streams, rounding=self.sensory.run.get("rounding") or "repeat")
        length = view["streams"][0]["length"]
        skipped, cuts = reshaped_cuts(plan["cuts"], positions, streams, length)
        return {"order": order_id, "generation": view["generation"], "streams": streams, "length": length, "firstEpoch": plan["firstEpoch"] + skipped, "cuts": cuts, "shape": plan["shape"]}
