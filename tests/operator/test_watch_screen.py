"""`mirrorcap watch` in a real terminal (tmux): the screen is read while it runs. Ctrl-C leaves the
capture running and says how to stop it; watched again, the progress bar moves through the window and
the headline ends the screen."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux (scripts/install-system-packages.sh)")

# Slow enough that a 60 s window lasts 3 real seconds: many screens inside it.
SCREEN_SPEEDUP = 20.0
WINDOW = re.compile(r"capture window\s+\S+\s+(\d+)/60 s")
WEB_2 = "i-0fedcba9876543210"


class Terminal:
    def __init__(self) -> None:
        self.socket = f"mirrorcap-test-{uuid.uuid4().hex[:8]}"

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=True).stdout

    def start(self, command: str) -> None:
        # The shell stays after the command, so its last screen can still be read.
        self.tmux("new-session", "-d", "-s", "watch", "-x", "150", "-y", "20", f"{command}; echo EXIT=$?; sleep 600")

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "watch")

    def wait_for(
        self, predicate: Callable[[str], bool], timeout: float, every: Callable[[str], None] = lambda s: None
    ) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            every(screen)
            if predicate(screen):
                return screen
            time.sleep(0.1)
        raise AssertionError(f"screen never matched:\n{self.screen()}")

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


@pytest.fixture
def terminal() -> Iterator[Terminal]:
    term = Terminal()
    yield term
    term.close()


def _watch_command(served, capture_id: str) -> str:
    env = " ".join(
        f"{k}={shlex.quote(v)}" for k, v in served.env().items() if k.startswith(("AWS_", "MIRRORCAP_", "PATH", "HOME"))
    )
    # COLUMNS from the test's own environment would override the terminal's size.
    return f"env -u COLUMNS -u LINES {env} {shlex.quote(sys.executable)} -m mirrorcap_tools.cli watch {capture_id} --interval 0.2"


@pytest.mark.parametrize("served", [SCREEN_SPEEDUP], indirect=True)
def test_watch_screen(served, terminal: Terminal) -> None:
    started = served.run("start", WEB_2, "--duration", "60", "--capture-id", "mc-screen-test")
    assert started.returncode == 0, started.stderr

    # Ctrl-C while the collector gets ready: watching stops, the capture does not.
    terminal.start(_watch_command(served, "mc-screen-test"))
    terminal.wait_for(lambda s: "▶ collector launch" in s or "▶ readiness wait" in s, timeout=60)
    terminal.tmux("send-keys", "-t", "watch", "C-c")
    interrupted = terminal.wait_for(lambda s: "EXIT=" in s, timeout=20)
    assert "EXIT=130" in interrupted
    assert "capture mc-screen-test goes on" in interrupted and "aws stepfunctions stop-execution" in interrupted
    assert served.executions()[0]["status"] == "RUNNING"
    terminal.close()

    # Watched again: readiness, the window filling, teardown, the headline.
    terminal.__init__()
    terminal.start(_watch_command(served, "mc-screen-test"))
    window_seconds: list[int] = []
    screens: list[str] = []

    def note_window(screen: str) -> None:
        match = WINDOW.search(screen)
        if match and "▶ capture window" in screen:
            window_seconds.append(int(match.group(1)))
            screens.append(screen)

    final = terminal.wait_for(lambda s: "EXIT=" in s, timeout=120, every=note_window)
    assert "EXIT=0" in final, final
    moving = sorted(set(s for s in window_seconds if 0 < s < 60))
    assert len(moving) >= 3, window_seconds  # the bar moved through the window, screen after screen
    assert window_seconds == sorted(window_seconds)
    assert "✓ capture window" in final and "60/60 s" in final and "delivered" in final
    assert "✓ teardown" in final and "nothing left" in final
    assert re.search(r"done: \d+ packets · HTTP 5xx \d+ · 4xx \d+ · \d+ reset connections · report s3://", final), final
    print(screens[len(screens) // 2], final, sep="\n----\n")
