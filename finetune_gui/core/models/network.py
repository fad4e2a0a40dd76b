"""Whether downloads can happen now: the user's offline switches and one quick connection try per host.

Asked before any download, so an offline machine fails at once with a plain message instead of after a
library's retries (torch.hub's "Downloading: …" line, huggingface_hub's pages of retry warnings).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from urllib.parse import urlparse

#: How long one connection try's answer is trusted (a cable may be plugged in meanwhile).
PROBE_TTL_S = 30.0

_probes: dict[tuple[str, int], tuple[float, bool]] = {}
_probes_lock = threading.Lock()


def offline_mode() -> bool:
    """True when the user asked for no downloads (FINETUNE_GUI_OFFLINE=1 or HF_HUB_OFFLINE=1)."""
    truthy = {"1", "true", "yes", "on"}
    return any(os.environ.get(k, "").strip().lower() in truthy for k in ("FINETUNE_GUI_OFFLINE", "HF_HUB_OFFLINE"))


def reachable(url: str, timeout_s: float = 3.0) -> bool:
    """Whether the host of `url` takes a connection now: one quick try, no retries; the answer is kept for
    PROBE_TTL_S per host."""
    parts = urlparse(url)
    host = (parts.hostname or "", parts.port or (80 if parts.scheme == "http" else 443))
    now = time.monotonic()
    with _probes_lock:
        seen = _probes.get(host)
        if seen is not None and now - seen[0] < PROBE_TTL_S:
            return seen[1]
    try:
        with socket.create_connection(host, timeout=timeout_s):
            ok = True
    except (OSError, ValueError):
        ok = False
    with _probes_lock:
        _probes[host] = (time.monotonic(), ok)
    return ok


def forget_probes() -> None:
    """Ask the network again next time (the user pressed Try again)."""
    with _probes_lock:
        _probes.clear()


def hub_endpoint() -> str:
    """The Hugging Face Hub's address (HF_ENDPOINT, as huggingface_hub reads it)."""
    return os.environ.get("HF_ENDPOINT", "").strip() or "https://huggingface.co"


def why_no_downloads(url: str) -> str | None:
    """Why nothing can be downloaded from `url` now, in words; None when a download can be tried."""
    if offline_mode():
        return "offline mode is on (HF_HUB_OFFLINE or FINETUNE_GUI_OFFLINE)"
    if not reachable(url):
        return f"no connection to {urlparse(url).hostname}"
    return None
