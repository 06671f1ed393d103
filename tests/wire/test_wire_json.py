"""Exact JSON of every wire message: a change here is a protocol change.

`EXAMPLES` holds one instance and its exact encoding per message type; a test fails when a struct
in dtm.wire has no example, so a new message cannot cross a boundary unpinned.
"""

from __future__ import annotations

import inspect
from typing import Any

import msgspec
import pytest

from dtm import wire
from dtm.errors import ErrPayloadTooLarge, ErrSyntaxInvalidArgs
from dtm.wire import (
    NULL,
    AntiEntropyResult,
    BalancerStatus,
    BucketRows,
    ChangesPage,
    ConflictEntry,
    ConflictLog,
    ConflictWrite,
    CreateTask,
    CursorRecord,
    Deleted,
    Digest,
    ErrorBody,
    ForgetRequest,
    ForgetResponse,
    HandlerStatus,
    Health,
    NodeStatus,
    PeerApplied,
    PurgeHold,
    PurgeRecord,
    PurgeRequest,
    PurgeResponse,
    PutBody,
    ReplicateRequest,
    ReplicateResponse,
    Row,
    RowId,
    RowPage,
    SessionToken,
    SyncPair,
    SyncStateFile,
    SyncStatus,
    Task,
    TaskItem,
    TaskList,
    TaskPage,
    TaskRow,
    TaskRowPage,
    TaskValue,
    UpdateTask,
    UpstreamStatus,
)

ROW = Row("k1", msgspec.Raw(b'{"text":"Buy"}'), False, 3, 117_309_440_000_000_001, "store1")
ROW_JSON = (
    '{"key":"k1","value":{"text":"Buy"},"deleted":false,"version":3,'
    '"hlc":117309440000000001,"origin":"store1"}'
)
TOMB = Row("k2", NULL, True, 4, 9, "store2")
TOMB_JSON = '{"key":"k2","value":null,"deleted":true,"version":4,"hlc":9,"origin":"store2"}'
TASK = Task(
    "a1b2c3d4e5f6", 'say "hi"', "open", "2026-11-28T05:00:00.000Z", "2026-11-28T05:00:00.000Z"
)
TASK_JSON = (
    '{"id":"a1b2c3d4e5f6","text":"say \\"hi\\"","status":"open",'
    '"created":"2026-11-28T05:00:00.000Z","updated":"2026-11-28T05:00:00.000Z",'
    '"due":null,"tags":[]}'
)

ITEM = TaskItem(*(getattr(TASK, f) for f in Task.__struct_fields__))
ITEM_JSON = (
    '["a1b2c3d4e5f6","say \\"hi\\"","open","2026-11-28T05:00:00.000Z","2026-11-28T05:00:00.000Z",'
    "null,[]]"
)
ITEM_VALUE = TaskValue("Buy", "open", "2026-11-28T05:00:00.000Z", "2026-11-28T05:00:00.000Z")
ITEM_VALUE_JSON = (
    '{"text":"Buy","status":"open","created":"2026-11-28T05:00:00.000Z",'
    '"updated":"2026-11-28T05:00:00.000Z"}'
)

