#!/usr/bin/env python3
"""Runs a command whose output is a special file, and reports what became of the file.

Usage:
  special_output.py fifo PATH COMMAND...        makes a FIFO at PATH, reads it while COMMAND runs, then prints
                                                `exit: N`, `fifo: yes|no` (still a FIFO) and `data:` + what
                                                was read
  special_output.py chardev PATH COMMAND...     makes a null device (char 1,3) at PATH (root only) and prints
                                                `exit: N` and `chardev: yes|no` (still one)
  special_output.py full COMMAND...             runs COMMAND with its standard output on a file that cannot
                                                grow (RLIMIT_FSIZE 0, SIGXFSZ ignored: every write fails with
                                                EFBIG, like a full disk or /dev/full); prints `exit: N`
  special_output.py unprivileged COMMAND...     runs COMMAND as user nobody when root (so that permissions
                                                apply), else as is; prints `exit: N`
The real /dev is never touched: every special file lives where the test puts it (a %t directory).
"""
import os
import stat
import subprocess
import sys
import threading


def run(cmd, **kw):
    sys.stdout.flush()
    p = subprocess.run(cmd, timeout=60, **kw)
    sys.stdout.flush()
    print("exit: %s" % (p.returncode if p.returncode >= 0 else "signal %d" % -p.returncode))


def main(argv):
    mode = argv[1]
    if mode == "fifo":
        path, cmd = argv[2], argv[3:]
        if os.path.lexists(path):
            os.unlink(path)
        os.mkfifo(path)
        got = []

        def reader():
            with open(path, "rb") as f:
                got.append(f.read())

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        run(cmd)
        t.join(timeout=10)
        print("fifo: %s" % ("yes" if stat.S_ISFIFO(os.lstat(path).st_mode) else "no"))
        sys.stdout.write("data:\n")
        sys.stdout.flush()
        sys.stdout.buffer.write(got[0] if got else b"(nothing read)\n")
        sys.stdout.buffer.flush()
        os._exit(0)  # a reader still blocked on a FIFO nobody opened must not hang the test
    if mode == "chardev":
        path, cmd = argv[2], argv[3:]
        if os.path.lexists(path):
            os.unlink(path)
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        run(cmd)
        print("chardev: %s" % ("yes" if stat.S_ISCHR(os.lstat(path).st_mode) else "no"))
        return 0
    if mode == "full":
        import resource
        import signal
        import tempfile

        def limit():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
        with tempfile.TemporaryFile() as out:
            run(argv[2:], stdout=out, preexec_fn=limit)
        return 0
    if mode == "unprivileged":
        def drop():
            if os.geteuid() == 0:
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
        run(argv[2:], preexec_fn=drop)
        return 0
    sys.stderr.write("unknown mode %s\n" % mode)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
