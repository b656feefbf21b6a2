"""Instruction classes, with encodings from independent assemblers (keystone for
x86-64, GNU as for riscv64), never hand-typed bytes."""

import shutil
import subprocess

import keystone
import pytest

from arch import RISCV64, X86_64
from probes.classify import InsnClass, classify

X86_EXAMPLES = {
    "in al, dx": InsnClass.IO,
    "out 0x80, al": InsnClass.IO,
    "insb": InsnClass.IO,
    "hlt": InsnClass.PRIVILEGED,
    "mov cr3, rax": InsnClass.PRIVILEGED,
    "mov rax, dr7": InsnClass.PRIVILEGED,
    "wrmsr": InsnClass.PRIVILEGED,
    "rdmsr": InsnClass.PRIVILEGED,
    "cli": InsnClass.PRIVILEGED,
    "lgdt [rax]": InsnClass.PRIVILEGED,
    "int 0x80": InsnClass.INTERRUPT,
    "int3": InsnClass.INTERRUPT,
    "syscall": InsnClass.INTERRUPT,
    "sysenter": InsnClass.INTERRUPT,
    "ljmp [rax]": InsnClass.FAR_TRANSFER,
    "lcall [rax]": InsnClass.FAR_TRANSFER,
    "retf": InsnClass.FAR_TRANSFER,
    "iretq": InsnClass.FAR_TRANSFER,
    "cpuid": InsnClass.ENVIRONMENT,
    "rdtsc": InsnClass.ENVIRONMENT,
    "rdrand rax": InsnClass.ENVIRONMENT,
    "add rax, rbx": InsnClass.ORDINARY,
    "jmp qword ptr [rax]": InsnClass.ORDINARY,
    "call rax": InsnClass.ORDINARY,
    "ud2": InsnClass.ORDINARY,
}


@pytest.mark.parametrize("source, expected", X86_EXAMPLES.items())
def test_x86_classes(source, expected):
    code = bytes(keystone.Ks(keystone.KS_ARCH_X86, keystone.KS_MODE_64).asm(source)[0])
    decoded = classify(X86_64, code)
    assert decoded.klass == expected, decoded
    assert decoded.size == len(code)


RISCV_EXAMPLES = {
    "csrw mstatus, a0": InsnClass.PRIVILEGED,
    "csrr a0, mhartid": InsnClass.PRIVILEGED,
    "csrr a0, satp": InsnClass.PRIVILEGED,
    "mret": InsnClass.PRIVILEGED,
    "sret": InsnClass.PRIVILEGED,
    "wfi": InsnClass.PRIVILEGED,
    "sfence.vma": InsnClass.PRIVILEGED,
    "ecall": InsnClass.INTERRUPT,
    "ebreak": InsnClass.INTERRUPT,
    "fence.i": InsnClass.CODE_SYNC,
    "rdcycle a0": InsnClass.ENVIRONMENT,
    "rdinstret a0": InsnClass.ENVIRONMENT,
    "frcsr a0": InsnClass.ORDINARY,
    "mul a0, a0, a1": InsnClass.ORDINARY,
    "ld a0, 8(a1)": InsnClass.ORDINARY,
}


def _gnu_as_riscv(sources: list[str]) -> list[bytes]:
    """Assemble one instruction per source line, uncompressed, into 4-byte words."""
    asm = shutil.which("riscv64-linux-gnu-as")
    objcopy = shutil.which("riscv64-linux-gnu-objcopy")
    if not asm or not objcopy:
        pytest.skip("riscv64-linux-gnu binutils are not installed")
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as tmp:
        src, obj, raw = Path(tmp, "a.s"), Path(tmp, "a.o"), Path(tmp, "a.bin")
        src.write_text(".option norvc\n" + "\n".join(sources) + "\n")
        subprocess.run([asm, "-march=rv64gc_zicsr_zifencei", "-o", obj, src], check=True)
        subprocess.run([objcopy, "-O", "binary", "-j", ".text", obj, raw], check=True)
        data = raw.read_bytes()
    return [data[i : i + 4] for i in range(0, len(data), 4)]


def test_riscv_classes():
    sources = list(RISCV_EXAMPLES)
    for source, code in zip(sources, _gnu_as_riscv(sources), strict=True):
        decoded = classify(RISCV64, code)
        assert decoded.klass == RISCV_EXAMPLES[source], (source, decoded)


def test_compressed_ebreak_is_a_trap():
    assert classify(RISCV64, (0x9002).to_bytes(2, "little")).klass == InsnClass.INTERRUPT
