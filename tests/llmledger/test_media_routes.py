"""Every billable route besides text: images, speech, transcriptions and translations, moderations, and the Responses
API's built-in tools. One span per call with what it is billed on, priced independently here (genai-prices' own
calculation, or OpenAI's published per-image price), for success, failure and async."""

from __future__ import annotations

from decimal import Decimal

import openai
import pytest
from genai_prices import Usage as GenaiUsage
from genai_prices import calc_price

from llmledger import semconv as sc
from llmledger.testing.fake_openai import FakeOpenAI, Reply
from llmledger.testing.fake_openai_media import IMAGE_INPUT_TOKENS, image_output_tokens, text_tokens

WAV = ("speech.wav", b"\0" * 48_000, "audio/wav")  # 3 seconds to the fake
PNG = ("in.png", b"\x89PNG" + b"\0" * 64, "image/png")


def listed(model: str, **usage: float) -> float:
    return float(calc_price(GenaiUsage(**usage), model, provider_id="openai").total_price)


def test_gpt_image_generation_is_billed_on_text_and_image_tokens(client: openai.OpenAI, spans, instrumented) -> None:
    prompt = "a ledger on a desk"
    client.images.generate(model="gpt-image-1", prompt=prompt, n=2, size="1024x1536", quality="low")
    attrs = spans.one().attributes
    output = 2 * image_output_tokens("low", "1024x1536")
    assert spans.one().name == "image_generation gpt-image-1"
    assert attrs[sc.GEN_AI_OPERATION_NAME] == "image_generation"
    assert attrs[sc.OPENAI_API_TYPE] == "images"
    assert attrs[sc.BILLING_UNIT] == "tokens"
    assert attrs[sc.USAGE_IMAGES] == 2
    assert (attrs[sc.IMAGE_SIZE], attrs[sc.IMAGE_QUALITY]) == ("1024x1536", "low")
    assert attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] == text_tokens(prompt)
    assert attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == attrs[sc.GEN_AI_USAGE_IMAGE_OUTPUT_TOKENS] == output
    expected = listed("gpt-image-1", input_tokens=text_tokens(prompt), output_tokens=output)
    assert attrs[sc.GEN_AI_USAGE_COST_AMOUNT] == pytest.approx(expected, rel=1e-12)


def test_gpt_image_edit_prices_input_image_tokens_at_their_rate(client: openai.OpenAI, spans, instrumented) -> None:
    prompt = "add a hat"
    client.images.edit(model="gpt-image-1", image=PNG, prompt=prompt, quality="medium", size="1024x1024")
    attrs = spans.one().attributes
    assert attrs[sc.GEN_AI_USAGE_IMAGE_INPUT_TOKENS] == IMAGE_INPUT_TOKENS
    total_input = IMAGE_INPUT_TOKENS + text_tokens(prompt)
    assert attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] == total_input
    output = image_output_tokens("medium", "1024x1024")
    expected = listed(
        "gpt-image-1", input_tokens=total_input, input_image_tokens=IMAGE_INPUT_TOKENS, output_tokens=output
    )
    assert attrs[sc.GEN_AI_USAGE_COST_AMOUNT] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "price"),
    [({}, "0.040"), ({"quality": "hd", "size": "1792x1024"}, "0.120"), ({"size": "1024x1792"}, "0.080")],
)
def test_dall_e_3_is_billed_per_image_by_quality_and_size(client, spans, instrumented, kwargs, price) -> None:
    client.images.generate(model="dall-e-3", prompt="a fox", **kwargs)
    attrs = spans.one().attributes
    assert attrs[sc.BILLING_UNIT] == "images"
    assert attrs[sc.USAGE_IMAGES] == 1
    assert sc.GEN_AI_USAGE_INPUT_TOKENS not in attrs
    assert Decimal(str(attrs[sc.GEN_AI_USAGE_COST_AMOUNT])) == Decimal(price)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the SDK marks it deprecated; OpenAI still bills it
