"""Tests of the backends in hal.backends (serial bus, Unitree Go2, dry run) and their registry."""
