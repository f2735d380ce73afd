#!/usr/bin/env python3
"""Lays out cbindgen's header in the sections of native/ffi/src/lib.rs (`make header`).

cbindgen writes every constant, then every type, then every function. A reader wants what belongs
together in one place, as zstd.h does it: a section per topic, each opening with what to know, its
status or action codes next to the functions that return them. lib.rs marks the sections:

    // ==== Title ====
    // What the section is about (any number of `//` lines, printed under the title).

and every public item (`pub const`, `pub type`, `pub struct`, `pub extern "C" fn`) goes in the
section it is written under, in the file's order. An item cbindgen emits that no section holds is
an error. Usage: header_sections.py RAW_HEADER LIB_RS > include/microloop.h
"""

from __future__ import annotations

import re
import sys

SECTION = re.compile(r"^// ==== (.+) ====\s*$")
ITEM = re.compile(r'^pub (?:unsafe )?(?:extern "C" fn|const|type|struct) (\w+)')
OPEN_EXTERN = '#ifdef __cplusplus\nextern "C" {\n#endif  // __cplusplus'
CLOSE_EXTERN = '#ifdef __cplusplus\n}  // extern "C"\n#endif  // __cplusplus'
WIDTH = 100


def sections_of(rust: str) -> list[tuple[str, list[str], list[str]]]:
    """[(title, intro lines, item names)] in the order of lib.rs."""
    out: list[tuple[str, list[str], list[str]]] = []
    intro_open = False
    for line in rust.splitlines():
        m = SECTION.match(line)
        if m:
            out.append((m.group(1), [], []))
            intro_open = True
            continue
        if intro_open and line.startswith("//"):
            out[-1][1].append(line[3:] if line.startswith("// ") else "")
            continue
        intro_open = False
        m = ITEM.match(line)
        if m and out:
            out[-1][2].append(m.group(1))
    return out


def item_name(chunk: str) -> str | None:
    """The name a chunk of cbindgen's output declares, or None for glue (guards, extern "C")."""
    decl = re.sub(r"/\*.*?\*/", "", chunk, flags=re.S).strip()
    for pattern in (r"^#define (\w+)", r"^typedef struct (\w+)", r"^typedef [\w ]+?(\w+);$", r"(\w+)\("):
        m = re.search(pattern, decl, flags=re.M)
        if m and not decl.startswith(("#if", "#endif", "}")):
            return m.group(1)
    return None


def banner(title: str, intro: list[str]) -> str:
    rule = "=" * (WIDTH - 4)
    lines = [f"/* {rule}", f" * {title}"]
    if intro:
        lines.append(" *")
        lines += [f" * {t}".rstrip() for t in intro]
    lines.append(f" * {rule} */")
    return "\n".join(lines)


def arrange(raw: str, rust: str) -> str:
    sections = sections_of(rust)
    known = {n for _, _, names in sections for n in names}
    chunks = [c.strip("\n") for c in re.split(r"\n\s*\n", raw) if c.strip()]
    preamble: list[str] = []
    items: dict[str, str] = {}
    trailer: list[str] = []
    for chunk in chunks:
        if chunk.strip() in (OPEN_EXTERN, CLOSE_EXTERN) or chunk.startswith("#ifdef __cplusplus"):
            continue
        if chunk.startswith("#endif") and "MICROLOOP_H" in chunk:
            trailer.append(chunk)
            continue
        name = item_name(chunk)
        if not items and name not in known:
            preamble.append(chunk)  # the comment, include guard, includes and `after_includes`
            continue
        if name is None:
            raise SystemExit(f"header_sections.py: cannot place this part of the header:\n{chunk}")
        items[name] = chunk

    out = preamble + [OPEN_EXTERN]
    placed: set[str] = set()
    for title, intro, names in sections:
        present = [n for n in names if n in items]
        if not present:
            continue
        out.append(banner(title, intro))
        out += [items[n] for n in present]
        placed.update(present)
    missing = [n for n in items if n not in placed]
    if missing:
        raise SystemExit(
            f"header_sections.py: {', '.join(missing)} not under any `// ==== Title ====` section of lib.rs: "
            "write them under the section they belong to"
        )
    out += [CLOSE_EXTERN] + trailer
    return "\n\n".join(out) + "\n"


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    with open(sys.argv[1], encoding="utf-8") as f:
        raw_text = f.read()
    with open(sys.argv[2], encoding="utf-8") as f:
        rust_text = f.read()
    sys.stdout.write(arrange(raw_text, rust_text))
