# Convenience entry points; the real work is in scripts/.
SHELL := /bin/bash
JOBS ?= $(shell nproc)
# Generator for new build trees only (CMake ignores it for existing ones).
export CMAKE_GENERATOR ?= Ninja

CMAKE_FLAGS := -DCMAKE_BUILD_TYPE=RelWithDebInfo $(if $(CI),-DTGC_WERROR=ON)

.PHONY: all bootstrap build demo check clean

all: build

bootstrap:
	@scripts/bootstrap

build: bootstrap
	@test -f build/CMakeCache.txt || cmake -S . -B build $(CMAKE_FLAGS)
	cmake --build build -j$(JOBS)

demo: build
	@scripts/demo

check:
	@scripts/bootstrap --with-torch
	@scripts/check

clean:
	rm -rf build build-asan build-make
