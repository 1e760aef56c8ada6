import subprocess
import sys

import pytest

from remora import __version__
from remora.cli import main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_unknown_command_is_one_line_and_exit_2() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "remora", "no-such-command"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "invalid choice" in lines[0]
    assert "Traceback" not in proc.stderr


def test_no_command_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "a command is required" in capsys.readouterr().err