EXAMPLES: dict[type[Any], list[tuple[Any, str]]] = {
    ErrorBody: [
        (
            ErrorBody("ErrNoDataFound", "no key 'x'"),
            '{"error":"ErrNoDataFound","message":"no key \'x\'"}',
        ),
        (
            ErrorBody("ErrAmbiguousID", "2 tasks", ["abcd12345678", "abcd12345679"]),
            '{"error":"ErrAmbiguousID","message":"2 tasks",'
            '"candidates":["abcd12345678","abcd12345679"]}',
        ),
    ],
    Row: [(ROW, ROW_JSON), (TOMB, TOMB_JSON)],
    PutBody: [(PutBody(msgspec.Raw(b"[1,2]")), '{"value":[1,2]}')],
    RowPage: [(RowPage([ROW], "k1"), f'{{"rows":[{ROW_JSON}],"next":"k1"}}')],
    ChangesPage: [
        (
            ChangesPage("store1", "ab12ab12ab12ab12", 4, [ROW, TOMB]),
            f'{{"node":"store1","epoch":"ab12ab12ab12ab12","last_version":4,"rows":[{ROW_JSON},{TOMB_JSON}]}}',
        ),
        (
            ChangesPage("store1", "ab12ab12ab12ab12", 4, [ROW], True),
            f'{{"node":"store1","epoch":"ab12ab12ab12ab12","last_version":4,"rows":[{ROW_JSON}],"more":true}}',
        ),
    ],
    ReplicateRequest: [
        (
            ReplicateRequest("store2", "cd34cd34cd34cd34", 4, [TOMB]),
            f'{{"source":"store2","epoch":"cd34cd34cd34cd34","source_version":4,"rows":[{TOMB_JSON}]}}',
        ),
        (
            ReplicateRequest("store2", "cd34cd34cd34cd34", 4, [], "ef56ef56ef56ef56"),
            '{"source":"store2","epoch":"cd34cd34cd34cd34","source_version":4,"rows":[],'
            '"target_epoch":"ef56ef56ef56ef56"}',
        ),
    ],
    ReplicateResponse: [
        (
            ReplicateResponse(1, 2, 30),
            '{"applied":1,"ignored":2,"last_version":30,"losers":[],"held_from":0}',
        ),
        (
            ReplicateResponse(1, 0, 31, held_from=7),
            '{"applied":1,"ignored":0,"last_version":31,"losers":[],"held_from":7}',
        ),
    ],
    RowId: [(RowId("k2", 9, "store2"), '{"key":"k2","hlc":9,"origin":"store2"}')],
    PurgeRequest: [
        (
            PurgeRequest([RowId("k2", 9, "store2")]),
            '{"rows":[{"key":"k2","hlc":9,"origin":"store2"}]}',
        )
    ],
    PurgeResponse: [(PurgeResponse(1), '{"purged":1}')],
    Digest: [
        (
            Digest("store1", "ab12ab12ab12ab12", 4, ["00000000000000ff"]),
            '{"node":"store1","epoch":"ab12ab12ab12ab12","last_version":4,"buckets":["00000000000000ff"]}',
        )
    ],
    BucketRows: [
        (
            BucketRows("store1", "ab12ab12ab12ab12", [TOMB]),
            f'{{"node":"store1","epoch":"ab12ab12ab12ab12","rows":[{TOMB_JSON}]}}',
        )
    ],
    PeerApplied: [
        (PeerApplied("cd34cd34cd34cd34", 12), '{"epoch":"cd34cd34cd34cd34","version":12}')
    ],
    NodeStatus: [
        (
            NodeStatus(
                "store1",
                "ab12ab12ab12ab12",
                4,
                1,
                1,
                9,
                0,
                {"store2": PeerApplied("cd34cd34cd34cd34", 12)},
                fenced=True,
                offsets={"store2": -30001, "sync": -29998},
            ),
            '{"node":"store1","epoch":"ab12ab12ab12ab12","last_version":4,"live_rows":1,'
            '"tombstones":1,"hlc":9,"skew_events":0,'
            '"applied":{"store2":{"epoch":"cd34cd34cd34cd34","version":12}},'
            '"fenced":true,"offsets":{"store2":-30001,"sync":-29998}}',
        )
    ],
    Health: [
        (
            Health("ok", "node", "store1"),
            '{"status":"ok","component":"node","name":"store1"}',
        ),
        (
            Health("ok", "node", "store1", now_ms=1764547200000, fenced=True),
            '{"status":"ok","component":"node","name":"store1","now_ms":1764547200000,'
            '"fenced":true}',
        ),
    ],
    SessionToken: [
        (SessionToken(), "{}"),
        (
            SessionToken({"store1": 3}, {"store1": "ab12ab12ab12ab12"}, 77),
            '{"versions":{"store1":3},"epochs":{"store1":"ab12ab12ab12ab12"},"hlc":77}',
        ),
    ],
    TaskValue: [
        (
            TaskValue("Buy", "complete", "2026-11-28T05:00:00.000Z", "2026-11-28T06:00:00.000Z"),
            '{"text":"Buy","status":"complete","created":"2026-11-28T05:00:00.000Z",'
            '"updated":"2026-11-28T06:00:00.000Z"}',
        ),
        (
            TaskValue(
                "Pay",
                "open",
                "2026-11-28T05:00:00.000Z",
                "2026-11-28T05:00:00.000Z",
                "2026-12-31",
                ["home", "bills"],
            ),
            '{"text":"Pay","status":"open","created":"2026-11-28T05:00:00.000Z",'
            '"updated":"2026-11-28T05:00:00.000Z","due":"2026-12-31","tags":["home","bills"]}',
        ),
    ],
    Task: [
        (TASK, TASK_JSON),
        (
            Task(
                "a1b2c3d4e5f6",
                "Pay",
                "open",
                "2026-11-28T05:00:00.000Z",
                "2026-11-28T05:00:00.000Z",
                "2026-12-31",
                ["home"],
            ),
            '{"id":"a1b2c3d4e5f6","text":"Pay","status":"open",'
            '"created":"2026-11-28T05:00:00.000Z","updated":"2026-11-28T05:00:00.000Z",'
            '"due":"2026-12-31","tags":["home"]}',
        ),
    ],
    TaskList: [(TaskList([TASK], []), f'{{"open":[{TASK_JSON}],"complete":[]}}')],
    # A page's tasks are arrays in Task's field order: the field names are not repeated per task.
    TaskItem: [(ITEM, ITEM_JSON)],
    TaskPage: [
        (TaskPage([ITEM], "a1b2c3d4e5f6"), f'{{"tasks":[{ITEM_JSON}],"next":"a1b2c3d4e5f6"}}'),
        (TaskPage([], None), '{"tasks":[],"next":null}'),
    ],
    # A Row read with a task value: the same JSON as Row.
    TaskRow: [
        (
            TaskRow("u.a1b2c3d4e5f6", ITEM_VALUE, False, 3, 9, "store1"),
            f'{{"key":"u.a1b2c3d4e5f6","value":{ITEM_VALUE_JSON},"deleted":false,"version":3,'
            '"hlc":9,"origin":"store1"}',
        ),
        (TaskRow("k2", None, True, 4, 9, "store2"), TOMB_JSON),
    ],
    TaskRowPage: [(TaskRowPage([], None), '{"rows":[],"next":null}')],
    CreateTask: [
        (CreateTask("Buy groceries"), '{"text":"Buy groceries"}'),
        (
            CreateTask("Pay", "2026-12-31", ["home"], "a1b2c3d4e5f6"),
            '{"text":"Pay","due":"2026-12-31","tags":["home"],"id":"a1b2c3d4e5f6"}',
        ),
    ],
    UpdateTask: [
        (UpdateTask(status="complete"), '{"status":"complete"}'),
        (UpdateTask(text="new"), '{"text":"new"}'),
        (UpdateTask("open", "both"), '{"status":"open","text":"both"}'),
        (UpdateTask(due="", tags=[]), '{"due":"","tags":[]}'),
        (UpdateTask(due="2026-12-31", tags=["x"]), '{"due":"2026-12-31","tags":["x"]}'),
    ],
    Deleted: [(Deleted("a1b2c3d4e5f6", True), '{"id":"a1b2c3d4e5f6","deleted":true}')],
}


