"""Raw disk images: the boot sector, then the later stages, sector-aligned."""

from __future__ import annotations

from collections.abc import Sequence

SECTOR = 512
# SeaBIOS on q35 will not boot a disk smaller than this (a bare 512-byte image
# is enough on -machine pc); 1 MiB is a size every machine we target accepts.
BOOTABLE_SIZE = 1 << 20


def disk_image(parts: Sequence[bytes], sector: int = SECTOR, pad_to: int = BOOTABLE_SIZE) -> bytes:
    """`parts` concatenated, each starting on a sector boundary, then zero-padded
    to `pad_to` bytes (or to a whole sector when the parts are larger)."""
    image = bytearray()
    for part in parts:
        image += part + bytes(-len(part) % sector)
    image += bytes(max(pad_to - len(image), 0))
    image += bytes(-len(image) % sector)
    return bytes(image)


def sectors(size: int, sector: int = SECTOR) -> int:
    """How many sectors `size` bytes occupy (what a loader must read)."""
    return -(-size // sector)
