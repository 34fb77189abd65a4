"""Freed memory is kept for the next step: glibc's thresholds are raised once per process."""

import ctypes

from benchmark import allocator


class RecordingLibc:
    def __init__(self):
        self.calls: list[tuple[int, int]] = []

    def mallopt(self, param: int, value: int) -> int:
        self.calls.append((param, value))
        return 1  # glibc's success


def test_both_thresholds_are_raised_once(monkeypatch):
    libc = RecordingLibc()
    monkeypatch.setattr(ctypes, "CDLL", lambda name: libc)
    monkeypatch.setattr(allocator, "_kept", False)
    allocator.keep_freed_memory()
    allocator.keep_freed_memory()
    assert libc.calls == [
        (allocator._M_MMAP_THRESHOLD, allocator.MMAP_THRESHOLD_BYTES),
        (allocator._M_TRIM_THRESHOLD, allocator.TRIM_THRESHOLD_BYTES),
    ]


def test_without_glibc_nothing_fails(monkeypatch):
    def no_libc(name):
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(ctypes, "CDLL", no_libc)
    monkeypatch.setattr(allocator, "_kept", False)
    allocator.keep_freed_memory()
    assert allocator._kept
