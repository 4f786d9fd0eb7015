"""The fake OpenAI server's images, audio, moderations and Responses built-in tools, as the real SDK parses them."""

from __future__ import annotations

import base64

import openai
import pytest

from llmledger.testing.fake_openai import FakeOpenAI
from llmledger.testing.fake_openai_media import PNG_1X1, parse_multipart

PNG = base64.b64decode(PNG_1X1)
WAV_3S = ("a.wav", b"x" * 48_000, "audio/wav")  # 3 seconds at the fake's 16000 bytes a second


def test_gpt_image_generation_reports_usage(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    prompt = "a ledger on a desk"
    result = client.images.generate(model="gpt-image-1", prompt=prompt, n=2, quality="medium", size="1024x1536")

    assert [base64.b64decode(image.b64_json or "")[:8] for image in result.data or []] == [b"\x89PNG\r\n\x1a\n"] * 2
    assert (result.size, result.quality, result.output_format, result.background) == (
        "1024x1536",
        "medium",
        "png",
        "opaque",
    )
    assert result.usage is not None
    assert result.usage.model_dump(exclude_none=True) == {
        "input_tokens": len(prompt) // 4 + 1,
        "input_tokens_details": {"image_tokens": 0, "text_tokens": len(prompt) // 4 + 1},
        "output_tokens": 2 * 1584,
        "total_tokens": len(prompt) // 4 + 1 + 2 * 1584,
    }
    assert fake.requests[-1].path == "/v1/images/generations"
    assert fake.requests[-1].body["quality"] == "medium"


@pytest.mark.parametrize(
    ("quality", "size", "per_image"),
    [("low", "1024x1024", 272), ("auto", "auto", 4160), ("high", "1536x1024", 6208), ("low", "512x512", 68)],
)
def test_gpt_image_output_tokens_follow_quality_and_size(
    client: openai.OpenAI, quality: str, size: str, per_image: int
) -> None:
    result = client.images.generate(model="gpt-image-1-mini", prompt="x", quality=quality, size=size)

    assert result.usage is not None
    assert result.usage.output_tokens == per_image


def test_dall_e_3_generation_has_revised_prompt_and_no_usage(client: openai.OpenAI) -> None:
    result = client.images.generate(model="dall-e-3", prompt="a fox", size="1792x1024", quality="hd", n=1)

    assert result.data is not None
    assert len(result.data) == 1
    assert result.data[0].url
    assert result.data[0].b64_json is None
    assert result.data[0].revised_prompt
    assert (result.usage, result.size, result.quality) == (None, None, None)


def test_gpt_image_edit_counts_input_images(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    result = client.images.edit(model="gpt-image-1", image=("a.png", PNG, "image/png"), prompt="add a hat")

    assert result.usage is not None
    assert result.usage.input_tokens_details.image_tokens == 323
    assert result.usage.input_tokens == 323 + len("add a hat") // 4 + 1
    assert result.usage.output_tokens == 4160
    request = fake.requests[-1]
    assert request.path == "/v1/images/edits"
    assert request.body == {
        "prompt": "add a hat",
        "model": "gpt-image-1",
        "image": {"filename": "a.png", "content_type": "image/png", "bytes": len(PNG)},
    }

    several = client.images.edit(
        model="gpt-image-1", image=[("a.png", PNG, "image/png"), ("b.png", PNG, "image/png")], prompt="merge"
    )
    assert several.usage is not None
    assert several.usage.input_tokens_details.image_tokens == 2 * 323
    assert [image["filename"] for image in fake.requests[-1].body["image"]] == ["a.png", "b.png"]


def test_dall_e_2_variation(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    with pytest.warns(DeprecationWarning, match="deprecated"):
        result = client.images.create_variation(
            model="dall-e-2", image=("a.png", PNG, "image/png"), n=2, response_format="b64_json"
        )

    assert [image.b64_json for image in result.data or []] == [PNG_1X1] * 2
    assert result.usage is None
    assert fake.requests[-1].body["n"] == "2"


def test_speech_returns_audio_bytes(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    audio = client.audio.speech.create(model="tts-1", voice="alloy", input="hello")

    assert audio.response.headers["content-type"] == "audio/mpeg"
    assert len(audio.content) == 5 * 1000
    assert audio.content == client.audio.speech.create(model="tts-1", voice="alloy", input="hello").content
    assert fake.requests[-1].body == {"input": "hello", "model": "tts-1", "voice": "alloy"}


def test_whisper_verbose_transcription_has_duration(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    result = client.audio.transcriptions.create(model="whisper-1", file=WAV_3S, response_format="verbose_json")

    assert isinstance(result, openai.types.audio.TranscriptionVerbose)
    assert result.duration == 3.0
    assert result.language == "english"
    assert result.usage is not None
    assert (result.usage.type, result.usage.seconds) == ("duration", 3)
    assert result.segments is not None
    assert result.segments[0].end == 3.0
    assert result.segments[0].text.strip() == result.text
    assert len(result.text.split()) == 6
    assert fake.requests[-1].body == {
        "model": "whisper-1",
        "response_format": "verbose_json",
        "file": {"filename": "a.wav", "content_type": "audio/wav", "bytes": 48_000},
    }


def test_whisper_json_and_text_transcriptions(client: openai.OpenAI) -> None:
    result = client.audio.transcriptions.create(model="whisper-1", file=("b.mp3", b"x" * 100))
    text = client.audio.transcriptions.create(model="whisper-1", file=("b.mp3", b"x" * 100), response_format="text")

    assert isinstance(result.usage, openai.types.audio.transcription.UsageDuration)
    assert result.usage.seconds == 1  # at least a second
    assert text == result.text + "\n"


def test_gpt_4o_transcription_reports_tokens(client: openai.OpenAI) -> None:
    result = client.audio.transcriptions.create(model="gpt-4o-transcribe", file=WAV_3S, prompt="ledger terms")

    assert isinstance(result.usage, openai.types.audio.transcription.UsageTokens)
    output = len(result.text) // 4 + 1
    assert result.usage.model_dump(exclude_none=True) == {
        "type": "tokens",
        "input_tokens": 30 + 4,
        "input_token_details": {"audio_tokens": 30, "text_tokens": 4},
        "output_tokens": output,
        "total_tokens": 34 + output,
    }


def test_gpt_4o_transcription_stream(client: openai.OpenAI) -> None:
    events = list(client.audio.transcriptions.create(model="gpt-4o-mini-transcribe", file=WAV_3S, stream=True))

    deltas, done = events[:-1], events[-1]
    assert {event.type for event in deltas} == {"transcript.text.delta"}
    assert len(deltas) == 6
    assert done.type == "transcript.text.done"
    assert "".join(event.delta for event in deltas) == done.text
    assert done.usage is not None
    assert (done.usage.type, done.usage.input_tokens, done.usage.output_tokens) == (
        "tokens",
        30,
        len(done.text) // 4 + 1,
    )
    assert done.usage.input_token_details is not None
    assert done.usage.input_token_details.audio_tokens == 30


def test_translations(client: openai.OpenAI) -> None:
    with pytest.warns(DeprecationWarning, match="deprecated"):
        plain = client.audio.translations.create(model="whisper-1", file=WAV_3S)
    with pytest.warns(DeprecationWarning, match="deprecated"):
        verbose = client.audio.translations.create(model="whisper-1", file=WAV_3S, response_format="verbose_json")

    assert isinstance(plain, openai.types.audio.Translation)
    assert isinstance(verbose, openai.types.audio.TranslationVerbose)
    assert plain.text == verbose.text
    assert (verbose.duration, verbose.language) == (3.0, "english")


def test_moderations_one_result_per_input(client: openai.OpenAI) -> None:
    result = client.moderations.create(model="omni-moderation-latest", input=["a", "b"])

    assert result.id.startswith("modr-")
    assert result.model == "omni-moderation-2024-09-26"
    assert len(result.results) == 2
    first = result.results[0]
    assert first.flagged is False
    assert not any(first.categories.model_dump().values())
    assert first.category_applied_input_types.violence == ["text"]
    assert 0 < first.category_scores.self_harm < 0.001


def test_moderations_of_text_and_image_parts_are_one_result(client: openai.OpenAI) -> None:
    parts = [{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}]
    result = client.moderations.create(model="omni-moderation-latest", input=parts)

    assert len(result.results) == 1
    assert result.results[0].category_applied_input_types.violence == ["text", "image"]
    assert result.results[0].category_applied_input_types.hate == ["text"]


def test_responses_built_in_tools_add_output_items(client: openai.OpenAI) -> None:
    tools = [{"type": "web_search"}, {"type": "code_interpreter", "container": {"type": "auto"}}]
    response = client.responses.create(model="gpt-4o-mini", input="hi", tools=tools)

    assert [item.type for item in response.output] == ["web_search_call", "code_interpreter_call", "message"]
    search, code = response.output[0], response.output[1]
    assert search.type == "web_search_call"
    assert search.status == "completed"
    assert search.action.type == "search"
    assert search.action.query == "hi"
    assert code.type == "code_interpreter_call"
    assert code.container_id.startswith("cntr_")
    assert (code.status, code.outputs) == ("completed", None)
    assert response.output_text
    assert [tool.type for tool in response.tools] == ["web_search", "code_interpreter"]


def test_responses_file_search_and_image_generation_items(client: openai.OpenAI) -> None:
    tools = [{"type": "file_search", "vector_store_ids": ["vs_1"]}, {"type": "image_generation", "quality": "low"}]
    response = client.responses.create(
        model="gpt-4o-mini",
        input=[{"role": "user", "content": "find the totals"}],
        tools=tools,
        include=["file_search_call.results"],
    )

    search, image = response.output[0], response.output[1]
    assert search.type == "file_search_call"
    assert search.queries == ["find the totals"]
    assert search.results is not None
    assert search.results[0].file_id
    assert image.type == "image_generation_call"
    assert (image.status, image.quality, image.size) == ("completed", "low", "1024x1024")
    assert base64.b64decode(image.result or "") == PNG


def test_responses_without_built_in_tools_are_unchanged(client: openai.OpenAI) -> None:
    tools = [{"type": "function", "name": "f", "parameters": {"type": "object", "properties": {}}}]
    response = client.responses.create(model="gpt-4o-mini", input="hi", tools=tools)

    assert [item.type for item in response.output] == ["message"]
    assert response.tools == []


def test_responses_stream_with_built_in_tools(client: openai.OpenAI) -> None:
    tools = [{"type": "web_search_preview"}, {"type": "code_interpreter", "container": "cntr_mine"}]
    with client.responses.stream(model="gpt-4o-mini", input="hi", tools=tools) as stream:
        events = list(stream)
        final = stream.get_final_response()

    done = [event.item for event in events if event.type == "response.output_item.done"]
    assert [item.type for item in done] == ["web_search_call", "code_interpreter_call", "message"]
    assert [event.sequence_number for event in events] == list(range(len(events)))
    assert [item.type for item in final.output] == ["web_search_call", "code_interpreter_call", "message"]
    assert final.output[1].type == "code_interpreter_call"
    assert final.output[1].container_id == "cntr_mine"
    assert final.output_text == "".join(event.delta for event in events if event.type == "response.output_text.delta")


async def test_async_image_generation(fake: FakeOpenAI, async_client: openai.AsyncOpenAI) -> None:
    result = await async_client.images.generate(model="gpt-image-1", prompt="x", quality="high")

    assert result.usage is not None
    assert result.usage.output_tokens == 4160


async def test_async_transcription_stream(async_client: openai.AsyncOpenAI) -> None:
    stream = await async_client.audio.transcriptions.create(model="gpt-4o-transcribe", file=WAV_3S, stream=True)
    events = [event async for event in stream]

    assert events[-1].type == "transcript.text.done"
    assert events[-1].usage is not None
    assert events[-1].usage.total_tokens > 30


async def test_async_speech_and_moderation(async_client: openai.AsyncOpenAI) -> None:
    audio = await async_client.audio.speech.create(
        model="gpt-4o-mini-tts", voice="alloy", input="hi", response_format="wav"
    )
    moderation = await async_client.moderations.create(input="hello")

    assert (len(audio.content), audio.response.headers["content-type"]) == (2000, "audio/wav")
    assert len(moderation.results) == 1


async def test_async_responses_with_tools(async_client: openai.AsyncOpenAI) -> None:
    response = await async_client.responses.create(
        model="gpt-4o-mini",
        input="hi",
        tools=[{"type": "web_search"}],
    )

    assert [item.type for item in response.output] == ["web_search_call", "message"]


def test_multipart_parsing_keeps_file_bytes_exact() -> None:
    boundary = "b0undary"
    payload = b"\r\n--b0und\x00\xff\r\n\r\n"
    raw = (
        b"--b0undary\r\n"
        b'Content-Disposition: form-data; name="model"\r\n\r\n'
        b"whisper-1\r\n"
        b"--b0undary\r\n"
        b'Content-Disposition: form-data; name="include[]"\r\n\r\n'
        b"logprobs\r\n"
        b"--b0undary\r\n"
        b'Content-Disposition: form-data; name="file"; filename="a b.wav"\r\n'
        b"Content-Type: audio/wav\r\n\r\n" + payload + b"\r\n"
        b"--b0undary--\r\n"
    )

    assert parse_multipart(f"multipart/form-data; boundary={boundary}", raw) == {
        "model": "whisper-1",
        "include": ["logprobs"],
        "file": {"filename": "a b.wav", "content_type": "audio/wav", "bytes": len(payload)},
    }
