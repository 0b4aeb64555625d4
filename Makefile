# Entry points for a fresh Linux machine (GNU make). The BSD kernel build is Makefile.bsd.
#
#   make demo   build, start dmhost on image files, build linear and striped volumes, and
#               read and write them through a real NBD client
#   make test   every test and check the project has (what CI runs)

.PHONY: all demo test deps build clean

all: build

build:
	cargo build --workspace --release

deps:
	bash scripts/install-deps.sh

demo: deps
	bash scripts/demo.sh

test: deps
	bash scripts/test.sh

clean:
	cargo clean
