"""The one progress policy: None = a bar for long work, only where a person watches."""

import fcntl
import io
import os
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from enrich._internal.progress import interactive, progress_bar, progress_policy

REPO = str(Path(__file__).resolve().parents[3])

# Five row-wise LF calls of 0.3 s each: long work (over a second) for enrich.apply.
SLOW_APPLY = """
import time, polars as pl, enrich
from labeling_functions import ABSTAIN, labeling_function

@labeling_function(label=1)
def slow(x):
    time.sleep(0.3)
    return ABSTAIN

enrich.apply(slow, pl.DataFrame({{"text": list("abcde")}}), classes=2{option})
"""


def run_apply(option: str, stderr) -> None:
    env = dict(os.environ, PYTHONPATH=REPO)
    env.pop("TQDM_DISABLE", None)
    code = SLOW_APPLY.format(option=option)
    subprocess.run([sys.executable, "-c", code], stderr=stderr, env=env, check=True, timeout=120)


def test_true_and_false_are_kept_and_none_is_off_where_nobody_watches():
    assert progress_policy(True) is True and progress_policy(False) is False
    assert not interactive()  # pytest captures stderr: not a terminal
    assert progress_policy(None) is False


def test_a_terminal_is_interactive_and_a_file_or_closed_stream_is_not():
    leader, follower = os.openpty()
    with os.fdopen(follower, "w") as terminal:
        assert interactive(terminal)
    os.close(leader)
    assert not interactive(io.StringIO())
    closed = io.StringIO()
    closed.close()
    assert not interactive(closed)


def test_a_disabled_bar_counts_nothing_and_imports_no_tqdm():
    code = (
        "import sys; from enrich._internal.progress import progress_bar\n"
        "with progress_bar(None, total=2, desc='x') as bar: bar.update(2)\n"
        "print('tqdm' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=dict(os.environ, PYTHONPATH=REPO),
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "False"  # stderr is a pipe here
    with progress_bar(False, total=3, desc="x") as bar:
        bar.update(3)


@pytest.mark.slow
def test_long_work_draws_no_bar_into_a_log_file_unless_forced(tmp_path):
    log = tmp_path / "run.log"
    with log.open("w") as stderr:
        run_apply("", stderr)
    assert "\r" not in log.read_text()
    with log.open("w") as stderr:
        run_apply(", progress=True", stderr)
    assert "Applying LFs" in log.read_text()


@pytest.mark.slow
def test_long_work_draws_a_bar_in_a_terminal_and_none_with_false():
    def terminal_output(option: str) -> str:
        leader, follower = os.openpty()
        # a fresh pty is 0 columns wide, where tqdm draws an empty bar
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
        try:
            run_apply(option, follower)
            os.set_blocking(leader, False)
            chunks = []
            while True:
                try:
                    chunk = os.read(leader, 65536)
                except (BlockingIOError, OSError):
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            return b"".join(chunks).decode(errors="replace")
        finally:
            os.close(follower)
            os.close(leader)

    assert "Applying LFs" in terminal_output("")
    assert "Applying LFs" not in terminal_output(", progress=False")
