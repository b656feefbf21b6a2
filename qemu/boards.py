"""Board profiles: which QEMU machine a MetaOS guest runs on, and how it is launched.

A board says which machine, CPU, memory and accelerator to use, how the guest
is handed to QEMU (a disk image on x86-64, an ELF kernel on RISC-V) and how the
guest leaves QEMU (isa-debug-exit on x86-64, the sifive_test device built into
RISC-V `virt`).  `Board.command_line` turns that into QEMU's argv.
"""

from __future__ import annotations

import dataclasses
import errno
import functools
import os
import platform
import shlex
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from arch import RISCV64, X86_64, Arch
from contract.boot_switches import PRIVILEGED, STAY
from contract.x86_64.exits import DEBUG_EXIT_PORT
from qemu.errors import BoardError, KvmUnavailableError

ACCELS = ("auto", "kvm", "tcg")
KVM_DEVICE = "/dev/kvm"
CPUINFO = "/proc/cpuinfo"
SYS_MODULES = "/sys/module"
# The CPU flags by which Linux shows, per host architecture, that guests can run
# in hardware (VMX, SVM).  A KVM without them is a software one, such as kvm_pvm
# (pagetable-based): it runs 64-bit code natively but emulates every 16/32-bit
# instruction, the BIOS's included.  Measured here: SeaBIOS alone ~3 s under it
# (5.9 million instructions emulated), a whole TCG boot 0.1 s.
HARDWARE_VIRTUALIZATION_FLAGS: dict[Arch, tuple[str, ...]] = {X86_64: ("vmx", "svm")}
SOFTWARE_KVM_MODULES = ("kvm_pvm",)
# Linux lists this flag when the CPU says it runs under a hypervisor (CPUID 1 ECX[31]): a
# KVM there is nested.  Measured on such a host: a boot ~5 s under KVM against ~0.14 s
# under TCG, 1 MiB over COM1 13.9 s against 0.7 s.
NESTED_FLAG = "hypervisor"
# `-cpu host` under KVM, per architecture: what QEMU says when this host's KVM refuses a
# register QEMU sets for the host's CPU, and the model that leaves that register out.
# QEMU 7.2 copies the host's IA32_ARCH_CAPABILITIES (MSR 0x10a) into `-cpu host`; a
# nested KVM-PVM here lists the MSR yet refuses the value, and QEMU aborts at the first
# vCPU reset ("failed to set MSR 0x10a to 0x69").  Without it the guest sees no
# arch_capabilities bit (CPUID 7 EDX[29]) and nothing else changes.
KVM_HOST_CPU_FALLBACK: dict[Arch, tuple[str, str]] = {
    X86_64: ("failed to set MSR 0x10a", "host,-arch-capabilities")}


@dataclass(frozen=True)
class AccelChoice:
    """The accelerator a board runs under and why (the report prints both)."""

    name: str  # "kvm" | "tcg"
    reason: str  # e.g. "auto: /dev/kvm cannot be opened read-write: ..."


