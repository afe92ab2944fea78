"""Issue 12: nothing unlocks a lab. The token is written atomically and an empty or
short one never opens the admin API; a non-ASCII ``Authorization`` header is a 401;
the home and its files are private even when the home existed before; a damaged
store is one line naming the fix.
"""

from __future__ import annotations

import asyncio
import os
import stat
import threading
from pathlib import Path

import pytest

from helpers.errors import LabNotRunning, LabStartError
from helpers.runtime.admin import make_app
from helpers.runtime.home import MIN_TOKEN_LENGTH, LabHome
from helpers.runtime.store import Store

from .test_admin import TOKEN, admin, run


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("written", ["", "\n", "short-token\n"])
def test_an_empty_or_short_token_is_replaced_and_never_used(tmp_path: Path, written: str) -> None:
    home = LabHome(tmp_path / "lab")
    home.root.mkdir()
    home.token_file.write_text(written)
    with pytest.raises(LabNotRunning, match="empty or too short"):
        home.token()
    fresh = home.token(create=True)
    assert len(fresh) >= MIN_TOKEN_LENGTH and home.token() == fresh
    assert mode(home.token_file) == 0o600 and [p.name for p in home.root.iterdir()] == ["token"]


def test_racing_creators_agree_on_one_token(tmp_path: Path) -> None:
    home = LabHome(tmp_path / "lab")
    got: list[str] = []
    start = threading.Barrier(8)

    def create() -> None:
        start.wait()
        got.append(home.token(create=True))

    threads = [threading.Thread(target=create) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(got)) == 1 and home.token() == got[0]
    assert sorted(p.name for p in home.root.iterdir()) == ["token"]  # no temporary file left


def test_the_admin_api_refuses_to_serve_with_an_empty_or_short_token(tmp_path: Path) -> None:
    for token in ("", "s3cret"):
        with pytest.raises(LabStartError, match="at least 32"):
            make_app(None, token, asyncio.Event())  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [b"Bearer \xff\xfe", "Bearer caf\u00e9".encode(), b"\xc3\x28"])
def test_a_non_ascii_authorization_header_is_401(tmp_path: Path, value: bytes) -> None:
    async def scenario() -> tuple[bytes, bool]:
        async with admin(tmp_path) as a:
            port = a.client.server.port
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                b"POST /v1/shutdown HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: " + value + b"\r\n"
                b"Content-Length: 0\r\nConnection: close\r\n\r\n"
            )
            answer = await asyncio.wait_for(reader.read(), 10)
            writer.close()
            status, body = await a.call("GET", "/v1/status")  # and it still serves
            assert status == 200 and body["home"]
            return answer, a.stop.is_set()

    answer, stopped = run(scenario())
    assert answer.startswith(b"HTTP/1.1 401") and b"missing or wrong lab token" in answer
    assert not stopped


def test_the_right_token_still_opens_it(tmp_path: Path) -> None:
    async def scenario() -> int:
        async with admin(tmp_path) as a:
            status, _ = await a.call("GET", "/v1/status", headers={"Authorization": f"Bearer {TOKEN}"})
            return status

    assert run(scenario()) == 200


def test_a_home_that_existed_is_made_private(tmp_path: Path) -> None:
    home = LabHome(tmp_path / "shared")
    home.root.mkdir(mode=0o755)
    os.chmod(home.root, 0o755)
    home.store_file.write_text('{"objects": []}')
    os.chmod(home.store_file, 0o644)
    home.ensure()
    assert mode(home.root) == 0o700 and mode(home.store_file) == 0o600
    store = Store(home.store_file)
    store.put({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {}})
    assert mode(home.store_file) == 0o600
    assert sorted(p.name for p in home.root.iterdir()) == ["store.json"]  # no temporary file left


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"\xff\xfe", b"[]", b'{"objects": [1]}', b'{"objects": "x"}', b"[" * 100_000],
)
def test_a_damaged_store_is_one_line_naming_the_fix(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "store.json"
    path.write_bytes(content)
    with pytest.raises(LabStartError) as refused:
        Store(path)
    message = str(refused.value)
    assert message.startswith(f"the lab's store {path} is damaged") and f"mv {path} {path}.damaged" in message
    assert "\n" not in message
