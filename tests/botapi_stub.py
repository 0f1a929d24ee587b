"""A stub Telegram Bot API server on 127.0.0.1 for tests/test_bot.py.

It implements the methods the bot uses, with the Bot API's shapes (https://core.telegram.org/bots/api):
getMe, deleteWebhook, getUpdates (long polling, capped at LONG_POLL_CAP_S), getFile, the file
download (``/file/bot<token>/<path>``), sendPhoto and sendMessage. Anything else answers 404 and
is recorded in ``unknown_calls``. A wrong token answers 401 like Telegram.

    stub = StubBotAPI(token).start()
    app = build_application(token, pipe, base_url=stub.base_url, base_file_url=stub.base_file_url)
    stub.push_photo(chat_id=7, data=jpeg_bytes)
    replies = stub.wait_for_replies({7: 1}, timeout_s=30)   # {7: [{"method": "sendPhoto", ...}]}
    stub.stop()
"""

from __future__ import annotations

import itertools
import json
import threading
import time

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

LONG_POLL_CAP_S = 0.2  # getUpdates waits at most this long for updates (lets the bot stop fast)
BOT_USER = {"id": 424242, "is_bot": True, "first_name": "facepack", "username": "facepack_test_bot",
            "can_join_groups": False, "can_read_all_group_messages": False, "supports_inline_queries": False}


