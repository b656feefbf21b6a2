"""Physical memory regions as the firmware reports them (E820 on x86)."""

from __future__ import annotations

from dataclasses import dataclass

E820_TYPES = {
    1: "usable", 2: "reserved", 3: "ACPI reclaimable", 4: "ACPI NVS", 5: "bad memory",
    7: "persistent memory",
}


@dataclass(frozen=True)
class MemoryRegion:
    base: int
    length: int
    type: int

    @property
    def end(self) -> int:
        return self.base + self.length

    @property
    def type_name(self) -> str:
        return E820_TYPES.get(self.type, f"type {self.type}")

    def to_json(self) -> dict:
        return {"base": self.base, "length": self.length, "type": self.type}