def test_dall_e_2_variation(client: openai.OpenAI, spans, instrumented) -> None:
    client.images.create_variation(model="dall-e-2", image=PNG, n=3, size="256x256")
    attrs = spans.one().attributes
    assert (attrs[sc.USAGE_IMAGES], attrs[sc.IMAGE_SIZE]) == (3, "256x256")
    assert Decimal(str(attrs[sc.GEN_AI_USAGE_COST_AMOUNT])) == 3 * Decimal("0.016")


def test_speech_by_characters(client: openai.OpenAI, spans, instrumented) -> None:
    text = "Your invoice is ready."
    audio = client.audio.speech.create(model="tts-1", voice="alloy", input=text)
    assert audio.content  # the app gets its bytes untouched
    attrs = spans.one().attributes
    assert (attrs[sc.OPENAI_API_TYPE], attrs[sc.BILLING_UNIT]) == ("audio_speech", "characters")
    assert attrs[sc.USAGE_INPUT_CHARACTERS] == len(text)
    assert attrs[sc.GEN_AI_USAGE_COST_AMOUNT] == pytest.approx(listed("tts-1", input_characters=len(text)), rel=1e-12)


def test_whisper_transcription_by_audio_seconds(client: openai.OpenAI, spans, instrumented) -> None:
    result = client.audio.transcriptions.create(model="whisper-1", file=WAV, response_format="verbose_json")
    attrs = spans.one().attributes
    assert result.duration == 3.0
    assert (attrs[sc.BILLING_UNIT], attrs[sc.USAGE_AUDIO_SECONDS]) == ("audio_seconds", 3.0)
    assert attrs[sc.GEN_AI_USAGE_COST_AMOUNT] == pytest.approx(listed("whisper-1", audio_seconds=3), rel=1e-12)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_whisper_translation_by_audio_seconds_from_verbose_json(client, spans, instrumented) -> None:
    client.audio.translations.create(model="whisper-1", file=WAV, response_format="verbose_json")
    attrs = spans.one().attributes
    assert (attrs[sc.OPENAI_API_TYPE], attrs[sc.USAGE_AUDIO_SECONDS]) == ("audio_translations", 3.0)
    assert sc.GEN_AI_USAGE_COST_AMOUNT in attrs


def test_gpt_4o_transcribe_by_tokens(client: openai.OpenAI, spans, instrumented) -> None:
    result = client.audio.transcriptions.create(model="gpt-4o-transcribe", file=WAV)
    usage = result.usage
    assert usage is not None
    assert usage.type == "tokens"
    attrs = spans.one().attributes
    assert attrs[sc.BILLING_UNIT] == "tokens"
    assert attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] == usage.input_tokens
    assert attrs[sc.GEN_AI_USAGE_AUDIO_INPUT_TOKENS] == usage.input_token_details.audio_tokens
    expected = listed(
        "gpt-4o-transcribe",
        input_tokens=usage.input_tokens,
        input_audio_tokens=usage.input_token_details.audio_tokens,
        output_tokens=usage.output_tokens,
    )
    assert attrs[sc.GEN_AI_USAGE_COST_AMOUNT] == pytest.approx(expected, rel=1e-12)


def test_moderation_is_a_known_zero(client: openai.OpenAI, spans, instrumented) -> None:
    client.moderations.create(model="omni-moderation-latest", input=["first", "second"])
    attrs = spans.one().attributes
    assert attrs[sc.GEN_AI_OPERATION_NAME] == "moderation"
    assert attrs[sc.GEN_AI_RESPONSE_MODEL] == "omni-moderation-2024-09-26"
    assert attrs[sc.BILLING_UNIT] == "requests"
    assert attrs[sc.GEN_AI_USAGE_COST_AMOUNT] == 0.0
    assert attrs[sc.GEN_AI_USAGE_COST_SOURCE] == sc.COST_SOURCE_LOCAL