class StubBotAPI:
    """Holds queued updates, uploaded files and every reply; thread-safe (one Condition)."""

    def __init__(self, token: str, download_delay_s: float = 0.0):
        self.token = token
        self.download_delay_s = download_delay_s
        self.cond = threading.Condition()
        self.updates: list[dict] = []
        self.files: dict[str, bytes] = {}
        self.replies: list[dict] = []  # {"method", "chat_id", "text"/"caption", "photo" bytes, "t"}
        self.unknown_calls: list[str] = []
        self.unauthorized = 0
        self.downloads = 0
        self._ids = itertools.count(1)
        self._server = None
        self._thread = None

    # --- lifecycle ------------------------------------------------------------------------------
    def start(self) -> "StubBotAPI":
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="botapi-stub")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=10)

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    @property
    def base_url(self) -> str:
        return f"{self.root}/bot"

    @property
    def base_file_url(self) -> str:
        return f"{self.root}/file/bot"

    # --- what a user does -----------------------------------------------------------------------
    def _push(self, chat_id: int, content: dict, chat_type: str = "private") -> None:
        chat = {"id": chat_id, "type": chat_type, "first_name": f"user{chat_id}"} if chat_type == "private" else \
            {"id": -chat_id, "type": chat_type, "title": f"group{chat_id}"}
        with self.cond:
            message = {"message_id": next(self._ids), "date": int(time.time()), "chat": chat,
                       "from": {"id": chat_id, "is_bot": False, "first_name": f"user{chat_id}"}, **content}
            self.updates.append({"update_id": next(self._ids), "message": message})
            self.cond.notify_all()

    def _file(self, data: bytes) -> dict:
        n = next(self._ids)
        file_id = f"file-{n}"
        self.files[file_id] = data
        return {"file_id": file_id, "file_unique_id": f"u{n}", "file_size": len(data)}

    def push_photo(self, chat_id: int, data: bytes, width: int = 512, height: int = 512) -> None:
        """A photo message (one PhotoSize; Telegram would send several, largest last)."""
        with self.cond:
            thumb = {**self._file(data[:0] or b"x"), "width": 90, "height": 90}
            size = {**self._file(data), "width": width, "height": height}
        self._push(chat_id, {"photo": [thumb, size]})

    def push_document(self, chat_id: int, data: bytes, file_name: str, mime_type: str | None,
                      file_size: int | None = None, chat_type: str = "private") -> None:
        """A document message; ``file_size`` overrides the size Telegram reports (default: len(data)).

        chat_type "group": sent by user ``chat_id`` in the group ``-chat_id``."""
        with self.cond:
            doc = {**self._file(data), "file_name": file_name}
            if file_size is not None:
                doc["file_size"] = file_size
        if mime_type is not None:
            doc["mime_type"] = mime_type
        self._push(chat_id, {"document": doc}, chat_type)

    def push_text(self, chat_id: int, text: str, chat_type: str = "private") -> None:
        content = {"text": text}
        if text.startswith("/"):
            content["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        self._push(chat_id, content, chat_type)

    def wait_for_replies(self, expected: dict, timeout_s: float) -> dict:
        """Block until each chat in ``expected`` ({chat_id: count}) has that many replies.

        Returns {chat_id: [reply, ...]}; AssertionError naming the chats still waiting on timeout.
        """
        deadline = time.monotonic() + timeout_s
        with self.cond:
            while True:
                got = {c: [r for r in self.replies if r["chat_id"] == c] for c in expected}
                missing = {c: (len(got[c]), n) for c, n in expected.items() if len(got[c]) < n}
                if not missing:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no reply within {timeout_s} s for chats (got, expected): {missing}")
                self.cond.wait(left)

    # --- the server -----------------------------------------------------------------------------
    def _wsgi(self, environ, start_response):
        request = Request(environ)
        parts = request.path.strip("/").split("/")
        if len(parts) >= 3 and parts[0] == "file" and parts[1].startswith("bot"):
            response = self._download(parts[1][3:], "/".join(parts[2:]))
        elif len(parts) == 2 and parts[0].startswith("bot"):
            response = self._method(parts[0][3:], parts[1], request)
        else:
            response = self._json(404, {"ok": False, "error_code": 404, "description": "Not Found"})
        return response(environ, start_response)

    @staticmethod
    def _json(status: int, body: dict) -> Response:
        return Response(json.dumps(body), status=status, mimetype="application/json")

    def _download(self, token: str, path: str) -> Response:
        if token != self.token:
            with self.cond:
                self.unauthorized += 1
            return Response("Unauthorized", status=401)
        if self.download_delay_s:
            time.sleep(self.download_delay_s)
        with self.cond:
            self.downloads += 1
            data = self.files.get(path.split("/")[-1])
        if data is None:
            return Response("Not Found", status=404)
        return Response(data, mimetype="application/octet-stream")

    def _method(self, token: str, method: str, request: Request) -> Response:
        if token != self.token:
            with self.cond:
                self.unauthorized += 1
            return self._json(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
        params = dict(request.form)
        if request.is_json:
            params.update(request.get_json())
        handler = {"getMe": self._get_me, "deleteWebhook": self._true, "getUpdates": self._get_updates,
                   "getFile": self._get_file, "sendPhoto": self._send, "sendMessage": self._send}.get(method)
        if handler is None:
            with self.cond:
                self.unknown_calls.append(method)
            return self._json(404, {"ok": False, "error_code": 404, "description": "Not Found: method not found"})
        return handler(method, params, request)

    def _ok(self, result) -> Response:
        return self._json(200, {"ok": True, "result": result})

    def _get_me(self, method, params, request):
        return self._ok(BOT_USER)

    def _true(self, method, params, request):
        return self._ok(True)

    def _get_updates(self, method, params, request):
        offset = int(params.get("offset") or 0)
        wait_s = min(float(params.get("timeout") or 0), LONG_POLL_CAP_S)
        deadline = time.monotonic() + wait_s
        with self.cond:
            self.updates = [u for u in self.updates if u["update_id"] >= offset]  # confirmed ones are gone
            while not self.updates and time.monotonic() < deadline:
                self.cond.wait(deadline - time.monotonic())
            limit = int(params.get("limit") or 100)
            return self._ok(self.updates[:limit])

    def _get_file(self, method, params, request):
        file_id = params.get("file_id")
        with self.cond:
            data = self.files.get(file_id)
        if data is None:
            return self._json(400, {"ok": False, "error_code": 400, "description": "Bad Request: invalid file_id"})
        return self._ok({"file_id": file_id, "file_unique_id": f"u-{file_id}", "file_size": len(data),
                         "file_path": f"documents/{file_id}"})

    def _send(self, method, params, request):
        chat_id = int(params["chat_id"])
        reply = {"method": method, "chat_id": chat_id, "t": time.monotonic()}
        message = {"message_id": next(self._ids), "date": int(time.time()), "from": BOT_USER,
                   "chat": {"id": chat_id, "type": "private", "first_name": f"user{chat_id}"}}
        if method == "sendPhoto":
            upload = request.files.get("photo")
            if upload is None:
                return self._json(400, {"ok": False, "error_code": 400, "description": "Bad Request: no photo"})
            reply["photo"] = upload.read()
            reply["caption"] = params.get("caption", "")
            message["photo"] = [{"file_id": f"sent-{message['message_id']}", "file_unique_id": "s",
                                 "width": 1, "height": 1}]
            message["caption"] = reply["caption"]
        else:
            reply["text"] = params.get("text", "")
            message["text"] = reply["text"]
        with self.cond:
            self.replies.append(reply)
            self.cond.notify_all()
        return self._ok(message)
