"""Protobuf messages of a log (the Foxglove schemas foxglove-sdk writes) as JSON-like dicts.

An MCAP ``protobuf`` schema is a ``FileDescriptorSet``; the message class is built from it once
per schema (the ``protobuf`` package's descriptor pool) and each message becomes the dict its
JSON form would be (field names as in the ``.proto``, every field present, bytes as base64), so
readers of the older JSON logs read both.
"""

from __future__ import annotations

from typing import Any

from hal.optional import require

__all__ = ["ProtobufDecoder", "message_class"]


class ProtobufDecoder:
    """Decodes messages by schema (cached per schema id)."""

    def __init__(self) -> None:
        self._classes: dict[int, Any] = {}

    def decode(self, schema_id: int, schema_name: str, schema_data: bytes,
               payload: bytes) -> dict[str, Any]:
        """The message ``payload`` of schema ``schema_name`` as a dict.

        Raises:
            ValueError: the schema or the payload does not parse (the message names the schema).
        """
        require("google.protobuf", "reading Foxglove protobuf messages in a log")
        from google.protobuf import json_format
        from google.protobuf.message import DecodeError

        cls = self._classes.get(schema_id)
        if cls is None:
            cls = self._classes[schema_id] = message_class(schema_name, schema_data)
        try:
            message = cls.FromString(payload)
        except DecodeError as exc:
            raise ValueError(f"{schema_name}: payload does not decode ({exc})") from None
        return json_format.MessageToDict(message, always_print_fields_with_no_presence=True,
                                         preserving_proto_field_name=True)


def message_class(name: str, file_descriptor_set: bytes) -> Any:
    """The protobuf message class ``name`` of a serialised ``FileDescriptorSet``.

    Raises:
        ValueError: the schema does not load or has no such message.
    """
    require("google.protobuf", "decoding Foxglove protobuf messages")
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    try:
        files = descriptor_pb2.FileDescriptorSet.FromString(file_descriptor_set)
        pool = descriptor_pool.DescriptorPool()
        for proto in files.file:
            pool.Add(proto)
        return message_factory.GetMessageClass(pool.FindMessageTypeByName(name))
    except Exception as exc:  # noqa: BLE001 - any schema fault is the log's
        raise ValueError(f"protobuf schema {name!r} does not load ({exc})") from None