UP = UpstreamStatus("store1", "http://127.0.0.1:7411", True, 0, 10, 1, 1, 1, 1)
UP_JSON = (
    '{"name":"store1","url":"http://127.0.0.1:7411","healthy":true,"in_flight":0,"requests":10,'
    '"failures":1,"retries":1,"ejections":1,"readmissions":1,"fenced":false,"checks":0,'
    '"failed_checks":0}'
)
PAIR = SyncPair("store1", "store2", 4, 6, 2, 0.25, 40, 1, True)
PAIR_JSON = (
    '{"source":"store1","target":"store2","cursor":4,"source_last_version":6,"lag_versions":2,'
    '"lag_seconds":0.25,"rows_sent":40,"conflicts":1,"reachable":true}'
)
CURSOR = CursorRecord("store1", "store2", "ab12ab12ab12ab12", "cd34cd34cd34cd34", 4)
CURSOR_JSON = (
    '{"source":"store1","target":"store2","source_epoch":"ab12ab12ab12ab12",'
    '"target_epoch":"cd34cd34cd34cd34","version":4}'
)

EXAMPLES.update(
    {
        UpstreamStatus: [(UP, UP_JSON)],
        BalancerStatus: [
            (
                BalancerStatus("balancer", 10, 0, 0, [UP]),
                '{"component":"balancer","requests":10,"in_flight":0,"unanswered":0,'
                f'"nodes":[{UP_JSON}]}}',
            )
        ],
        HandlerStatus: [
            (
                HandlerStatus("handler", "http://127.0.0.1:7401", 5, 1, 0, 9, 1, 0, 0),
                '{"component":"handler","balancer":"http://127.0.0.1:7401","requests":5,'
                '"in_flight":1,"failed":0,"upstream_requests":9,"catch_up_retries":1,'
                '"not_caught_up":0,"invalid_rows":0}',
            )
        ],
        SyncPair: [(PAIR, PAIR_JSON)],
        PurgeHold: [
            (
                PurgeHold("k2", 9, "store2", ["store3"]),
                '{"key":"k2","hlc":9,"origin":"store2","waiting_for":["store3"]}',
            )
        ],
        AntiEntropyResult: [
            (
                AntiEntropyResult(1790000000000, ["store1", "store2"], 256, 1, 2, None),
                '{"at_ms":1790000000000,"nodes":["store1","store2"],"buckets":256,'
                '"differing_buckets":1,"rows_repaired":2,"error":null}',
            )
        ],
        SyncStatus: [
            (
                SyncStatus(
                    "sync",
                    "longpoll",
                    ["store1", "store2"],
                    [],
                    {"store1": "ab12ab12ab12ab12"},
                    [PAIR],
                    1,
                    0,
                    [],
                    0,
                    None,
                    {"store1": 3},
                ),
                '{"component":"sync","mode":"longpoll","nodes":["store1","store2"],'
                '"forgotten":[],"epochs":{"store1":"ab12ab12ab12ab12"},'
                f'"pairs":[{PAIR_JSON}],"conflicts":1,"tombstones_awaiting_purge":0,'
                '"purge_holds":[],"purged":0,"anti_entropy":null,"rounds":{"store1":3},'
                '"errors":{}}',
            )
        ],
        ConflictWrite: [
            (
                ConflictWrite(NULL, True, 9, 0, "store2"),
                '{"value":null,"deleted":true,"hlc":9,"wall_ms":0,"origin":"store2"}',
            )
        ],
        ConflictEntry: [
            (
                ConflictEntry(
                    7,
                    "k1",
                    ConflictWrite(ROW.value, False, ROW.hlc, 1790000000000, "store1"),
                    ConflictWrite(NULL, True, 9, 0, "store2"),
                    "store1",
                    1790000000005,
                ),
                '{"seq":7,"key":"k1","winner":{"value":{"text":"Buy"},"deleted":false,'
                '"hlc":117309440000000001,"wall_ms":1790000000000,"origin":"store1"},'
                '"loser":{"value":null,"deleted":true,"hlc":9,"wall_ms":0,"origin":"store2"},'
                '"node":"store1","at_ms":1790000000005}',
            )
        ],
        ConflictLog: [(ConflictLog(0, []), '{"total":0,"conflicts":[]}')],
        ForgetRequest: [(ForgetRequest("store3"), '{"node":"store3"}')],
        ForgetResponse: [
            (ForgetResponse("store3", ["store3"]), '{"node":"store3","forgotten":["store3"]}')
        ],
        CursorRecord: [(CURSOR, CURSOR_JSON)],
        PurgeRecord: [
            (
                PurgeRecord(RowId("k", 7, "store1")),
                '{"rid":{"key":"k","hlc":7,"origin":"store1"},"done":[]}',
            )
        ],
        SyncStateFile: [
            (
                SyncStateFile([CURSOR]),
                f'{{"cursors":[{CURSOR_JSON}],"forgotten":[],"purges":[]}}',
            ),
            (
                SyncStateFile([], [], [PurgeRecord(RowId("k", 7, "store1"), ["store3"])]),
                '{"cursors":[],"forgotten":[],"purges":'
                '[{"rid":{"key":"k","hlc":7,"origin":"store1"},"done":["store3"]}]}',
            ),
        ],
    }
)


