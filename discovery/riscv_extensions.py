"""Names of RISC-V ISA extensions, for reports: the letter (misa bit) or the
multi-letter name of a `riscv,isa` string is the identity; these are views.
Single letters follow the misa table of the privileged spec; multi-letter
names those QEMU 7.2 can put in a device tree, and the ratified ones around them."""

from __future__ import annotations

SINGLE_LETTER = {
    "a": "atomic instructions",
    "b": "bit manipulation",
    "c": "compressed instructions",
    "d": "double-precision floating point",
    "e": "reduced register file (RV32E/RV64E)",
    "f": "single-precision floating point",
    "h": "hypervisor",
    "i": "base integer instruction set",
    "m": "integer multiply and divide",
    "n": "user-level interrupts",
    "p": "packed SIMD",
    "q": "quad-precision floating point",
    "s": "supervisor mode",
    "u": "user mode",
    "v": "vector",
    "x": "non-standard extensions present",
}

MULTI_LETTER = {
    "zicsr": "control and status register instructions",
    "zifencei": "instruction-fetch fence",
    "zihintpause": "pause hint",
    "zicntr": "base counters and timers",
    "zihpm": "hardware performance counters",
    "zicbom": "cache-block management",
    "zicbop": "cache-block prefetch",
    "zicboz": "cache-block zero",
    "zicond": "integer conditional operations",
    "zawrs": "wait on reservation set",
    "zmmul": "multiply only",
    "zfh": "half-precision floating point",
    "zfhmin": "minimal half-precision floating point",
    "zfa": "additional floating-point instructions",
    "zfinx": "single-precision floating point in integer registers",
    "zdinx": "double-precision floating point in integer registers",
    "zhinx": "half-precision floating point in integer registers",
    "zhinxmin": "minimal half-precision floating point in integer registers",
    "zba": "address generation (bit manipulation)",
    "zbb": "basic bit manipulation",
    "zbc": "carry-less multiplication",
    "zbs": "single-bit instructions",
    "zbkb": "bit manipulation for cryptography",
    "zbkc": "carry-less multiplication for cryptography",
    "zbkx": "crossbar permutations",
    "zk": "scalar cryptography (NIST suite, entropy, data-independent timing)",
    "zkn": "NIST algorithm suite",
    "zknd": "AES decryption",
    "zkne": "AES encryption",
    "zknh": "SHA-2 hashes",
    "zkr": "entropy source",
    "zks": "ShangMi algorithm suite",
    "zksed": "SM4 block cipher",
    "zksh": "SM3 hash",
    "zkt": "data-independent execution latency",
    "zve32f": "embedded vector, 32-bit elements, single precision",
    "zve64f": "embedded vector, 64-bit elements, single precision",
    "zve64d": "embedded vector, 64-bit elements, double precision",
    "zca": "compressed integer instructions",
    "zcb": "additional compressed instructions",
    "zcd": "compressed double-precision loads and stores",
    "zcf": "compressed single-precision loads and stores",
    "zcmp": "compressed push/pop",
    "zcmt": "compressed table jumps",
    "smaia": "advanced interrupt architecture (machine)",
    "ssaia": "advanced interrupt architecture (supervisor)",
    "smstateen": "state enable (machine)",
    "sscofpmf": "counter overflow and mode-based filtering",
    "sstc": "supervisor-mode timer compare",
    "svinval": "fine-grained address-translation cache invalidation",
    "svnapot": "NAPOT translation contiguity",
    "svpbmt": "page-based memory types",
}


def extension_names(isa: str) -> list[tuple[str, str]]:
    """(extension, name) for every extension a `riscv,isa` string lists, in its
    order ("rv64imac_zicsr" -> i, m, a, c, zicsr); unknown ones are named '?'."""
    base, *multi = isa.lower().split("_")
    letters = base[4:] if base[:4] in ("rv32", "rv64") else base[5:]
    letters = letters.replace("g", "imafd")
    found = [(letter, SINGLE_LETTER.get(letter, "?")) for letter in letters]
    return found + [(name, MULTI_LETTER.get(name, "?")) for name in multi if name]
