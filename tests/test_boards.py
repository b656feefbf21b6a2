"""Board profiles and the QEMU command lines they produce (no QEMU started here)."""

from __future__ import annotations

import dataclasses
import os
import platform
import subprocess

import pytest

from arch import X86_64
from contract.boot_switches import STAY
from contract.x86_64.exits import DEBUG_EXIT_PORT
from qemu import boards
from qemu.boards import board
from qemu.errors import BoardError, KvmUnavailableError


def kvm_opens_read_write() -> bool:
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR))
    except OSError:
        return False
    return True


def option_after(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == flag]


def test_unknown_board_names_the_known_ones():
    with pytest.raises(BoardError) as error:
        board("vexpress")
    for known in ("q35", "pc", "virt"):
        assert known in str(error.value)


def test_default_board_is_q35_on_x86_64():
    default = board()
    assert (default.name, default.arch, default.machine) == ("q35", X86_64, "q35")
    assert default.qemu_binary == "qemu-system-x86_64"


def test_virt_is_riscv64_and_boots_an_elf_without_firmware():
    virt = board("virt", accel="tcg")
    argv = virt.command_line(serial_socket="/s", kernel="/k.elf")
    assert argv[0] == "qemu-system-riscv64"
    assert option_after(argv, "-bios") == ["none"]
    assert option_after(argv, "-kernel") == ["/k.elf"]
    assert option_after(argv, "-cpu") == ["rv64"]
    assert "isa-debug-exit" not in " ".join(argv)


def test_x86_command_line_has_exit_device_at_protocol_port_and_no_reboot():
    argv = board("pc", accel="tcg").command_line(serial_socket="/s", image="/d.img")
    devices = option_after(argv, "-device")
    assert f"isa-debug-exit,iobase={DEBUG_EXIT_PORT:#x},iosize=0x04" in devices
    assert "-no-reboot" in argv
    assert option_after(argv, "-nic") == ["none"]
    assert option_after(argv, "-drive") == ["file=/d.img,format=raw,if=ide,file.locking=off"]
    assert option_after(argv, "-machine") == ["pc"]


def test_overrides_reach_the_command_line():
    custom = board("q35", cpu="Haswell", smp=4, memory=512, accel="tcg")
    argv = custom.command_line(serial_socket="/s", image="/d.img")
    assert option_after(argv, "-cpu") == ["Haswell"]
    assert option_after(argv, "-smp") == ["4"]
    assert option_after(argv, "-m") == ["512"]
    assert option_after(argv, "-accel") == ["tcg"]


def test_qemu_args_string_is_shell_split_and_appended_last():
    argv = board("q35", accel="tcg", qemu_args="-d 'int,cpu_reset' -D /tmp/q.log").command_line(
        serial_socket="/s", image="/d.img"
    )
    assert argv[-4:] == ["-d", "int,cpu_reset", "-D", "/tmp/q.log"]


def test_qemu_args_list_is_kept_verbatim():
    extra = ["-device", "nvme,serial=a b"]
    assert board("q35", qemu_args=extra).qemu_args == tuple(extra)


def test_sockets_and_paths_with_commas_are_escaped_for_qemu():
    argv = board("q35", accel="tcg").command_line(
        serial_socket="/t/a,b.sock", qmp_socket="/t/q,1", image="/i,1.img", paused=True
    )
    chardevs = option_after(argv, "-chardev")
    assert "socket,id=serial0,path=/t/a,,b.sock" in chardevs
    assert "socket,id=qmp,path=/t/q,,1" in chardevs
    assert option_after(argv, "-mon") == ["chardev=qmp,mode=control"]
    assert "-S" in argv
    assert option_after(argv, "-drive") == ["file=/i,,1.img,format=raw,if=ide,file.locking=off"]


def test_guest_kind_must_match_the_architecture():
    with pytest.raises(BoardError, match="image="):
        board("q35").command_line(serial_socket="/s", kernel="/k.elf")
    with pytest.raises(BoardError, match="kernel="):
        board("virt", accel="tcg").command_line(serial_socket="/s", image="/d.img")


