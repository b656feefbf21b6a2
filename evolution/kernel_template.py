# ruff: noqa: F821
"""Kernels every ISA's evaluator module shares: bit helpers, memory access, the
cost of a candidate over the test vectors, and the Metropolis-Hastings search.

Not imported on its own: codegen.py writes this text at the top of each ISA's
generated module, whose generated part defines `execute` (one program over a
chunk of vectors), NREG, NFLAG, ZERO_REGISTER and the constants K*.

Test vectors come in chunks of CHUNK so that a candidate whose cost already
exceeds what the Metropolis test would accept stops early (STOKE's trick):
R0[chunk, register, lane], F0[chunk, flag, lane], M0[chunk, lane, byte],
U[chunk, lane], EXP[chunk, lane], EXPM[chunk, lane, byte].
"""

import numpy as np
from numba import njit

ZERO = np.uint64(0)
ONE = np.uint64(1)
ALL = np.uint64(0xFFFFFFFFFFFFFFFF)
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
    """weights: [per instruction, per latency cycle]."""
    count = 0
    latency = 0.0
    for k in range(n):
        op = prog[k, 0]
        if op != 0:
            count += 1
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
        cand[k, 0] = CLASS_MEMBERS[CLASS_START[cls] + np.random.randint(0, CLASS_LEN[cls])]
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
def state_hash(R, F, HASHREGS, defined):
    """A 64-bit fingerprint of a chunk's state: the registers a search can write, the
    flags and which registers hold something (never 0: 0 marks an empty table slot)."""
    h = np.uint64(defined) * np.uint64(0x9E3779B97F4A7C15) + ONE
    for i in range(HASHREGS.shape[0]):
        r = HASHREGS[i]
        for v in range(CHUNK):
            h = (h ^ R[r, v]) * np.uint64(0x100000001B3)
            h ^= h >> np.uint64(29)
    for f in range(F.shape[0]):
        for v in range(CHUNK):
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
def window_search(prog, n, a, b, j, INSTANCES, READS, WRITES, defined0, last_writes, HASHREGS,
                  R0, F0, M0, U, EXP, EXPM, spec, OUT, limit, TABLE, DEPTHS):
    """Every sequence of j instances (INSTANCES rows) that, put in place of prog's slots
    a..b-1, makes a program right on every vector, into OUT (at most its length), whole
    programs of a + j + n - b rows.  Depth first, from the state after the prefix (kept
    per depth on the first chunk): an instance must read only registers (and flags,
    bit 40) that hold something (defined0 after the prefix, then what earlier instances
    wrote: READS, WRITES are masks), the last one must write one of last_writes (when
    not 0), and a state reached before at the same depth or a shallower one is not
    expanded again (the classic superoptimiser's pruning, fingerprints in TABLE).
    Returns (found, instances executed); stops after `limit` of them."""
    chunks = R0.shape[0]
    nreg, nflag = R0.shape[1], F0.shape[1]
    nbytes = M0.shape[2]
    PR, PF, PM, PX = run_all(prog, a, R0, F0, M0, U)  # every chunk's state after the prefix
    R = np.empty((nreg, CHUNK), dtype=np.uint64)
    F = np.empty((nflag, CHUNK), dtype=np.uint8)
    M = np.empty((CHUNK, nbytes), dtype=np.uint8)
    FAULT = np.empty(CHUNK, dtype=np.uint8)
    ns = n - b
    suffix = np.zeros((max(ns, 1), 5), dtype=np.int64)
    for k in range(ns):
        suffix[k] = prog[b + k]
    total = a + j + ns
    cand = np.zeros((max(total, 1), 5), dtype=np.int64)
    for k in range(a):
        cand[k] = prog[k]
    for k in range(ns):
        cand[a + j + k] = prog[b + k]
    SR = np.empty((j + 1, nreg, CHUNK), dtype=np.uint64)
    SF = np.empty((j + 1, nflag, CHUNK), dtype=np.uint8)
    SM = np.empty((j + 1, CHUNK, nbytes), dtype=np.uint8)
    SX = np.empty((j + 1, CHUNK), dtype=np.uint8)
    SD = np.zeros(j + 1, dtype=np.int64)
    SR[0] = PR[0]
    SF[0] = PF[0]
    SM[0] = PM[0]
    SX[0] = PX[0]
    SD[0] = defined0
    TABLE[:] = 0
    choice = np.full(j + 1, -1, dtype=np.int64)
    m = INSTANCES.shape[0]
    found = 0
    executed = 0
    d = 0
    while d >= 0:
        if d == j:  # a whole window: the suffix on the first chunk, then on every chunk
            d -= 1
            R[:, :] = SR[j]
            F[:, :] = SF[j]
            M[:, :] = SM[j]
            FAULT[:] = SX[j]
            execute(suffix, ns, R, F, M, FAULT, U[0], CHUNK)
            if chunk_cost(R, M, FAULT, R0, EXP, EXPM, 0, spec) != 0.0:
                continue
            for k in range(j):
                cand[a + k] = INSTANCES[choice[k]]
            right = True
            for c in range(1, chunks):
                R[:, :] = PR[c]
                F[:, :] = PF[c]
                M[:, :] = PM[c]
                FAULT[:] = PX[c]
                execute(cand[a:], total - a, R, F, M, FAULT, U[c], CHUNK)
                if chunk_cost(R, M, FAULT, R0, EXP, EXPM, c, spec) != 0.0:
                    right = False
                    break
            if right:
                OUT[found, :total] = cand[:total]
                found += 1
                if found == OUT.shape[0]:
                    return found, executed
            continue
        choice[d] += 1
        i = choice[d]
        if i >= m or executed >= limit:
            choice[d] = -1
            d -= 1
            continue
        if READS[i] & ~SD[d] != 0:
            continue
        if d == j - 1 and last_writes != 0 and WRITES[i] & last_writes == 0:
            continue
        SR[d + 1] = SR[d]
        SF[d + 1] = SF[d]
        SM[d + 1] = SM[d]
        SX[d + 1] = SX[d]
        execute(INSTANCES[i:i + 1], 1, SR[d + 1], SF[d + 1], SM[d + 1], SX[d + 1], U[0], CHUNK)
        executed += 1
        SD[d + 1] = SD[d] | WRITES[i]
        if d + 1 < j and seen_before(TABLE, DEPTHS, state_hash(SR[d + 1], SF[d + 1], HASHREGS,
                                                               SD[d + 1]), d + 1):
            continue
        d += 1
    return found, executed
