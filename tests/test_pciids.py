"""pci.ids names against lspci's own lookup of the same file (`lspci -F` over a dump)."""

from __future__ import annotations

import random
import re
import shutil
import subprocess

import pytest

from discovery.pciids import PciIds

SAMPLES = 400


def _pick(ids: PciIds, seed: int = 7) -> list[tuple[int, int, int, int, int]]:
    """(vendor, device, subsystem vendor, subsystem device, class code) from the file
    itself: random devices of random vendors, each with a subsystem when it lists one."""
    text = ids.path.read_text(encoding="utf-8", errors="replace")
    rng = random.Random(seed)
    blocks = {int(m.group(1), 16): m.group(2)
              for m in re.finditer(r"^([0-9a-f]{4})  .*\n((?:\t.*\n|#.*\n)*)", text, re.M)}
    vendors = sorted(blocks)
    classes = [(int(b, 16) << 16) | (int(s, 16) << 8)
               for b, s in re.findall(r"^C ([0-9a-f]{2})  .*\n\t([0-9a-f]{2})  ", text, re.M)]
    picked = []
    while len(picked) < SAMPLES:
        vendor = rng.choice(vendors)
        devices = re.findall(r"^\t([0-9a-f]{4})  .*\n((?:\t\t.*\n)*)", blocks[vendor], re.M)
        if not devices:
            continue
        device, subs = rng.choice(devices)
        found = re.findall(r"^\t\t([0-9a-f]{4}) ([0-9a-f]{4})  ", subs, re.M)
        sub_vendor, sub_device = rng.choice(found) if found else ("0000", "0000")
        picked.append((vendor, int(device, 16), int(sub_vendor, 16), int(sub_device, 16),
                       rng.choice(classes)))
    return picked


def _dump(functions) -> str:
    """lspci -x text: one function per bus, its 256-byte config space in hex."""
    out = []
    for bus, (vendor, device, sub_vendor, sub_device, class_code) in enumerate(functions):
        config = bytearray(256)
        config[0:4] = vendor.to_bytes(2, "little") + device.to_bytes(2, "little")
        config[9:12] = class_code.to_bytes(3, "little")
        config[0x2C:0x30] = sub_vendor.to_bytes(2, "little") + sub_device.to_bytes(2, "little")
        out.append(f"{bus >> 5:02x}:{bus & 31:02x}.0 device")
        out += [f"{o:02x}: " + " ".join(f"{b:02x}" for b in config[o:o + 16])
                for o in range(0, 256, 16)]
        out.append("")
    return "\n".join(out) + "\n"


def _lspci(dump_path, ids_path) -> list[dict[str, str]]:
    text = subprocess.run(["lspci", "-F", str(dump_path), "-i", str(ids_path), "-vmm"],
                          capture_output=True, text=True, check=True).stdout
    records = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(":\t", 1) for line in block.splitlines())
        records.append({k: re.sub(r" \[[0-9a-f]{2,4}\]$", "", v) for k, v in fields.items()})
    return records


@pytest.mark.skipif(shutil.which("lspci") is None, reason="lspci (pciutils) is not installed")
def test_names_are_the_ones_lspci_gives(tmp_path):
    ids = PciIds()
    assert ids.available
    functions = _pick(ids)
    dump = tmp_path / "lspci.txt"
    dump.write_text(_dump(functions))
    seen = _lspci(dump, ids.path)
    assert len(seen) == len(functions)
    compared = 0
    for (vendor, device, sub_vendor, sub_device, class_code), record in zip(functions, seen,
                                                                            strict=True):
        assert ids.vendor_name(vendor) == record["Vendor"]
        assert ids.device_name(vendor, device) == record["Device"]
        assert ids.class_name(class_code) == record["Class"]
        if sub_vendor:
            assert ids.subsystem_name(vendor, device, sub_vendor, sub_device) == record["SDevice"]
            compared += 1
    assert compared > SAMPLES // 20  # the sample did reach subsystem lines