@pytest.mark.parametrize(
    "options", [{"smp": 0}, {"memory": 1}, {"accel": "xen"}, {"cpu": " "}]
)
def test_bad_options_are_refused(options):
    with pytest.raises(BoardError):
        board("q35", **options)


def cpu_flags() -> set[str]:
    """This host's CPU flags as Linux lists them."""
    with open("/proc/cpuinfo") as cpuinfo:
        return set(next((line.split(":", 1)[1].split() for line in cpuinfo
                         if line.startswith("flags")), []))


def test_auto_accel_uses_kvm_exactly_when_dev_kvm_opens_the_cpu_virtualizes_and_is_not_nested():
    flags = cpu_flags()
    expected = "kvm" if (platform.machine() == "x86_64" and kvm_opens_read_write()
                         and {"vmx", "svm"} & flags and "hypervisor" not in flags) else "tcg"
    assert board("q35").resolved_accel() == expected


def fake_x86_host(monkeypatch, tmp_path, flags: str, modules: tuple[str, ...] = ()) -> None:
    """An x86-64 host whose /dev/kvm opens, whose CPU lists `flags`, with `modules` loaded."""
    device, cpuinfo, sys_modules = tmp_path / "kvm", tmp_path / "cpuinfo", tmp_path / "module"
    device.write_bytes(b"")
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: fpu {flags} sse2\n\nprocessor\t: 1\n")
    for module in modules:
        (sys_modules / module).mkdir(parents=True)
    monkeypatch.setattr(boards, "KVM_DEVICE", str(device))
    monkeypatch.setattr(boards, "CPUINFO", str(cpuinfo))
    monkeypatch.setattr(boards, "SYS_MODULES", str(sys_modules))
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")


@pytest.mark.parametrize("flag", ["vmx", "svm"])
def test_auto_accel_picks_kvm_that_virtualizes_in_hardware(monkeypatch, tmp_path, flag):
    fake_x86_host(monkeypatch, tmp_path, flag)
    choice = board("q35").accel_choice()
    assert choice.name == "kvm" and choice.reason.startswith("auto: ")
    assert board("q35", accel="kvm").accel_choice().reason == "asked for"


def test_auto_accel_turns_down_a_kvm_without_hardware_virtualization(monkeypatch, tmp_path):
    fake_x86_host(monkeypatch, tmp_path, "hypervisor", modules=("kvm", "kvm_pvm"))
    choice = board("q35").accel_choice()
    assert choice.name == "tcg"
    assert "kvm_pvm" in choice.reason and "vmx/svm" in choice.reason
    asked = board("q35", accel="kvm").accel_choice()  # still runs, with the warning kept
    assert asked.name == "kvm" and asked.reason.startswith("asked for, although ")
    assert "-accel" in (argv := board("q35", accel="kvm").command_line(
        serial_socket="/s", image="/d.img")) and option_after(argv, "-accel") == ["kvm"]


@pytest.mark.parametrize("flag", ["vmx", "svm"])
def test_auto_accel_turns_down_a_nested_kvm(monkeypatch, tmp_path, flag):
    fake_x86_host(monkeypatch, tmp_path, f"{flag} hypervisor", modules=("kvm",))
    choice = board("q35").accel_choice()
    assert choice.name == "tcg" and "nested" in choice.reason and "hypervisor" in choice.reason
    asked = board("q35", accel="kvm").accel_choice()
    assert asked.name == "kvm" and asked.reason.startswith("asked for, although ")


def test_auto_accel_never_picks_kvm_for_a_foreign_architecture():
    if platform.machine() == "riscv64":
        pytest.skip("the host is riscv64")
    assert board("virt").resolved_accel() == "tcg"
    with pytest.raises(KvmUnavailableError, match="accel='tcg'"):
        board("virt", accel="kvm").resolved_accel()


def test_kvm_requested_without_a_usable_device_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setattr(boards, "KVM_DEVICE", str(tmp_path / "no-kvm"))
    assert board("q35").resolved_accel() == "tcg"
    with pytest.raises(KvmUnavailableError) as error:
        board("q35", accel="kvm").command_line(serial_socket="/s", image="/d.img")
    assert "no-kvm" in str(error.value) and "accel='tcg'" in str(error.value)


