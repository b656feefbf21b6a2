"""Names for PCI numbers from the pci.ids database (the file lspci uses).

Numbers are the identity of a device; names are looked up at render time only.
On first use the file is read and indexed by vendor (its 2,000-odd vendor lines
and the class section); a vendor's devices are parsed when first asked for, so a
report naming ten devices reads a few blocks, not all 37,000 lines.  When the
file is missing every name is None.
"""

from __future__ import annotations

import os
import re
import string
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_PATHS = (Path("/usr/share/misc/pci.ids"), Path("/usr/share/hwdata/pci.ids"))
VENDOR_LINE = re.compile(r"^([0-9a-fA-F]{4})  (.*)$", re.MULTILINE)
CLASS_SECTION = "\nC "  # the device classes follow the vendors


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
                elif len(text) > 4 and text[4] == " " and all(c in string.hexdigits
                                                               for c in text[:4]):
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


@dataclass
class _Index:
    """The file's text, where each vendor's block is, and the parsed class section."""

    text: str = ""
    blocks: dict[int, tuple[int, int]] = field(default_factory=dict)  # vendor -> text span
    vendors: dict[int, str] = field(default_factory=dict)
    classes: _Tables = field(default_factory=_Tables)
    parsed: dict[int, _Tables] = field(default_factory=dict)  # vendor -> its devices


def _index(text: str) -> _Index:
    index = _Index(text)
    class_start = text.find(CLASS_SECTION)
    vendor_end = class_start if class_start >= 0 else len(text)
    starts = [(int(m.group(1), 16), m.start(), m.group(2).strip())
              for m in VENDOR_LINE.finditer(text, 0, vendor_end)]
    for (vendor, start, name), following in zip(starts, [*starts[1:], (0, vendor_end, "")],
                                                 strict=True):
        index.vendors[vendor] = name
        index.blocks[vendor] = (start, following[1])
    if class_start >= 0:
        index.classes = _parse(text[class_start + 1:].splitlines())
    return index


class PciIds:
    """Lazy pci.ids lookups.  `path=None` uses $PCI_IDS or the Debian locations."""

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self._path = path
        self._index: _Index | None = None

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

    def _load(self) -> _Index:
        if self._index is None:
            path = self.path
            try:
                with open(path, encoding="utf-8", errors="replace") as handle:  # type: ignore[arg-type]
                    self._index = _index(handle.read())
            except (OSError, TypeError):
                self._index = _Index()
        return self._index

    def _vendor(self, vendor: int) -> _Tables:
        index = self._load()
        if vendor not in index.parsed:
            start, end = index.blocks.get(vendor, (0, 0))
            index.parsed[vendor] = _parse(index.text[start:end].splitlines())
        return index.parsed[vendor]

    def vendor_name(self, vendor: int) -> str | None:
        return self._load().vendors.get(vendor)

    def device_name(self, vendor: int, device: int) -> str | None:
        return self._vendor(vendor).devices.get((vendor, device))

    def subsystem_name(self, vendor: int, device: int, sub_vendor: int,
                       sub_device: int) -> str | None:
        return self._vendor(vendor).subsystems.get((vendor, device, sub_vendor, sub_device))

    def class_name(self, class_code: int) -> str | None:
        """The most specific of subclass / base class names for a 24-bit class code
        (what `lspci` prints before the [ccss] number)."""
        tables = self._load().classes
        base, sub = class_code >> 16 & 0xFF, class_code >> 8 & 0xFF
        return tables.subclasses.get((base, sub)) or tables.classes.get(base)

    def prog_if_name(self, class_code: int) -> str | None:
        base, sub, prog_if = class_code >> 16 & 0xFF, class_code >> 8 & 0xFF, class_code & 0xFF
        return self._load().classes.prog_ifs.get((base, sub, prog_if))
