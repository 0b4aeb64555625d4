#!/usr/bin/env bash
# Every test and check of the project. Prints a summary line per stage; fails on the first
# failing stage.
set -euo pipefail
cd "$(dirname "$0")/.."

stage() { echo; echo "=== $*"; }

stage "format"
cargo fmt --all -- --check

stage "clippy"
cargo clippy --workspace --all-targets -- -D warnings

stage "unit, property, conformance and end-to-end tests"
cargo test --workspace

stage "core builds for the kernel targets; the fuzz targets compile"
for t in x86_64-unknown-none aarch64-unknown-none-softfloat; do
  cargo build -p dmcore --target "$t"
done
cargo check --manifest-path fuzz/Cargo.toml

stage "kernel module: staticlib, symbols, relocations, FP scan, panic sites, NetBSD compile, glue on a stand-in kernel"
bash kmod/check/run.sh

stage "atf tests against dmhost"
sh tests/atf/run-dmhost.sh

stage "anita: dry run and self-test"
sh tests/anita/selftest.sh

stage "manual pages: mandoc -Tlint"
sh man/lint.sh

stage "differential tests against Linux's device-mapper (QEMU oracle)"
bash scripts/oracle.sh
