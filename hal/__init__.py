"""krabby's hardware abstraction layer: robot definitions, devices, wire protocol, server and client."""
