#!/usr/bin/env python3
"""Writes the seed corpora of the state-machine fuzz targets into fuzz/corpus/<target>/.

Each seed is a short, meaningful input in the target's own encoding (documented at the top of
fuzz_targets/<target>.rs): well-formed streams of every transport, the honest and a forged
handshake, a session's salt dance with containers, gzip and service messages, call scenarios.
The seeds are committed; run this again (from anywhere) after changing an encoding:

    python3 fuzz/gen_corpus.py
"""

import struct
import zlib
from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "corpus"


def write(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(bytes(data))


def u16(v):
    return struct.pack("<H", v)


def i32(v):
    return struct.pack("<i", v)


def i64(v):
    return struct.pack("<q", v)


def blob(b):
    assert len(b) < 256
    return bytes([len(b)]) + bytes(b)


# ------------------------------------------------------------------ transport_server
# config: bits 0-1 max frame (64, 256, 4096, 1 MiB), 2-3 mode, 4-5 kind, 6-7 seed.
ABRIDGED, INTERMEDIATE, PADDED, FULL = 0, 1, 2, 3


def config(max_idx, mode, kind=0, seed=0):
    return bytes([max_idx | mode << 2 | kind << 4 | seed << 6])


def chunks(*sizes):
    return bytes([len(sizes)]) + bytes(s - 1 for s in sizes)


def full_frame(seq, payload):
    head = struct.pack("<II", len(payload) + 12, seq) + payload
    return head + struct.pack("<I", zlib.crc32(head))


def transport():
    t = "transport_server"
    p20 = bytes(range(20))
    p16 = bytes(range(100, 116))
    # Raw streams, detected from their first bytes.
    write(t, "raw_abridged", config(2, 0) + chunks() + b"\xef" + bytes([5]) + p20
          + bytes([0x84]) + p16)
    write(t, "raw_abridged_long_header", config(3, 0) + chunks(7) + b"\xef\x7f\x80\x00\x00"
          + bytes(512))
    write(t, "raw_intermediate", config(2, 0) + chunks(3, 1) + b"\xee" * 4 + i32(20) + p20
          + struct.pack("<I", 16 | 0x80000000) + p16)
    write(t, "raw_padded", config(2, 0) + chunks() + b"\xdd" * 4 + i32(23) + p20 + b"pad")
    write(t, "raw_full", config(2, 0) + chunks(5) + full_frame(0, p20) + full_frame(1, p16))
    write(t, "raw_full_bad_seq", config(2, 0) + chunks() + full_frame(0, p20) + full_frame(0, p16))
    write(t, "raw_http", config(2, 0) + chunks() + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    write(t, "raw_too_large", config(0, 0) + chunks() + b"\xee" * 4 + i32(1 << 20))
    write(t, "raw_obfuscation_garbage", config(2, 0) + chunks() + bytes(range(1, 65)) + p20)
    # obfuscated2 headers around arbitrary inner framing.
    write(t, "obfuscated_abridged", config(2, 1, ABRIDGED) + chunks(10) + bytes([5]) + p20)
    write(t, "obfuscated_intermediate", config(2, 1, INTERMEDIATE, 1) + chunks()
          + i32(16) + p16 + i32(6) + b"abcdef")
    write(t, "obfuscated_padded", config(1, 1, PADDED, 2) + chunks(1) + i32(19) + p16 + b"xyz")
    # Payload lists a ClientTransport frames: [L][F] + data.
    two = bytes([4, 1]) + p20 + bytes([3, 0]) + p16
    for kind, name in [(ABRIDGED, "abridged"), (INTERMEDIATE, "intermediate"),
                       (PADDED, "padded"), (FULL, "full")]:
        write(t, f"client_{name}", config(2, 2, kind) + chunks(1, 2, 3) + two)
        if kind != FULL:
            write(t, f"client_obfuscated_{name}", config(2, 3, kind, 3) + chunks() + two)
    # 133 words: abridged's 4-byte length form; over a 256-byte cap.
    write(t, "client_long_abridged", config(2, 2, ABRIDGED) + chunks(64)
          + bytes([0x85, 0]) + bytes(range(256)) + bytes(276))
    write(t, "client_over_cap", config(1, 3, INTERMEDIATE) + chunks() + bytes([4, 0]) + p20
          + bytes([0x85, 1]) + bytes(532))


# ------------------------------------------------------------------ handshake_server
# Opcodes: 0 raw, 1 req_pq, 2 req_DH_params, 3 set_client_DH_params, 4 honest client step,
# 5 known constructor + blob.
NEW_NONCE = bytes(range(0x40, 0x60))


def req_dh(m=0, how=1, variant=0, c=0, dc=2, expires_in=0, tail=b""):
    return bytes([2, m, how | variant << 2, c]) + NEW_NONCE + i32(dc) + i32(expires_in) + tail


def set_dh(m=0, g=0, tail=b""):
    return bytes([3, m, g]) + tail


def handshake():
    t = "handshake_server"
    write(t, "honest_legacy", bytes([1]) + bytes([4, 0]) * 3)
    write(t, "honest_rsa_pad_temp", bytes([2]) + bytes([4, 6]) + bytes([4, 0]) * 2)
    write(t, "honest_flipped_last_byte", bytes([3]) + bytes([4, 2, 4, 0])
          + bytes([4, 1]) + u16(0xffff) + bytes([0x10]))
    write(t, "forged_legacy", bytes([4]) + bytes([1, 0]) + req_dh()
          + set_dh(tail=bytes([1])))
    write(t, "forged_rsa_pad_temp_dc", bytes([5]) + bytes([1, 2]) + bytes(range(16))
          + req_dh(how=3, variant=3, dc=-2, expires_in=86400) + set_dh(m=16, tail=i64(7) + bytes([2])))
    write(t, "forged_unsafe_g_b", bytes([6]) + bytes([1, 0]) + req_dh(variant=1)
          + set_dh(g=1))
    write(t, "forged_bad_hashes", bytes([7]) + bytes([1, 0]) + req_dh(how=3, c=16)
          + bytes([1, 0]) + req_dh() + set_dh(m=32 | 64, tail=bytes([3])))
    write(t, "forged_raw_rsa_block", bytes([8]) + bytes([1, 1]) + req_dh(how=0, tail=blob(bytes(255))))
    write(t, "forged_mismatch", bytes([9]) + bytes([1, 0]) + req_dh(m=4, c=1)
          + bytes([1, 0]) + req_dh(c=2 | 4 | 8) + bytes([1, 0]) + req_dh(variant=2, expires_in=-1))
    write(t, "out_of_order", bytes([10]) + set_dh(g=4, tail=blob(bytes(8)))
          + req_dh() + bytes([0]) + blob(struct.pack("<I", 0xbe7e8ef1) + bytes(16)) + bytes([5, 4])
          + blob(bytes(8)))


# ------------------------------------------------------------------ session_server
# Opcodes: 0 time, 1 send bodies, 2 send one message, 3 salt, 4 replay, 5 raw, 6 plaintext,
# 7 new session / push. Body selectors: 0 raw, 1 ping, 2 ping_delay_disconnect,
# 3 get_future_salts, 4 msgs_ack, 5 msgs_state_req, 6 msg_resend_req, 7 destroy/drop/http_wait,
# 8 gzip_packed, 9 request, 10 container.
def ping(pid=1):
    return bytes([1]) + i64(pid)


GET_CONFIG = bytes([9, 0])
FRESH = bytes([0, 0])  # msg_id: fresh from the client; seqno: the client's


def session():
    t = "session_server"
    dance = bytes([1, 0]) + GET_CONFIG + bytes([1, 0]) + GET_CONFIG
    write(t, "salt_dance", bytes([0]) + dance)
    write(t, "first_salt", bytes([1 | 2 << 1]) + bytes([1, 0]) + GET_CONFIG)
    write(t, "container_of_three", bytes([6]) + bytes([1, 2]) + ping(5) + GET_CONFIG
          + bytes([3, 10]) + bytes([1, 0]) + GET_CONFIG)
    write(t, "nested_container", bytes([6]) + bytes([2, 10, 2]) + bytes([10, 1]) + ping(2)
          + FRESH + FRESH + GET_CONFIG + FRESH + FRESH)
    write(t, "gzip", bytes([6]) + bytes([1, 0, 8, 1]) + GET_CONFIG + bytes([1, 0, 8, 0])
          + blob(b"not gzip"))
    write(t, "service_messages", bytes([6]) + bytes([1, 0]) + GET_CONFIG
          + bytes([1, 2]) + bytes([2]) + i64(3) + bytes([75]) + bytes([4, 1, 0]) + bytes([5, 1, 0])
          + bytes([1, 2]) + bytes([6, 1, 0]) + bytes([7, 0, 1]) + bytes([7, 1]) + i64(5)
          + bytes([1, 1]) + bytes([7, 2]) + bytes(12) + bytes([3, 255]) + i32(1000))
    write(t, "bad_ids_and_seqnos", bytes([6]) + bytes([2]) + GET_CONFIG + bytes([4, 3, 0])
          + bytes([2]) + GET_CONFIG + bytes([2, 0xf0]) + i32(0) + bytes([0]) + bytes([2]) + GET_CONFIG
          + bytes([0, 1]) + bytes([2]) + GET_CONFIG + bytes([5, 0, 1]) + bytes([2]) + GET_CONFIG
          + bytes([3]) + i64(1 << 40) + bytes([2]) + i32(7))
    write(t, "replays_and_time", bytes([6]) + bytes([1, 0]) + GET_CONFIG + bytes([4, 0, 0])
          + bytes([0, 2]) + u16(400) + bytes([4, 0, 0]) + bytes([4, 0, 1]) + u16(40))
    write(t, "plaintexts", bytes([6]) + bytes([6, 1, 1]) + GET_CONFIG + FRESH + bytes([0, 3, 5])
          + bytes([6, 1, 1]) + GET_CONFIG + FRESH + bytes([3]) + i32(1 << 30) + bytes([250, 0])
          + bytes([6, 1, 0]) + i64(42) + GET_CONFIG + FRESH + bytes([2, 0xff, 0, 0]))
    write(t, "raw_and_sessions", bytes([6]) + bytes([5, 1]) + blob(bytes(40)) + bytes([5, 0])
          + blob(b"\x01" * 24) + bytes([1, 0]) + GET_CONFIG + bytes([7, 1]) + bytes([1, 0])
          + GET_CONFIG + bytes([7, 0]) + bytes([3, 0]) + bytes([1, 0]) + ping())


# ------------------------------------------------------------------ calls_sequence
# One operation: [a, b, c, d]; a = op | user << 3 | device << 5 | hash << 6.
REQUEST, RECEIVED, ACCEPT, CONFIRM, DISCARD, SIGNALING, TICK, RESTART = range(8)


def op(kind, user, b=0, c=0, d=0, device=0, hash_=0):
    return bytes([kind | user << 3 | device << 5 | hash_ << 6, b, c, d])


def request(user, callee, random_id=0, video=False, proto=0, g_a=0, c=0x41):
    return op(REQUEST, user, callee | random_id << 2 | int(video) << 4 | proto << 5, c, g_a)


A, B, C, D = 0, 1, 2, 3  # user indexes (users 1-4)


def calls():
    t = "calls_sequence"
    write(t, "happy_path", request(A, B) + op(RECEIVED, B, c=0x41) + op(ACCEPT, B, c=0x42)
          + op(CONFIRM, A, c=0x41) + op(SIGNALING, A, d=5) + op(SIGNALING, B, d=3)
          + op(DISCARD, A, c=0xc5, d=3 | 20 << 3))
    write(t, "busy", request(A, B) + op(RECEIVED, B) + request(C, B, random_id=1)
          + request(D, A, random_id=2) + op(RECEIVED, B, device=1) + op(DISCARD, B, d=4))
    write(t, "two_devices", request(A, B, video=True) + op(RECEIVED, B) + op(RECEIVED, B, device=1)
          + op(ACCEPT, B, device=1) + op(ACCEPT, B) + op(DISCARD, B) + op(DISCARD, B, device=1, d=3))
    write(t, "timeouts", request(A, B) + op(TICK, A, c=0x5a) + request(C, D, random_id=1)
          + op(RECEIVED, D) + op(TICK, A, c=0x8a) + request(A, C, random_id=2)
          + op(ACCEPT, C) + op(TICK, A, c=0x5a) + op(TICK, A, c=0xc1) + op(TICK, A, c=0xff))
    write(t, "g_a_mismatch", request(A, B, g_a=1) + op(ACCEPT, B) + op(CONFIRM, A, d=0)
          + op(CONFIRM, A, d=1) + op(RECEIVED, B))
    write(t, "bad_requests", request(A, A) + request(A, B, g_a=2) + request(A, B, proto=4)
          + request(A, B, proto=5) + request(A, B) + request(A, B) + op(DISCARD, A)
          + request(A, B) + request(B, A, proto=6) + op(ACCEPT, A, b=1, d=7)
          + op(ACCEPT, A, b=1, d=8) + op(ACCEPT, A, b=1, d=3))
    write(t, "wrong_hashes_and_roles", request(A, B) + op(RECEIVED, B, hash_=3)
          + op(RECEIVED, A) + op(ACCEPT, B, hash_=2) + op(RECEIVED, C) + op(DISCARD, C)
          + op(ACCEPT, B) + op(CONFIRM, B) + op(SIGNALING, C) + op(CONFIRM, A, b=1))
    write(t, "restart", request(A, B) + op(RECEIVED, B) + op(RESTART, A) + op(ACCEPT, B)
          + request(C, B, random_id=3) + op(RESTART, A) + op(CONFIRM, A) + op(TICK, A, c=0xff)
          + op(RESTART, A) + op(TICK, A, c=0xff) + op(TICK, A, c=0xff) + op(TICK, A, c=0xff)
          + op(TICK, A, c=0xff) + op(TICK, A, c=0xff) + op(TICK, A, c=0xff) + op(TICK, A, c=0xff)
          + op(RESTART, A))


if __name__ == "__main__":
    transport()
    handshake()
    session()
    calls()
    for t in ["transport_server", "handshake_server", "session_server", "calls_sequence"]:
        files = list((CORPUS / t).iterdir())
        print(f"{t}: {len(files)} seeds, {sum(f.stat().st_size for f in files)} bytes")
