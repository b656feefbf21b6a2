"""Names for PCI numbers from the pci.ids database (the file lspci uses).

Numbers are the identity of a device; names are looked up at render time only.
On first use the file is read and its class section parsed; a vendor, device or
subsystem line is found by searching the text for it (IDs are lowercase hex in
pci.ids, vendors in blocks, a device's subsystems under it), so a report naming
ten devices reads a few lines, not all 37,000.  When the file is missing every
name is None.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_PATHS = (Path("/usr/share/misc/pci.ids"), Path("/usr/share/hwdata/pci.ids"))
VENDOR_LINE = re.compile(r"^([0-9a-fA-F]{4})  (.*)$", re.MULTILINE)
CLASS_SECTION = "\nC "  # the device classes follow the vendors


@dataclass
class _Classes:
    classes: dict[int, str] = field(default_factory=dict)  # base class
    subclasses: dict[tuple[int, int], str] = field(default_factory=dict)
    prog_ifs: dict[tuple[int, int, int], str] = field(default_factory=dict)


def _parse_classes(lines) -> _Classes:
    """pci.ids class grammar: 'C cc' class / TAB subclass / TAB TAB prog-if; '#' starts a
    comment."""
    tables = _Classes()
    base_class = subclass = None
    for line in lines:
        if not line.strip() or line.startswith("#"):
            continue
        depth = len(line) - len(line.lstrip("\t"))
        text = line.strip()
        try:
            if depth == 0:
                base_class = None
                if text.startswith("C "):
                    code, name = text[2:].split(None, 1)
                    base_class = int(code, 16)
                    tables.classes[base_class] = name
            elif depth == 1 and base_class is not None:
                code, name = text.split(None, 1)
                subclass = int(code, 16)
                tables.subclasses[(base_class, subclass)] = name
            elif depth == 2 and base_class is not None and subclass is not None:
                code, name = text.split(None, 1)
                tables.prog_ifs[(base_class, subclass, int(code, 16))] = name
        except ValueError:
            continue  # a malformed line costs one name, never the whole database
    return tables


@dataclass
class _Text:
    """The file's text, where its vendor blocks end, and its parsed class section."""

    text: str = ""
    vendors_end: int = 0
    classes: _Classes = field(default_factory=_Classes)
    # vendor -> its name and the span of its devices' lines (None: not in the file)
    spans: dict[int, tuple[str, int, int] | None] = field(default_factory=dict)


def _read(text: str) -> _Text:
    class_start = text.find(CLASS_SECTION)
    vendors_end = class_start if class_start >= 0 else len(text)
    classes = (_parse_classes(text[class_start + 1:].splitlines()) if class_start >= 0
               else _Classes())
    return _Text(text, vendors_end, classes)


def _line(text: str, prefix: str, start: int, end: int) -> tuple[str, int] | None:
    """The rest of the first line in text[start:end] that begins with `prefix` (`start`
    is where a line begins), and where that line ends."""
    if text.startswith(prefix, start, end):
        at = start
    else:
        at = text.find("\n" + prefix, start, end)
        if at < 0:
            return None
        at += 1
    line_end = text.find("\n", at, end)
    line_end = end if line_end < 0 else line_end
    return text[at + len(prefix):line_end].strip(), line_end


TOP_LEVEL_LINE = re.compile(r"\n(?=[^\t#\n])")  # a line neither indented nor a comment
DEVICE_LINE = re.compile(r"\n\t(?!\t)")  # a line indented once


class PciIds:
    """Lazy pci.ids lookups.  `path=None` uses $PCI_IDS or the Debian locations."""

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self._path = path
        self._text: _Text | None = None

    @property
    def path(self) -> Path | None:
        if self._path is not None:
            return Path(self._path)
        if os.environ.get("PCI_IDS"):
            return Path(os.environ["PCI_IDS"])
        return next((p for p in DEFAULT_PATHS if p.exists()), None)

    @property
    def available(self) -> bool:
        ids = self._load()
        return VENDOR_LINE.search(ids.text, 0, ids.vendors_end) is not None

    def _load(self) -> _Text:
        if self._text is None:
            path = self.path
            try:
                with open(path, encoding="utf-8", errors="replace") as handle:  # type: ignore[arg-type]
                    self._text = _read(handle.read())
            except (OSError, TypeError):
                self._text = _Text()
        return self._text

    def _vendor(self, vendor: int) -> tuple[str, int, int] | None:
        """The vendor's name, and the span of its devices' lines."""
        ids = self._load()
        if vendor not in ids.spans:
            found = _line(ids.text, f"{vendor:04x}  ", 0, ids.vendors_end)
            if found is None:
                ids.spans[vendor] = None
            else:
                name, line_end = found
                following = TOP_LEVEL_LINE.search(ids.text, line_end, ids.vendors_end)
                ids.spans[vendor] = (name, line_end, following.start() if following
                                     else ids.vendors_end)
        return ids.spans[vendor]

    def _device(self, vendor: int, device: int) -> tuple[str, int, int] | None:
        """The device's name, and the span of its subsystems' lines."""
        span = self._vendor(vendor)
        if span is None:
            return None
        text = self._load().text
        found = _line(text, f"\t{device:04x}  ", span[1] + 1, span[2])
        if found is None:
            return None
        name, line_end = found
        following = DEVICE_LINE.search(text, line_end, span[2])
        return name, line_end, following.start() if following else span[2]

    def vendor_name(self, vendor: int) -> str | None:
        span = self._vendor(vendor)
        return span[0] if span else None

    def device_name(self, vendor: int, device: int) -> str | None:
        span = self._device(vendor, device)
        return span[0] if span else None

    def subsystem_name(self, vendor: int, device: int, sub_vendor: int,
                       sub_device: int) -> str | None:
        span = self._device(vendor, device)
        if span is None:
            return None
        found = _line(self._load().text, f"\t\t{sub_vendor:04x} {sub_device:04x}  ",
                      span[1] + 1, span[2])
        return found[0] if found else None

    def class_name(self, class_code: int) -> str | None:
        """The most specific of subclass / base class names for a 24-bit class code
        (what `lspci` prints before the [ccss] number)."""
        tables = self._load().classes
        base, sub = class_code >> 16 & 0xFF, class_code >> 8 & 0xFF
        return tables.subclasses.get((base, sub)) or tables.classes.get(base)

    def prog_if_name(self, class_code: int) -> str | None:
        base, sub, prog_if = class_code >> 16 & 0xFF, class_code >> 8 & 0xFF, class_code & 0xFF
        return self._load().classes.prog_ifs.get((base, sub, prog_if))
