"""Five lines to monitor an app's OpenAI calls with llmledger (run `make run` for a live demo)."""

import openai

import llmledger

llmledger.configure(service_name="quickstart", environment="development")  # spans → collector
llmledger.instrument()  # every OpenAI call from here on becomes a span
client = openai.OpenAI()  # OPENAI_API_KEY / OPENAI_BASE_URL as usual
with llmledger.attributes(user="user-42", feature="greeting"):
    print(
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi!"}])
        .choices[0]
        .message.content
    )
