"""The GNU binutils programs the RISC-V back end (riscvasm) runs; named apart so that
what only needs their names (kernel/build_cache.py) does not import the back end."""

AS = "riscv64-linux-gnu-as"
LD = "riscv64-linux-gnu-ld"
OBJCOPY = "riscv64-linux-gnu-objcopy"
