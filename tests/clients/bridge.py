"""A bridge built on mautrix-python's AppService, as the mautrix bridges
are: it records every transaction hearth pushes (one JSON line each) and
acts like a bridge: puppets registered when hearth asks about them, a
portal room created when hearth asks about its alias, invites accepted
and answered by the puppet.

Arguments: hearth_url domain port as_token hs_token log_path [ping]
Prints "ready" once listening (and "ping N" after pinging itself)."""

import asyncio
import json
import sys

from mautrix.appservice import AppService
from mautrix.appservice.state_store.file import FileASStateStore
from mautrix.types import EventType, Membership

hearth, domain, port, as_token, hs_token, log_path = sys.argv[1:7]
ping = len(sys.argv) > 7 and sys.argv[7] == "ping"
PUPPETS = f"@bridge_"


class Recording(AppService):
    async def handle_transaction(
        self, txn_id, *, events, extra_data, ephemeral=None, to_device=None, device_lists=None,
        otk_counts=None, **rest
    ):
        with open(log_path, "a") as log:
            log.write(
                json.dumps(
                    {
                        "txn": txn_id,
                        "events": [
                            {
                                "id": e.get("event_id"),
                                "type": e.get("type"),
                                "sender": e.get("sender"),
                                "state_key": e.get("state_key"),
                                "body": e.get("content", {}).get("body"),
                                "ts": e.get("origin_server_ts"),
                            }
                            for e in events
                        ],
                        "ephemeral": [
                            {
                                "type": e.get("type"),
                                "room_id": e.get("room_id"),
                                "sender": e.get("sender"),
                                "content": e.get("content"),
                            }
                            for e in (ephemeral or [])
                        ],
                        "to_device": to_device or [],
                        "device_lists": {"changed": list(device_lists.changed) if device_lists else []},
                        "otk_counts": {
                            user: {device: count.serialize() for device, count in devices.items()}
                            for user, devices in (otk_counts or {}).items()
                        },
                        # What mautrix does not read: the fallback key types.
                        "extra": extra_data,
                    }
                )
                + "\n"
            )
        return await super().handle_transaction(
            txn_id, events=events, extra_data=extra_data, ephemeral=ephemeral,
            to_device=to_device, device_lists=device_lists, otk_counts=otk_counts, **rest
        )


async def main():
    az = None

    async def query_user(user_id):
        if not user_id.startswith(PUPPETS + "puppet"):
            return None
        await az.intent.user(user_id).ensure_registered()
        # mautrix answers 404 for a falsy answer, and {} is falsy.
        return {"ok": True}

    async def query_alias(alias):
        if not alias.startswith("#bridge_portal"):
            return None
        await az.intent.ensure_registered()
        await az.intent.create_room(alias_localpart=alias[1:].split(":")[0], name="Portal")
        return {"ok": True}

    az = Recording(
        server=hearth,
        domain=domain,
        as_token=as_token,
        hs_token=hs_token,
        bot_localpart="bridgebot",
        id="bridge",
        query_user=query_user,
        query_alias=query_alias,
        state_store=FileASStateStore("mx-state.json", binary=False),
        ephemeral_events=True,
        encryption_events=True,
    )

    async def ignore(_):
        pass

    # Encrypted bridges hand these to their crypto machine; this one only
    # records them.
    az.to_device_handler = ignore
    az.otk_handler = ignore
    az.device_list_handler = ignore

    @az.matrix_event_handler
    async def on_event(event):
        if event.type != EventType.ROOM_MEMBER or event.content.membership != Membership.INVITE:
            return
        if not event.state_key.startswith(PUPPETS):
            return
        puppet = az.intent.user(event.state_key)
        await puppet.join_room_by_id(event.room_id)
        await puppet.send_text(event.room_id, "hello from the bridge")

    await az.start(host="127.0.0.1", port=int(port))
    print("ready", flush=True)
    if ping:
        print(f"ping {await az.ping_self()}", flush=True)
    await asyncio.Event().wait()


asyncio.run(main())
