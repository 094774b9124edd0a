"""The wire: protocol messages, transport, observation slots and CURVE keys."""
