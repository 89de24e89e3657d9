# needs: rabbitmq
import asyncio
import contextlib

from amqpcodec import Connection, Role, events, spec


async def main() -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", 5672)
    conn = Connection(Role.CLIENT, username="guest", password="guest", virtual_host="/")
    loop, received = asyncio.get_running_loop(), []

    async def expect(kind):
        """Send what is queued, read until an event arrives; it must be of this kind."""
        while not received:
            received.extend(conn.tick(loop.time()))  # heartbeats, when due
            writer.writelines(conn.data_to_send_parts())
            await writer.drain()
            at = conn.next_tick_at  # None: no heartbeats, so no need to wake up
            if not received:
                with contextlib.suppress(asyncio.TimeoutError):  # then it is time to tick
                    data = await asyncio.wait_for(reader.read(65536), at and at - loop.time())
                    received.extend(conn.receive_data(data))
        if not isinstance(event := received.pop(0), kind):
            raise RuntimeError(f"expected {kind.__name__}, got {event}")
        return event

    await expect(events.ConnectionOpened)
    channel = conn.open_channel()
    await expect(events.ChannelOpened)
    conn.send_method(channel, spec.Queue.Declare(queue="", exclusive=True))
    queue = (await expect(events.MethodReceived)).method.queue
    conn.send_method(channel, spec.Confirm.Select())
    await expect(events.MethodReceived)  # confirm.select-ok
    properties = spec.BasicProperties(content_type="text/plain", delivery_mode=2)
    tag = conn.send_message(channel, spec.Basic.Publish(routing_key=queue), properties, b"hi")
    assert (await expect(events.Confirmed)).delivery_tags == (tag,)
    conn.send_method(channel, spec.Basic.Consume(queue=queue, no_ack=True))
    await expect(events.MethodReceived)  # basic.consume-ok
    message = await expect(events.MessageReceived)
    conn.send_method(channel, spec.Queue.Declare(queue="amqpcodec-readme-none", passive=True))
    assert (await expect(events.ChannelClosed)).reply_code == 404  # a mistake is an event
    conn.close()
    await expect(events.ConnectionClosed)
    writer.close()
    await writer.wait_closed()
    return message.body


assert asyncio.run(main()) == b"hi"
