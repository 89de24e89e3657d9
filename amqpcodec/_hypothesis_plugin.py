"""Hypothesis plugin: ``st.from_type`` for every method class, the content properties,
field tables and arrays, and the frame classes, with no setup.

Hypothesis runs :func:`_register` when it is imported, through the ``hypothesis``
entry point in ``pyproject.toml``; ``import amqpcodec`` never imports Hypothesis.
The strategies are built on first use (``register_type_strategy`` is given a function
of the type): importing Hypothesis costs about an ``import amqpcodec`` more.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

__all__: list[str] = []

_Resolver = Callable[[type[Any]], "SearchStrategy[Any]"]


def _lazy(name: str, *args: Any) -> _Resolver:
    """A resolver calling ``amqpcodec.strategies.<name>(*args)`` when first asked.

    Nothing of amqpcodec.strategies is touched before that: importing it imports
    Hypothesis, which runs this plugin while amqpcodec.strategies is half imported.
    """

    def resolve(_: type[Any]) -> SearchStrategy[Any]:
        from . import strategies

        built: SearchStrategy[Any] = getattr(strategies, name)(*args)
        return built

    return resolve


def _method(method_class: Any) -> SearchStrategy[Any]:
    from . import strategies

    return strategies.method_arguments(method_class).map(lambda kw: method_class(**kw))


def _register() -> None:
    from hypothesis import strategies as st

    from . import _frames, spec
    from ._base import Method, Properties
    from ._wire import FieldArray, FieldTable

    for method_class in spec.METHODS.values():
        st.register_type_strategy(method_class, _method)
    for class_id, properties_class in spec.PROPERTIES.items():
        st.register_type_strategy(properties_class, _lazy("properties", class_id))
    st.register_type_strategy(Method, _lazy("methods"))
    st.register_type_strategy(Properties, _lazy("_any_properties"))
    st.register_type_strategy(FieldTable, _lazy("field_tables"))
    st.register_type_strategy(FieldArray, _lazy("field_arrays"))
    for frame_class, kind in (
        (_frames.MethodFrame, "method"),
        (_frames.HeaderFrame, "header"),
        (_frames.BodyFrame, "body"),
        (_frames.HeartbeatFrame, "heartbeat"),
        (_frames.ProtocolHeader, "protocol-header"),
    ):
        st.register_type_strategy(frame_class, _lazy("frames", (kind,)))
