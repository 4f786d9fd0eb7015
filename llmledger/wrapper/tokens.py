"""Counting tokens locally (for streams the app abandons before the usage chunk), offline.

`tiktoken` downloads its encoding files on first use, which fails on offline machines. The
`bpe-openai` package ships `o200k_base` and `cl100k_base` byte-identical to OpenAI's files, so we
seed tiktoken's own cache from them (checking tiktoken's expected hash) and use real tiktoken.
When no encoding can be had, we fall back to a rough estimate; the span is flagged estimated
either way.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import logging
import os
import tempfile
from importlib import resources
from pathlib import Path
from typing import Protocol

log = logging.getLogger("llmledger")

# tiktoken's download URL and expected sha256 for each encoding (tiktoken_ext/openai_public.py).
_ENCODING_FILES = {
    "o200k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    ),
    "cl100k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    ),
}
# Models tiktoken doesn't know yet, by prefix; everything unknown gets the newest encoding.
_CL100K_PREFIXES = ("gpt-4-", "gpt-3.5", "text-embedding-3", "text-embedding-ada", "ft:gpt-3.5", "ft:gpt-4-")
_CHARS_PER_TOKEN = 4


class Encoder(Protocol):
    def encode_ordinary(self, text: str) -> list[int]: ...


def encoding_name_for_model(model: str) -> str:
    if model == "gpt-4" or model.startswith(_CL100K_PREFIXES):
        return "cl100k_base"
    return "o200k_base"


def _tiktoken_cache_dir() -> Path:
    for var in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        if var in os.environ:
            return Path(os.environ[var])
    return Path(tempfile.gettempdir()) / "data-gym-cache"


def _seed_tiktoken_cache(name: str) -> None:
    url, expected_sha256 = _ENCODING_FILES[name]
    cache_dir = _tiktoken_cache_dir()
    target = cache_dir / hashlib.sha1(url.encode()).hexdigest()
    if target.exists() and hashlib.sha256(target.read_bytes()).hexdigest() == expected_sha256:
        return
    packaged = resources.files("bpe_openai.data").joinpath(f"{name}.tiktoken.gz").read_bytes()
    data = gzip.decompress(packaged)
    if hashlib.sha256(data).hexdigest() != expected_sha256:
        raise ValueError(f"bpe-openai's {name} does not match tiktoken's expected hash")
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.tmp")
    partial.write_bytes(data)
    partial.replace(target)


@functools.cache
def encoding(name: str) -> Encoder | None:
    """A real tiktoken encoding, loaded without the network; None when none can be had."""
    try:
        import tiktoken

        _seed_tiktoken_cache(name)
        return tiktoken.get_encoding(name)
    except Exception as exc:  # noqa: BLE001 - any failure means "count roughly", never a crash
        log.warning("tiktoken encoding %s unavailable (%s); trying bpe-openai", name, exc)
    try:
        import bpe_openai

        return bpe_openai.get_encoding(name)
    except Exception as exc:  # noqa: BLE001
        log.warning("no tokenizer for %s (%s); token counts will be rough estimates", name, exc)
        return None


def count_tokens(model: str, texts: list[str]) -> int:
    """Tokens in `texts` for `model`'s encoding (a character-based estimate if none loads)."""
    encoder = encoding(encoding_name_for_model(model or ""))
    if encoder is None:
        return sum(-(-len(text) // _CHARS_PER_TOKEN) for text in texts)
    return sum(len(encoder.encode_ordinary(text)) for text in texts if text)
