"""The baseline of benchmarks/scale.py: a bare aiohttp server answering what Seamline answers, nothing else.

    python benchmarks/scale_echo.py PORT TELEGRAM_API_BASE VK_API_BASE VK_TOKEN

It serves the same three doors (the widget's /chat/ws, /telegram/webhook, /vk/callback) and sends
each customer's text straight back: over the socket, or with one sendMessage / messages.send to the
fake APIs (plain aiohttp, no aiogram or vk_api). No pipeline, no database, no Redis: what the
transport alone costs on this machine at the same load, measured the same way.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys

import aiohttp
from aiohttp import WSMsgType, web

TELEGRAM_TOKEN = "123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawQ"  # tests/fakes/telegram.py's


def make_app(telegram: str, vk: str, vk_token: str) -> web.Application:
    app = web.Application()
    sending: set[asyncio.Task] = set()
    client: list[aiohttp.ClientSession] = []

    def later(coroutine) -> None:
        task = asyncio.create_task(coroutine)
        sending.add(task)
        task.add_done_callback(sending.discard)

    async def post(url: str, data: dict) -> None:
        async with client[0].post(url, data=data) as response:
            await response.read()

    async def chat(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for frame in ws:
            if frame.type != WSMsgType.TEXT:
                break
            data = json.loads(frame.data)
            if data.get("type") == "hello":
                await ws.send_json({"type": "welcome"})
            elif data.get("type") == "message":
                await ws.send_json({"type": "message", "role": "bot", "text": data.get("text")})
        return ws

    async def telegram_webhook(request: web.Request) -> web.Response:
        message = (await request.json()).get("message") or {}
        url = f"{telegram}/bot{TELEGRAM_TOKEN}/sendMessage"
        later(post(url, {"chat_id": str(message["chat"]["id"]), "text": message.get("text") or "?"}))
        return web.json_response({})

    async def vk_callback(request: web.Request) -> web.Response:
        message = (await request.json())["object"]["message"]
        params = {
            "access_token": vk_token,
            "v": "5.199",
            "peer_id": str(message["peer_id"]),
            "random_id": str(random.getrandbits(31)),
            "message": message.get("text") or "?",
        }
        later(post(f"{vk}/method/messages.send", params))
        return web.Response(text="ok")

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def session(app: web.Application):
        client.append(aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)))
        yield
        await asyncio.gather(*sending, return_exceptions=True)
        await client[0].close()

    app.cleanup_ctx.append(session)
    app.router.add_get("/chat/ws", chat)
    app.router.add_post("/telegram/webhook", telegram_webhook)
    app.router.add_post("/vk/callback", vk_callback)
    app.router.add_get("/healthz", healthz)
    return app


if __name__ == "__main__":
    port, telegram, vk, vk_token = sys.argv[1:5]
    web.run_app(make_app(telegram, vk, vk_token), host="127.0.0.1", port=int(port), print=None, access_log=None)