def _cases() -> list[tuple[type[Any], Any, str]]:
    return [(t, obj, js) for t, items in EXAMPLES.items() for obj, js in items]


@pytest.mark.parametrize("type_, obj, js", _cases(), ids=lambda x: getattr(x, "__name__", None))
def test_exact_json_round_trip(type_: type[Any], obj: Any, js: str) -> None:
    assert wire.encode(obj).decode() == js
    back = wire.decode(js.encode(), type_)
    assert wire.encode(back).decode() == js


def test_every_wire_message_has_an_exact_json_example() -> None:
    structs = {
        obj
        for _, obj in inspect.getmembers(wire, inspect.isclass)
        if issubclass(obj, wire.Wire) and obj is not wire.Wire and obj.__module__ == wire.__name__
    }
    missing = sorted(t.__name__ for t in structs - set(EXAMPLES))
    assert not missing, f"wire messages without an exact-JSON example: {missing}"


def test_every_wire_message_is_frozen_and_strict() -> None:
    for t in EXAMPLES:
        cfg = t.__struct_config__
        assert cfg.frozen and cfg.forbid_unknown_fields, t.__name__


@pytest.mark.parametrize(
    "data, type_",
    [
        (b"", PutBody),
        (b"{", PutBody),
        (b"[]", PutBody),
        (b"{}", PutBody),
        (b'{"value":1,"extra":2}', PutBody),
        (b'{"text":5}', CreateTask),
        (b'{"status":"done"}', UpdateTask),
        (b'{"key":"k","value":1,"deleted":"no","version":1,"hlc":1,"origin":"s"}', Row),
        (b"\xff\xfe", SessionToken),
    ],
)
def test_malformed_input_is_a_syntax_error(data: bytes, type_: type[Any]) -> None:
    with pytest.raises(ErrSyntaxInvalidArgs):
        wire.decode(data, type_)


def test_an_oversized_body_is_refused_before_parsing() -> None:
    with pytest.raises(ErrPayloadTooLarge, match="limit is 8"):
        wire.decode(b'{"value":"123456789"}', PutBody, limit=8)


def test_canonical_json_is_compact() -> None:
    assert bytes(wire.canonical_json(msgspec.Raw(b' { "a" : [1, 2] } '))) == b'{"a":[1,2]}'


def test_json_nested_too_deeply_is_a_syntax_error_not_a_crash() -> None:
    deep = b'{"value":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(ErrSyntaxInvalidArgs, match="nested too deeply"):
        wire.decode(deep, PutBody)
