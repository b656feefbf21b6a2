"""RISC-V (RV64) assembler back end: GNU binutils driven from Python.

Same interface as the x86-64 back end (`toolchain.program`): a list of
`Section`s linked at fixed addresses becomes a `Program` (bytes, labels,
listing).  keystone has no RISC-V backend, so `riscv64-linux-gnu-as` assembles
and `riscv64-linux-gnu-ld` links; capstone then re-decodes every instruction
(`toolchain.riscvcheck`).

Source dialect (GNU as, RISC-V):
- Comments start with `#`.  One statement per line.  Macros, `.rept`,
  `.align`, `.word`, `.dword`, `.asciz`, `.space`, `.equ` work as in GNU as.
- Python constants (`constants=`) arrive as `.equ NAME, value` lines prepended
  to every section, so they are plain symbols in expressions (`li a0, UART_BASE`).
- Each `Section`'s sources are assembled in order as ONE unit (a macro defined
  in the first file is usable in the next).  Sources must not switch sections
  (`.section`, `.text`, `.data`, `.bss`): a `Section` is one output section,
  code and data together.  Memory the image does not carry (stacks, buffers) is
  given its address by the platform memory map instead.
- Every label is global across sections (one namespace, like the x86 back
  end): a name defined twice is an error.  `.L*` and numeric labels stay local.
- Linker relaxation is off (`-mno-relax`, `--no-relax`): the code the listing
  shows is the code that runs, at the address the listing gives.
- `march` selects the ISA the code may use; the kernel uses no compressed
  instructions so it also runs on harts without the C extension.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from elftools.elf.elffile import ELFFile

from toolchain.binutils import AS, LD, OBJCOPY
from toolchain.program import AssemblyError, Line, Program, Section, Symbol
from toolchain.riscvcheck import check_instructions, macro_names

DEFAULT_MARCH = "rv64gc"
_SECTION_SWITCH = re.compile(r"^\s*(?:\w+:\s*)?\.(section|text|data|bss|pushsection|popsection)\b")
_AS_ERROR = re.compile(r"^(?P<file>[^:\n]+):(?P<line>\d+): (?:Error|Warning): (?P<reason>.*)$")
_LABEL = re.compile(r"^\s*([A-Za-z_.$][\w.$]*):")


def _elf_section_name(section: Section) -> str:
    return f".sec.{section.name}"


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    except FileNotFoundError as exc:
        raise RuntimeError(
            f"{argv[0]} is missing: install binutils-riscv64-linux-gnu (./run does it)"
        ) from exc


def _source_lines(sources: Sequence[tuple[str, list[str]]], file: str, line: int) -> str:
    for name, lines in sources:
        if name == file and 0 < line <= len(lines):
            return lines[line - 1].strip()
    return ""


def _preamble(section: Section, constants: Mapping[str, int]) -> list[str]:
    lines = [f'.section {_elf_section_name(section)}, "awx", @progbits']
    lines += [f".equ {name}, {value:#x}" for name, value in sorted(constants.items())]
    return lines


def _end_label(section: Section) -> str:
    return f"__end_of_section_{section.name}"


def _read_sources(section: Section) -> list[tuple[str, list[str]]]:
    result = []
    for path in section.sources:
        text = Path(path).read_text()
        lines = text.splitlines()
        for number, line in enumerate(lines, 1):
            if _SECTION_SWITCH.match(line.split("#", 1)[0]):
                raise AssemblyError(
                    str(path), number, line.strip(),
                    f"sources of section {section.name!r} must not switch sections; "
                    "add a Section to the build instead",
                )
        result.append((str(path), lines))
    return result


def _parse_listing(
    listing: str, sources: list[tuple[str, list[str]]]
) -> list[tuple[int, bytes, str, int, str]]:
    """(offset, listed bytes, file, line, text) for each statement that has an
    offset.  The listing numbers every source line, restarting at 1 with each
    file; its bytes column may be cut short for large data."""
    out: list[list] = []
    file_index, previous = 0, 0
    for raw in listing.splitlines():
        prefix, tab, _ = raw.partition("\t")
        fields = prefix.split()
        if not fields:
            continue
        if not tab:  # continuation of the previous statement's bytes
            if out and len(fields) == 2 and int(fields[0]) == out[-1][3]:
                out[-1][1] += bytes.fromhex(fields[1])
            continue
        number = int(fields[0])
        if number <= previous:
            file_index += 1
            while file_index < len(sources) and not sources[file_index][1]:
                file_index += 1  # empty files list no lines
        previous = number
        if len(fields) >= 2:
            name, lines = sources[file_index]
            listed = bytes.fromhex(fields[2]) if len(fields) > 2 else b""
            out.append([int(fields[1], 16), listed, name, number, lines[number - 1].strip()])
    return [tuple(s) for s in out]


def _globalize(obj: Path, elf_section: str, workdir: Path) -> None:
    """Make every label defined in our section global (one namespace)."""
    with obj.open("rb") as f:
        elf = ELFFile(f)
        index = next(i for i, s in enumerate(elf.iter_sections()) if s.name == elf_section)
        names = [
            s.name for s in elf.get_section_by_name(".symtab").iter_symbols()
            if s["st_info"]["bind"] == "STB_LOCAL" and s["st_shndx"] == index
            and s.name and not s.name.startswith((".L", "$"))
            and s["st_info"]["type"] != "STT_SECTION"
        ]
    if not names:
        return
    listing = workdir / f"{obj.stem}.globals"
    listing.write_text("".join(n + "\n" for n in names))
    done = _run([OBJCOPY, f"--globalize-symbols={listing.name}", obj.name], workdir)
    if done.returncode:
        raise RuntimeError(f"objcopy failed: {done.stderr}")


def _assemble_section(
    section: Section, constants: Mapping[str, int], march: str, workdir: Path
) -> tuple[Path, list[tuple[int, str, int, str]], list[tuple[str, list[str]]]]:
    sources = _read_sources(section)
    preamble = workdir / f"{section.name}.preamble.s"
    preamble_lines = _preamble(section, constants)
    preamble.write_text("\n".join(preamble_lines) + "\n")
    obj = workdir / f"{section.name}.o"
    lst = workdir / f"{section.name}.lst"
    # The trailer's label marks where the sources' bytes end: the assembler
    # pads the section after it, and the listing counts that padding in.
    trailer = workdir / f"{section.name}.trailer.s"
    trailer.write_text(f"{_end_label(section)}:\n")
    argv = [AS, f"-march={march}", "-mabi=lp64", "-mno-relax", f"-aln={lst.name}",
            "-o", obj.name, preamble.name, *[str(Path(p).resolve()) for p in section.sources],
            trailer.name]
    done = _run(argv, workdir)
    all_sources = [(preamble.name, preamble_lines), *sources,
                   (trailer.name, [f"{_end_label(section)}:"])]
    if done.returncode:
        resolved = [(n if n == preamble.name else str(Path(n).resolve()), ls)
                    for n, ls in all_sources]
        for line in done.stderr.splitlines():
            m = _AS_ERROR.match(line)
            if m and ": Error: " in line:
                number = int(m["line"])
                text = _source_lines(resolved, m["file"], number)
                raise AssemblyError(m["file"], number, text, m["reason"])
        raise AssemblyError(section.name, 0, "", done.stderr.strip())
    _globalize(obj, _elf_section_name(section), workdir)
    statements = _parse_listing(lst.read_text(), all_sources)
    ours = [s for s in statements if s[2] not in (preamble.name, trailer.name)]
    return obj, ours, sources


def _linker_script(sections: Sequence[Section]) -> str:
    lines = ["SECTIONS {"]
    for s in sections:
        name = _elf_section_name(s)
        lines.append(f"  {name} {s.base:#x} : {{ {s.name}.o({name}) }}")
    lines.append("  /DISCARD/ : { *(.riscv.attributes) *(.comment) }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _link(sections: Sequence[Section], workdir: Path, entry: str | None) -> Path:
    script = workdir / "link.ld"
    script.write_text(_linker_script(sections))
    out = workdir / "linked.elf"
    argv = [LD, "-T", script.name, "--no-relax", "-nostdlib", "--build-id=none",
            "--no-warn-rwx-segments", "-o", out.name]
    argv += ["-e", entry] if entry else ["-e", hex(sections[0].base)]
    argv += [f"{s.name}.o" for s in sections]
    done = _run(argv, workdir)
    if done.returncode:
        errors = "\n".join(line for line in done.stderr.splitlines() if "warning:" not in line)
        raise AssemblyError("link", 0, "", _explain_link_error(errors))
    return out


def _explain_link_error(stderr: str) -> str:
    if "multiple definition" in stderr:
        return f"a label is defined twice (one namespace across all files): {stderr.strip()}"
    if "undefined reference" in stderr:
        return f"a symbol is used but never defined: {stderr.strip()}"
    return stderr.strip()


def _build(
    sections: Sequence[Section], constants: Mapping[str, int], march: str,
    entry: str | None, elf_path: Path | None,
) -> Program:
    names = [s.name for s in sections]
    if len(set(names)) != len(names):
        raise ValueError(f"section names must be unique: {names}")
    with tempfile.TemporaryDirectory(prefix="riscvasm-") as tmp:
        workdir = Path(tmp)
        assembled = [_assemble_section(s, constants, march, workdir) for s in sections]
        linked = _link(sections, workdir, entry)
        program = _read_program(linked, sections, assembled, constants)
        if elf_path is not None:
            Path(elf_path).parent.mkdir(parents=True, exist_ok=True)
            Path(elf_path).write_bytes(linked.read_bytes())
    macros = set().union(*(macro_names(lines) for _, _, sources in assembled
                            for _, lines in sources))
    check_instructions(program, macros)
    return program


def _read_program(linked: Path, sections, assembled, constants) -> Program:
    with linked.open("rb") as f:
        elf = ELFFile(f)
        blobs = {s.name: elf.get_section_by_name(_elf_section_name(s)).data() for s in sections}
        by_index = {i: sec.name for i, sec in enumerate(elf.iter_sections())}
        elf_to_ours = {_elf_section_name(s): s.name for s in sections}
        raw_symbols = [
            (s.name, s["st_value"], elf_to_ours.get(by_index.get(s["st_shndx"], "")))
            for s in elf.get_section_by_name(".symtab").iter_symbols()
            if s.name and not s.name.startswith((".L", "$"))
        ]
    listing: list[Line] = []
    where: dict[str, tuple[str, int]] = {}
    for section, (_, statements, sources) in zip(sections, assembled, strict=True):
        end = next(a for n, a, _ in raw_symbols if n == _end_label(section)) - section.base
        offsets = sorted({s[0] for s in statements} | {end})
        next_offset = {o: offsets[i + 1] for i, o in enumerate(offsets[:-1])}
        for name, lines in sources:
            for number, text in enumerate(lines, 1):
                m = _LABEL.match(text)
                if m:
                    where.setdefault(m.group(1), (name, number))
        # Several statements may share an offset (labels, directives that emit
        # nothing); the bytes there belong to the last one listed.
        owner = {s[0]: (s[2], s[3]) for s in statements}
        for offset, _, file, number, text in statements:
            size_here = next_offset[offset] - offset if owner[offset] == (file, number) else 0
            listing.append(Line(section.base + offset, size_here, file, number, text))
    symbols = {}
    for name, address, section_name in raw_symbols:
        if section_name is None or name.startswith("__end_of_section_"):
            continue  # constants, absolute symbols, our end markers
        file, line = where.get(name, ("", 0))
        symbols[name] = Symbol(name, address, section_name, file, line)
    return Program(
        sections=blobs, bases={s.name: s.base for s in sections}, symbols=symbols,
        listing=listing, constants=dict(constants),
    )


def assemble(
    sections: Sequence[Section], constants: Mapping[str, int] = {}, march: str = DEFAULT_MARCH
) -> Program:
    """Assemble and link `sections` at their bases; every instruction checked."""
    return _build(sections, constants, march, None, None)


def assemble_elf(
    sections: Sequence[Section], constants: Mapping[str, int], elf_path: Path,
    entry: str | None = None, march: str = DEFAULT_MARCH,
) -> Program:
    """`assemble`, and also write the linked ELF executable (entry: a label, or
    the first section's base) to `elf_path`.  The ELF is a pure function of the
    inputs."""
    return _build(sections, constants, march, entry, Path(elf_path))


def assemble_snippet(
    text: str, address: int = 0, constants: Mapping[str, int] = {}, march: str = DEFAULT_MARCH
) -> bytes:
    """The bytes of `text` (generated code) placed at `address`; same checks."""
    with tempfile.TemporaryDirectory(prefix="riscvasm-snippet-") as tmp:
        source = Path(tmp) / "snippet.s"
        source.write_text(text if text.endswith("\n") else text + "\n")
        program = assemble([Section("snippet", address, (source,))], constants, march)
    return program.sections["snippet"]