def test_to_json_reports_the_resolved_accelerator_and_why():
    assert board("pc", accel="tcg", qemu_args="-d int").to_json() == {
        "machine": "pc",
        "cpu": "qemu64",
        "smp": 1,
        "accel": "tcg",
        "accel_reason": "asked for",
        "qemu_args": ["-d", "int"],
    }


def test_stay_asks_each_architecture_its_own_way():
    x86 = dataclasses.replace(board("q35", accel="tcg"), stay=True)
    argv = x86.command_line(serial_socket="/s", image="/d.img")
    assert option_after(argv, "-fw_cfg") == [f"name={STAY.fw_cfg_file},string=1"]
    riscv = dataclasses.replace(board("virt", accel="tcg"), stay=True)
    assert option_after(riscv.command_line(serial_socket="/s", kernel="/k.elf"), "-append") == [
        STAY.bootarg
    ]
    assert "-fw_cfg" not in board("q35", accel="tcg").command_line(serial_socket="/s", image="/d")


def test_boot_switches_reach_each_guest_its_own_way():
    import dataclasses

    x86 = dataclasses.replace(board("q35"), stay=True, privileged=True)
    argv = x86.command_line(serial_socket="s", image="i")
    assert argv.count("-fw_cfg") == 2 and "name=opt/metaos/privileged,string=1" in argv
    riscv = dataclasses.replace(board("virt"), stay=True, privileged=True)
    argv = riscv.command_line(serial_socket="s", kernel="k")
    assert argv[argv.index("-append") + 1] == "metaos.park metaos.privileged"
    assert "-append" not in board("virt").command_line(serial_socket="s", kernel="k")


def test_cpu_host_under_kvm_leaves_out_what_this_kvm_refuses(monkeypatch, tmp_path):
    """Where QEMU's paused start says KVM refused MSR 0x10a, `-cpu host` becomes the
    fallback model; where it starts, `host` stays; never for TCG or another model."""
    fake_x86_host(monkeypatch, tmp_path, "svm")
    said = {"stderr": ""}

    def start(argv, **_kwargs):
        assert argv[argv.index("-cpu") + 1] == "host" and "-S" in argv
        return subprocess.CompletedProcess(argv, -6, "", said["stderr"])

    monkeypatch.setattr(boards.subprocess, "run", start)
    boards.kvm_host_cpu.cache_clear()
    try:
        assert board("q35", cpu="host", accel="kvm").cpu == "host"
        boards.kvm_host_cpu.cache_clear()
        said["stderr"] = "qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69\n"
        assert board("q35", cpu="host", accel="kvm").cpu == "host,-arch-capabilities"
        assert board("q35", cpu="host", accel="tcg").cpu == "host"
        assert board("q35", cpu="Haswell", accel="kvm").cpu == "Haswell"
    finally:
        boards.kvm_host_cpu.cache_clear()


@pytest.mark.qemu
@pytest.mark.skipif(bool(boards.kvm_problem(X86_64)), reason=boards.kvm_problem(X86_64) or "kvm")
def test_the_host_cpu_model_chosen_for_kvm_starts_here():
    """QEMU itself is the judge: paused under KVM with the model chosen, it answers QMP
    and quits; where a fallback was chosen, plain `host` is what QEMU refused."""
    def start(cpu: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [X86_64.qemu_binary, "-machine", "q35", "-cpu", cpu, "-accel", "kvm",
             "-no-user-config", "-nodefaults", "-display", "none", "-S", "-qmp", "stdio"],
            input='{"execute": "qmp_capabilities"} {"execute": "quit"}', text=True,
            capture_output=True, timeout=60)

    chosen = board("q35", cpu="host", accel="kvm").cpu
    started = start(chosen)
    if chosen == "host" and started.returncode != 0:  # a refusal we have no fallback for
        pytest.skip("QEMU cannot start -cpu host on this KVM: "
                    + (started.stderr.strip().splitlines() or ["(nothing said)"])[0])
    assert started.returncode == 0, started.stderr
    if chosen != "host":
        assert "failed to set MSR 0x10a" in start("host").stderr
