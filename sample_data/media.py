"""The sample's calls to routes billed other than by text tokens: what each used (images, characters, audio seconds),
and the attributes the wrapper records from their answers (llmledger/wrapper/media.py)."""

from __future__ import annotations

import math
import random
from typing import Any

from llmledger import semconv as sc
from sample_data.outcome import Usage
from sample_data.world import IMAGE_INPUT_TOKENS, IMAGE_OUTPUT_TOKENS, Feature, Images

MEDIA_APIS = frozenset({"images", "audio_speech", "audio_transcriptions", "moderations"})
_MAX_SPEECH_CHARACTERS = 4096  # the speech endpoint's input limit
_MAX_AUDIO_SECONDS = 1500  # a 25 MB upload


def draw_media_usage(rng: random.Random, feature: Feature) -> Usage:
    """What one call of a media feature used, drawn around the feature's median input."""
    if feature.api == "images" and feature.images is not None:
        return _image_usage(rng, feature, feature.images)
    if feature.api == "audio_speech":
        characters = round(feature.input_tokens * math.exp(rng.gauss(0, 0.5)))
        return Usage(0, 0, 0, 0, "", characters=min(max(characters, 1), _MAX_SPEECH_CHARACTERS))
    if feature.api == "audio_transcriptions":
        # whisper-1 reports whole seconds (usage.type "duration"), at least one.
        seconds = math.ceil(feature.input_tokens * math.exp(rng.gauss(0, 0.7)))
        return Usage(0, 0, 0, 0, "", audio_seconds=float(min(max(seconds, 1), _MAX_AUDIO_SECONDS)))
    return Usage(0, 0, 0, 0, "")


def _image_usage(rng: random.Random, feature: Feature, asked: Images) -> Usage:
    quality = _mostly_first(rng, asked.qualities)
    size = _mostly_first(rng, asked.sizes)
    count = rng.choice(asked.counts)
    if not feature.model.startswith("gpt-image"):
        return Usage(0, 0, 0, 0, "", images=count, image_size=size, image_quality=quality)
    text = max(8, round(feature.input_tokens * math.exp(rng.gauss(0, 0.5))))
    uploaded = IMAGE_INPUT_TOKENS * rng.choice((1, 1, 2)) if rng.random() < asked.edits else 0
    output = count * IMAGE_OUTPUT_TOKENS[quality][size]
    return Usage(
        text + uploaded,
        0,
        output,
        0,
        "",
        input_image_tokens=uploaded,
        output_image_tokens=output,
        images=count,
        image_size=size,
        image_quality=quality,
    )


def _mostly_first(rng: random.Random, choices: tuple[str, ...]) -> str:
    weights = [3.0] + [1.0] * (len(choices) - 1)
    return rng.choices(choices, weights=weights)[0]


def media_response_attributes(attrs: dict[str, Any], feature: Feature, model_snapshot: str, usage: Usage) -> None:
    """What the wrapper records from an answered media call, in its order."""
    if feature.api == "images":
        attrs[sc.USAGE_IMAGES] = usage.images
        attrs[sc.IMAGE_SIZE] = usage.image_size
        attrs[sc.IMAGE_QUALITY] = usage.image_quality
        if not usage.output_tokens:  # DALL·E answers without usage: billed per image
            attrs[sc.BILLING_UNIT] = "images"
            return
        attrs[sc.BILLING_UNIT] = "tokens"
        attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] = usage.input_tokens
        attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] = usage.output_tokens
        attrs[sc.GEN_AI_USAGE_IMAGE_INPUT_TOKENS] = usage.input_image_tokens
        attrs[sc.GEN_AI_USAGE_TEXT_INPUT_TOKENS] = usage.input_tokens - usage.input_image_tokens
        attrs[sc.GEN_AI_USAGE_IMAGE_OUTPUT_TOKENS] = usage.output_image_tokens
    elif feature.api == "audio_speech":
        attrs[sc.USAGE_INPUT_CHARACTERS] = usage.characters
        attrs[sc.BILLING_UNIT] = "characters"
    elif feature.api == "audio_transcriptions":
        attrs[sc.BILLING_UNIT] = "audio_seconds"
        attrs[sc.USAGE_AUDIO_SECONDS] = usage.audio_seconds
    else:
        attrs[sc.BILLING_UNIT] = "requests"
        attrs[sc.GEN_AI_RESPONSE_MODEL] = model_snapshot
