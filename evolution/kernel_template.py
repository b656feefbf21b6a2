# ruff: noqa: F821
"""Kernels every ISA's evaluator module shares: bit helpers, memory access, the
cost of a candidate over the test vectors, and the Metropolis-Hastings search.

Not imported on its own: codegen.py writes this text at the top of each ISA's
generated module, whose generated part defines `execute` (one program over a
chunk of vectors), NREG, NFLAG, ZERO_REGISTER, SIZE (instructions per form) and the
constants K*.

Test vectors come in chunks of CHUNK so that a candidate whose cost already
exceeds what the Metropolis test would accept stops early (STOKE's trick):
R0[chunk, register, lane], F0[chunk, flag, lane], M0[chunk, lane, byte],
U[chunk, lane], EXP[chunk, lane], EXPM[chunk, lane, byte].
"""

import numpy as np
from numba import njit

ZERO = np.uint64(0)
ONE = np.uint64(1)
MISPLACED = 1.0  # STOKE's penalty for the right value in the wrong place
FAULT_COST = 64.0  # a vector whose run touched memory outside its window
INF = 1e300


@njit(cache=True)
def popcount64(x):
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return (x * np.uint64(0x0101010101010101)) >> np.uint64(56)


@njit(cache=True)
def clz64(x):
    if x == ZERO:
        return np.uint64(64)
    n = np.uint64(0)
    while (x & np.uint64(0x8000000000000000)) == ZERO:
        x = x << ONE
        n += ONE
    return n


@njit(cache=True)
def ctz64(x, w):
    if x == ZERO:
        return w
    n = np.uint64(0)
    while (x & ONE) == ZERO:
        x = x >> ONE
        n += ONE
    return n


@njit(cache=True)
def mulhu64(a, b):
    m32 = np.uint64(0xFFFFFFFF)
    a0, a1 = a & m32, a >> np.uint64(32)
    b0, b1 = b & m32, b >> np.uint64(32)
    p00, p01, p10, p11 = a0 * b0, a0 * b1, a1 * b0, a1 * b1
    middle = (p00 >> np.uint64(32)) + (p01 & m32) + (p10 & m32)
    return p11 + (p01 >> np.uint64(32)) + (p10 >> np.uint64(32)) + (middle >> np.uint64(32))


@njit(cache=True)
def mulhs64(a, b):
    high = mulhu64(a, b)
    if a >> np.uint64(63):
        high -= b
    if b >> np.uint64(63):
        high -= a
    return high


@njit(cache=True)
def rotl(x, n, w, mask):
    if n == ZERO:
        return x
    return ((x << n) | (x >> (w - n))) & mask


@njit(cache=True)
def load(M, FAULT, v, address, nbytes):
    offset = address - DATA_ADDRESS  # wraps to a huge number below the window
    if M.shape[1] < nbytes or offset > np.uint64(M.shape[1] - nbytes):
        FAULT[v] = 1
        return ZERO
    o = np.int64(offset)
    value = ZERO
    for i in range(nbytes):
        value |= np.uint64(M[v, o + i]) << np.uint64(8 * i)
    return value


@njit(cache=True)
def store(M, FAULT, v, address, nbytes, value):
    offset = address - DATA_ADDRESS
    if M.shape[1] < nbytes or offset > np.uint64(M.shape[1] - nbytes):
        FAULT[v] = 1
        return
    o = np.int64(offset)
    for i in range(nbytes):
        M[v, o + i] = np.uint8((value >> np.uint64(8 * i)) & np.uint64(0xFF))


@njit(cache=True)
def run_chunk(prog, n, R0, F0, M0, U, R, F, M, FAULT, c):
    """Chunk c of the vectors from its initial state through the program."""
    for r in range(R.shape[0]):
        for v in range(CHUNK):
            R[r, v] = R0[c, r, v]
    for f in range(F.shape[0]):
        for v in range(CHUNK):
            F[f, v] = F0[c, f, v]
    for v in range(CHUNK):
        FAULT[v] = 0
        for b in range(M.shape[1]):
            M[v, b] = M0[c, v, b]
    execute(prog, n, R, F, M, FAULT, U[c], CHUNK)