def test_builtin_tools_are_counted_and_priced_per_call(client: openai.OpenAI, spans, instrumented) -> None:
    tools = [{"type": "web_search"}, {"type": "file_search", "vector_store_ids": ["vs_1"]}]
    response = client.responses.create(model="gpt-4o-mini", input="news?", tools=tools)  # type: ignore[arg-type]
    attrs = spans.one().attributes
    assert attrs[sc.USAGE_WEB_SEARCH_CALLS] == 1
    assert attrs[sc.USAGE_FILE_SEARCH_CALLS] == 1
    usage = response.usage
    assert usage is not None
    expected = listed(
        "gpt-4o-mini",
        input_tokens=usage.input_tokens,
        cache_read_tokens=usage.input_tokens_details.cached_tokens,
        output_tokens=usage.output_tokens,
        web_searches=1,
        storage_searches=1,
    )
    assert attrs[sc.GEN_AI_USAGE_COST_AMOUNT] == pytest.approx(expected, rel=1e-12)


def test_a_code_interpreter_container_is_billed_once(client: openai.OpenAI, spans, instrumented) -> None:
    tools = [{"type": "code_interpreter", "container": {"type": "auto"}}]
    first = client.responses.create(model="gpt-4.1", input="plot it", tools=tools)  # type: ignore[arg-type]
    container = next(item.container_id for item in first.output if item.type == "code_interpreter_call")
    reuse = [{"type": "code_interpreter", "container": container}]
    client.responses.create(model="gpt-4.1", input="and again", tools=reuse)  # type: ignore[arg-type]
    client.responses.create(model="gpt-4.1", input="a new one", tools=tools)  # type: ignore[arg-type]
    first_span, reused_span, new_span = spans.finished()
    assert first_span.attributes[sc.USAGE_CODE_INTERPRETER_SESSIONS] == 1
    assert sc.USAGE_CODE_INTERPRETER_SESSIONS not in reused_span.attributes
    assert new_span.attributes[sc.USAGE_CODE_INTERPRETER_SESSIONS] == 1
    usage = first.usage
    assert usage is not None
    tokens = listed("gpt-4.1", input_tokens=usage.input_tokens, output_tokens=usage.output_tokens)
    expected = Decimal(str(tokens)) + Decimal("0.03")  # OpenAI's container price (llmledger/price_supplement.py)
    assert first_span.attributes[sc.GEN_AI_USAGE_COST_AMOUNT] == pytest.approx(float(expected), rel=1e-12)


@pytest.mark.parametrize(
    ("call", "api_type"),
    [
        (lambda c: c.images.generate(model="gpt-image-1", prompt="x"), "images"),
        (lambda c: c.audio.speech.create(model="tts-1", voice="alloy", input="x"), "audio_speech"),
        (lambda c: c.audio.transcriptions.create(model="whisper-1", file=WAV), "audio_transcriptions"),
        (lambda c: c.moderations.create(input="x"), "moderations"),
    ],
)
def test_a_failed_call_still_has_its_span(fake: FakeOpenAI, client, spans, instrumented, call, api_type) -> None:
    error = '{"error": {"message": "bad", "type": "invalid_request_error"}}'
    fake.enqueue(Reply(400, error))
    with pytest.raises(openai.BadRequestError):
        call(client)
    attrs = spans.one().attributes
    assert attrs[sc.OPENAI_API_TYPE] == api_type
    assert attrs[sc.ERROR_TYPE] == "BadRequestError"
    assert attrs[sc.HTTP_RESPONSE_STATUS_CODE] == 400
    assert sc.GEN_AI_USAGE_COST_AMOUNT not in attrs


async def test_async_routes(async_client: openai.AsyncOpenAI, spans, instrumented) -> None:
    await async_client.images.generate(model="dall-e-3", prompt="a fox", quality="hd")
    await async_client.audio.transcriptions.create(model="whisper-1", file=WAV, response_format="verbose_json")
    await async_client.moderations.create(input="x")
    got = {span.attributes[sc.OPENAI_API_TYPE]: span.attributes for span in spans.finished()}
    assert Decimal(str(got["images"][sc.GEN_AI_USAGE_COST_AMOUNT])) == Decimal("0.080")
    assert got["audio_transcriptions"][sc.USAGE_AUDIO_SECONDS] == 3.0
    assert got["moderations"][sc.GEN_AI_USAGE_COST_AMOUNT] == 0.0
