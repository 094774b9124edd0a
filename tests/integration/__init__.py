"""The Jetson HAL server against real hardware (skipped where it is absent)."""