@njit(cache=True)
def run_all(prog, n, R0, F0, M0, U):
    """Final registers, flags, memory and faults of every vector (for checks and tests)."""
    chunks = R0.shape[0]
    RO = np.empty_like(R0)
    FO = np.empty_like(F0)
    MO = np.empty_like(M0)
    FAULTS = np.zeros((chunks, CHUNK), dtype=np.uint8)
    R = np.empty((R0.shape[1], CHUNK), dtype=np.uint64)
    F = np.empty((F0.shape[1], CHUNK), dtype=np.uint8)
    M = np.empty((CHUNK, M0.shape[2]), dtype=np.uint8)
    FAULT = np.empty(CHUNK, dtype=np.uint8)
    for c in range(chunks):
        run_chunk(prog, n, R0, F0, M0, U, R, F, M, FAULT, c)
        RO[c] = R
        FO[c] = F
        MO[c] = M
        FAULTS[c] = FAULT
    return RO, FO, MO, FAULTS


@njit(cache=True)
def chunk_cost(R, M, FAULT, R0, EXP, EXPM, c, spec):
    """Wrongness of one chunk: Hamming distance of the result (the best register, plus
    MISPLACED when it is not the result register), of every expected 32-bit memory word
    (likewise the best word), of each preserved register from its start; faults cost
    FAULT_COST.  spec: [has result, result register, result mask, memory words,
    number of candidate registers c, then the c registers where a misplaced result earns
    credit, then the preserved registers]."""
    total = 0.0
    has_result, result_reg, mask, words = spec[0], spec[1], np.uint64(spec[2]), spec[3]
    candidates = spec[4]
    for v in range(CHUNK):
        if FAULT[v]:
            total += FAULT_COST
            continue
        if has_result:
            want = EXP[c, v]
            best = popcount64((R[result_reg, v] ^ want) & mask)
            cost = float(best)
            if best != ZERO:
                for i in range(5, 5 + candidates):
                    r = spec[i]
                    if r != result_reg:
                        d = float(popcount64((R[r, v] ^ want) & mask)) + MISPLACED
                        cost = min(cost, d)
            total += cost
        for i in range(words):
            want = ZERO
            got = ZERO
            for b in range(4):
                want |= np.uint64(EXPM[c, v, 4 * i + b]) << np.uint64(8 * b)
                got |= np.uint64(M[v, 4 * i + b]) << np.uint64(8 * b)
            cost = float(popcount64(got ^ want))
            if cost > 0.0:
                for j in range(words):
                    if j != i:
                        other = ZERO
                        for b in range(4):
                            other |= np.uint64(M[v, 4 * j + b]) << np.uint64(8 * b)
                        d = float(popcount64(other ^ want)) + MISPLACED
                        cost = min(cost, d)
            total += cost
        for k in range(5 + candidates, spec.shape[0]):
            r = spec[k]
            if R[r, v] != R0[c, r, v]:
                total += float(popcount64(R[r, v] ^ R0[c, r, v]))
    return total


@njit(cache=True)
def wrongness(prog, n, R0, F0, M0, U, EXP, EXPM, spec, limit, work_R, work_F, work_M, FAULT):
    """Total wrongness over the chunks, stopping once past `limit`; also the number of
    chunks it ran."""
    total = 0.0
    chunks = R0.shape[0]
    for c in range(chunks):
        run_chunk(prog, n, R0, F0, M0, U, work_R, work_F, work_M, FAULT, c)
        total += chunk_cost(work_R, work_M, FAULT, R0, EXP, EXPM, c, spec)
        if total > limit:
            return total, c + 1
    return total, chunks


@njit(cache=True)
def repeat_wrongness(prog, n, R0, F0, M0, U, EXP, EXPM, spec, times, R, F, M, FAULT):
    """wrongness over every vector, `times` times (for measuring the full evaluation rate)."""
    total = 0.0
    for _ in range(times):
        wrong, _ = wrongness(prog, n, R0, F0, M0, U, EXP, EXPM, spec, INF, R, F, M, FAULT)
        total += wrong
    return total


@njit(cache=True)
def performance(prog, n, LAT, weights):
    """weights: [per instruction, per latency cycle]; SIZE: the instructions of each form."""
    count = 0
    latency = 0.0
    for k in range(n):
        op = prog[k, 0]
        if op != 0:
            count += SIZE[op]
            latency += LAT[op]
    return weights[0] * count + weights[1] * latency


