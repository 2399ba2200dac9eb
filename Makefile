# The two quick-start commands. Each one installs what is missing, configures, builds and runs.
PRESET ?= dev
JOBS ?= 2

.PHONY: demo test build configure deps clean

# The reference pipeline with a private redis-server, worker processes and faults; DEMO_ARGS
# passes options (DEMO_ARGS="--tasks 1000", DEMO_ARGS="--bus memory://").
demo: build
	./build/$(PRESET)/baton demo $(DEMO_ARGS)

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