@dataclass(frozen=True)
class Board:
    name: str
    arch: Arch
    machine: str  # QEMU -machine type
    cpu: str  # QEMU -cpu model
    smp: int = 1
    memory: int = 128  # MiB
    accel: str = "auto"  # "auto" -> kvm when usable for this arch and in hardware, else tcg
    qemu_args: tuple[str, ...] = ()  # appended verbatim, last
    binary: str = ""  # QEMU executable; "" means qemu-system-<arch>
    stay: bool = False  # ask the guest to stay after FINAL (so QMP can still query QEMU)
    privileged: bool = False  # let a staying guest accept privileged probes
    # A virtio console for probe traffic (contract/virtio.py), beside the serial port
    # discovery streams on: a staying guest serves probes on it (FINAL.probe_line).
    probe_console: bool = False

    @property
    def qemu_binary(self) -> str:
        return self.binary or self.arch.qemu_binary

    @property
    def debian_package(self) -> str:
        return self.arch.debian_package

    @property
    def boots_from_disk(self) -> bool:
        """x86-64 guests are a disk image the firmware boots; RISC-V guests an ELF kernel."""
        return self.arch.boots_from_disk

    def accel_choice(self) -> AccelChoice:
        """The accelerator QEMU runs under, and why.  Raises KvmUnavailableError when
        kvm was asked for and cannot work."""
        if self.accel == "tcg":
            return AccelChoice("tcg", "asked for")
        problem = kvm_problem(self.arch)
        if self.accel == "kvm":
            if problem:
                raise KvmUnavailableError(
                    f"board {self.name!r} asks for accel='kvm' but {problem}; "
                    "use accel='tcg' (or 'auto', which falls back to TCG)"
                )
            slow = kvm_slower_than_tcg(self.arch)
            return AccelChoice("kvm", f"asked for, although {slow}" if slow else "asked for")
        if problem:
            return AccelChoice("tcg", f"auto: {problem}")
        slow = kvm_slower_than_tcg(self.arch)
        if slow:
            return AccelChoice("tcg", f"auto: {slow}; TCG boots faster")
        return AccelChoice("kvm",
                           f"auto: {KVM_DEVICE} is usable and the CPU virtualizes in hardware")

    def resolved_accel(self) -> str:
        """"kvm" or "tcg" (accel_choice's name)."""
        return self.accel_choice().name

    def to_json(self) -> dict[str, object]:
        choice = self.accel_choice()
        return {
            "machine": self.machine,
            "cpu": self.cpu,
            "smp": self.smp,
            "accel": choice.name,
            "accel_reason": choice.reason,
            "qemu_args": list(self.qemu_args),
        }

    def command_line(
        self,
        *,
        serial_socket: str,
        console_socket: str | None = None,
        image: str | os.PathLike[str] | None = None,
        kernel: str | os.PathLike[str] | None = None,
        qmp_socket: str | None = None,
        paused: bool = False,
    ) -> list[str]:
        """QEMU's argv.  QEMU connects as a client to the UNIX sockets the host listens on:
        `serial_socket` carries the guest's first serial port, `console_socket` its probe
        console (required with `probe_console`), `qmp_socket` (optional) QMP.
        `paused` adds -S: the guest waits for QMP `cont`."""
        argv = [
            self.qemu_binary,
            "-machine", self.machine,
            "-cpu", self.cpu,
            "-smp", str(self.smp),
            "-m", str(self.memory),
            "-accel", self.resolved_accel(),
            "-no-user-config",  # host-wide QEMU config files must not change the machine
            "-display", "none",
            "-monitor", "none",
            "-nic", "none",  # no NIC: firmware would try network boot, and it is not ours
            "-no-reboot",  # a guest reset (triple fault) stops QEMU instead of looping
            "-chardev", f"socket,id=serial0,path={_option_value(serial_socket)}",
            "-serial", "chardev:serial0",
        ]
        if self.probe_console:
            argv += self._console_args(console_socket)
        if qmp_socket is not None:
            argv += ["-chardev", f"socket,id=qmp,path={_option_value(qmp_socket)}",
                     "-mon", "chardev=qmp,mode=control"]
        if paused:
            argv.append("-S")
        argv += self._guest_args(image, kernel)
        argv += self._switch_args()
        return argv + list(self.qemu_args)

    def _console_args(self, console_socket: str | None) -> list[str]:
        """A virtio-serial device whose port 0 is a console on `console_socket`: on PCI
        for x86-64 (the root bus, so its legacy I/O registers stay on), on a virtio-mmio
        slot of `virt` for RISC-V (legacy by default in QEMU 7.2)."""
        if console_socket is None:
            raise BoardError(f"board {self.name!r} has a probe console: give console_socket=")
        # ioeventfd=off: a queue notify is served in the vCPU thread at once, not
        # handed to QEMU's main loop through an eventfd; under TCG that handoff
        # more than doubled QEMU's time per probe (measured, x86-64).
        if self.boots_from_disk:
            device = ["-device", "virtio-serial-pci,id=probeline,ioeventfd=off"]
        else:
            device = ["-global", "virtio-mmio.ioeventfd=off",
                      "-device", "virtio-serial-device,id=probeline"]
        return device + ["-chardev", f"socket,id=probeconsole,path={_option_value(console_socket)}",
                         "-device", "virtconsole,chardev=probeconsole,bus=probeline.0,nr=0"]

    def _switch_args(self) -> list[str]:
        """The boot switches (contract/boot_switches.py): fw_cfg files on x86-64, words of
        the kernel command line (/chosen/bootargs) on RISC-V."""
        switches = [(self.stay, STAY), (self.privileged, PRIVILEGED)]
        on = [(switch.fw_cfg_file, switch.bootarg) for wanted, switch in switches if wanted]
        if not on:
            return []
        if self.boots_from_disk:
            return [arg for fw_cfg, _ in on for arg in ("-fw_cfg", f"name={fw_cfg},string=1")]
        return ["-append", " ".join(word for _, word in on)]

    def _guest_args(
        self, image: str | os.PathLike[str] | None, kernel: str | os.PathLike[str] | None
    ) -> list[str]:
        if self.boots_from_disk:
            if image is None or kernel is not None:
                raise BoardError(
                    f"board {self.name!r} ({self.arch}) boots a disk image: give image="
                )
            # file.locking=off: parallel runs (tests, benchmarks) boot the same build
            # artifact, and QEMU's write lock would refuse all but the first.  Our guests
            # never write their disk (IDE cannot take a read-only drive; snapshot=on
            # would cost ~6 ms per boot for a temporary overlay).
            drive = f"file={_option_value(os.fspath(image))},format=raw,if=ide,file.locking=off"
            return [
                "-device", f"isa-debug-exit,iobase={DEBUG_EXIT_PORT:#x},iosize=0x04",
                "-drive", drive,
            ]
        if kernel is None or image is not None:
            raise BoardError(f"board {self.name!r} ({self.arch}) boots an ELF kernel: give kernel=")
        # No firmware: the kernel runs first, in M-mode; sifive_test is part of `virt`.
        return ["-bios", "none", "-kernel", os.fspath(kernel)]


