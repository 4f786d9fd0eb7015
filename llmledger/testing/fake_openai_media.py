"""The fake OpenAI API's images, audio and moderations answers, and its multipart/form-data parsing.

`FakeOpenAI` routes `/v1/images/{generations,edits,variations}`, `/v1/audio/{speech,transcriptions,translations}` and
`/v1/moderations` here. Every number is a deterministic function of the request, so tests can assert exact values:

Images (`ImagesResponse`): `n` images (default 1), each a 1x1 PNG as `b64_json`, or as a `url` when a DALL·E request
asks for `response_format=url` (DALL·E's default; GPT image models always answer `b64_json`). DALL·E 3 adds a
`revised_prompt`. GPT image models (`gpt-image*`) also report `size`, `quality`, `output_format`, `background` and
`usage`, where
  - `auto` resolves to size 1024x1024, quality high, background opaque (`hd` counts as high, `standard` as medium,
    and qualities beyond high, such as `xhigh`, are counted as high);
  - output tokens = n x OpenAI's documented per-image count for gpt-image-1: low 272 / 408 / 400, medium
    1056 / 1584 / 1568, high 4160 / 6240 / 6208 for 1024x1024 / 1024x1536 / 1536x1024; other sizes scale the square
    count by pixel area (rounded);
  - input text tokens = len(prompt) // 4 + 1; input image tokens = 323 per input image of an edit (65 base + 2 tiles of
    129: the fake doesn't read image dimensions, and doesn't count the mask); total = input + output.

Speech: `1000 x len(input)` bytes of audio (a second per 16 characters at 16000 bytes a second), `audio/mpeg` unless
`response_format` asks for another container; no usage in the body, as the API does.

Transcriptions and translations: the upload's duration is `max(1, bytes / 16000)` seconds rounded to 2 decimals; the
transcript has 2 words a second. whisper-1 reports `usage` `{"type": "duration", "seconds": ceil(duration)}` on
transcriptions. Other models (gpt-4o-transcribe, gpt-4o-mini-transcribe, ...) report token usage: audio tokens =
ceil(10 x duration) (a token per 100 ms, the Realtime API's rate), text tokens = len(prompt) // 4 + 1 with a prompt
else 0, output tokens = len(text) // 4 + 1; with `stream=true` they answer `transcript.text.delta` events (one a word)
and a `transcript.text.done` carrying the usage. whisper-1 ignores `stream`, as the API does. Translations (whisper-1
only) report no usage, matching the API's `Translation` shape.

Moderations: one result per input string (one for a single string or a list of multimodal parts), nothing flagged,
category scores derived from the text's CRC; `*-latest` models answer with their dated snapshot name.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from typing import Any

# A valid 1x1 transparent PNG: every image the fake returns, whatever the requested format.
PNG_1X1 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
BYTES_PER_SECOND = 16_000
SPEECH_BYTES_PER_CHAR = 1_000
IMAGE_INPUT_TOKENS = 323
AUDIO_TOKENS_PER_SECOND = 10
WORDS_PER_SECOND = 2
# gpt-image-1's documented output tokens per image: quality → size → tokens.
IMAGE_OUTPUT_TOKENS = {
    "low": {"1024x1024": 272, "1024x1536": 408, "1536x1024": 400},
    "medium": {"1024x1024": 1056, "1024x1536": 1584, "1536x1024": 1568},
    "high": {"1024x1024": 4160, "1024x1536": 6240, "1536x1024": 6208},
}
_QUALITY_TOKENS_AS = {"auto": "high", "hd": "high", "standard": "medium"}
_MODERATION_SNAPSHOTS = {
    "omni-moderation-latest": "omni-moderation-2024-09-26",
    "text-moderation-latest": "text-moderation-007",
    "text-moderation-stable": "text-moderation-007",
}
_MODERATION_CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/instructions",
    "self-harm/intent",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)
# The categories omni-moderation also scores images for.
_IMAGE_CATEGORIES = frozenset(
    {"self-harm", "self-harm/instructions", "self-harm/intent", "sexual", "violence", "violence/graphic"}
)
_SPOKEN = "please add the quarterly totals to the ledger before the review on friday morning".split()  # noqa: SIM905
_AUDIO_TYPES = {
    "mp3": "audio/mpeg",
    "opus": "audio/opus",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}


@dataclass(frozen=True)
class MediaReply:
    """A synthesised answer; `events` are SSE payloads, each sent as one `data:` event."""

    body: str | bytes
    content_type: str = "application/json"
    events: list[dict[str, Any]] | None = None
    status: int = 200


def parse_multipart(content_type: str, raw: bytes) -> dict[str, Any]:
    """Form fields by name; a file part becomes `{"filename", "content_type", "bytes": its length}`.

    A name ending in `[]` (how the SDK sends arrays, such as several edit images) collects a list under the bare name.
    """
    header = BytesHeaderParser().parsebytes(b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n")
    boundary = header.get_param("boundary")
    fields: dict[str, Any] = {}
    if not isinstance(boundary, str):
        return fields
    # Split on the raw delimiter rather than parse the whole body as a message: file bytes must stay byte-exact.
    for chunk in raw.split(b"--" + boundary.encode("latin-1"))[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, data = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        data = data.removesuffix(b"\r\n")
        part = BytesHeaderParser().parsebytes(head + b"\r\n\r\n")
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        filename = part.get_filename()
        value: Any = (
            {"filename": filename, "content_type": part.get_content_type(), "bytes": len(data)}
            if filename is not None
            else data.decode("utf-8", "replace")
        )
        if name.endswith("[]"):
            fields.setdefault(name[:-2], []).append(value)
        else:
            fields[name] = value
    return fields


def media_answer(path: str, body: Mapping[str, Any], number: int, created: int) -> MediaReply | None:
    """The answer to an images, audio or moderations request, or None for a path this module doesn't serve."""
    if path.endswith(("/images/generations", "/images/edits", "/images/variations")):
        return _images(path, body, number, created)
    if path.endswith("/audio/speech"):
        return _speech(body)
    if path.endswith(("/audio/transcriptions", "/audio/translations")):
        return _transcription(path.endswith("/translations"), body)
    if path.endswith("/moderations"):
        return _json(moderations(body, number))
    return None


