"""An in-memory AMQP 0-9-1 broker for tests: ``amqpcodec.broker.Broker`` and
``amqpcodec serve``.

A test double of RabbitMQ built on ``Connection(Role.SERVER)`` and asyncio, with no
dependency beyond the standard library; not a production broker. The AMQ model
(exchanges, queues, bindings, routing) is in ``_model.py``, one client connection in
``_session.py``, the listener and delivery loop in ``_server.py``.
"""

from __future__ import annotations

from ._model import Limits, Message
from ._server import Broker

__all__ = ["Broker", "Limits", "Message"]
