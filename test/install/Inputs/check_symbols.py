"""check_symbols.py PREFIX/include/tgc/tgc.h PREFIX/lib: the installed libraries export the public API and nothing
else. libtgc.so exports exactly the TGC_API functions of tgc.h; libtgc_rt.so exactly those but tgc_compile_text and
tgc_compile_file; neither libtgc_rt.so nor libtgc_rt.a defines a symbol of the compiler (parser, passes, pipeline,
lowering, CUDA codegen). Prints what differs; exits 1 when anything does."""
import re
import subprocess
import sys

COMPILER = re.compile(r"^(tgc_parse|yy|tgc_pass|tgc_pipeline|tgc_cuda_generate|tgc_lower|tgc_verify|"
                      r"tgc_program_build|tgc_compile_text|tgc_compile_file)")


def defined(path, dynamic):
    out = subprocess.run(["nm", "--defined-only"] + (["-D"] if dynamic else []) + [path], check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    syms = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] in "TtDdBbRrWwVv" and (dynamic is False or parts[1].isupper()):
            syms.add(parts[2].split("@")[0])
    return syms


def main():
    header, libdir = sys.argv[1], sys.argv[2]
    api = set(re.findall(r"^TGC_API\s[^;(]*?\b(tgc_\w+)\s*\(", open(header).read(), re.M))
    bad = 0
    for lib, want in [("libtgc.so", api), ("libtgc_rt.so", api - {"tgc_compile_text", "tgc_compile_file"})]:
        got = {s for s in defined(f"{libdir}/{lib}", True) if not s.startswith("_")}
        for s in sorted(got - want):
            print(f"{lib}: exports {s}, which is not a TGC_API function of tgc.h")
            bad += 1
        for s in sorted(want - got):
            print(f"{lib}: does not export {s}")
            bad += 1
        print(f"{lib}: {len(got)} symbols exported")
    for lib, dyn in [("libtgc_rt.so", False), ("libtgc_rt.a", False)]:
        compiler = sorted(s for s in defined(f"{libdir}/{lib}", dyn) if COMPILER.match(s))
        for s in compiler:
            print(f"{lib}: defines {s}, a symbol of the compiler")
            bad += 1
        print(f"{lib}: {len(compiler)} compiler symbols")
    print(f"tgc.h: {len(api)} TGC_API functions")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