def text_tokens(text: str) -> int:
    """The fake's token count for a text: a token per 4 characters, plus one."""
    return len(text) // 4 + 1


def images(path: str, body: Mapping[str, Any], number: int, created: int) -> dict[str, Any]:
    """An `ImagesResponse` body (see the module docstring for the counts)."""
    model = str(body.get("model") or ("dall-e-2" if path.endswith("/variations") else "gpt-image-1"))
    count = _int(body.get("n"), 1)
    prompt = str(body.get("prompt") or "")
    gpt_image = model.startswith(("gpt-image", "chatgpt-image"))
    as_url = not gpt_image and (body.get("response_format") or "url") == "url"
    data: list[dict[str, Any]] = []
    for index in range(count):
        url = f"https://images.fake-openai.invalid/img-{number}-{index}.png"
        image = {"url": url} if as_url else {"b64_json": PNG_1X1}
        if model.startswith("dall-e-3"):
            image["revised_prompt"] = f"A detailed illustration of {prompt}"
        data.append(image)
    if not gpt_image:
        return {"created": created, "data": data}
    size = _resolve(body.get("size"), "1024x1024")
    quality = _resolve(body.get("quality"), "high")
    uploads = body.get("image") if path.endswith("/edits") else None
    image_tokens = IMAGE_INPUT_TOKENS * (len(uploads) if isinstance(uploads, list) else 1 if uploads else 0)
    input_text = text_tokens(prompt)
    output = count * image_output_tokens(quality, size)
    usage = {
        "input_tokens": input_text + image_tokens,
        "input_tokens_details": {"image_tokens": image_tokens, "text_tokens": input_text},
        "output_tokens": output,
        "total_tokens": input_text + image_tokens + output,
    }
    return {
        "created": created,
        "background": _resolve(body.get("background"), "opaque"),
        "data": data,
        "output_format": str(body.get("output_format") or "png"),
        "quality": quality,
        "size": size,
        "usage": usage,
    }


