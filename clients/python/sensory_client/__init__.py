"""Sensory client for Python: the standard library and numpy, nothing else.

    from sensory_client import Client

    client = Client("http://127.0.0.1:8002", key)
    x, y = client.batch("digits", 256, seed=1)            # x: (N, H, W, C) uint8, y: (N,) int32
    x, y = client.batch("digits", 256, layout="nchw", label_dtype="int64")  # (N, C, H, W), int64: torch-ready
    orders = client.order("digits", 100_000, max=1024)    # a batch order, polled chunk by chunk
    print(orders.order_id)                                # keep it: a restarted trainer resumes with it
    for x, y in orders:
        ...

Install it with `pip install --no-deps --no-build-isolation ./clients/python` (offline; numpy is
its only requirement), or copy this one file next to a trainer as `sensory_client.py`: everything
here works from that single file. `sensory_client.torch` (PyTorch data-parallel loading over
orders with ranks) is the package's other module and imports torch.

Batches travel as safetensors and are parsed here (no safetensors package): the body is read
straight into one buffer with large `readinto` calls, and the arrays are numpy views on it, so
receiving and decoding cost next to nothing. With `reuse=True` that buffer is the client's own,
allocated once and read into again by the next such call. Calls the service answers
the same way when repeated (reads, uploads, polls) are retried on dropped connections and 5xx
with exponential backoff; a poll whose answer was cut is simply asked again, because the
service acknowledges samples only once a response was fully sent.

Framework adapters (`SensorySequence` for Keras, `SensoryIterableDataset` for PyTorch) import
their framework only when asked (`.keras()`, `.torch()`).
"""

from __future__ import annotations

import http.client
import io
import json
import mimetypes
import os
import random
import ssl
import struct
import tarfile
import time
import urllib.parse
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple

import numpy as np

__all__ = [
    "Client",
    "OrderIterator",
    "Poll",
    "SensoryError",
    "SensoryConnectionError",
    "SensoryOrderEnded",
    "SensorySequence",
    "SensoryIterableDataset",
    "parse_safetensors",
]

SAFETENSORS = "application/x-safetensors"
DTYPES: Dict[str, np.dtype] = {"U8": np.dtype(np.uint8), "I32": np.dtype("<i4"), "I64": np.dtype("<i8"), "F32": np.dtype("<f4")}
_NETWORK_ERRORS = (OSError, http.client.HTTPException)  # ConnectionError, timeouts, IncompleteRead, RemoteDisconnected…


class SensoryError(Exception):
    """An error answer of the service: HTTP status, SENSORY_ERR_* code, message, request id."""

    def __init__(self, status: int, code: str, message: str, request_id: Optional[str] = None, retry_after: Optional[float] = None) -> None:
        super().__init__("%s %s: %s" % (status, code, message))
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        #: Seconds the answer's Retry-After asked to wait, when it gave one.
        self.retry_after = retry_after


#: Refusals for load that took nothing: sent again after the answer's Retry-After.
_RETRY_LATER_CODES = frozenset(["SENSORY_ERR_TOO_MANY_POLLS"])


class SensoryConnectionError(SensoryError):
    """The service could not be reached, or the connection broke mid-answer (after the retries)."""

    def __init__(self, message: str, cause: Optional[BaseException] = None) -> None:
        super().__init__(0, "SENSORY_CONNECTION_ERROR", message)
        self.__cause__ = cause


class SensoryOrderEnded(Exception):
    """The order failed, was cancelled or expired before every sample was delivered."""

    def __init__(self, order_id: str, status: str, remaining: int, reason: Optional[str] = None) -> None:
        super().__init__("order %s is %s with %d sample(s) undelivered%s" % (order_id, status, remaining, ": " + reason if reason else ""))
        self.order_id = order_id
        self.status = status
        self.remaining = remaining


def parse_safetensors(buf: Any) -> Tuple[Dict[str, str], Dict[str, np.ndarray]]:
    """(metadata, {name: ndarray}) from a safetensors file (bytes, bytearray or memoryview); the arrays are views on `buf`."""
    view = memoryview(buf)
    (length,) = struct.unpack_from("<Q", view, 0)
    header = json.loads(bytes(view[8 : 8 + length]))
    metadata = header.pop("__metadata__", {}) or {}
    base = 8 + length
    tensors = {}
    for name, spec in header.items():
        dtype = DTYPES[spec["dtype"]]
        start, end = spec["data_offsets"]
        count = (end - start) // dtype.itemsize
        tensors[name] = np.frombuffer(buf, dtype=dtype, count=count, offset=base + start).reshape(spec["shape"])
    return metadata, tensors


