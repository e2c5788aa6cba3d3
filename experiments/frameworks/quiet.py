"""Silence what native libraries print on stderr while they load (TensorFlow's absl, CUDA probes):
a default run should print progress and its result, nothing else."""

import contextlib
import os
import sys
import tempfile


@contextlib.contextmanager
def quiet_native_stderr():
    """Point file descriptor 2 at a temporary file for the block; if the block raises, what was
    written there is printed after all, so a failing import still explains itself."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
