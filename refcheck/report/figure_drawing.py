"""Drawing a run's figures: from the figure cache when the same data was drawn before, the rest
here or, when there are many, in a small pool of processes.

A sweep has a heatmap per layer and matplotlib takes about a tenth of a second a figure, which
made a first run's report take longer than its checking. The drawing is deterministic, so a
cached figure is keyed by what it depends on (its name, its data, matplotlib's version and the
drawing code) and a hit gives the same bytes. The pool's processes are started only once more than
a few figures have to be drawn (a few are drawn here when they are asked for); they run refcheck's
own drawing code only, while this process goes on writing the other report files.
"""
from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable
from concurrent.futures import Future
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["FigureDrawer"]

DRAWN_HERE = 3
"""At most this many figures to draw are drawn in this process (no pool started); more all go to the pool."""

_DRAWING_CODE = ("heatmaps.py", "plots.py", "ranking.py")


@lru_cache(maxsize=1)
def _drawing_version() -> str:
    """matplotlib's version and a hash of refcheck's drawing code: a figure depends on both."""
    import matplotlib

    digest = hashlib.sha256(matplotlib.__version__.encode())
    for module in _DRAWING_CODE:
        digest.update((Path(__file__).parent / module).read_bytes())
    return digest.hexdigest()


class FigureDrawer:
    """Collects figures by output name (``draw``), then gives their PNG bytes (``results``)."""

    def __init__(self, cache: Path | None, processes: int | None = None) -> None:
        self.cache = cache
        self.processes = processes if processes is not None else min(2, os.cpu_count() or 1)
        self._order: list[str] = []
        self._done: dict[str, bytes | None] = {}
        self._pending: dict[str, tuple[Future, Path | None]] = {}
        self._waiting: dict[str, tuple[Callable[..., bytes | None], Callable[[], tuple[Any, ...]], Path | None]] = {}
        self._pool: Any = None

    def _key_path(self, name: str, data: str) -> Path | None:
        if self.cache is None:
            return None
        digest = hashlib.sha256(f"{name}\0{_drawing_version()}\0".encode())
        digest.update(data.encode())
        return self.cache / f"{digest.hexdigest()}.png"

    def draw(self, output: str, name: str, data: str, function: Callable[..., bytes | None], *args: Any) -> None:
        """The figure ``function(*args)`` under ``output``, looked up in the cache by ``name`` and
        ``data`` (the rows it shows, as text) first."""
        self.draw_lazily(output, name, data, function, lambda: args)

    def draw_lazily(self, output: str, name: str, data: str, function: Callable[..., bytes | None],
                    make_args: Callable[[], tuple[Any, ...]]) -> None:
        """:meth:`draw` with the arguments made by ``make_args()``, only when the figure is not in the cache."""
        self._order.append(output)
        path = self._key_path(name, data)
        if path is not None and path.is_file():
            try:
                self._done[output] = path.read_bytes() or None  # an empty file: nothing to draw
                return
            except OSError:
                pass
        if self.processes < 2:
            self._done[output] = self._drawn(output, path, lambda: function(*make_args()))
            return
        self._waiting[output] = (function, make_args, path)
        if self._pool is not None or len(self._waiting) > DRAWN_HERE:
            pool = self._start_pool()
            for waiting, (waiting_function, waiting_args, waiting_path) in self._waiting.items():
                self._pending[waiting] = (pool.submit(waiting_function, *waiting_args()), waiting_path)
            self._waiting.clear()

    def _start_pool(self) -> Any:
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self._pool = ProcessPoolExecutor(self.processes, mp_context=multiprocessing.get_context("forkserver"))
        return self._pool

    def _drawn(self, output: str, path: Path | None, draw: Callable[[], bytes | None]) -> bytes | None:
        """``draw()``'s figure, kept in the cache; a figure that cannot be drawn is left out of the
        report (said on stderr), never the reason the report files are lost."""
        try:
            png = draw()
        except Exception as error:  # noqa: BLE001 - any failure of the plotting stack
            print(f"refcheck: {output} could not be drawn ({type(error).__name__}: {error}); left out",
                  file=sys.stderr)
            return None
        return self._stored(path, png)

    def _stored(self, path: Path | None, png: bytes | None) -> bytes | None:
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
                temporary.write_bytes(png or b"")
                os.replace(temporary, path)
            except OSError:  # a read-only or full disk only costs speed
                pass
        return png

    def results(self) -> dict[str, bytes]:
        """Every figure drawn (waiting for the pool), in the order they were asked for; the ones
        with nothing to show are left out."""
        for output, (function, make_args, path) in self._waiting.items():  # too few for a pool
            self._done[output] = self._drawn(output, path, lambda: function(*make_args()))
        self._waiting.clear()
        try:
            for output, (future, path) in self._pending.items():
                self._done[output] = self._drawn(output, path, future.result)
        finally:
            self.close()
        return {output: self._done[output] for output in self._order if self._done.get(output) is not None}

    def close(self) -> None:
        """Stop the pool: figures not drawn yet are dropped."""
        self._waiting.clear()
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
