"""What decoders print to the process's stderr, captured into the bad-file log instead of the terminal."""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
from collections.abc import Iterator

__all__ = ["captured_stderr", "with_decoder_messages"]

_STDERR_LOCK = threading.Lock()


@contextlib.contextmanager
def captured_stderr() -> Iterator[list[str]]:
    """Capture what C/C++ code writes to the process's stderr (file descriptor 2) inside the block: decord
    prints its FFmpeg errors there (``video_reader.cc:86: ERROR opening ...``), through any progress bar.
    Yields a list that holds the captured text (stripped) once the block ends."""
    captured: list[str] = []
    with _STDERR_LOCK, tempfile.TemporaryFile(mode="w+b") as sink:
        try:
            sys.stderr.flush()
        except (AttributeError, ValueError):
            pass
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text = sink.read().decode("utf-8", "replace").strip()
            if text:
                captured.append(text)


def with_decoder_messages(reason: str, captured: list[str]) -> str:
    """``reason`` with the decoder's own messages (the last lines), for the bad-file log."""
    if not captured:
        return reason
    lines = " | ".join(line.strip() for line in captured[0].splitlines()[-3:] if line.strip())
    return f"{reason}; decoder said: {lines}"
