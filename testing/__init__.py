"""Test doubles and tiny guests; production never imports this package (import-linter).

- fake_guest, loopback: the probe line without QEMU (a guest that answers in Python, a
  link whose bytes can be dropped or flipped);
- staying_guest, x86_probe_guest, riscv_guest: our kernels booted under QEMU to stay and
  serve probes, or run to their own exit;
- riscv_tiny_guests, x86_boot_sectors: guests of a few instructions that each do one
  thing the QEMU layer must recognise;
- synthetic_q35: a q35-like machine's frames assembled from the specifications;
- market_world: a synthetic world of boards and strategies for the market's rule tests;
- asm: `;`-separated x86-64 snippets for tests.
"""
