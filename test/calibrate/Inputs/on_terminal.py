"""Runs a command with its standard error on a pseudo-terminal (a TTY) and prints what it wrote there, carriage
returns as line breaks and ANSI line clears dropped, so FileCheck can read a progress display; exits as it did."""
import os
import pty
import subprocess
import sys

master, slave = pty.openpty()
p = subprocess.Popen(sys.argv[1:], stderr=slave, stdout=subprocess.DEVNULL)
os.close(slave)
out = b""
while True:
    try:
        d = os.read(master, 4096)
    except OSError:  # EIO: the command closed its end
        break
    if not d:
        break
    out += d
rc = p.wait()
sys.stdout.write(out.decode().replace("\r\n", "\n").replace("\r", "\n").replace("\x1b[K", ""))
sys.exit(rc)
