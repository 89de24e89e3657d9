# needs: rabbitmq
import asyncio

from amqpcodec import Connection, Role, events, spec


async def main() -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", 5672)
    conn = Connection(Role.CLIENT, username="guest", password="guest", virtual_host="/")
    pending: list[events.Event] = []

    async def next_event(kind):
        """Send what is queued, then read until an event of this kind arrives."""
        while True:
            conn.tick(asyncio.get_running_loop().time())  # heartbeats
            writer.writelines(conn.data_to_send_parts())
            await writer.drain()
            while pending:
                event = pending.pop(0)
                if isinstance(event, kind):
                    return event
                if isinstance(event, events.ConnectionClosed):
                    raise ConnectionError(event)
            pending.extend(conn.receive_data(await reader.read(65536)))

    await next_event(events.ConnectionOpened)
    channel = conn.open_channel()
    await next_event(events.ChannelOpened)
    conn.send_method(channel, spec.Queue.Declare(queue="", exclusive=True))
    queue = (await next_event(events.MethodReceived)).method.queue
    conn.send_method(channel, spec.Confirm.Select())
    await next_event(events.MethodReceived)  # confirm.select-ok

    properties = spec.BasicProperties(content_type="text/plain", delivery_mode=2)
    publish = spec.Basic.Publish(exchange="", routing_key=queue)
    tag = conn.send_message(channel, publish, properties, b"hello")
    assert (await next_event(events.Confirmed)).delivery_tags == (tag,)

    conn.send_method(channel, spec.Basic.Consume(queue=queue, no_ack=True))
    message = await next_event(events.MessageReceived)  # after basic.consume-ok
    conn.close()
    await next_event(events.ConnectionClosed)
    writer.close()
    await writer.wait_closed()
    return message.body


assert asyncio.run(main()) == b"hello"
