"""Flashing checks the loader and the board before it builds anything (no board or loader needed)."""

import subprocess

import pytest

import boards.build
import boards.flash
from boards.flash import FlashError, flash_board
from edgelearn.cli import main

LIBS_MISSING = ("openFPGALoader: error while loading shared libraries: libftdi1.so.2: cannot open shared "
                "object file: No such file or directory\n")


@pytest.fixture
def calls(monkeypatch, tmp_path):
    """Fake loader runs, board build and USB lookup; returns the log of what ran, in order."""
    log = []
    state = {"loader": (0, "openFPGALoader v0.13.1\n"), "usb": True}

    def run(cmd, **kwargs):
        log.append("loader " + " ".join(cmd[1:]))
        rc, out = state["loader"]
        return subprocess.CompletedProcess(cmd, rc, "", out)

    def build_board(name, **kwargs):
        log.append(f"build {name}")
        bitstream = tmp_path / "top.bin"
        bitstream.write_bytes(b"\xff" * 16)
        return {"bitstream": bitstream}

    monkeypatch.setattr(boards.flash, "openfpgaloader_path", lambda: "/opt/openFPGALoader")
    monkeypatch.setattr(boards.flash.subprocess, "run", run)
    monkeypatch.setattr(boards.flash, "board_on_usb", lambda name: state["usb"])
    monkeypatch.setattr(boards.build, "build_board", build_board)
    monkeypatch.setattr(boards.build, "_default_build_dir", lambda name: tmp_path / "none")
    return log, state


def test_missing_system_libraries_are_named_before_any_build(calls, capsys):
    log, state = calls
    state["loader"] = (127, LIBS_MISSING)
    with pytest.raises(FlashError, match=r"^cannot flash the iCEBreaker: openFPGALoader cannot start: the "
                                         r"system library libftdi1.so.2 is missing .* run: apt-get install "
                                         r"libusb-1.0-0 libftdi1-2$"):
        flash_board("icebreaker")
    assert log == ["loader -V"]
    # The CLI: one line, exit 1 (a tool that cannot run).
    assert main(["flash", "--board", "icebreaker"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "apt-get install libusb-1.0-0 libftdi1-2" in err[0]


def test_no_board_on_usb_is_found_before_any_build(calls):
    log, state = calls
    state["usb"] = False
    with pytest.raises(FlashError, match=r"^no ULX3S .*found on USB \(FTDI 0403:6015\)"):
        flash_board("ulx3s")
    assert log == ["loader -V"]


def test_ready_board_is_built_then_flashed(calls):
    log, state = calls
    flash_board("icebreaker")
    assert [entry.split(" /")[0] for entry in log] == ["loader -V", "build icebreaker",
                                                       "loader -b ice40_generic"]
