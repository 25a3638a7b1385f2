"""Two users chat through a real Matrix client library (matrix-nio).

usage: chat.py HS_A USER_A PW_A HS_B USER_B PW_B [--restart-file PATH]

A creates a room and invites B; B sees the invite in /sync and joins; each
sees the other in device_lists.changed (whose devices an encrypting client
must then fetch); both send messages and each sees the other's; B sees A typing and stopping, A
sees B's read receipt; A redacts a message and B sees it redacted, live
and in history; B reads the history back with
/messages; B changes its display name and A sees it through the profile
API and the room's member list; B leaves and A sees it. Every step waits
at most 30 s and fails loudly. Prints one JSON line of what it saw.
"""

import asyncio
import json
import sys
import time
import uuid

from nio import (
    AsyncClient,
    JoinResponse,
    LoginResponse,
    ProfileGetDisplayNameResponse,
    ReceiptEvent,
    RedactedEvent,
    RedactionEvent,
    RoomRedactResponse,
    RoomCreateResponse,
    RoomMessagesResponse,
    RoomMessageText,
    RoomSendResponse,
    SyncResponse,
)

STEP_TIMEOUT = 30


class Fail(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Fail(message)


async def login(homeserver, user, password):
    client = AsyncClient(homeserver, user)
    response = await client.login(password, device_name="nio test")
    check(isinstance(response, LoginResponse), f"login {user} on {homeserver}: {response}")
    client.seen = []

    async def on_message(room, event):
        client.seen.append((room.room_id, event.sender, event.body))

    client.add_event_callback(on_message, RoomMessageText)
    client.receipts = set()

    async def on_receipt(room, event):
        for receipt in event.receipts:
            client.receipts.add((room.room_id, receipt.event_id, receipt.user_id))

    client.add_ephemeral_callback(on_receipt, ReceiptEvent)
    client.redactions = set()

    async def on_redaction(room, event):
        client.redactions.add((room.room_id, event.redacts))

    client.add_event_callback(on_redaction, RedactionEvent)
    client.device_changes = set()
    await sync(client, 0)
    return client


async def sync(client, timeout):
    """One /sync; notes who is in its device_lists.changed (nio runs its
    response callbacks only in sync_forever)."""
    response = await client.sync(timeout=timeout)
    if isinstance(response, SyncResponse):
        client.device_changes.update(response.device_list.changed)


async def until(client, what, predicate):
    """Syncs (long-polling) until predicate() holds."""
    deadline = time.monotonic() + STEP_TIMEOUT
    while not predicate():
        check(time.monotonic() < deadline, f"{client.user_id}: timed out waiting for {what}")
        await sync(client, 1000)


async def say(client, room, body):
    response = await client.room_send(
        room, "m.room.message", {"msgtype": "m.text", "body": body}
    )
    check(isinstance(response, RoomSendResponse), f"send by {client.user_id}: {response}")
    return response.event_id


def saw(client, room, sender, body):
    return lambda: (room, sender, body) in client.seen


async def main(args):
    a = await login(args[0], args[1], args[2])
    b = await login(args[3], args[4], args[5])
    report = {}
    try:
        created = await a.room_create(name="nio chat", invite=[b.user_id])
        check(isinstance(created, RoomCreateResponse), f"createRoom: {created}")
        room = created.room_id

        await until(b, "the invite", lambda: room in b.invited_rooms)
        joined = await b.join(room)
        check(isinstance(joined, JoinResponse), f"join: {joined}")
        await until(b, "the joined room", lambda: room in b.rooms)
        await until(a, "B's join", lambda: room in a.rooms and b.user_id in a.rooms[room].users)
        # Each now shares a room with the other: an encrypting client must
        # fetch the other's devices, which device_lists.changed tells it.
        await until(a, "B in device_lists.changed", lambda: b.user_id in a.device_changes)
        await until(b, "A in device_lists.changed", lambda: a.user_id in b.device_changes)

        await say(a, room, "hello from A")
        await until(b, "A's message", saw(b, room, a.user_id, "hello from A"))
        await say(b, room, "hello from B")
        await until(a, "B's message", saw(a, room, b.user_id, "hello from B"))
        for n in range(5):
            await say(a, room, f"burst {n}")
        await until(b, "the burst", saw(b, room, a.user_id, "burst 4"))
        order = [body for (r, s, body) in b.seen if r == room and body.startswith("burst")]
        check(order == [f"burst {n}" for n in range(5)], f"burst out of order: {order}")

        last = await say(a, room, "read me")
        await until(b, "the last message", saw(b, room, a.user_id, "read me"))
        await a.room_typing(room, True, 30000)
        await until(b, "A typing", lambda: a.user_id in b.rooms[room].typing_users)
        await a.room_typing(room, False)
        await until(b, "A no longer typing", lambda: a.user_id not in b.rooms[room].typing_users)
        await b.room_read_markers(room, fully_read_event=last, read_event=last)
        await until(a, "B's read receipt", lambda: (room, last, b.user_id) in a.receipts)

        oops = await say(a, room, "oops")
        await until(b, "the message to redact", saw(b, room, a.user_id, "oops"))
        redacted = await a.room_redact(room, oops, reason="typo")
        check(isinstance(redacted, RoomRedactResponse), f"redact: {redacted}")
        await until(b, "the redaction", lambda: (room, oops) in b.redactions)

        history = await b.room_messages(room, start=b.next_batch, limit=50)
        check(isinstance(history, RoomMessagesResponse), f"messages: {history}")
        bodies = [e.body for e in history.chunk if isinstance(e, RoomMessageText)]
        check(bodies[:3] == ["read me", "burst 4", "burst 3"], f"history not newest first: {bodies}")
        check("oops" not in bodies, f"redacted message still in history: {bodies}")
        check(
            any(isinstance(e, RedactedEvent) and e.event_id == oops for e in history.chunk),
            f"the redacted event is not shown as redacted: {history.chunk[:4]}",
        )
        check("hello from A" in bodies and "hello from B" in bodies, f"history: {bodies}")
        report["history"] = bodies

        # Fresh per run: a name already taken in the room would be shown
        # disambiguated.
        new_name = f"Bee {uuid.uuid4().hex[:6]}"
        await b.set_displayname(new_name)
        name = await a.get_displayname(b.user_id)
        check(isinstance(name, ProfileGetDisplayNameResponse), f"profile: {name}")
        check(name.displayname == new_name, f"display name via profile: {name.displayname}")
        await until(
            a,
            "B's new display name",
            lambda: a.rooms[room].users[b.user_id].display_name == new_name,
        )

        await b.room_leave(room)
        await until(a, "B's leave", lambda: b.user_id not in a.rooms[room].users)
        report.update(room=room, ok=True)
    finally:
        await a.close()
        await b.close()
    print(json.dumps(report))


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1:]))
    except Fail as failure:
        print(f"FAILED: {failure}", file=sys.stderr)
        sys.exit(1)
