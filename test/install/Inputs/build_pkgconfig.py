"""build_pkgconfig.py PREFIX PACKAGE SOURCE OUTPUT [--static] [CFLAGS...]: builds SOURCE with the C compiler and
the flags `pkg-config --cflags --libs PACKAGE` gives for the tgc installed in PREFIX, the way a user's Makefile
would. --static links the package's archive (lib<name>.a) and its Libs.private (pkg-config --static) instead of
the shared library; otherwise the program gets an rpath to PREFIX/lib. Prints the command it runs."""
import os
import shlex
import subprocess
import sys


def main():
    prefix, package, source, output = sys.argv[1:5]
    rest = sys.argv[5:]
    static = "--static" in rest
    extra = [a for a in rest if a != "--static"]
    env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(prefix, "lib", "pkgconfig"))
    query = ["pkg-config", "--cflags", "--libs"] + (["--static"] if static else []) + [package]
    flags = shlex.split(subprocess.run(query, env=env, check=True, stdout=subprocess.PIPE, text=True).stdout)
    if static:
        lib = "-l" + ("tgc_rt" if package == "tgc-rt" else "tgc")
        libdir = os.path.join(prefix, "lib")
        flags = [os.path.join(libdir, "lib" + lib[2:] + ".a") if f == lib else f for f in flags]
    else:
        flags.append("-Wl,-rpath," + os.path.join(prefix, "lib"))
    cmd = [os.environ.get("CC", "cc"), "-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic"] + extra + \
          [source, "-o", output] + flags + ["-lm"]
    print(" ".join(shlex.quote(c) for c in cmd))
    return subprocess.run(cmd).returncode


if __name__ == "__main__":
    sys.exit(main())
