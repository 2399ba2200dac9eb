# The two quick-start commands. Each one installs what is missing, configures, builds and runs.
PRESET ?= dev
JOBS ?= 2

.PHONY: demo test build configure deps clean

demo: build
	./build/$(PRESET)/examples/two_phase_pipeline

test: build
	ctest --preset $(PRESET)

build: configure
	cmake --build --preset $(PRESET) -j $(JOBS)

configure: deps
	cmake --preset $(PRESET)

deps:
	./scripts/install-deps.sh

clean:
	rm -rf build
