"""Shared helpers of the benchmarks: timing, machine description, result files.

Timing protocol (all benchmarks): a warm-up call, then the number of calls per repeat is
chosen so that one repeat lasts at least ``min_time`` seconds, then ``repeats`` repeats;
the figure reported is the BEST repeat (the least disturbed by other processes: on a
shared machine the spread is load, not the code). Competing implementations are timed
interleaved, repeat by repeat, so they see the same load. CUDA work is synchronised
before every clock read.
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import os
import platform
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"


def sync(device) -> None:
    """Wait for queued CUDA work (no-op on CPU)."""
    if str(device).startswith("cuda"):
        import torch
        torch.cuda.synchronize(device)


class Timer:
    """Times ``fn()`` (one unit of work, e.g. one sweep) by the protocol above.

    Parameters
    ----------
    fn : callable
    device : str, for synchronisation
    min_time : float
        Minimum seconds per repeat.
    max_calls : int
        Upper bound of calls per repeat.
    """

    def __init__(self, fn, device="cpu", min_time=0.2, max_calls=10_000):
        self.fn, self.device = fn, device
        sync(device)
        t0 = time.perf_counter()
        fn()  # warm-up (and first-call costs: allocation, compilation)
        sync(device)
        self.first = time.perf_counter() - t0
        t0 = time.perf_counter()
        fn()  # a second call, for calibration
        sync(device)
        one = max(time.perf_counter() - t0, 1e-7)
        self.calls = int(min(max_calls, max(1, round(min_time / one))))
        self.times: list[float] = []

    def repeat(self) -> float:
        """One timed repeat; returns seconds per call."""
        sync(self.device)
        t0 = time.perf_counter()
        for _ in range(self.calls):
            self.fn()
        sync(self.device)
        dt = (time.perf_counter() - t0) / self.calls
        self.times.append(dt)
        return dt

    @property
    def best(self) -> float:
        return min(self.times)

    @property
    def median(self) -> float:
        t = sorted(self.times)
        return t[len(t) // 2]


def interleave(timers, repeats: int) -> None:
    """Run ``repeats`` rounds, each timing every timer once (same load for all)."""
    for _ in range(int(repeats)):
        for t in timers:
            if t is not None:
                t.repeat()


def _run(cmd) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:  # noqa: BLE001 - optional information
        return ""


def machine_info(device="cpu") -> dict:
    """CPU model, cores, load, library versions, git state, GPU (if any)."""
    import numpy
    import torch
    lscpu = _run(["lscpu"])
    model = next((ln.split(":", 1)[1].strip() for ln in lscpu.splitlines()
                  if ln.startswith("Model name")), platform.processor())
    info = {
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "cpu_model": model,
        "cpu_count": os.cpu_count(),
        "cpu_flags_avx512": "avx512f" in lscpu,
        "loadavg_start": list(os.getloadavg()),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "torch_threads": torch.get_num_threads(),
        "git_commit": _run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"]),
        "git_dirty_hpc_rg": bool(_run(["git", "-C", str(REPO), "status", "--porcelain", "hpc_rg"])),
        "cuda_available": torch.cuda.is_available(),
        "env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MALLOC_MMAP_MAX_",
                                            "MALLOC_TRIM_THRESHOLD_") if k in os.environ},
    }
    if str(device).startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def write_results(stem: str, meta: dict, rows: list[dict]) -> tuple[Path, Path]:
    """Write ``stem.json`` (meta + rows) and ``stem.csv`` (rows); returns both paths."""
    stem = Path(stem)
    if not stem.is_absolute() and stem.parent == Path("."):
        stem = RESULTS / stem
    stem.parent.mkdir(parents=True, exist_ok=True)
    meta = dict(meta, loadavg_end=list(os.getloadavg()))
    jpath, cpath = stem.with_suffix(".json"), stem.with_suffix(".csv")
    jpath.write_text(json.dumps({"meta": meta, "results": rows}, indent=1, default=str))
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    with open(cpath, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        for r in rows:
            w.writerow(r)
    return jpath, cpath


def table(rows: list[dict], cols: list[tuple[str, str, str]]) -> str:
    """Plain-text table: ``cols`` = [(key, header, format)]; missing values print '-'."""
    head = [h for _, h, _ in cols]
    body = []
    for r in rows:
        line = []
        for k, _, fmt in cols:
            v = r.get(k)
            line.append("-" if v is None or v == "" else (fmt.format(v) if fmt else str(v)))
        body.append(line)
    widths = [max(len(head[i]), *(len(b[i]) for b in body)) if body else len(head[i])
              for i in range(len(cols))]
    out = ["  ".join(h.rjust(w) for h, w in zip(head, widths))]
    out += ["  ".join(c.rjust(w) for c, w in zip(b, widths)) for b in body]
    return "\n".join(out)


def stamp() -> str:
    """``YYYYmmdd-HHMM`` for result file names."""
    return _dt.datetime.now().strftime("%Y%m%d-%H%M")
