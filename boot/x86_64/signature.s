; The last word of the boot sector: the BIOS boots only sectors that end in it.
.org BOOT_SECTOR_BASE + BOOT_SIGNATURE_OFFSET
    .word BOOT_SIGNATURE
