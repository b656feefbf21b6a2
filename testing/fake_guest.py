"""An in-process stand-in for the guest's probe command loop, on Unicorn.

It speaks the probe messages of contract/protocol.py over real frames
(contract/frames.py), keeps slots and a result cache exactly as the proposal says,
and runs probes with ring-3 / U-mode semantics: an instruction a user probe may
not execute faults (#GP / illegal instruction) instead of running, a memory
access outside the probe areas faults (#PF / access fault).  The kernel area is
mapped *writable* and filled with a canary, so a probe that escaped containment
would show up in `kernel_area_intact()`.

Test hooks: `killers` (content hashes that make the board die: it goes silent
until `restart()`), `perturb` (rewrites an observation, to model hardware that
disagrees with the emulator).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace

from arch import Arch
from contract.frames import FrameDecoder, encode_frame
from contract.probe_abi import AREA, Outcome, Privilege
from contract.protocol import (
    LAYOUTS,
    PROBE_RESULT_CACHE,
    PROBE_RUN_FLAG_MEASURE_LENGTH,
    PROBE_SLOTS,
    PROTOCOL_VERSION,
    Msg,
    ProbeRefusal,
)
from probes.classify import ALLOWED, InsnClass, classify
from probes.emulator import ProbeEmulator
from probes.probe import Fault, Observation, Probe

KERNEL_CANARY = b"MetaOS-kernel-canary"


class FakeGuest:
    def __init__(self, arch: Arch, *, killers: frozenset[bytes] = frozenset(),
                 perturb: Callable[[Probe, Observation], Observation] | None = None,
                 allow_privileged: bool = True) -> None:
        self.arch, self.killers, self.perturb = arch, killers, perturb
        self.allow_privileged = allow_privileged
        self.emulator = ProbeEmulator(arch, kernel_canary=KERNEL_CANARY)
        self.boots = 0
        self.runs = 0
        self.restart()

    def restart(self) -> bytes:
        """Power-cycle: slots, cache and sequence numbers are lost.  Returns the boot output."""
        self.boots += 1
        self.alive = True
        self.slots: dict[int, tuple[Probe, int]] = {}  # slot -> the probe loaded, its tag
        self.cache: OrderedDict[int, bytes] = OrderedDict()  # run id -> PROBE_RESULT body
        self.decoder = FrameDecoder()
        self.decoder.feed(b"\0")  # the guest is in sync from its first byte
        self.seq = 0
        hello = LAYOUTS[Msg.HELLO].pack(version=PROTOCOL_VERSION, arch=self.arch.wire)
        return b"\0" + self._frame(Msg.HELLO, hello)

    def receive(self, data: bytes) -> bytes:
        """Bytes from the host in, bytes to the host out."""
        out = bytearray()
        for frame in self.decoder.feed(data):
            if not self.alive:
                break
            out += self._handle(frame.type, frame.body)
        return bytes(out) if self.alive else b""

    # -- commands --------------------------------------------------------------------

    def _handle(self, msg_type: int, body: bytes) -> bytes:
        try:
            kind = Msg(msg_type)
            fields, tail = LAYOUTS[kind].unpack(body)
        except ValueError:
            return b""  # unknown or malformed command: ignored, the host will resend
        if kind == Msg.PROBE_LOAD:
            return self._load(fields, tail)
        if kind == Msg.PROBE_RUN:
            return self._run(fields["run_id"], fields["slot"], fields["tag"], fields["flags"])
        if kind == Msg.PROBE_LOAD_RUN:
            try:
                load, code_and_input = LAYOUTS[Msg.PROBE_LOAD].unpack(tail)
            except ValueError:
                return b""
            status = self._loaded(load, code_and_input)
            if status != ProbeRefusal.OK:
                return self._loaded_frame(load, status)
            return self._run(fields["run_id"], load["slot"], load["tag"], fields["flags"])
        if kind == Msg.PROBE_RUN_BATCH:
            slots = [int.from_bytes(tail[i:i + 2], "little")
                     for i in range(0, 2 * fields["count"], 2)]
            return b"".join(self._run(fields["first_run_id"] + i, s, None, fields["flags"])
                            for i, s in enumerate(slots))
        return self._frame(Msg.PROBE_STATUS, LAYOUTS[Msg.PROBE_STATUS].pack(
            slots=PROBE_SLOTS, loaded=len(self.slots), runs=self.runs))

    def _load(self, f: dict[str, int], tail: bytes) -> bytes:
        return self._loaded_frame(f, self._loaded(f, tail))

    def _loaded_frame(self, f: dict[str, int], status: ProbeRefusal) -> bytes:
        return self._frame(Msg.PROBE_LOADED, LAYOUTS[Msg.PROBE_LOADED].pack(
            slot=f["slot"], status=status, tag=f["tag"]))

    def _loaded(self, f: dict[str, int], tail: bytes) -> ProbeRefusal:
        """Keep the PROBE_LOAD (fields `f`, code and input in `tail`) in its slot."""
        status = ProbeRefusal.OK
        code = tail[: f["code_length"]]
        inp = tail[f["code_length"] : f["code_length"] + f["input_length"]]
        if f["slot"] >= PROBE_SLOTS:
            status = ProbeRefusal.BAD_SLOT
        elif f["privilege"] == Privilege.PRIVILEGED and not self.allow_privileged:
            status = ProbeRefusal.PRIVILEGED_NOT_ALLOWED
        else:
            try:
                probe = Probe(self.arch, code, Privilege(f["privilege"]), inp, budget=f["budget"],
                              output_size=f["output_size"])
                self.slots[f["slot"]] = (probe, f["tag"])
            except ValueError:
                status = ProbeRefusal.TOO_BIG
        return status

    def _run(self, run_id: int, slot: int, tag: int | None, flags: int) -> bytes:
        if run_id in self.cache:  # a retransmitted RUN: same answer, not a rerun (a new frame)
            return self._frame(Msg.PROBE_RESULT, self.cache[run_id])
        loaded, loaded_tag = self.slots.get(slot, (None, None))
        if loaded is None or (tag is not None and loaded_tag != tag):
            return self._result(run_id, slot, tag or 0, Observation(Outcome.REFUSED), cache=False)
        # The run's flags belong to the probe's identity (the host's `killers` and
        # `perturb` see the probe it sent); the tag is the one it was loaded under.
        probe = replace(loaded, measure_length=bool(flags & PROBE_RUN_FLAG_MEASURE_LENGTH))
        if probe.content_hash in self.killers:
            self.alive = False  # the board hangs: nothing more comes out until restart()
            return b""
        run = self.emulator.run(probe, self._ring3(probe))
        obs = self._contained(run)
        if self.perturb is not None:
            obs = self.perturb(probe, obs)
        self.runs += 1
        return self._result(run_id, slot, loaded_tag, obs)

    def _result(self, run_id: int, slot: int, tag: int, obs: Observation,
                cache: bool = True) -> bytes:
        fault = obs.fault or Fault(0, 0, 0)
        body = LAYOUTS[Msg.PROBE_RESULT].pack(
            obs.output, run_id=run_id, slot=slot, outcome=obs.outcome, tag=tag,
            status=obs.status & (2**64 - 1), fault_vector=fault.vector, fault_ip=fault.ip,
            fault_address=fault.address, cycles=obs.cycles or 0, instret=obs.instret or 0)
        if cache:
            self.cache[run_id] = body
            while len(self.cache) > PROBE_RESULT_CACHE:
                self.cache.popitem(last=False)
        return self._frame(Msg.PROBE_RESULT, body)

    def _frame(self, msg_type: int, body: bytes) -> bytes:
        frame = encode_frame(msg_type, self.seq, body)
        self.seq = (self.seq + 1) % (1 << 16)
        return frame

    # -- containment -----------------------------------------------------------------

    def _ring3(self, probe: Probe):
        """What the CPU would do at ring 3 / U-mode: fault on instructions of other classes."""
        allowed, code = ALLOWED[probe.privilege], probe.code
        base = AREA["code"].base(self.arch.probes)

        def inspect(address: int, _size: int) -> Fault | None:
            window = code[address - base : address - base + 15]
            klass = classify(self.arch, window).klass
            if klass in allowed or klass == InsnClass.UNDECODABLE:
                return None  # unknown encodings: the (emulated) CPU decides
            return Fault(self.arch.protection_fault, 0, address)
        return inspect if probe.privilege == Privilege.USER else None

    def _contained(self, run) -> Observation:
        obs = run.observation
        if run.memory_violation is not None:
            mv = run.memory_violation
            vector = self.arch.access_faults.get(mv.access, self.arch.access_faults["read"])
            obs = Observation(Outcome.FAULT, fault=Fault(vector, mv.address, mv.ip))
        elif run.violation is not None:  # e.g. executing outside the code area
            obs = Observation(Outcome.FAULT, fault=Fault(self.arch.protection_fault, 0, 0))
        return Observation(obs.outcome, obs.status, obs.fault, obs.output,
                           cycles=run.instructions, instret=run.instructions)

