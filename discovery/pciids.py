"""Names for PCI numbers from the pci.ids database (the file lspci uses).

Numbers are the identity of a device; names are looked up at render time only.
The file is parsed on first use; when it is missing every name is None.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_PATHS = (Path("/usr/share/misc/pci.ids"), Path("/usr/share/hwdata/pci.ids"))


@dataclass
class _Tables:
    vendors: dict[int, str] = field(default_factory=dict)
    devices: dict[tuple[int, int], str] = field(default_factory=dict)
    subsystems: dict[tuple[int, int, int, int], str] = field(default_factory=dict)
    classes: dict[int, str] = field(default_factory=dict)  # base class
    subclasses: dict[tuple[int, int], str] = field(default_factory=dict)
    prog_ifs: dict[tuple[int, int, int], str] = field(default_factory=dict)


def _parse(lines) -> _Tables:
    """pci.ids grammar: vendor / TAB device / TAB TAB subvendor subdevice, and
    'C cc' class / TAB subclass / TAB TAB prog-if; '#' starts a comment."""
    tables = _Tables()
    vendor = device = base_class = subclass = None
    in_classes = False
    for line in lines:
        if not line.strip() or line.startswith("#"):
            continue
        line = line.rstrip("\n")
        depth = len(line) - len(line.lstrip("\t"))
        text = line.lstrip("\t")
        try:
            if depth == 0:
                if text.startswith("C "):
                    in_classes = True
                    code, name = text[2:].split(None, 1)
                    base_class = int(code, 16)
                    tables.classes[base_class] = name
                elif len(text) > 4 and text[4] == " " and all(c in "0123456789abcdefABCDEF" for c in text[:4]):
                    in_classes = False
                    vendor = int(text[:4], 16)
                    tables.vendors[vendor] = text[4:].strip()
                else:  # another section (device types, languages): nothing we name
                    vendor = base_class = None
            elif depth == 1:
                code, name = text.split(None, 1)
                if in_classes and base_class is not None:
                    subclass = int(code, 16)
                    tables.subclasses[(base_class, subclass)] = name
                elif vendor is not None:
                    device = int(code, 16)
                    tables.devices[(vendor, device)] = name
            elif depth == 2:
                if in_classes and base_class is not None and subclass is not None:
                    code, name = text.split(None, 1)
                    tables.prog_ifs[(base_class, subclass, int(code, 16))] = name
                elif vendor is not None and device is not None:
                    sub_vendor, sub_device, name = text.split(None, 2)
                    key = (vendor, device, int(sub_vendor, 16), int(sub_device, 16))
                    tables.subsystems[key] = name
        except ValueError:
            continue  # a malformed line costs one name, never the whole database
    return tables


class PciIds:
    """Lazy pci.ids lookups.  `path=None` uses $PCI_IDS or the Debian locations."""

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self._path = path
        self._tables: _Tables | None = None

    @property
    def path(self) -> Path | None:
        if self._path is not None:
            return Path(self._path)
        if os.environ.get("PCI_IDS"):
            return Path(os.environ["PCI_IDS"])
        return next((p for p in DEFAULT_PATHS if p.exists()), None)

    @property
    def available(self) -> bool:
        return bool(self._load().vendors)

    def _load(self) -> _Tables:
        if self._tables is None:
            path = self.path
            try:
                with open(path, encoding="utf-8", errors="replace") as handle:  # type: ignore[arg-type]
                    self._tables = _parse(handle)
            except (OSError, TypeError):
                self._tables = _Tables()
        return self._tables

    def vendor_name(self, vendor: int) -> str | None:
        return self._load().vendors.get(vendor)

    def device_name(self, vendor: int, device: int) -> str | None:
        return self._load().devices.get((vendor, device))

    def subsystem_name(self, vendor: int, device: int, sub_vendor: int, sub_device: int) -> str | None:
        return self._load().subsystems.get((vendor, device, sub_vendor, sub_device))

    def class_name(self, class_code: int) -> str | None:
        """The most specific of subclass / base class names for a 24-bit class code
        (what `lspci` prints before the [ccss] number)."""
        tables = self._load()
        base, sub = class_code >> 16 & 0xFF, class_code >> 8 & 0xFF
        return tables.subclasses.get((base, sub)) or tables.classes.get(base)

    def prog_if_name(self, class_code: int) -> str | None:
        base, sub, prog_if = class_code >> 16 & 0xFF, class_code >> 8 & 0xFF, class_code & 0xFF
        return self._load().prog_ifs.get((base, sub, prog_if))
