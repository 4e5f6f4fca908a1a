"""The wire codec: what any client sends becomes a request or an error that keeps its id."""

from __future__ import annotations

import json

import pytest

from bigtop.protocol.codec import DecodeError, decode_request, error_reply, ok_reply
from bigtop.protocol.errors import Errno


def test_a_request_and_its_replies() -> None:
    request = decode_request(b'{"id": "a1", "command": "list", "properties": {"name": "w"}}')
    assert (request.id, request.command, request.properties) == ("a1", "list", {"name": "w"})
    ok = ok_reply("a1", {"pids": [1]})
    assert ok["status"] == "ok" and ok["id"] == "a1" and ok["pids"] == [1]
    error = error_reply("a1", "no", Errno.MESSAGE_ERROR)
    assert error["status"] == "error" and error["tb"] is None and error["id"] == "a1"


@pytest.mark.parametrize(
    ("payload", "errno"),
    [
        (b"not json", Errno.INVALID_JSON),
        (b"[1, 2]", Errno.INVALID_JSON),
        (b'{"id": 7}', Errno.MESSAGE_ERROR),
        (b'{"id": 7, "command": "list", "properties": [1]}', Errno.MESSAGE_ERROR),
    ],
)
def test_what_cannot_be_read_is_an_error_that_keeps_the_id(payload: bytes, errno: Errno) -> None:
    with pytest.raises(DecodeError) as caught:
        decode_request(payload)
    assert caught.value.errno == errno
    if b'"id": 7' in payload:
        assert caught.value.request_id == 7


@pytest.mark.parametrize("bad_id", ["NaN", "Infinity", "-Infinity", "[1]", '{"a": 1}'])
def test_an_id_that_cannot_be_echoed_as_json_becomes_null(bad_id: str) -> None:
    request = decode_request(f'{{"id": {bad_id}, "command": "list"}}'.encode())
    assert request.id is None
    json.loads(json.dumps(ok_reply(request.id), allow_nan=False))  # strict JSON
