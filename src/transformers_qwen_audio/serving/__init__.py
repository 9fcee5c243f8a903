# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
`qwen-audio serve MODEL`: an OpenAI-compatible HTTP server for audio chat (needs the `[serve]` extra).

    qwen-audio serve Qwen/Qwen-Audio-Chat                 # http://127.0.0.1:8000/v1
    qwen-audio serve ./qwen-audio-chat-native --port 9000 --max-batch-size 16
    qwen-audio serve --tiny                               # the embedded tiny model (random weights), offline

Endpoints: `POST /v1/chat/completions` (audio as `input_audio` parts, `stream: true` as server-sent events),
`POST /v1/audio/transcriptions` and `/v1/audio/translations` (OpenAI's Whisper API: json, text, srt, vtt,
verbose_json with word and segment timestamps), `GET /v1/models`, `GET /health`. Concurrent requests with the same generation settings are
batched. Audio URLs (`audio_url` parts with http(s) addresses) are downloaded only with `--allow-urls`. The server
binds to 127.0.0.1 unless `--host` says otherwise; `--api-key KEY` makes the `/v1` routes and `/health` require
`Authorization: Bearer KEY` (the `api_key` of the OpenAI client; an empty key is an error). Clips are checked against
`--max-audio-seconds` from their header before they are decoded; request heads and bodies that stall past
`--read-timeout` are cut off; SIGTERM stops the server as Ctrl+C does.

```python
>>> from openai import OpenAI
>>> client = OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="unused")
>>> audio = base64.b64encode(open("speech.wav", "rb").read()).decode()
>>> client.chat.completions.create(model="Qwen/Qwen-Audio-Chat", messages=[{"role": "user", "content": [
...     {"type": "input_audio", "input_audio": {"data": audio, "format": "wav"}},
...     {"type": "text", "text": "What does the person say?"}]}]).choices[0].message.content
```
"""
