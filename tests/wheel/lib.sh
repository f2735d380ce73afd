# Sourced by the tests of what `make wheel` ships (tests/wheel/*.sh).

# bare_path DIR TOOL...: prints a PATH made of DIR alone, where DIR holds links to the named tools
# and nothing else, then checks that no Rust toolchain and no C compiler can be found on it.
bare_path() {
  local dir=$1 tool found
  shift
  rm -rf "$dir"
  mkdir -p "$dir"
  for tool in "$@"; do
    found=$(command -v "$tool") || { echo "bare_path: $tool is not installed" >&2; return 1; }
    ln -s "$found" "$dir/$tool"
  done
  for tool in cargo rustc rustup cc gcc c++ g++ clang zig ld; do
    if PATH=$dir command -v "$tool" >/dev/null 2>&1; then
      echo "bare_path: $tool is on the test's PATH" >&2
      return 1
    fi
  done
  echo "$dir"
}

# cargo_free_path: the current PATH without the directories that hold cargo or rustc.
cargo_free_path() {
  local out="" d
  IFS=: read -ra dirs <<<"$PATH"
  for d in "${dirs[@]}"; do
    [ -z "$d" ] && continue
    [ -x "$d/cargo" ] || [ -x "$d/rustc" ] || out=${out:+$out:}$d
  done
  if PATH=$out command -v cargo >/dev/null 2>&1; then
    echo "cargo_free_path: cargo is still on PATH" >&2
    return 1
  fi
  echo "$out"
}