class Poll:
    """One poll of an order: `data`, `labels`, which order `slots` they fill and their `epochs`;
    in cursor mode the `cursor` to send next (and to keep in a checkpoint)."""

    __slots__ = ("data", "labels", "ids", "slots", "epochs", "rank", "generation", "cursor", "remaining", "done", "status", "categories")

    def __init__(self, metadata: Dict[str, str], tensors: Dict[str, np.ndarray]) -> None:
        self.data = tensors["data"]
        self.labels = tensors["labels"]
        self.ids = json.loads(metadata.get("ids", "[]"))
        self.slots = json.loads(metadata.get("slots", "[]"))
        self.epochs = json.loads(metadata.get("epochs", "[]"))
        self.rank = int(metadata.get("rank", "0"))
        self.generation = int(metadata.get("generation", "0"))
        self.cursor = metadata.get("cursor")
        self.remaining = int(metadata.get("remaining", "0"))
        self.done = metadata.get("done") == "true"
        self.status = metadata.get("status")
        self.categories = json.loads(metadata.get("categories", "{}"))


class Client:
    """A keep-alive connection to one Sensory service. Not thread-safe: one Client per thread or process."""

    def __init__(self, url: str, key: str, timeout: float = 60.0, retries: int = 5, retry_delay: float = 0.25) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https"):
            raise ValueError("url must be http:// or https://")
        self.url = url
        self._scheme = parsed.scheme
        self._host = parsed.hostname
        self._port = parsed.port
        self._prefix = parsed.path.rstrip("/")
        self._key = key
        self.timeout = timeout
        self.retries = retries
        self.retry_delay = retry_delay
        self._conn = None
        self._conn_used = False
        self._reusable = bytearray()

    # -- transport --------------------------------------------------------------------------

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _connection(self, timeout):
        if self._conn is None:
            if self._scheme == "https":
                self._conn = http.client.HTTPSConnection(self._host, self._port, timeout=timeout, context=ssl.create_default_context())
            else:
                self._conn = http.client.HTTPConnection(self._host, self._port, timeout=timeout)
            self._conn_used = False
        self._conn.timeout = timeout
        if self._conn.sock is not None:
            self._conn.sock.settimeout(timeout)
        return self._conn

    def _reuse_buffer(self, length):
        """The client's own receive buffer, at least `length` bytes, allocated only when it grows."""
        if len(self._reusable) < length:
            self._reusable = bytearray(max(length, len(self._reusable) * 5 // 4))
        return memoryview(self._reusable)[:length]

    def _attempt(self, method, path, body, headers, timeout, reuse=False):
        conn = self._connection(timeout)
        reused = self._conn_used
        answered = False
        try:
            # A streamed body is a factory: each attempt sends it again from the start.
            conn.request(method, path, body=body() if callable(body) else body, headers=headers)
            response = conn.getresponse()
            answered = True
            length = response.getheader("Content-Length")
            if length is not None:
                # Read straight into one buffer, as much per call as the socket has: numpy views
                # on it need no further copy. An error answer never goes into the reused buffer.
                size = int(length)
                buf = self._reuse_buffer(size) if reuse and response.status < 400 else bytearray(size)
                view = memoryview(buf)
                got = 0
                while got < size:
                    n = response.readinto(view[got:])
                    if not n:
                        raise http.client.IncompleteRead(bytes(view[:got]), size - got)
                    got += n
            else:
                buf = bytearray(response.read())
            self._conn_used = True
            if response.will_close:
                self.close()
            return response.status, response, buf
        except _NETWORK_ERRORS as error:
            self.close()
            error.sensory_stale = reused and not answered and isinstance(error, (ConnectionError, http.client.RemoteDisconnected))
            raise

    def _call(self, method, path, query=None, json_body=None, body=None, content_type=None, accept="application/json", idempotent=True, extra_timeout=0.0, reuse=False):
        """(status, response, bytes); retried on network errors and 5xx when `idempotent`."""
        if query:
            path = "%s?%s" % (path, urllib.parse.urlencode({k: v for k, v in query.items() if v is not None}))
        headers = {"API-ACCESS-KEY": self._key, "Accept": accept}
        if json_body is not None:
            body = json.dumps(json_body).encode("utf-8")
            content_type = "application/json"
        if body is not None:
            headers["Content-Type"] = content_type or "application/octet-stream"
        attempt = 0
        while True:
            try:
                status, response, buf = self._attempt(method, self._prefix + path, body, headers, self.timeout + extra_timeout, reuse)
                if status >= 400:
                    raise _api_error(status, response, buf)
                return status, response, buf
            except SensoryError as error:
                retry_later = error.code in _RETRY_LATER_CODES
                if not ((idempotent and error.status >= 500) or retry_later) or attempt >= self.retries:
                    raise
                if retry_later and error.retry_after is not None:
                    time.sleep(min(error.retry_after, 30.0))
                    attempt += 1
                    continue
            except _NETWORK_ERRORS as error:
                retryable = idempotent or getattr(error, "sensory_stale", False)
                if not retryable or attempt >= self.retries:
                    raise SensoryConnectionError("%s %s: %r" % (method, path, error), error) from error
            ceiling = min(5.0, self.retry_delay * (2**attempt))
            time.sleep(ceiling / 2 + random.random() * ceiling / 2)
            attempt += 1

    def _json(self, method, path, **kwargs):
        _, _, buf = self._call(method, path, **kwargs)
        return json.loads(bytes(buf))

    # -- datasets and samples ---------------------------------------------------------------

    def put_dataset(self, name: str, width: int, height: int, channels: int = 3, test_percent: Optional[int] = None) -> Dict[str, Any]:
        body = {"width": width, "height": height, "channels": channels}
        if test_percent is not None:
            body["testPercent"] = test_percent
        return self._json("PUT", "/v1/datasets/%s" % _q(name), json_body=body)

    def dataset(self, name: str) -> Dict[str, Any]:
        return self._json("GET", "/v1/datasets/%s" % _q(name))

    def datasets(self) -> List[Dict[str, Any]]:
        return self._json("GET", "/v1/datasets")["datasets"]

    def categories(self, dataset):
        """{name: index}; indices never change."""
        return self._json("GET", "/v1/datasets/%s/categories" % _q(dataset))["map"]

    def upload(self, dataset, path, category, content_type=None):
        """Adds one image file. Retried safely: the same bytes again answer as a duplicate."""
        with open(path, "rb") as f:
            data = f.read()
        return self.upload_bytes(dataset, data, category, content_type or mimetypes.guess_type(path)[0])

    def upload_bytes(self, dataset, data, category, content_type=None):
        if not content_type or not content_type.startswith("image/"):
            content_type = "image/unknown"  # the service identifies images by their bytes
        return self._json("POST", "/v1/datasets/%s/samples" % _q(dataset), query={"category": category}, body=bytes(data), content_type=content_type)

    def upload_bulk(self, dataset, items):
        """Adds many samples in one request. `items`: (category, path or bytes[, name]) tuples.

        They go as a tar streamed from the files (read one at a time, so memory stays flat); the
        answer holds a receipt per item in the same order: {path, status: stored | duplicate |
        rejected, sampleId, error}. Retried safely: what a lost attempt stored comes back as
        duplicates.
        """
        items = list(items)
        path = "/v1/datasets/%s/samples/bulk" % _q(dataset)
        return self._json("POST", path, body=lambda: _tar_chunks(items), content_type="application/x-tar")

    # -- batches ----------------------------------------------------------------------------

    def batch_raw(self, dataset, size, seed=None, noise=0, split="all", categories=None, dtype="uint8", labels="index", label_dtype=None, layout=None, reuse=False, **fields):
        """The safetensors bytes of a small batch, undecoded (a bytearray; a memoryview of the client's own buffer with `reuse`)."""
        body = _batch_body(size, seed, noise, split, categories, dtype, labels, fields)
        if label_dtype is not None:
            body["labelDtype"] = label_dtype
        if layout is not None:
            body["layout"] = layout
        _, _, buf = self._call("POST", "/v1/datasets/%s/batches" % _q(dataset), json_body=body, accept=SAFETENSORS, reuse=reuse)
        return buf

    def batch(
        self,
        dataset: str,
        size: int,
        seed: Optional[int] = None,
        noise: float = 0,
        split: str = "all",
        categories: Optional[List[str]] = None,
        dtype: str = "uint8",
        labels: str = "index",
        label_dtype: Optional[str] = None,
        layout: Optional[str] = None,
        reuse: bool = False,
        **fields: Any,
    ) -> Tuple[np.ndarray, np.ndarray]:
        """(data, labels).

        data: (N, H, W, C), or (N, C, H, W) with layout="nchw"; uint8, or float32 (value/255).
        labels: (N,) int32, or int64 with label_dtype="int64" (what torch's losses take); or
        (N, K) uint8 one-hot rows with labels="onehot".
        With reuse=True the arrays are views on the client's own receive buffer, allocated once:
        the next reuse=True call of this client reads over them, so copy what must outlive it.
        """
        raw = self.batch_raw(dataset, size, seed, noise, split, categories, dtype, labels, label_dtype, layout, reuse, **fields)
        _, tensors = parse_safetensors(raw)
        return tensors["data"], tensors["labels"]

    # -- orders -----------------------------------------------------------------------------

    def create_order(
        self,
        dataset: str,
        size: int,
        seed: Optional[int] = None,
        noise: float = 0,
        split: str = "all",
        categories: Optional[List[str]] = None,
        dtype: str = "uint8",
        labels: str = "index",
        ranks: Optional[int] = None,
        rounding: Optional[str] = None,
        key: Optional[str] = None,
        label_dtype: Optional[str] = None,
        layout: Optional[str] = None,
        **fields: Any,
    ) -> Dict[str, Any]:
        """Places a batch order: {id, status, size, shards, revision}.

        `ranks` W deals it to W trainers (each polls its own equal part; `rounding` "drop" or
        "repeat" when W does not divide the size). With a `key` the same request returns the
        same order (placed once, whoever asks first), so it is retried like a read; without one
        it is not retried once sent, as that could place two. `label_dtype`/`layout` ask for
        torch-ready samples ("int64", "nchw") from a service whose orders take them.
        """
        fields = dict(fields, ranks=ranks, rounding=rounding, key=key, labelDtype=label_dtype, layout=layout)
        body = _batch_body(size, seed, noise, split, categories, dtype, labels, fields)
        return self._json("POST", "/v1/datasets/%s/orders" % _q(dataset), json_body=body, idempotent=key is not None)

    # -- label review -----------------------------------------------------------------------

    def feedback(self, dataset: str, items: Iterable[Dict[str, Any]], revision: Optional[int] = None, chunk: int = 10000) -> Dict[str, Any]:
        """Reports what training saw of each sample: `items` of {id, loss?, probs?, predicted?}.

        `probs` (one per category index; a numpy array will do) and `loss` may come straight from
        the model. Sent `chunk` items per request (the service's SENSORY_MAX_FEEDBACK_ITEMS bounds
        one); the answer is {stored, results: [{id, status: stored | not_found}]} over all of them,
        in order. Safe to send again: the latest report of a sample replaces the previous one.
        """
        body_items = [_feedback_item(item) for item in items]
        stored = 0
        results: List[Dict[str, Any]] = []
        for start in range(0, len(body_items), max(1, chunk)):
            body: Dict[str, Any] = {"items": body_items[start : start + max(1, chunk)]}
            if revision is not None:
                body["revision"] = revision
            answer = self._json("POST", "/v1/datasets/%s/feedback" % _q(dataset), json_body=body)
            stored += int(answer["stored"])
            results.extend(answer["results"])
        return {"stored": stored, "results": results}

    def review(self, dataset: str, limit: Optional[int] = None, cursor: Optional[str] = None) -> Dict[str, Any]:
        """The review queue: {total, items: [{id, category, score, reasons, suggested?}], nextCursor?}, likely mislabels first."""
        return self._json("GET", "/v1/datasets/%s/review" % _q(dataset), query={"limit": limit, "cursor": cursor})

    def decide(self, dataset: str, sample_id: int, decision: str, category: Optional[str] = None) -> Dict[str, Any]:
        """confirm, relabel (to `category`, or the suggested class) or delete (admin) a sample in review."""
        body: Dict[str, Any] = {"decision": decision}
        if category is not None:
            body["category"] = category
        return self._json("POST", "/v1/datasets/%s/review/%d" % (_q(dataset), sample_id), json_body=body, idempotent=False)

    def stats(self, dataset: str) -> Dict[str, Any]:
        """{revision, train, test, categories: [{name, index, train, test}]}: live samples per split, at one revision."""
        return self._json("GET", "/v1/datasets/%s/stats" % _q(dataset))

    def orders(self, active: bool = False) -> List[Dict[str, Any]]:
        """The orders of this key, newest first (every order for an admin key)."""
        return self._json("GET", "/v1/orders", query={"active": "true" if active else None})["orders"]

    def get_order(self, order_id: str) -> Dict[str, Any]:
        return self._json("GET", "/v1/orders/%s" % _q(order_id))

    def reshape(self, order_id: str, ranks: int, rounding: Optional[str] = None) -> Dict[str, Any]:
        """Deals what the order has not delivered yet over `ranks` ranks (a new generation); the order's status.

        Not retried once sent: a second reshape would start yet another generation."""
        body: Dict[str, Any] = {"ranks": ranks}
        if rounding is not None:
            body["rounding"] = rounding
        return self._json("POST", "/v1/orders/%s/reshape" % _q(order_id), json_body=body, idempotent=False)

    def extend_order(self, order_id: str, ttl_seconds: int) -> Dict[str, Any]:
        """Sets the order's idle TTL and moves its expiry to that long from now (trainers paused for long)."""
        return self._json("PATCH", "/v1/orders/%s" % _q(order_id), json_body={"ttlSeconds": ttl_seconds})

    def cancel_order(self, order_id: str) -> Dict[str, Any]:
        return self._json("DELETE", "/v1/orders/%s" % _q(order_id))

    def poll(
        self,
        order_id: str,
        max: int = 1024,
        wait_ms: int = 2000,
        rank: Optional[int] = None,
        cursor: Optional[str] = None,
        ack: Optional[str] = None,
        resume: Optional[bool] = None,
    ) -> Poll:
        """One poll of a rank of an order as a Poll; retried when the connection drops (nothing is
        lost: with a cursor the same poll gives the same samples)."""
        body: Dict[str, Any] = {"max": max, "waitMs": wait_ms}
        for name, value in (("rank", rank), ("cursor", cursor), ("ack", ack), ("resume", resume)):
            if value is not None:
                body[name] = value
        _, _, buf = self._call("POST", "/v1/orders/%s/poll" % _q(order_id), json_body=body, accept=SAFETENSORS, extra_timeout=wait_ms / 1000.0)
        return Poll(*parse_safetensors(buf))

    def order(
        self,
        dataset: str,
        size: int,
        order_id: Optional[str] = None,
        max: int = 1024,
        wait_ms: int = 2000,
        rank: Optional[int] = None,
        cursor: Optional[str] = None,
        **fields: Any,
    ) -> "OrderIterator":
        """An iterator of (data, labels) chunks of one rank of a batch order, placed now unless
        `order_id` names one. `cursor` (an iterator's `cursor` kept in a checkpoint) resumes exactly
        after the chunk it follows."""
        return OrderIterator(self, dataset, size, order_id, max, wait_ms, fields, rank=rank, cursor=cursor)


def _feedback_item(item: Dict[str, Any]) -> Dict[str, Any]:
    """One item as JSON: numpy numbers and arrays become plain ones."""
    out: Dict[str, Any] = {"id": int(item["id"])}
    if item.get("loss") is not None:
        out["loss"] = float(item["loss"])
    if item.get("probs") is not None:
        out["probs"] = [float(p) for p in np.asarray(item["probs"], dtype=np.float64).reshape(-1)]
    if item.get("predicted") is not None:
        out["predicted"] = int(item["predicted"])
    return out


class _Collector:
    """A write-only file that keeps what tarfile writes until the next chunk is taken."""

    def __init__(self):
        self.parts = []

    def write(self, data):
        self.parts.append(bytes(data))
        return len(data)

    def take(self):
        chunk = b"".join(self.parts)
        self.parts = []
        return chunk


def _tar_chunks(items):
    """The bytes of a tar of <category>/<name> members, one item at a time."""
    sink = _Collector()
    with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as archive:
        for i, item in enumerate(items):
            category, source = item[0], item[1]
            name = item[2] if len(item) > 2 else None
            if isinstance(source, (bytes, bytearray, memoryview)):
                data = bytes(source)
            else:
                with open(source, "rb") as f:
                    data = f.read()
                name = name or os.path.basename(source)
            info = tarfile.TarInfo("%s/%s" % (category, name or i))
            info.size = len(data)
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(data))
            chunk = sink.take()
            if chunk:
                yield chunk
    chunk = sink.take()
    if chunk:
        yield chunk


class OrderIterator:
    """Chunks of one rank of an order, with cursors, until every sample was delivered. A chunk is
    acknowledged when the next one is asked for, and the last one with a final acknowledgement at
    the end: only acknowledged samples count as delivered, so a trainer killed while it trained on
    a chunk gets that chunk again. `cursor` is the cursor after the last chunk: keep it in a
    checkpoint and pass it back (`cursor=`) to resume exactly after that chunk. Without it,
    `order_id` continues after what the rank acknowledged. `slots`, `ids`, `epochs` and
    `remaining` describe the last chunk."""

    def __init__(
        self,
        client: Client,
        dataset: str,
        size: int,
        order_id: Optional[str],
        max: int,
        wait_ms: int,
        fields: Dict[str, Any],
        rank: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> None:
        self.client = client
        self.max = max
        self.wait_ms = wait_ms
        self.rank = rank
        if order_id is None:
            order_id = client.create_order(dataset, size, **fields)["id"]
        self.order_id = order_id
        self.slots: List[int] = []
        self.ids: List[int] = []
        self.epochs: List[int] = []
        self.remaining: Optional[int] = None
        self.delivered = 0
        self.cursor = cursor
        self._next = cursor or "start"
        # A checkpoint's cursor was trained on: acknowledged, and what came after it taken back.
        self._ack = cursor
        self._resume = cursor is not None
        self._status: Optional[str] = None
        self._final = False
        self._finished = False

    def __iter__(self) -> "OrderIterator":
        return self

    def __next__(self) -> Tuple[np.ndarray, np.ndarray]:
        if self._final:
            self._final = False
            self._finish()
        while not self._finished:
            poll = self.client.poll(self.order_id, self.max, self.wait_ms, rank=self.rank, cursor=self._next, ack=self._ack, resume=True if self._resume else None)
            self._resume = False
            self._next = poll.cursor or self._next
            # The next poll acknowledges this one's chunk: it is asked for once this one was trained on.
            self._ack = self._next
            self._status = poll.status
            self.remaining = poll.remaining
            if poll.done:
                if poll.remaining > 0:
                    self._finished = True
                    order = self.client.get_order(self.order_id)
                    raise SensoryOrderEnded(self.order_id, order.get("status", poll.status), poll.remaining, order.get("error"))
                if poll.ids:
                    self._final = True
                else:
                    self._finish()
            if poll.ids:
                self.slots, self.ids, self.epochs = poll.slots, poll.ids, poll.epochs
                self.cursor = poll.cursor
                self.delivered += len(poll.ids)
                return poll.data, poll.labels
            if self.wait_ms < 50 and not self._finished:
                time.sleep(0.05)
        raise StopIteration

    def _finish(self):
        """The last chunk was trained on: the final acknowledgement delivers the rank."""
        self._finished = True
        if self._status != "complete":
            self.client.poll(self.order_id, 0, 0, rank=self.rank, cursor=self._next, ack=self._next)


class SensorySequence:
    """A keras.utils.Sequence-shaped view of small batches: `len()` steps of `batch_size` each.

    With a `seed`, step i is always the same batch (seed + i) at the dataset revision pinned at
    the first call, so epochs are reproducible. `.keras()` returns the same thing as a real
    `keras.utils.PyDataset` / `Sequence` subclass (Keras is imported only then).
    """

    def __init__(self, client: Client, dataset: str, batch_size: int, steps: int, seed: Optional[int] = None, **fields: Any) -> None:
        self.client = client
        self.dataset = dataset
        self.batch_size = batch_size
        self.steps = steps
        self.seed = seed
        self.fields = fields

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, index: int) -> Tuple[np.ndarray, np.ndarray]:
        if index < 0:
            index += self.steps
        if not 0 <= index < self.steps:
            raise IndexError(index)
        if self.seed is not None and "revision" not in self.fields:
            self.fields["revision"] = self.client.dataset(self.dataset)["revision"]
        seed = None if self.seed is None else self.seed + index
        return self.client.batch(self.dataset, self.batch_size, seed=seed, **self.fields)

    def on_epoch_end(self):
        pass

    def keras(self) -> Any:
        try:
            import keras

            base = getattr(keras.utils, "PyDataset", None) or keras.utils.Sequence
        except ImportError:
            import tensorflow as tf

            base = tf.keras.utils.Sequence
        inner = self

        class _KerasSequence(base):  # type: ignore[valid-type,misc]
            def __init__(self):
                super().__init__()

            def __len__(self):
                return len(inner)

            def __getitem__(self, index):
                return inner[index]

        return _KerasSequence()


class SensoryIterableDataset:
    """A stream of (data, labels) batches of `batch_size` from one batch order, in one process.

    Every sample of the order comes once, in batches of `batch_size` (the last may be shorter).
    `.torch()` returns `sensory_client.torch.SensoryIterableDataset` (PyTorch is imported only
    then): a real `torch.utils.data.IterableDataset` that shares one order between DataLoader
    workers and data-parallel ranks; use it with `DataLoader(ds, batch_size=None)`. See that
    module for ranks, epochs and checkpoints.
    """

    def __init__(self, client_factory: Any, dataset: str, size: int, batch_size: int, order_id: Optional[str] = None, max: int = 1024, wait_ms: int = 2000, **fields: Any) -> None:
        # A factory, not a Client: each DataLoader worker process opens its own connection.
        self.client_factory = client_factory
        self.dataset = dataset
        self.size = size
        self.batch_size = batch_size
        self.order_id = order_id
        self.max = max
        self.wait_ms = wait_ms
        self.fields = fields

    def __iter__(self) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
        client = self.client_factory()
        orders = client.order(self.dataset, self.size, order_id=self.order_id, max=self.max, wait_ms=self.wait_ms, **self.fields)
        self.order_id = orders.order_id
        pending_x, pending_y, count = [], [], 0
        try:
            for x, y in orders:
                pending_x.append(x)
                pending_y.append(y)
                count += len(x)
                while count >= self.batch_size:
                    xs, ys = np.concatenate(pending_x), np.concatenate(pending_y)
                    yield xs[: self.batch_size], ys[: self.batch_size]
                    pending_x, pending_y, count = [xs[self.batch_size :]], [ys[self.batch_size :]], count - self.batch_size
            if count:
                yield np.concatenate(pending_x), np.concatenate(pending_y)
        finally:
            client.close()

    def torch(self) -> Any:
        """The same stream as a torch IterableDataset: one order (this one's `order_id`, or one
        placed once with an idempotency key) for every DataLoader worker, each polling its own
        rank of it; samples as the service sends them (NHWC, int32 labels) unless asked."""
        from sensory_client.torch import SensoryIterableDataset as TorchDataset

        return TorchDataset(self.client_factory, self.dataset, self.batch_size, size=self.size, order_id=self.order_id, max=self.max, wait_ms=self.wait_ms, layout=None, label_dtype=None, **self.fields)


def _q(name):
    return urllib.parse.quote(str(name), safe="")


def _batch_body(size, seed, noise, split, categories, dtype, labels, fields):
    body = {"size": size, "noise": noise, "split": split, "dtype": dtype, "labels": labels}
    if seed is not None:
        body["seed"] = seed
    if categories is not None:
        body["categories"] = list(categories)
    body.update({name: value for name, value in fields.items() if value is not None})
    return body


def _api_error(status, response, buf):
    request_id = response.getheader("X-Request-Id")
    try:
        retry_after = float(response.getheader("Retry-After"))
    except (TypeError, ValueError):
        retry_after = None
    try:
        error = json.loads(bytes(buf))["error"]
        return SensoryError(status, error["code"], error.get("message", ""), error.get("requestId", request_id), retry_after)
    except (ValueError, KeyError, TypeError):
        return SensoryError(status, "SENSORY_ERR_UNKNOWN", bytes(buf[:300]).decode("utf-8", "replace") or "HTTP %d" % status, request_id)
