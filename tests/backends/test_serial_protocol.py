"""Framing and payloads of the motor-bus protocol, checked against independent computations."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hal.backends import serial_protocol as sp
from hal.tools.mcu_emulator import first_order_pd_step


def crc16_bitwise(data: bytes) -> int:
    """CRC-16/CCITT-FALSE the slow, obvious way."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def test_crc_matches_the_standard_check_value_and_a_bitwise_implementation():
    assert sp.crc16_ccitt(b"123456789") == 0x29B1
    rng = np.random.default_rng(0)
    for size in (0, 1, 7, 200):
        data = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        assert sp.crc16_ccitt(data) == crc16_bitwise(data)


def test_frame_layout_follows_the_spec():
    frame = sp.encode_frame(sp.MSG_HEARTBEAT, 0x1234, b"\x01\x02\x03")
    assert frame[:2] == b"\xaa\x55"
    version, msg_type, seq, length = struct.unpack_from("<BBHH", frame, 2)
    assert (version, msg_type, seq, length) == (1, 0x04, 0x1234, 3)
    assert frame[8:11] == b"\x01\x02\x03"
    assert struct.unpack_from("<H", frame, 11)[0] == crc16_bitwise(frame[2:11])
    assert len(frame) == 13


def test_payloads_round_trip_in_float32():
    q = np.array([0.1, -1.5, 3.25])
    t = sp.decode_targets(sp.encode_targets(1, q, [40, 40, 40], [1, 0.5, 0]))
    assert t.mode == 1
    np.testing.assert_array_equal(t.target_rad, q.astype(np.float32))
    np.testing.assert_array_equal(t.kd, [1, 0.5, 0])
    tel = sp.decode_telemetry(sp.encode_telemetry(123456789012, sp.FLAG_ENABLED | sp.FLAG_FAULT, 7, 0,
                                                  q, -q, 2 * q))
    assert (tel.mcu_time_us, tel.flags, tel.rx_error_count, tel.mode) == (123456789012, 0b10001, 7, 0)
    np.testing.assert_array_equal(tel.torque_nm, (2 * q).astype(np.float32))
    status = sp.decode_status(sp.encode_status(sp.STATUS_BAD_COMMAND, 99, "non-finite kp"))
    assert (status.name, status.ref_seq, status.text) == ("BAD_COMMAND", 99, "non-finite kp")
    assert sp.decode_heartbeat(sp.encode_heartbeat(2**63 + 5)) == 2**63 + 5
    assert sp.describe_flags(sp.FLAG_ENABLED | sp.FLAG_DAMPING) == "ENABLED|DAMPING"


@pytest.mark.parametrize("decode, payload, words", [
    (sp.decode_targets, sp.encode_targets(0, [1.0, 2.0], [1, 1], [1, 1])[:-1], ["2 joints", "26"]),
    (sp.decode_telemetry, b"\x00" * 5, ["too short"]),
    (sp.decode_status, sp.encode_status(0, 1, "abc") + b"x", ["3 text bytes"]),
    (sp.decode_heartbeat, b"\x00" * 4, ["8 bytes"]),
])
def test_malformed_payloads_raise_protocol_errors(decode, payload, words):
    with pytest.raises(sp.ProtocolError) as err:
        decode(payload)
    for word in words:
        assert word in str(err.value)


def _frames(n: int) -> list[bytes]:
    return [sp.encode_frame(sp.MSG_STATUS, i + 1, sp.encode_status(0, i, f"frame {i}")) for i in range(n)]


def test_decoder_reassembles_frames_fed_one_byte_at_a_time():
    dec = sp.FrameDecoder(sp.MCU_MESSAGES)
    got = []
    for byte in b"".join(_frames(5)):
        got += dec.feed(bytes([byte]))
    assert [sp.decode_status(f.payload).text for f in got] == [f"frame {i}" for i in range(5)]
    assert dec.stats.frames == 5 and dec.stats.rejected == 0 and dec.stats.garbage_bytes == 0