def _option_value(text: str) -> str:
    """QEMU option values escape a comma by doubling it."""
    return text.replace(",", ",,")


def kvm_problem(arch: Arch) -> str:
    """Why KVM cannot run an `arch` guest here, or "" when it can."""
    host = platform.machine()
    if host != arch.name:
        return f"KVM cannot run a {arch} guest on this {host} host"
    try:
        fd = os.open(KVM_DEVICE, os.O_RDWR | os.O_CLOEXEC)
    except OSError as error:
        hint = " (add your user to the 'kvm' group)" if error.errno == errno.EACCES else ""
        return f"{KVM_DEVICE} cannot be opened read-write: {error.strerror}{hint}"
    os.close(fd)
    return ""


@functools.cache
def kvm_host_cpu(arch: Arch, machine: str) -> str:
    """The `-cpu` that gives a KVM guest of `machine` this host's own CPU: "host", or the
    fallback model where this KVM refuses what QEMU sets for it (KVM_HOST_CPU_FALLBACK).
    Told by starting QEMU paused and quitting it over QMP (about 50 ms), once a process."""
    refusal, fallback = KVM_HOST_CPU_FALLBACK.get(arch, ("", "host"))
    if not refusal or kvm_problem(arch):
        return "host"
    try:
        tried = subprocess.run(
            [arch.qemu_binary, "-machine", machine, "-cpu", "host", "-accel", "kvm",
             "-no-user-config", "-nodefaults", "-display", "none", "-S", "-qmp", "stdio"],
            input='{"execute": "qmp_capabilities"} {"execute": "quit"}', text=True,
            capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "host"  # the boot will say what is wrong
    return fallback if refusal in tried.stderr else "host"


def kvm_slower_than_tcg(arch: Arch) -> str:
    """Why KVM on this host (which runs `arch`) would boot our guests slower than TCG, or
    "" when it would not or that cannot be told.  Two such KVMs: one without hardware
    virtualization (it emulates the firmware's 16/32-bit code instruction by instruction,
    and our kernel's ring-0 code too: under kvm_pvm here a privileged probe's 4,096 byte
    stores took 31 million TSC ticks, 7,600 a store, where a ring-3 store took 0.35), and
    a nested one (the host is itself a virtual machine: every port I/O, and the guest
    streams its discovery through port I/O, exits through two hypervisors)."""
    wanted = HARDWARE_VIRTUALIZATION_FLAGS.get(arch)
    flags = _cpu_flags()
    if not wanted or flags is None:
        return ""
    if not flags & set(wanted):
        module = next((m for m in SOFTWARE_KVM_MODULES if os.path.isdir(f"{SYS_MODULES}/{m}")),
                      None)
        which = f"{module}, a KVM" if module else "a KVM"
        return (f"{KVM_DEVICE} is {which} without hardware virtualization (no "
                f"{'/'.join(wanted)} CPU flag), which emulates the BIOS's 16/32-bit code "
                "and the guest kernel's own instruction by instruction")
    if NESTED_FLAG in flags:
        return (f"this host is itself a virtual machine (CPU flag {NESTED_FLAG}), so its KVM is "
                "nested and every port I/O exits through two hypervisors")
    return ""


def _cpu_flags() -> set[str] | None:
    """The first CPU's flags as Linux lists them, or None without a readable list."""
    try:
        with open(CPUINFO) as cpuinfo:
            for line in cpuinfo:
                name, _, value = line.partition(":")
                if name.strip() == "flags":
                    return set(value.split())
    except OSError:
        return None
    return None


# qemu64 is the x86 default because it is the one model that behaves the same
# under TCG and KVM on any x86-64 host: TCG implements every feature it lists
# (Haswell/EPYC make TCG warn and silently drop features, so the guest would not
# see the model QEMU documents), and unlike `max`/`host` it does not depend on
# the host CPU, so discoveries are reproducible.
PROFILES: dict[str, Board] = {
    "q35": Board(name="q35", arch=X86_64, machine="q35", cpu="qemu64"),
    "pc": Board(name="pc", arch=X86_64, machine="pc", cpu="qemu64"),
    "virt": Board(name="virt", arch=RISCV64, machine="virt", cpu="rv64"),
}
DEFAULT_BOARD = "q35"


def board(
    name: str = DEFAULT_BOARD,
    cpu: str | None = None,
    smp: int | None = None,
    memory: int | None = None,
    accel: str | None = None,
    qemu_args: Sequence[str] | str | None = None,
) -> Board:
    """The named profile with the given overrides.  `qemu_args` as a string is shell-split."""
    if name not in PROFILES:
        raise BoardError(f"unknown board {name!r}: choose one of {', '.join(sorted(PROFILES))}")
    changes: dict[str, object] = {}
    if cpu is not None:
        if not cpu.strip():
            raise BoardError("cpu must name a QEMU CPU model (see qemu-system-<arch> -cpu help)")
        changes["cpu"] = cpu
        if cpu == "host" and accel == "kvm":
            changes["cpu"] = kvm_host_cpu(PROFILES[name].arch, PROFILES[name].machine)
    if smp is not None:
        if smp < 1:
            raise BoardError(f"smp must be at least 1, not {smp}")
        changes["smp"] = smp
    if memory is not None:
        if memory < 16:
            raise BoardError(f"memory is in MiB and must be at least 16, not {memory}")
        changes["memory"] = memory
    if accel is not None:
        if accel not in ACCELS:
            raise BoardError(f"unknown accel {accel!r}: choose one of {', '.join(ACCELS)}")
        changes["accel"] = accel
    if qemu_args is not None:
        changes["qemu_args"] = tuple(
            shlex.split(qemu_args) if isinstance(qemu_args, str) else qemu_args
        )
    return dataclasses.replace(PROFILES[name], **changes)


@functools.cache
def cpu_models(binary: str) -> frozenset[str]:
    """The words of the CPU model list `BINARY -cpu help` prints (up to its first blank
    line): every model name is one of them (x86 prints "x86 NAME description", riscv
    the bare names).  For refusing a mistyped model before a board boots; QEMU itself
    remains the judge of the rest."""
    listing = subprocess.run([binary, "-cpu", "help"], capture_output=True, text=True,
                             timeout=30).stdout
    words: set[str] = set()
    for line in listing.splitlines()[1:]:  # under "Available CPUs:"
        if not line.strip():
            break
        words.update(line.split())
    return frozenset(words)


def unknown_cpu_model(chosen: Board) -> str:
    """Why QEMU would refuse the board's CPU model, or "" (its properties after the
    first comma are QEMU's to check)."""
    model = chosen.cpu.split(",")[0]
    if model in cpu_models(chosen.qemu_binary):
        return ""
    return (f"{chosen.qemu_binary} has no CPU model {model!r}; `{chosen.qemu_binary} -cpu help`"
            " lists them")
