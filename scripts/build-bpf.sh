#!/usr/bin/env bash
# Rebuild the BPF objects next to their sources (src/bpf/programs/*.bpf.c -> *.bpf.o). The objects are
# committed so users need no clang; CI rebuilds them when clang is present and checks they match.
# Deterministic: compiled from inside the folder with relative names, DWARF stripped (BTF kept: the maps'
# types and libbpf need it), so the bytes do not depend on where the clone lives.
set -euo pipefail
cd "$(dirname "$0")/../src/bpf/programs"
CLANG="${CLANG:-clang}"
STRIP="${LLVM_STRIP:-llvm-strip}"
command -v "$CLANG" >/dev/null || { echo "build:bpf needs clang (apt-get install -y clang llvm libbpf-dev)" >&2; exit 2; }
command -v "$STRIP" >/dev/null || { echo "build:bpf needs llvm-strip (apt-get install -y llvm)" >&2; exit 2; }
out="${1:-.}"
# *.bpf.h are headers the programs include, not programs of their own.
for src in *.bpf.c; do
  obj="$out/${src%.c}.o"
  "$CLANG" -O2 -g -target bpf -fdebug-compilation-dir=. -I"/usr/include/$(uname -m)-linux-gnu" -c "$src" -o "$obj"
  "$STRIP" -g "$obj"
  echo "built $obj"
done