@njit(cache=True)
def random_register(kind, READ_POOL, WRITE_POOL, BASE_POOL, CLASS_POOL):
    """kind: 1 read, 2 written, 3 memory base, 4 of the other register class."""
    if kind == 1:
        return READ_POOL[np.random.randint(0, READ_POOL.shape[0])]
    if kind == 2:
        return WRITE_POOL[np.random.randint(0, WRITE_POOL.shape[0])]
    if kind == 3:
        return BASE_POOL[np.random.randint(0, BASE_POOL.shape[0])]
    return CLASS_POOL[np.random.randint(0, CLASS_POOL.shape[0])]


@njit(cache=True)
def random_operands(prog, k, op, KIND, READ_POOL, WRITE_POOL, BASE_POOL, CLASS_POOL, IMM_START,
                    IMM_LEN, IMM_POOL, IMM_LO, IMM_HI):
    for j in range(3):
        if KIND[op, j] != 0:
            prog[k, 1 + j] = random_register(KIND[op, j], READ_POOL, WRITE_POOL, BASE_POOL,
                                             CLASS_POOL)
    prog[k, 4] = random_immediate(op, IMM_START, IMM_LEN, IMM_POOL, IMM_LO, IMM_HI)


@njit(cache=True)
def random_immediate(op, IMM_START, IMM_LEN, IMM_POOL, IMM_LO, IMM_HI):
    if IMM_LEN[op] > 0 and np.random.random() < 0.9:
        return IMM_POOL[IMM_START[op] + np.random.randint(0, IMM_LEN[op])]
    lo, hi = IMM_LO[op], IMM_HI[op]
    if hi - lo <= 64:
        return lo + np.random.randint(0, hi - lo + 1)
    value = np.int64(np.random.randint(-16, 17))
    return value if lo <= value <= hi else lo


@njit(cache=True)
def propose(prog, cand, n, OPS, CLASS, CLASS_START, CLASS_LEN, CLASS_MEMBERS, KIND, NOPER,
            READ_POOL, WRITE_POOL, BASE_POOL, CLASS_POOL, IMM_START, IMM_LEN, IMM_POOL, IMM_LO,
            IMM_HI, moves):
    """One move on a copy of prog: moves = cumulative probabilities of STOKE's opcode,
    operand, swap, then a register exchange, then STOKE's instruction move, which empties
    the slot with probability moves[5]."""
    cand[:, :] = prog
    u = np.random.random()
    k = np.random.randint(0, n)
    op = cand[k, 0]
    if u < moves[0] and op != 0:  # opcode: another form with the same operand shape
        cls = CLASS[op]
        new = CLASS_MEMBERS[CLASS_START[cls] + np.random.randint(0, CLASS_LEN[cls])]
        cand[k, 0] = new
        # forms of one shape take different immediates (`add r32, imm` any 32-bit one,
        # `rol r32, imm` 0-31): one the new form does not take is drawn again, or the
        # program is no form's (`rol eax, 63`, which nothing reads back)
        if cand[k, 4] < IMM_LO[new] or cand[k, 4] > IMM_HI[new]:
            cand[k, 4] = random_immediate(new, IMM_START, IMM_LEN, IMM_POOL, IMM_LO, IMM_HI)
    elif u < moves[1] and op != 0:  # operand
        j = np.random.randint(0, NOPER[op])
        if j < 3 and KIND[op, j] != 0:
            cand[k, 1 + j] = random_register(KIND[op, j], READ_POOL, WRITE_POOL, BASE_POOL,
                                             CLASS_POOL)
        else:
            cand[k, 4] = random_immediate(op, IMM_START, IMM_LEN, IMM_POOL, IMM_LO, IMM_HI)
    elif u < moves[2]:  # swap two slots
        m = np.random.randint(0, n)
        for x in range(5):
            t = cand[k, x]
            cand[k, x] = cand[m, x]
            cand[m, x] = t
    elif u < moves[3]:  # exchange two registers everywhere (keeps a correct program correct)
        a = WRITE_POOL[np.random.randint(0, WRITE_POOL.shape[0])]
        b = WRITE_POOL[np.random.randint(0, WRITE_POOL.shape[0])]
        exchange(cand, n, a, b, KIND)
    else:  # instruction: a new random one, or UNUSED
        if np.random.random() < moves[5]:
            cand[k, :] = 0
        else:
            op = OPS[np.random.randint(0, OPS.shape[0])]
            cand[k, :] = 0
            cand[k, 0] = op
            random_operands(cand, k, op, KIND, READ_POOL, WRITE_POOL, BASE_POOL, CLASS_POOL,
                            IMM_START, IMM_LEN, IMM_POOL, IMM_LO, IMM_HI)


