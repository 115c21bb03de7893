#!/usr/bin/env python3
"""Prints "<programs> <links>": how many BPF programs and links the host has (BPF_PROG_GET_NEXT_ID
and BPF_LINK_GET_NEXT_ID walked from 0), for the leak counts of integration/churn.sh and
integration/run.sh's docker-churn. Root only; no bpftool needed."""
import ctypes
import struct

SYS_BPF = 321  # x86_64
BPF_PROG_GET_NEXT_ID, BPF_LINK_GET_NEXT_ID = 11, 31

libc = ctypes.CDLL(None, use_errno=True)


def count(cmd):
    n, start = 0, 0
    while True:
        attr = ctypes.create_string_buffer(struct.pack("III", start, 0, 0), 128)
        if libc.syscall(SYS_BPF, cmd, attr, 128) != 0:
            return n
        start = struct.unpack_from("III", attr.raw)[1]
        n += 1


print(count(BPF_PROG_GET_NEXT_ID), count(BPF_LINK_GET_NEXT_ID))