def image_output_tokens(quality: str, size: str) -> int:
    """Output tokens for one GPT image of this quality and size."""
    by_size = IMAGE_OUTPUT_TOKENS.get(_QUALITY_TOKENS_AS.get(quality, quality), IMAGE_OUTPUT_TOKENS["high"])
    if size in by_size:
        return by_size[size]
    width, _, height = size.partition("x")
    area = _int(width, 1024) * _int(height, 1024)
    return round(by_size["1024x1024"] * area / (1024 * 1024))


def speech_bytes(body: Mapping[str, Any]) -> bytes:
    """`SPEECH_BYTES_PER_CHAR` bytes per input character (at least one character's worth), seeded by the input."""
    text = str(body.get("input") or "")
    pattern = zlib.crc32(text.encode()).to_bytes(4, "big") + b"\xff\xfb\x90\x64"
    length = SPEECH_BYTES_PER_CHAR * max(1, len(text))
    return (pattern * (length // len(pattern) + 1))[:length]


def audio_duration(body: Mapping[str, Any]) -> float:
    """Seconds of audio in the uploaded `file`: its byte length at `BYTES_PER_SECOND`, at least 1."""
    upload = body.get("file")
    size = upload.get("bytes", 0) if isinstance(upload, Mapping) else 0
    return max(1.0, round(size / BYTES_PER_SECOND, 2))


def transcript_words(duration: float, seed: int) -> list[str]:
    return [_SPOKEN[(seed + i) % len(_SPOKEN)] for i in range(max(1, int(duration * WORDS_PER_SECOND)))]


def transcription_usage(model: str, duration: float, prompt: str, text: str) -> dict[str, Any]:
    """whisper-1 bills by the second; the GPT transcription models by token."""
    if model.startswith("whisper"):
        return {"type": "duration", "seconds": math.ceil(duration)}
    audio = math.ceil(duration * AUDIO_TOKENS_PER_SECOND)
    prompt_tokens = text_tokens(prompt) if prompt else 0
    output = text_tokens(text)
    return {
        "type": "tokens",
        "input_tokens": audio + prompt_tokens,
        "input_token_details": {"audio_tokens": audio, "text_tokens": prompt_tokens},
        "output_tokens": output,
        "total_tokens": audio + prompt_tokens + output,
    }


def moderations(body: Mapping[str, Any], number: int) -> dict[str, Any]:
    """A `ModerationCreateResponse` body: one unflagged result per input."""
    model = str(body.get("model") or "omni-moderation-latest")
    inputs = body.get("input")
    if isinstance(inputs, list) and inputs and all(isinstance(item, str) for item in inputs):
        results = [_moderation(item, has_image=False) for item in inputs]
    elif isinstance(inputs, list):
        texts = [str(part.get("text") or "") for part in inputs if isinstance(part, Mapping)]
        has_image = any(isinstance(part, Mapping) and part.get("type") == "image_url" for part in inputs)
        results = [_moderation(" ".join(texts), has_image=has_image)]
    else:
        results = [_moderation(str(inputs or ""), has_image=False)]
    return {"id": f"modr-fake{number}", "model": _MODERATION_SNAPSHOTS.get(model, model), "results": results}


def _images(path: str, body: Mapping[str, Any], number: int, created: int) -> MediaReply:
    if str(body.get("stream")).lower() == "true":
        error = {"message": "the fake OpenAI server doesn't stream images", "type": "invalid_request_error"}
        return MediaReply(json.dumps({"error": error}), status=400)
    return _json(images(path, body, number, created))


def _speech(body: Mapping[str, Any]) -> MediaReply:
    return MediaReply(speech_bytes(body), _AUDIO_TYPES.get(str(body.get("response_format") or "mp3"), "audio/mpeg"))


def _transcription(translation: bool, body: Mapping[str, Any]) -> MediaReply:
    model = str(body.get("model") or "whisper-1")
    prompt = str(body.get("prompt") or "")
    response_format = str(body.get("response_format") or "json")
    duration = audio_duration(body)
    upload = body.get("file")
    seed = zlib.crc32(str(upload.get("filename") if isinstance(upload, Mapping) else "").encode())
    words = transcript_words(duration, seed)
    text = " ".join(words)
    usage = transcription_usage(model, duration, prompt, text)
    if str(body.get("stream")).lower() == "true" and not model.startswith("whisper") and not translation:
        events: list[dict[str, Any]] = [
            {"type": "transcript.text.delta", "delta": word if i == 0 else " " + word} for i, word in enumerate(words)
        ]
        events.append({"type": "transcript.text.done", "text": text, "usage": usage})
        return MediaReply(b"", "text/event-stream", events=events)
    if response_format in ("text", "srt", "vtt"):
        return MediaReply(_subtitles(response_format, text, duration), "text/plain; charset=utf-8")
    if response_format == "verbose_json":
        verbose = {
            "task": "translate" if translation else "transcribe",
            "language": "english",
            "duration": duration,
            "text": text,
            "segments": _segments(words, duration),
        }
        return _json(verbose if translation else {**verbose, "usage": usage})
    return _json({"text": text} if translation else {"text": text, "usage": usage})


def _segments(words: list[str], duration: float) -> list[dict[str, Any]]:
    # Whisper decodes 30-second windows; one segment per window keeps the fake's segments plausible.
    count = math.ceil(duration / 30)
    per_segment = math.ceil(len(words) / count)
    segments = []
    for index in range(count):
        start, end = index * 30.0, min(duration, (index + 1) * 30.0)
        chunk = words[index * per_segment : (index + 1) * per_segment]
        segments.append(
            {
                "id": index,
                "seek": int(start * 100),
                "start": start,
                "end": end,
                "text": " " + " ".join(chunk),
                "tokens": [50364 + _SPOKEN.index(word) for word in chunk],
                "temperature": 0.0,
                "avg_logprob": -0.25,
                "compression_ratio": 1.2,
                "no_speech_prob": 0.01,
            }
        )
    return segments


def _subtitles(response_format: str, text: str, duration: float) -> str:
    if response_format == "text":
        return text + "\n"
    millis = round(duration * 1000)
    separator = "," if response_format == "srt" else "."
    end = (
        f"{millis // 3_600_000:02d}:{millis // 60_000 % 60:02d}:{millis // 1000 % 60:02d}{separator}{millis % 1000:03d}"
    )
    if response_format == "srt":
        return f"1\n00:00:00,000 --> {end}\n{text}\n\n"
    return f"WEBVTT\n\n00:00:00.000 --> {end}\n{text}\n\n"


def _moderation(text: str, *, has_image: bool) -> dict[str, Any]:
    seed = zlib.crc32(text.encode())
    return {
        "flagged": False,
        "categories": dict.fromkeys(_MODERATION_CATEGORIES, False),
        "category_scores": {
            name: ((seed >> index) % 97 + 1) / 1_000_000 for index, name in enumerate(_MODERATION_CATEGORIES)
        },
        "category_applied_input_types": {
            name: ["text", "image"] if has_image and name in _IMAGE_CATEGORIES else ["text"]
            for name in _MODERATION_CATEGORIES
        },
    }


def _json(payload: Mapping[str, Any]) -> MediaReply:
    return MediaReply(json.dumps(payload))


def _resolve(value: Any, auto: str) -> str:
    """A requested option as the API reports it back: `auto` (or nothing) resolved to what it picked."""
    return auto if value in (None, "", "auto") else str(value)


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default
