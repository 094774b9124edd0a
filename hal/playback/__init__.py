"""Sensor recordings (``.npz``) and the devices that play them back (no hardware needed)."""