@njit(cache=True)
def remember(BEST, BEST_PERF, cand, perf):
    """Keep the correct candidates of lowest performance cost, without duplicates."""
    worst = 0
    for i in range(BEST_PERF.shape[0]):
        if BEST_PERF[i] > BEST_PERF[worst]:
            worst = i
    if perf >= BEST_PERF[worst]:
        return
    for i in range(BEST_PERF.shape[0]):
        if BEST_PERF[i] == perf and np.array_equal(BEST[i], cand):
            return
    BEST[worst, :, :] = cand
    BEST_PERF[worst] = perf


@njit(cache=True)
def mcmc(prog, iterations, seed, beta, R0, F0, M0, U, EXP, EXPM, spec, LAT, weights,
         OPS, CLASS, CLASS_START, CLASS_LEN, CLASS_MEMBERS, KIND, NOPER, READ_POOL, WRITE_POOL,
         BASE_POOL, CLASS_POOL, IMM_START, IMM_LEN, IMM_POOL, IMM_LO, IMM_HI, moves, BEST,
         BEST_PERF):
    """Metropolis-Hastings over programs of prog's slots, cost = wrongness + performance.
    Changes prog in place to the chain's last state; fills BEST with correct candidates
    (zero wrongness on every vector).  Returns (cost, candidates evaluated on at least
    one chunk, chunks evaluated, accepted moves)."""
    np.random.seed(seed)
    n = prog.shape[0]
    R = np.empty((R0.shape[1], CHUNK), dtype=np.uint64)
    F = np.empty((F0.shape[1], CHUNK), dtype=np.uint8)
    M = np.empty((CHUNK, M0.shape[2]), dtype=np.uint8)
    FAULT = np.empty(CHUNK, dtype=np.uint8)
    cand = np.empty_like(prog)
    wrong, _ = wrongness(prog, n, R0, F0, M0, U, EXP, EXPM, spec, INF, R, F, M, FAULT)
    perf = performance(prog, n, LAT, weights)
    current = wrong + perf
    if wrong == 0.0:
        remember(BEST, BEST_PERF, prog, perf)
    chunks = 0
    accepted = 0
    evaluated = 0
    for _ in range(iterations):
        propose(prog, cand, n, OPS, CLASS, CLASS_START, CLASS_LEN, CLASS_MEMBERS, KIND, NOPER,
                READ_POOL, WRITE_POOL, BASE_POOL, CLASS_POOL, IMM_START, IMM_LEN, IMM_POOL,
                IMM_LO, IMM_HI, moves)
        # accept when cost' <= current - ln(u) / beta; decided before evaluating, so a
        # candidate stops as soon as its wrongness alone passes that bound
        bound = current - np.log(1.0 - np.random.random()) / beta
        cperf = performance(cand, n, LAT, weights)
        if cperf > bound:
            continue
        cwrong, used = wrongness(cand, n, R0, F0, M0, U, EXP, EXPM, spec, bound - cperf,
                                 R, F, M, FAULT)
        chunks += used
        evaluated += 1
        if cwrong == 0.0:
            remember(BEST, BEST_PERF, cand, cperf)
        if cwrong + cperf <= bound:
            prog[:, :] = cand
            current = cwrong + cperf
            accepted += 1
    return current, evaluated, chunks, accepted


@njit(cache=True)
def exchange(rows, n, a, b, KIND):
    """Registers a and b exchanged in every register operand (not memory bases)."""
    for i in range(n):
        op = rows[i, 0]
        if op == 0:
            continue
        for j in range(3):
            if KIND[op, j] == 1 or KIND[op, j] == 2:
                if rows[i, 1 + j] == a:
                    rows[i, 1 + j] = b
                elif rows[i, 1 + j] == b:
                    rows[i, 1 + j] = a