def test_decoder_rejects_and_counts_each_kind_of_bad_frame_and_keeps_the_good_ones():
    good = _frames(6)
    bad_crc = bytearray(good[1])
    bad_crc[9] ^= 0x01
    bad_version = bytearray(good[2])
    bad_version[2] = 7
    too_long = sp.SYNC + struct.pack("<BBHH", 1, sp.MSG_STATUS, 1, 4000)
    unknown = sp.encode_frame(0x55, 3, b"??")
    stream = (b"noise" + good[0] + bytes(bad_crc) + bytes(bad_version) + too_long + unknown + b"\xaa"
              + good[3] + b"\xaa\x55\xaa" + good[4] + good[5])
    dec = sp.FrameDecoder(sp.MCU_MESSAGES)
    texts = [sp.decode_status(f.payload).text for f in dec.feed(stream)]
    assert texts == ["frame 0", "frame 3", "frame 4", "frame 5"]
    s = dec.stats
    # The stray "AA 55" before frame 4 is a false sync whose "version" byte is 0xAA: one more.
    assert (s.bad_crc, s.bad_version, s.bad_length, s.unknown_type) == (1, 2, 1, 1)
    assert s.garbage_bytes > len(b"noise")


def test_decoder_counts_sequence_gaps():
    frames = [sp.encode_frame(sp.MSG_STATUS, seq, sp.encode_status(0, 0)) for seq in (1, 2, 5, 6, 65535, 0)]
    dec = sp.FrameDecoder(sp.MCU_MESSAGES)
    assert len(dec.feed(b"".join(frames))) == 6
    assert dec.stats.seq_gaps == 2 + (65535 - 6 - 1)  # 3, 4 missing; the wrap from 65535 to 0 is no gap


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=40), st.integers(0, 2)), min_size=1, max_size=12),
       st.integers(1, 64))
def test_every_good_frame_survives_random_noise_and_chunking(pieces, chunk):
    """Noise (which may contain sync bytes) and corrupted frames between good ones never hide them."""
    stream, expected = b"", []
    for i, (noise, kind) in enumerate(pieces):
        frame = sp.encode_frame(sp.MSG_STATUS, i, sp.encode_status(0, i, f"#{i}"))
        if kind == 2:  # corrupt this one; it must be dropped
            frame = frame[:-1] + bytes([frame[-1] ^ 0x5A])
        else:
            expected.append(f"#{i}")
        stream += noise + frame
    dec = sp.FrameDecoder(sp.MCU_MESSAGES)
    got = []
    for start in range(0, len(stream), chunk):
        got += [sp.decode_status(f.payload).text for f in dec.feed(stream[start:start + chunk])]
    assert got == expected


def test_first_order_joint_matches_the_analytic_solution_and_composes():
    q0, target = np.array([0.0, 1.0]), np.array([0.5, -0.2])
    kp, kd, b = np.array([40.0, 20.0]), np.array([1.0, 0.5]), 0.2
    q, dq, tau = first_order_pd_step(q0, target, kp, kd, b, 1e9, 0.03)
    tau_c = kp / (b + kd)
    np.testing.assert_allclose(q, target + (q0 - target) * np.exp(-tau_c * 0.03), rtol=1e-12)
    # The torque is what the PD law gives at the new state: kp (q* - q) - kd dq.
    np.testing.assert_allclose(tau, kp * (target - q) - kd * dq, rtol=1e-12)
    q1, _, _ = first_order_pd_step(q0, target, kp, kd, b, 1e9, 0.01)
    q2, _, _ = first_order_pd_step(q1, target, kp, kd, b, 1e9, 0.02)
    np.testing.assert_allclose(q2, q, rtol=1e-12)


def test_first_order_joint_moves_at_the_clamped_torque_when_saturated():
    q, dq, tau = first_order_pd_step(np.zeros(1), np.array([10.0]), np.array([100.0]), np.array([0.0]),
                                     0.5, 5.0, 0.01)
    assert tau[0] == pytest.approx(5.0) and dq[0] == pytest.approx(10.0) and q[0] == pytest.approx(0.1)
