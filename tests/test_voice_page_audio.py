"""The voice page's audio worklets in real headless Chromium: the playback jitter buffer plays the stereo mix at the
right pitch and side, at 48 kHz and at a device rate of 44.1 kHz, and the capture worklet cuts 20 ms frames of 960
samples at 48 kHz from either rate."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
import uvicorn
from fastapi import FastAPI
from playwright.async_api import Page, async_playwright

from host.admin.voice.routes import voice_router
from host.config import Settings
from tests.bus_support import wait_until
from tests.chromium import chromium_path
from tests.host_process import closed_port

# `frames` mixed frames of 440 Hz in the left ear only, all arriving at once; rendered for one second.
PLAY = """async ([rate, frames]) => {
  const context = new OfflineAudioContext({ numberOfChannels: 2, length: rate, sampleRate: rate });
  await context.audioWorklet.addModule("static/playback-worklet.js");
  const node = new AudioWorkletNode(context, "playback-processor", { numberOfInputs: 0, outputChannelCount: [2] });
  node.connect(context.destination);
  for (let frame = 0; frame < frames; frame++) {
    const pcm = new Int16Array(1920);
    for (let i = 0; i < 960; i++) {
      pcm[2 * i] = Math.round(Math.sin((2 * Math.PI * 440 * (frame * 960 + i)) / 48000) * 16000);
    }
    node.port.postMessage(pcm.buffer, [pcm.buffer]);
  }
  await new Promise((resolve) => setTimeout(resolve, 100));  // the messages reach the worklet before rendering
  const out = await context.startRendering();
  const left = out.getChannelData(0), right = out.getChannelData(1);
  let first = -1, last = -1, crossings = 0, rightPeak = 0;
  for (let i = 0; i < left.length; i++) {
    if (Math.abs(left[i]) > 0.01) { if (first < 0) first = i; last = i; }
    rightPeak = Math.max(rightPeak, Math.abs(right[i]));
  }
  for (let i = first + 1; i <= last; i++) if ((left[i - 1] < 0) !== (left[i] < 0)) crossings++;
  const seconds = (last - first) / rate;
  return { seconds, hz: crossings / 2 / seconds, rightPeak };
}"""

# One second of a ramp through the capture worklet: the frames it posts, their size, and their count.
CAPTURE = """async (rate) => {
  const context = new OfflineAudioContext({ numberOfChannels: 1, length: rate, sampleRate: rate });
  await context.audioWorklet.addModule("static/capture-worklet.js");
  const node = new AudioWorkletNode(context, "capture-processor");
  const frames = [];
  node.port.onmessage = (event) => frames.push(new Int16Array(event.data));
  const tone = new OscillatorNode(context, { frequency: 440 });
  tone.connect(node).connect(context.destination);
  tone.start();
  await context.startRendering();
  await new Promise((resolve) => setTimeout(resolve, 200));
  const sizes = [...new Set(frames.map((frame) => frame.length))];
  const peak = Math.max(...frames.map((frame) => Math.max(...frame)));
  return { count: frames.length, sizes, peak };
}"""


@pytest_asyncio.fixture(loop_scope="function")
async def page() -> AsyncIterator[Page]:
    app = FastAPI()
    settings = Settings()
    app.include_router(voice_router(lambda: settings))
    port = closed_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    await wait_until(lambda: server.started, "the web app listening")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium_path())
        context = await browser.new_context(bypass_csp=True)
        page = await context.new_page()
        await page.goto(f"http://127.0.0.1:{port}/voice/")
        try:
            yield page
        finally:
            await browser.close()
            server.should_exit = True
            await task


@pytest.mark.parametrize("rate", [48_000, 44_100])
@pytest.mark.parametrize(("frames", "seconds"), [(8, 0.16), (25, 0.2)], ids=["all-played", "burst-capped"])
async def test_the_mix_plays_at_its_pitch_and_side(page: Page, rate: int, frames: int, seconds: float) -> None:
    """A burst beyond the jitter buffer's 10 frames keeps the newest 200 ms: the delay never grows past that."""
    played = await page.evaluate(PLAY, [rate, frames])
    assert played["seconds"] == pytest.approx(seconds, abs=0.01)
    assert played["hz"] == pytest.approx(440, rel=0.02)  # resampled, not sped up or slowed down
    assert played["rightPeak"] < 0.001  # the left ear only


@pytest.mark.parametrize("rate", [48_000, 44_100])
async def test_the_microphone_is_cut_into_20_ms_frames_at_48_khz(page: Page, rate: int) -> None:
    captured = await page.evaluate(CAPTURE, rate)
    assert captured["sizes"] == [960]
    assert captured["count"] in (49, 50)  # one second at 48 kHz, whatever the context's rate
    assert captured["peak"] > 30_000  # a full-scale tone, converted to 16 bits