@njit(cache=True)
def rename(rows, start, n, a, b, KIND):
    """Register a read as b in the register operands of rows start..n-1 (and written as
    b: the whole value moves to b)."""
    for i in range(start, n):
        op = rows[i, 0]
        if op == 0:
            continue
        for j in range(3):
            if (KIND[op, j] == 1 or KIND[op, j] == 2) and rows[i, 1 + j] == a:
                rows[i, 1 + j] = b


@njit(cache=True)
def neighbourhood(prog, n, INSTANCES, POOL, KIND, R0, F0, M0, U, EXP, EXPM, spec, OUT, limit):
    """Every program made from prog's n slots by deleting one slot and either exchanging
    two registers of POOL, or renaming one register of POOL to another in the slots after
    the deleted one (copy propagation: `mov b, a` deleted, b read as a), or replacing one
    other slot with any of INSTANCES, that is right on every vector, into OUT (at most its
    length).  Returns (found, evaluations)."""
    R = np.empty((R0.shape[1], CHUNK), dtype=np.uint64)
    F = np.empty((F0.shape[1], CHUNK), dtype=np.uint8)
    M = np.empty((CHUNK, M0.shape[2]), dtype=np.uint8)
    FAULT = np.empty(CHUNK, dtype=np.uint8)
    renamed = np.empty_like(prog)
    base = np.zeros((max(n - 1, 1), 5), dtype=np.int64)
    cand = np.zeros_like(base)
    found = 0
    evaluations = 0
    p = POOL.shape[0]
    exchanges = 1 + p * (p - 1) // 2
    for q in range(exchanges + p * p):
        # the deletions alone, exchanges and renames first (few), the replacements last
        pair = (q + 1) % (exchanges + p * p)
        renamed[:, :] = prog
        if pair >= exchanges:  # renaming in the slots after the deleted one, below
            pass
        elif pair > 0:  # the pair-th unordered pair of pool registers
            r = pair - 1
            a = 0
            while r >= p - 1 - a:
                r -= p - 1 - a
                a += 1
            exchange(renamed, n, POOL[a], POOL[a + 1 + r], KIND)
        for d in range(n):
            j = 0
            for i in range(n):
                if i != d:
                    base[j, :] = renamed[i]
                    j += 1
            if pair >= exchanges:
                src = POOL[(pair - exchanges) // p]
                dst = POOL[(pair - exchanges) % p]
                if src == dst:
                    break
                rename(base, d, n - 1, src, dst, KIND)
            # with registers exchanged, only the deletion; without, also a replacement
            for k in range(-1, n - 1 if pair == 0 else 0):
                for i in range(INSTANCES.shape[0] if k >= 0 else 1):
                    cand[:, :] = base
                    if k >= 0:
                        cand[k, :] = INSTANCES[i]
                    wrong, _ = wrongness(cand, n - 1, R0, F0, M0, U, EXP, EXPM, spec, 0.0,
                                         R, F, M, FAULT)
                    evaluations += 1
                    if wrong == 0.0:
                        OUT[found, : n - 1, :] = cand
                        found += 1
                        if found == OUT.shape[0]:
                            return found, evaluations
                    if evaluations >= limit:
                        return found, evaluations
    return found, evaluations


@njit(cache=True)
def state_hash(R, F, HASHREGS, defined, owed):
    """A 64-bit fingerprint of a state on the probe lanes: the registers a search can
    write, the flags, which registers hold something and which values are still owed a
    reader (never 0: 0 marks an empty table slot)."""
    h = np.uint64(defined) * np.uint64(0x9E3779B97F4A7C15) + ONE
    h = (h ^ np.uint64(owed)) * np.uint64(0x100000001B3)
    lanes = R.shape[1]
    for i in range(HASHREGS.shape[0]):
        r = HASHREGS[i]
        for v in range(lanes):
            h = (h ^ R[r, v]) * np.uint64(0x100000001B3)
            h ^= h >> np.uint64(29)
    for f in range(F.shape[0]):
        for v in range(lanes):
            h = (h ^ np.uint64(F[f, v])) * np.uint64(0x100000001B3)
    return h | ONE


@njit(cache=True)
def seen_before(TABLE, DEPTHS, h, depth):
    """Observational equivalence: True when a state with fingerprint h was already
    reached at this depth or a shallower one (then everything after it was tried);
    otherwise it is recorded at this depth."""
    size = TABLE.shape[0]
    i = np.int64(h & np.uint64(size - 1))
    for _ in range(size):
        if TABLE[i] == 0:
            TABLE[i] = h
            DEPTHS[i] = depth
            return False
        if TABLE[i] == h:
            if DEPTHS[i] <= depth:
                return True
            DEPTHS[i] = depth
            return False
        i = (i + 1) & (size - 1)
    return False  # a full table prunes nothing


@njit(cache=True)
def owes(OUTS, SAT, d, i, READS, WRITES, live, final):
    """Instance i put at window depth d: True when it leaves some earlier window
    instruction dead (every value it wrote overwritten unread; at the end, `final`, none
    read and none live after the window).  Updates OUTS[d + 1], SAT[d + 1]."""
    for k in range(d):
        SAT[d + 1, k] = SAT[d, k] or (OUTS[d, k] & READS[i]) != 0
        OUTS[d + 1, k] = OUTS[d, k] & ~WRITES[i]
        if not SAT[d + 1, k] and (OUTS[d + 1, k] == 0
                                  or (final and OUTS[d + 1, k] & live == 0)):
            return True
    SAT[d + 1, d] = False
    OUTS[d + 1, d] = WRITES[i]
    return False


@njit(cache=True)
def wrong_register(R, F, TR, TF, LIVEREGS, LIVEMASK, LIVEFLAGS, lanes):
    """Against the target on lanes 0..lanes-1, in the live bits: -1 when the state holds it
    in every live register and flag, the register when one live register alone does not,
    -2 when more is wrong."""
    for x in range(LIVEFLAGS.shape[0]):
        f = LIVEFLAGS[x]
        for v in range(lanes):
            if F[f, v] != TF[f, v]:
                return -2
    wrong = -1
    for x in range(LIVEREGS.shape[0]):
        r = LIVEREGS[x]
        m = np.uint64(LIVEMASK[r])
        for v in range(lanes):
            if (R[r, v] ^ TR[r, v]) & m != ZERO:
                if wrong >= 0:
                    return -2
                wrong = r
                break
    return wrong


@njit(cache=True)
def right_everywhere(cand, total, R0, F0, M0, U, EXP, EXPM, spec, R, F, M, FAULT):
    for c in range(R0.shape[0]):
        run_chunk(cand, total, R0, F0, M0, U, R, F, M, FAULT, c)
        if chunk_cost(R, M, FAULT, R0, EXP, EXPM, c, spec) != 0.0:
            return False
    return True


@njit(cache=True)
def _copy_flags_and_memory(SF, SM, SX, src, dst, flags):
    if flags:
        for f in range(SF.shape[1]):
            for v in range(SF.shape[2]):
                SF[dst, f, v] = SF[src, f, v]
    for v in range(SX.shape[1]):
        SX[dst, v] = SX[src, v]
        for x in range(SM.shape[2]):
            SM[dst, v, x] = SM[src, v, x]


@njit(cache=True)
def copy_state(SR, SF, SM, SX, src, dst):
    for r in range(SR.shape[1]):
        for v in range(SR.shape[2]):
            SR[dst, r, v] = SR[src, r, v]
    _copy_flags_and_memory(SF, SM, SX, src, dst, True)


@njit(cache=True)
def restore(SR, SF, SM, SX, src, dst, written, nreg):
    """State dst back to src after one instance that wrote `written` (a WRITES mask)."""
    for r in range(nreg):
        if written >> r & 1:
            for v in range(SR.shape[2]):
                SR[dst, r, v] = SR[src, r, v]
    _copy_flags_and_memory(SF, SM, SX, src, dst, written & FLAGS_BIT != 0)


@njit(cache=True)
def copied_from(R, TR, r, mask, written, nreg):
    """A register the last instance wrote that holds what register r must (on the live
    bits `mask`, every probe lane), or -1."""
    for q in range(nreg):
        if q == r or not (written >> q & 1):
            continue
        same = True
        for v in range(R.shape[1]):
            if (R[q, v] ^ TR[r, v]) & mask != ZERO:
                same = False
                break
        if same:
            return q
    return -1


@njit(cache=True)
def window_search(prog, n, a, b, j, INSTANCES, READS, WRITES, FINAL_START, FINAL_LEN, FINAL,
                  COPY, RENAMED, RSUFFIX, defined0, live, LIVEREGS, LIVEMASK, LIVEFLAGS,
                  HASHREGS, PR0, PF0, PM0, PX0, PU, TR, TF, R0, F0, M0, U, EXP, EXPM, spec, OUT,
                  limit, TABLE, DEPTHS):
    """Every sequence of j instances (INSTANCES rows) that, put in place of prog's slots
    a..b-1, makes a program right on every vector, into OUT (at most its length), whole
    programs of a + j + 1 + n - b rows (the row after the window UNUSED, or a copy).

    Depth first over the probe lanes (PR0.. : the state after the prefix on a few
    vectors; PU their undefined values), pruned as superoptimisers do: an instance reads
    only registers (and flags, bit FLAGS_BIT) that hold something (defined0 after the
    prefix, then what earlier instances wrote: READS, WRITES are masks); no instance may
    leave an earlier one of the window dead (its values all overwritten unread, or at the
    end neither read nor `live`, what the rest of the program reads); a state reached
    before at the same depth or a shallower one is not expanded again (observational
    equivalence, fingerprints in TABLE).  The last instance comes from FINAL's lists
    (FINAL_START/FINAL_LEN by what it reads: register r at r, the flags at NREG, every last
    instance at NREG + 1), must read a value the one before it wrote, and must leave the
    target state TR, TF in the live bits (LIVEREGS, LIVEMASK, LIVEFLAGS) on the probe
    lanes; or all but one live register r, whose value is in a register q it wrote: then
    the rest of the program reads q for r (RENAMED[r, q]: which of RSUFFIX, the rest so
    renamed; -1: it cannot be) or, failing that, the window ends in the copy COPY[r, q]
    (an instance index; -1: none) and is j + 1 long.  Only then is the whole program run
    on every vector.  Returns (found, instances executed); stops after `limit` of them."""
    nreg, nflag = PR0.shape[0], PF0.shape[0]
    lanes = PR0.shape[1]
    R = np.empty((nreg, CHUNK), dtype=np.uint64)
    F = np.empty((F0.shape[1], CHUNK), dtype=np.uint8)
    M = np.empty((CHUNK, M0.shape[2]), dtype=np.uint8)
    FAULT = np.empty(CHUNK, dtype=np.uint8)
    ns = n - b
    total = a + j + 1 + ns
    cand = np.zeros((total, 5), dtype=np.int64)
    for k in range(a):
        cand[k] = prog[k]
    for k in range(ns):
        cand[a + j + 1 + k] = prog[b + k]
    found = 0
    if j == 0:
        if right_everywhere(cand, total, R0, F0, M0, U, EXP, EXPM, spec, R, F, M, FAULT):
            OUT[0, :total] = cand
            found = 1
        return found, 0
    SR = np.empty((j + 1, nreg, lanes), dtype=np.uint64)
    SF = np.empty((j + 1, nflag, lanes), dtype=np.uint8)
    SM = np.empty((j + 1, lanes, PM0.shape[1]), dtype=np.uint8)
    SX = np.empty((j + 1, lanes), dtype=np.uint8)
    SD = np.zeros(j + 1, dtype=np.int64)
    OUTS = np.zeros((j + 1, j), dtype=np.int64)
    SAT = np.zeros((j + 1, j), dtype=np.bool_)
    SR[0] = PR0
    SF[0] = PF0
    SM[0] = PM0
    SX[0] = PX0
    SD[0] = defined0
    TABLE[:] = 0
    # registers a live register's value may end in (read from there, or copied back), and
    # a live mask for the dead-value test that counts them as live
    SOURCES = np.zeros(nreg, dtype=np.int64)
    copy_live = live
    for r in range(nreg):
        for q in range(nreg):
            if COPY[r, q] >= 0 or RENAMED[r, q] >= 0:
                SOURCES[r] |= np.int64(1) << q
        copy_live |= SOURCES[r]
    choice = np.full(j + 1, -1, dtype=np.int64)
    lists = np.zeros(j + 1, dtype=np.int64)  # the last depth: FINAL lists left to walk
    position = np.zeros(j + 1, dtype=np.int64)
    listed = np.zeros(j + 1, dtype=np.int64)  # what the lists walked read (a READS mask)
    m = INSTANCES.shape[0]
    executed = 0
    flags_list = nreg
    every = nreg + 1
    d = 0
    fresh = True  # entering the last depth: set up its lists
    while d >= 0:
        if d < j - 1:  # an inner depth: every instance in turn
            choice[d] += 1
            i = choice[d]
            if i >= m or executed >= limit:
                choice[d] = -1
                d -= 1
                continue
            if READS[i] & ~SD[d] != 0:
                continue
            if owes(OUTS, SAT, d, i, READS, WRITES, live, False):
                continue
            copy_state(SR, SF, SM, SX, d, d + 1)
            execute(INSTANCES[i:i + 1], 1, SR[d + 1], SF[d + 1], SM[d + 1], SX[d + 1], PU,
                    lanes)
            executed += 1
            SD[d + 1] = SD[d] | WRITES[i]
            owed = np.int64(0)
            for k in range(d + 1):
                if not SAT[d + 1, k]:
                    owed |= OUTS[d + 1, k]
            if seen_before(TABLE, DEPTHS, state_hash(SR[d + 1], SF[d + 1], HASHREGS,
                                                     SD[d + 1], owed), d + 1):
                continue
            d += 1
            fresh = True
            continue
        # the last depth: walk the lists of what it may read
        if fresh:
            fresh = False
            listed[d] = 0
            position[d] = 0
            copy_state(SR, SF, SM, SX, d, d + 1)
            if d == 0:
                lists[d] = np.int64(1) << every
            else:
                owed = OUTS[d, d - 1]
                lists[d] = owed & ((np.int64(1) << nreg) - 1)
                if owed & FLAGS_BIT:
                    lists[d] |= np.int64(1) << flags_list
                # a value of the one before may stay live past the window instead
                if owed & live != 0 and (live & (live - 1)) != 0:
                    lists[d] = np.int64(1) << every
        if executed >= limit:
            d -= 1
            continue
        r = np.int64(0)
        while lists[d] != 0:
            first = lists[d] & -lists[d]
            r = np.int64(0)
            while (first >> r) != 1:
                r += 1
            if position[d] < FINAL_LEN[r]:
                break
            lists[d] ^= first
            listed[d] |= FLAGS_BIT if r == flags_list else first
            position[d] = 0
        if lists[d] == 0:
            d -= 1
            continue
        i = FINAL[FINAL_START[r] + position[d]]
        position[d] += 1
        if READS[i] & listed[d] != 0:  # one reading two of them: met in the first list only
            continue
        if READS[i] & ~SD[d] != 0:
            continue
        if owes(OUTS, SAT, d, i, READS, WRITES, copy_live, True):
            continue
        execute(INSTANCES[i:i + 1], 1, SR[d + 1], SF[d + 1], SM[d + 1], SX[d + 1], PU, lanes)
        executed += 1
        copy = -1
        renamed = -1
        w = wrong_register(SR[d + 1], SF[d + 1], TR, TF, LIVEREGS, LIVEMASK, LIVEFLAGS, lanes)
        right = w == -1 and WRITES[i] & live != 0
        if w >= 0 and WRITES[i] & SOURCES[w] != 0:
            q = copied_from(SR[d + 1], TR, w, np.uint64(LIVEMASK[w]), WRITES[i] & SOURCES[w],
                            nreg)
            if q >= 0:
                right = True
                renamed = RENAMED[w, q]
                if renamed < 0:
                    copy = COPY[w, q]
        restore(SR, SF, SM, SX, d, d + 1, WRITES[i], nreg)
        if not right:
            continue
        choice[d] = i
        for k in range(j):
            cand[a + k] = INSTANCES[choice[k]]
        cand[a + j] = 0
        if copy >= 0:
            cand[a + j] = INSTANCES[copy]
        for k in range(ns):
            if renamed < 0:
                cand[a + j + 1 + k] = prog[b + k]
            else:
                cand[a + j + 1 + k] = RSUFFIX[renamed, k]
        if right_everywhere(cand, total, R0, F0, M0, U, EXP, EXPM, spec, R, F, M, FAULT):
            OUT[found] = cand
            found += 1
            if found == OUT.shape[0]:
                return found, executed
    return found, executed
