# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The text engine's hot path in C: folding with an offset map, the term automaton, the screen.

Hand-written because no library does what the hot path needs in one pass: confusable-aware
folding that keeps a map back to the original text and its word boundaries, multi-pattern
matching that accepts a match only on word boundaries of the folded text, and a cache of
per-token typo verdicts keyed by the original characters. pyahocorasick and rapidfuzz are C
too, but chaining them from Python costs several interpreter round trips per message, which is
most of the time a message takes; here a whole batch is one call.

A sealed watchlist (sealed_match.py) holds no term to build the automaton from: the same core
runs with a span screen in its place (`SpanScreen`: every boundary-to-boundary span hashed as it
grows, the rare survivors verified by keyed digest), and the same verdict cache.

The semantics live in Python (`normalize.fold_char` and `char_class` decide what one character
folds to; `CodenameMatcher._token_code` decides a token's verdict); this module only caches and
replays them, and the tests hold it to the Python specification.
"""

cimport cython
from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.unicode cimport (
    Py_UNICODE_ISALNUM,
    Py_UNICODE_ISDECIMAL,
    Py_UNICODE_ISDIGIT,
    PyUnicode_1BYTE_KIND,
    PyUnicode_4BYTE_KIND,
    PyUnicode_DATA,
    PyUnicode_FromKindAndData,
    PyUnicode_FromObject,
    PyUnicode_GET_LENGTH,
    PyUnicode_KIND,
    PyUnicode_READ,
    PyUnicode_Substring,
)
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc, qsort, realloc
from libc.string cimport memcmp, memcpy, memset

cdef extern from *:
    """
    #ifndef NATIVE_SOURCE_DIGEST
    #define NATIVE_SOURCE_DIGEST ""
    #endif
    """
    const char *NATIVE_SOURCE_DIGEST

# The digest of the .pyx this module was compiled from (setup.py), to catch a stale build.
SOURCE_DIGEST = NATIVE_SOURCE_DIGEST.decode("ascii")

# A token's verdict, one byte (screen.py): it starts or ends with a single letter in some
# reading, it folds to nothing in some reading (a run of letters passes through it), or some
# string in it is within the edit budget of a key or anchors a multi-word typo (hot).
LEAD, TRAIL, CLEAR, HOT = 1, 2, 4, 8
cdef enum:
    V_LEAD = 1
    V_TRAIL = 2
    V_CLEAR = 4
    V_HOT = 8

cdef enum:
    SPACE = 32
    N_READINGS = 3
    PAGES = 0x1100  # code points / 256


cdef inline uint32_t rd(int kind, void *data, Py_ssize_t i) noexcept:
    """Code point i of a str's data, as a C integer (never a one-character str)."""
    return <uint32_t>PyUnicode_READ(kind, data, i)


cdef inline str exact_str(object o):
    """`o` as an exact str (a subclass is copied; anything else is a TypeError)."""
    return o if type(o) is str else PyUnicode_FromObject(o)


# ---- scratch buffers: one text folded, per call (never shared between threads) ---------------

cdef struct Scratch:
    uint32_t *cp  # compact code points
    int64_t *orig  # original index of each
    uint8_t *cls  # boundary class of its original character
    uint8_t *gap  # a separator stands just before it
    Py_ssize_t n
    Py_ssize_t cap
    uint32_t *f  # the folded text with separators as spaces (only when asked for)
    Py_ssize_t nf
    Py_ssize_t capf


cdef void *resize(void *p, size_t size) except NULL:
    """realloc, or MemoryError (p stays valid then)."""
    cdef void *q = realloc(p, size)
    if q == NULL:
        raise MemoryError()
    return q


cdef int grow(Scratch *s, Py_ssize_t need) except -1:
    """Room for `need` compact characters."""
    cdef Py_ssize_t cap
    if need <= s.cap:
        return 0
    cap = max(need, 2 * s.cap, 256)
    s.cp = <uint32_t *>resize(s.cp, cap * sizeof(uint32_t))
    s.orig = <int64_t *>resize(s.orig, cap * sizeof(int64_t))
    s.cls = <uint8_t *>resize(s.cls, cap)
    s.gap = <uint8_t *>resize(s.gap, cap + 1)
    s.cap = cap
    return 0


cdef int grow_f(Scratch *s, Py_ssize_t need) except -1:
    """Room for `need` folded characters."""
    cdef Py_ssize_t cap
    if need <= s.capf:
        return 0
    cap = max(need, 2 * s.capf, 256)
    s.f = <uint32_t *>resize(s.f, cap * sizeof(uint32_t))
    s.capf = cap
    return 0


cdef void release(Scratch *s) noexcept:
    free(s.cp)
    free(s.orig)
    free(s.cls)
    free(s.gap)
    free(s.f)
    memset(s, 0, sizeof(Scratch))


# ---- per-character folds, computed once by the Python specification --------------------------

@cython.final
cdef class Tables:
    """What each code point folds to in each reading, and its boundary class, cached in C.

    ASCII is filled at start; any other code point on first sight, by calling back
    `fold_char(c, reading)` and `char_class(c, reading)`. An entry in `pool` is: a header word
    (bit 0: the character separates in every reading; bits 8.. the folded lengths per reading),
    a word of classes (8 bits per reading), then the folded code points of each reading.
    """

    cdef uint32_t afold[N_READINGS][128]
    cdef uint8_t acls[N_READINGS][128]
    cdef uint8_t asep[128]  # separates in every reading
    cdef uint8_t trans[512]
    cdef uint8_t sep_class
    cdef uint8_t caseless_class
    cdef uint32_t **pages  # code point >> 8 -> 256 pool offsets (0: not computed yet)
    cdef uint32_t *pool
    cdef Py_ssize_t pool_n
    cdef Py_ssize_t pool_cap
    cdef object fold_char
    cdef object char_class

    def __cinit__(self):
        self.pages = <uint32_t **>calloc(PAGES, sizeof(uint32_t *))
        self.pool_cap = 1 << 12
        self.pool = <uint32_t *>malloc(self.pool_cap * sizeof(uint32_t))
        self.pool_n = 1  # offset 0 means "not computed"
        if self.pages == NULL or self.pool == NULL:
            raise MemoryError()

    def __init__(self, fold_char, char_class, bytes transition, int sep_class, int caseless_class):
        """`transition[(c1 * 8 + c2) * 8 + after]`: bit 0 a script change, bit 1 a word
        boundary between classes c1 and c2 (normalize.TRANSITION); the classes SEP and
        CASELESS."""
        cdef int r, c
        if len(transition) != 512:
            raise ValueError("transition table must have 512 entries")
        self.fold_char = fold_char
        self.char_class = char_class
        self.sep_class = sep_class
        self.caseless_class = caseless_class
        for c in range(512):
            self.trans[c] = transition[c]
        for c in range(128):
            self.asep[c] = 1
            for r in range(N_READINGS):
                f = fold_char(chr(c), r)
                if len(f) != 1:
                    raise ValueError(f"ASCII {c} must fold to one character")
                self.afold[r][c] = ord(f)
                self.acls[r][c] = char_class(chr(c), r)
                if f != " ":
                    self.asep[c] = 0

    def __dealloc__(self):
        cdef Py_ssize_t i
        if self.pages != NULL:
            for i in range(PAGES):
                free(self.pages[i])
            free(self.pages)
        free(self.pool)

    cdef Py_ssize_t entry(self, uint32_t c) except -1:
        """Offset in `pool` of the entry of code point c (>= 128)."""
        cdef uint32_t *page = self.pages[c >> 8]
        if page != NULL and page[c & 255] != 0:
            return page[c & 255]
        return self._fill(c)

    cdef Py_ssize_t _fill(self, uint32_t c) except -1:
        cdef str ch = chr(c)
        cdef list folds = [self.fold_char(ch, r) for r in range(N_READINGS)]
        cdef list classes = [self.char_class(ch, r) for r in range(N_READINGS)]
        cdef Py_ssize_t need = 2 + sum(len(f) for f in folds), o, k
        cdef uint32_t header = 1
        cdef int r
        cdef uint32_t *page
        # The callbacks above may have let another thread fill it: check again, and touch the
        # shared pool only from here on, with no Python call in between.
        page = self.pages[c >> 8]
        if page != NULL and page[c & 255] != 0:
            return page[c & 255]
        for r in range(N_READINGS):
            f = folds[r]
            if len(f) > 255:
                raise ValueError(f"U+{c:04X} folds to more than 255 characters")
            if len(f) == 0 or f.strip(" "):
                header &= ~(<uint32_t>1)
            header |= (<uint32_t>len(f)) << (8 + 8 * r)
        if page == NULL:
            page = <uint32_t *>calloc(256, sizeof(uint32_t))
            if page == NULL:
                raise MemoryError()
            self.pages[c >> 8] = page
        if self.pool_n + need > self.pool_cap:
            self.pool = <uint32_t *>resize(self.pool, 2 * (self.pool_n + need) * sizeof(uint32_t))
            self.pool_cap = 2 * (self.pool_n + need)
        if self.pool_n + need >= 0xFFFFFFFF:
            raise MemoryError("fold table full")
        o = self.pool_n
        self.pool[o] = header
        self.pool[o + 1] = (<uint32_t>classes[0]) | (<uint32_t>classes[1]) << 8 | (<uint32_t>classes[2]) << 16
        k = o + 2
        for r in range(N_READINGS):
            for x in folds[r]:
                self.pool[k] = ord(x)
                k += 1
        self.pool_n = k
        page[c & 255] = <uint32_t>o
        return o

    cdef bint separates(self, uint32_t c) except -1:
        """Whether c folds to separators only, in every reading (a token never spans it)."""
        if c < 128:
            return self.asep[c]
        return self.pool[self.entry(c)] & 1

    cdef int fold_into(self, str text, int r, Scratch *s, bint want_f) except -1:
        """Fold `text` in reading r into s (compact characters, offsets, classes, gaps)."""
        cdef Py_ssize_t n = PyUnicode_GET_LENGTH(text), i, m = 0
        cdef int kind = PyUnicode_KIND(text)
        cdef void *data = PyUnicode_DATA(text)
        cdef const uint8_t *latin = <const uint8_t *>data
        cdef uint32_t c, x
        cdef uint8_t gap = 1
        cdef uint32_t *fold = self.afold[r]
        cdef uint8_t *cls = self.acls[r]
        s.n = 0
        s.nf = 0
        grow(s, n + 1)
        if want_f:
            grow_f(s, n + 1)
        if kind == PyUnicode_1BYTE_KIND and not want_f:
            # The common case, in a tight loop: one byte per character.
            for i in range(n):
                c = latin[i]
                if c >= 128:
                    s.n = m
                    gap = self._fold_other(c, i, n, r, s, gap, False)
                    m = s.n
                    continue
                x = fold[c]
                if x == SPACE:
                    gap = 1
                    continue
                s.cp[m] = x
                s.orig[m] = i
                s.cls[m] = cls[c]
                s.gap[m] = gap
                m += 1
                gap = 0
            s.n = m
        else:
            for i in range(n):
                c = rd(kind, data, i)
                if c >= 128:
                    gap = self._fold_other(c, i, n, r, s, gap, want_f)
                    continue
                x = fold[c]
                if want_f:
                    s.f[s.nf] = x
                    s.nf += 1
                if x == SPACE:
                    gap = 1
                    continue
                if s.n >= s.cap:
                    grow(s, s.n + 1)
                s.cp[s.n] = x
                s.orig[s.n] = i
                s.cls[s.n] = cls[c]
                s.gap[s.n] = gap
                s.n += 1
                gap = 0
        s.gap[s.n] = 1
        return 0

    cdef int _fold_other(self, uint32_t c, Py_ssize_t i, Py_ssize_t n, int r, Scratch *s,
                         int gap, bint want_f) except -1:
        """Append the fold of the non-ASCII character c at i; returns the gap flag after it.
        Space is kept for one compact character per remaining character of the text."""
        cdef Py_ssize_t o = self.entry(c), start, cnt, k  # may call Python: read the pool after
        cdef uint32_t w0 = self.pool[o], x
        cdef uint8_t cl
        cnt = (w0 >> (8 + 8 * r)) & 255
        start = o + 2
        if r >= 1:
            start += (w0 >> 8) & 255
        if r >= 2:
            start += (w0 >> 16) & 255
        cl = (self.pool[o + 1] >> (8 * r)) & 255
        if s.n + cnt + n - i > s.cap:
            grow(s, s.n + cnt + n - i)
        if want_f and s.nf + cnt + n - i > s.capf:
            grow_f(s, s.nf + cnt + n - i)
        for k in range(cnt):
            x = self.pool[start + k]
            if want_f:
                s.f[s.nf] = x
                s.nf += 1
            if x == SPACE:
                gap = 1
                continue
            s.cp[s.n] = x
            s.orig[s.n] = i
            s.cls[s.n] = cl
            s.gap[s.n] = gap
            s.n += 1
            gap = 0
        return gap

    cdef inline int bound_bits(self, Scratch *s, Py_ssize_t q) noexcept:
        """Bit 0: a separator or script change stands just before compact position q
        (`Folded.sepbound`); bit 1: a word starts at q (`Folded.bound`), as normalize decides."""
        cdef int c1, c2, after, bits, sb
        if q <= 0 or q >= s.n:
            return 3
        c1 = s.cls[q - 1]
        c2 = s.cls[q]
        after = self.sep_class if s.gap[q + 1] or q + 1 >= s.n else s.cls[q + 1]
        bits = self.trans[(c1 * 8 + c2) * 8 + after]
        if s.orig[q] == s.orig[q - 1]:
            bits = 0  # one original character folded to several: never split it
        sb = s.gap[q] | (bits & 1)
        return sb | ((sb | (bits >> 1)) << 1)

    def fold(self, text_, int reading):
        """(folded text with spaces, compact text, original index per compact character as
        int64 bytes, bound bytes, sepbound bytes): the parts of a `normalize.Folded`."""
        cdef str text = exact_str(text_)
        cdef Scratch s
        cdef Py_ssize_t q, n
        cdef int b
        memset(&s, 0, sizeof(Scratch))
        try:
            self.fold_into(text, reading, &s, True)
            n = s.n
            bound = bytearray(n + 1)
            sepbound = bytearray(n + 1)
            for q in range(n + 1):
                b = self.bound_bits(&s, q)
                sepbound[q] = b & 1
                bound[q] = b >> 1
            return (
                PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, s.f, s.nf),
                PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, s.cp, n),
                bytearray(PyBytes_FromStringAndSize(<char *>s.orig, n * sizeof(int64_t))),
                bound,
                sepbound,
            )
        finally:
            release(&s)


# ---- the term automaton ------------------------------------------------------------------------

cdef struct Node:
    int32_t first  # its first child (children are consecutive nodes)
    int32_t nchild
    int32_t fail
    int32_t pad


@cython.final
cdef class Automaton:
    """Aho-Corasick over compact code points, built once from distinct keys.

    Nodes are numbered breadth first, so the children of a node are consecutive nodes, sorted by
    their character (a binary search finds a transition, and no edge array is needed), and the
    shallow nodes most walks stay in are packed together. Those shallow nodes also get a dense
    table of complete transitions (failures resolved) for the ASCII characters the keys use.
    """

    cdef Node *node
    cdef int32_t *ch  # the character leading into each node
    cdef int32_t *rep  # the first node on the failure chain (itself included) where a key ends
    cdef int32_t *out  # key id ending here, or -1
    cdef int32_t *dlink  # the next node on the failure chain where a key ends (0: none)
    cdef int32_t *depth
    cdef int32_t *delta  # node < dense, ASCII symbol -> next node
    cdef uint8_t amap[128]  # ASCII character -> symbol (0: no key has it)
    cdef int32_t nsym
    cdef int32_t dense
    cdef Py_ssize_t nodes
    cdef readonly list values

    def __cinit__(self):
        self.nodes = 0

    def __init__(self, keys, values):
        """keys[i] (distinct, non-empty strings) reports values[i]."""
        cdef list ks = list(keys)
        cdef Py_ssize_t nk = len(ks), i, j, lcp, total = 1, v, u, p, d, maxd = 0, n, idx
        cdef int32_t *parent
        cdef int32_t *npar
        cdef int32_t *tch
        cdef int32_t *tdepth
        cdef int32_t *tout
        cdef int32_t *path
        cdef int32_t *newid
        cdef int32_t *count
        cdef int32_t f, g, sym
        cdef str k, prev = None
        self.values = list(values)
        if len(self.values) != nk:
            raise ValueError("one value per key")
        memset(self.amap, 0, sizeof(self.amap))
        self.nsym = 1
        for k in ks:
            if not k:
                raise ValueError("keys must not be empty")
            total += len(k)
            maxd = max(maxd, len(k))
            for x in k:
                if ord(x) < 128 and self.amap[ord(x)] == 0:
                    self.amap[ord(x)] = self.nsym
                    self.nsym += 1
        order = sorted(range(nk), key=ks.__getitem__)
        parent = <int32_t *>malloc(total * sizeof(int32_t))
        npar = <int32_t *>malloc(total * sizeof(int32_t))
        tch = <int32_t *>malloc(total * sizeof(int32_t))
        tdepth = <int32_t *>malloc(total * sizeof(int32_t))
        tout = <int32_t *>malloc(total * sizeof(int32_t))
        path = <int32_t *>malloc((maxd + 1) * sizeof(int32_t))
        newid = <int32_t *>malloc(total * sizeof(int32_t))
        count = <int32_t *>calloc(maxd + 2, sizeof(int32_t))
        try:
            if not (parent and npar and tch and tdepth and tout and path and newid and count):
                raise MemoryError()
            # A trie in depth-first order: sorted keys share their prefix with the previous key.
            parent[0] = -1
            tch[0] = -1
            tdepth[0] = 0
            tout[0] = -1
            path[0] = 0
            n = 1
            for idx in order:
                k = ks[idx]
                lcp = 0
                if prev is not None:
                    while lcp < len(k) and lcp < len(prev) and k[lcp] == prev[lcp]:
                        lcp += 1
                    if lcp == len(k) == len(prev):
                        raise ValueError(f"duplicate key {k!r}")
                v = path[lcp]
                for j in range(lcp, len(k)):
                    parent[n] = v
                    tch[n] = ord(k[j])
                    tdepth[n] = j + 1
                    tout[n] = -1
                    v = n
                    path[j + 1] = v
                    n += 1
                tout[v] = idx
                prev = k
            self.nodes = n
            # Breadth first: a stable counting sort of the depth-first order by depth keeps the
            # children of each node together and in character order.
            for u in range(n):
                count[tdepth[u] + 1] += 1
            for d in range(1, maxd + 2):
                count[d] += count[d - 1]
            for u in range(n):
                newid[u] = count[tdepth[u]]
                count[tdepth[u]] += 1
            self.node = <Node *>calloc(n, sizeof(Node))
            self.ch = <int32_t *>malloc(n * sizeof(int32_t))
            self.rep = <int32_t *>calloc(n, sizeof(int32_t))
            self.out = <int32_t *>malloc(n * sizeof(int32_t))
            self.dlink = <int32_t *>calloc(n, sizeof(int32_t))
            self.depth = <int32_t *>malloc(n * sizeof(int32_t))
            if not (self.node and self.ch and self.rep and self.out and self.dlink and self.depth):
                raise MemoryError()
            for u in range(n):
                v = newid[u]
                self.ch[v] = tch[u]
                self.out[v] = tout[u]
                self.depth[v] = tdepth[u]
                npar[v] = newid[parent[u]] if u else -1
            for v in range(1, n):
                p = npar[v]
                if self.node[p].nchild == 0:
                    self.node[p].first = v
                self.node[p].nchild += 1
            # Failure links and dictionary links, breadth first.
            for v in range(1, n):
                p = npar[v]
                if p == 0:
                    self.node[v].fail = 0
                else:
                    f = self.node[p].fail
                    while True:
                        g = self.step(f, self.ch[v])
                        if g >= 0:
                            self.node[v].fail = g
                            break
                        if f == 0:
                            self.node[v].fail = 0
                            break
                        f = self.node[f].fail
                f = self.node[v].fail
                self.dlink[v] = f if self.out[f] >= 0 else self.dlink[f]
                self.rep[v] = v if self.out[v] >= 0 else self.dlink[v]
            # Complete transitions of the shallowest nodes (a table of about 256 kB at most).
            self.dense = <int32_t>min(n, max(1, 65536 // self.nsym))
            self.delta = <int32_t *>calloc(self.dense * self.nsym, sizeof(int32_t))
            if self.delta == NULL:
                raise MemoryError()
            for v in range(self.dense):
                for i in range(128):
                    sym = self.amap[i]
                    if sym == 0:
                        continue
                    g = self.step(v, i)
                    if g < 0:
                        g = self.delta[self.node[v].fail * self.nsym + sym] if v else 0
                    self.delta[v * self.nsym + sym] = g
        finally:
            free(parent)
            free(npar)
            free(tch)
            free(tdepth)
            free(tout)
            free(path)
            free(newid)
            free(count)

    def __dealloc__(self):
        free(self.node)
        free(self.ch)
        free(self.rep)
        free(self.out)
        free(self.dlink)
        free(self.depth)
        free(self.delta)

    @property
    def nbytes(self):
        """Memory held by the automaton's arrays."""
        return self.nodes * (sizeof(Node) + 5 * sizeof(int32_t)) + self.dense * self.nsym * 4

    def __len__(self):
        return self.nodes

    cdef inline int32_t step(self, int32_t v, uint32_t c) noexcept:
        """The child of v by c, or -1."""
        cdef int32_t lo = self.node[v].first, hi, mid, end
        end = lo + self.node[v].nchild
        hi = end
        while lo < hi:
            mid = (lo + hi) >> 1
            if <uint32_t>self.ch[mid] < c:
                lo = mid + 1
            else:
                hi = mid
        if lo < end and <uint32_t>self.ch[lo] == c:
            return lo
        return -1

    cdef inline int32_t advance(self, int32_t v, uint32_t c) noexcept:
        """The state after reading c in state v."""
        cdef int32_t g, sym
        if c < 128:
            sym = self.amap[c]
            if sym == 0:
                return 0  # no key has c
            while v >= self.dense:
                g = self.step(v, c)
                if g >= 0:
                    return g
                v = self.node[v].fail
            return self.delta[v * self.nsym + sym]
        while True:
            g = self.step(v, c)
            if g >= 0:
                return g
            if v == 0:
                return 0
            v = self.node[v].fail

    cdef bint any_bounded(self, Tables t, Scratch *s) noexcept:
        """Whether some key occurs in s starting and ending on word boundaries."""
        cdef int32_t v = 0, u
        cdef Py_ssize_t k
        for k in range(s.n):
            v = self.advance(v, s.cp[k])
            u = self.rep[v]
            if u != 0 and t.bound_bits(s, k + 1) & 2:
                while u != 0:
                    if t.bound_bits(s, k + 1 - self.depth[u]) & 2:
                        return True
                    u = self.dlink[u]
        return False

    cdef list bounded(self, Tables t, Scratch *s):
        """(start, end, value) of every key occurrence on word boundaries (compact offsets)."""
        cdef int32_t v = 0, u
        cdef Py_ssize_t k
        cdef list hits = []
        for k in range(s.n):
            v = self.advance(v, s.cp[k])
            u = self.rep[v]
            if u != 0 and t.bound_bits(s, k + 1) & 2:
                while u != 0:
                    if t.bound_bits(s, k + 1 - self.depth[u]) & 2:
                        hits.append((k + 1 - self.depth[u], k + 1, self.values[self.out[u]]))
                    u = self.dlink[u]
        return hits

    def find(self, compact_):
        """(start, end, value) of every key occurrence in `compact`, boundaries ignored."""
        cdef str compact = exact_str(compact_)
        cdef int32_t v = 0, u
        cdef Py_ssize_t k, n = PyUnicode_GET_LENGTH(compact)
        cdef int kind = PyUnicode_KIND(compact)
        cdef void *data = PyUnicode_DATA(compact)
        cdef list hits = []
        for k in range(n):
            v = self.advance(v, rd(kind, data, k))
            u = self.rep[v]
            while u != 0:
                hits.append((k + 1 - self.depth[u], k + 1, self.values[self.out[u]]))
                u = self.dlink[u]
        return hits


# ---- typo candidates: a symmetric-deletion index, verified in C --------------------------------

cdef struct Posting:
    uint64_t h
    int32_t key


cdef int by_hash(const void *a, const void *b) noexcept nogil:
    cdef uint64_t x = (<const Posting *>a).h, y = (<const Posting *>b).h
    if x != y:
        return -1 if x < y else 1
    return (<const Posting *>a).key - (<const Posting *>b).key


cdef inline uint64_t fnv(const uint32_t *p, Py_ssize_t n) noexcept:
    cdef uint64_t h = 14695981039346656037ULL
    cdef Py_ssize_t i
    for i in range(n):
        h = (h ^ p[i]) * 1099511628211ULL
    return h


cdef Py_ssize_t deletion_hashes(const uint32_t *s, Py_ssize_t n, int k, uint64_t *out) noexcept:
    """Hashes of every string made from s by deleting at most k characters (n <= 8, so at most
    256 of them; duplicates are left in). Returns how many."""
    cdef uint32_t buf[64]
    cdef int pos[8]
    cdef Py_ssize_t count = 0, i, j, m
    cdef int d, depth
    out[count] = fnv(s, n)
    count += 1
    for d in range(1, min(k, <int>n) + 1):
        # every set of d positions, in increasing order
        for depth in range(d):
            pos[depth] = depth
        while True:
            m = 0
            j = 0
            for i in range(n):
                if j < d and pos[j] == i:
                    j += 1
                else:
                    buf[m] = s[i]
                    m += 1
            out[count] = fnv(buf, m)
            count += 1
            depth = d - 1
            while depth >= 0 and pos[depth] == n - d + depth:
                depth -= 1
            if depth < 0:
                break
            pos[depth] += 1
            for j in range(depth + 1, d):
                pos[j] = pos[j - 1] + 1
    return count


cdef int osa(const uint32_t *a, Py_ssize_t m, const uint32_t *b, Py_ssize_t n, int cutoff) except -1:
    """Optimal string alignment distance (insert, delete, substitute, swap neighbours), or
    cutoff + 1 when it is larger than cutoff (rapidfuzz's OSA.distance with score_cutoff).
    Only the band |i - j| <= cutoff of the table is computed: a cell outside it costs more."""
    cdef int stack[3 * 64]
    cdef int *rows = stack
    cdef int *r2
    cdef int *r1
    cdef int *r0
    cdef int *t
    cdef Py_ssize_t i, j, lo, hi
    cdef int best, v, big = cutoff + 1
    if m - n > cutoff or n - m > cutoff:
        return big
    if n + 1 > 64:
        rows = <int *>resize(NULL, 3 * (n + 1) * sizeof(int))
    r2, r1, r0 = rows, rows + (n + 1), rows + 2 * (n + 1)
    for j in range(n + 1):
        r1[j] = j if j <= cutoff else big
        r2[j] = big
    try:
        for i in range(1, m + 1):
            lo = max(1, i - cutoff)
            hi = min(n, i + cutoff)
            r0[lo - 1] = i if lo == 1 and i <= cutoff else big
            best = r0[lo - 1]
            for j in range(lo, hi + 1):
                v = r1[j - 1] + (0 if a[i - 1] == b[j - 1] else 1)
                if r1[j] + 1 < v:
                    v = r1[j] + 1
                if r0[j - 1] + 1 < v:
                    v = r0[j - 1] + 1
                if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1] and r2[j - 2] + 1 < v:
                    v = r2[j - 2] + 1
                r0[j] = v if v < big else big
                if v < best:
                    best = v
            if hi < n:
                r0[hi + 1] = big  # the next row reads it: outside this band
            if best > cutoff:
                return big
            t = r2
            r2 = r1
            r1 = r0
            r0 = t
        return r1[n] if r1[n] <= cutoff else big
    finally:
        if rows != stack:
            free(rows)


@cython.final
cdef class TypoIndex:
    """The keys within their edit budget of a query string (optimal string alignment).

    A symmetric-deletion index (the SymSpell idea): two strings within k edits share a string
    reachable from each by at most k deletions. Only the first `prefix` characters take part,
    which keeps the neighbourhoods small; the index holds one 64-bit hash per (deletion, key),
    sorted, and the candidates are verified exactly. Hand-written in C because the candidate
    lists of a large watchlist run to thousands, and verifying them from Python (even through
    rapidfuzz) cost hundreds of microseconds per new token.
    """

    cdef uint32_t *arena  # the keys' code points
    cdef Py_ssize_t *koff
    cdef int32_t *klen
    cdef uint8_t *kbudget
    cdef uint8_t *kexplicit  # budget set by hand: not capped by the query's own length
    cdef Py_ssize_t nkeys
    cdef uint64_t *hashes  # sorted: a hash of a deletion of a key's prefix, once per key
    cdef int32_t *ids  # the key of each
    cdef Py_ssize_t npost
    cdef uint32_t *stamp  # key -> the last lookup that saw it
    cdef uint32_t epoch
    cdef readonly int max_budget
    cdef int prefix

    def __init__(self, keys, explicit, int prefix):
        """keys[i] = (string, budget), explicit[i] whether that budget was set by hand; a key
        with budget 0 is never returned."""
        cdef list ks = list(keys)
        cdef list ex = list(explicit)
        cdef Py_ssize_t i, total = 0, o = 0, n, c, j, cap
        cdef uint64_t hs[256]
        cdef int budget
        cdef Posting *post = NULL
        if len(ex) != len(ks):
            raise ValueError("one explicit flag per key")
        if not 1 <= prefix <= 8:
            raise ValueError("prefix must be 1 to 8 characters")
        self.prefix = prefix
        self.nkeys = len(ks)
        self.max_budget = 0
        for key, budget in ks:
            total += len(key)
            if budget < 0 or budget > 7:
                raise ValueError(f"edit budget {budget} out of range 0..7")
            self.max_budget = max(self.max_budget, budget)
        self.arena = <uint32_t *>malloc((total + 1) * sizeof(uint32_t))
        self.koff = <Py_ssize_t *>malloc((self.nkeys + 1) * sizeof(Py_ssize_t))
        self.klen = <int32_t *>malloc((self.nkeys + 1) * sizeof(int32_t))
        self.kbudget = <uint8_t *>malloc(self.nkeys + 1)
        self.kexplicit = <uint8_t *>malloc(self.nkeys + 1)
        self.stamp = <uint32_t *>calloc(self.nkeys + 1, sizeof(uint32_t))
        if not (self.arena and self.koff and self.klen and self.kbudget and self.kexplicit and self.stamp):
            raise MemoryError()
        for i in range(self.nkeys):
            key, budget = ks[i]
            self.koff[i] = o
            self.klen[i] = len(key)
            self.kbudget[i] = budget
            self.kexplicit[i] = 1 if ex[i] else 0
            for x in key:
                self.arena[o] = ord(x)
                o += 1
        # Postings: (hash of a deletion of the key's prefix, key), each pair once, sorted.
        cap = max(self.nkeys * 16, 1)
        post = <Posting *>malloc(cap * sizeof(Posting))
        if post == NULL:
            raise MemoryError()
        try:
            for i in range(self.nkeys):
                if self.kbudget[i] == 0:
                    continue
                n = min(self.klen[i], self.prefix)
                c = deletion_hashes(self.arena + self.koff[i], n, self.kbudget[i], hs)
                if self.npost + c > cap:
                    cap = 2 * (self.npost + c)
                    post = <Posting *>resize(post, cap * sizeof(Posting))
                for j in range(c):
                    post[self.npost + j].h = hs[j]
                    post[self.npost + j].key = <int32_t>i
                self.npost += c
            qsort(post, self.npost, sizeof(Posting), by_hash)
            self.hashes = <uint64_t *>malloc(max(self.npost, 1) * sizeof(uint64_t))
            self.ids = <int32_t *>malloc(max(self.npost, 1) * sizeof(int32_t))
            if self.hashes == NULL or self.ids == NULL:
                raise MemoryError()
            j = 0  # each pair once (a key's deletions can coincide: "aab" less either a)
            for i in range(self.npost):
                if j and post[i].h == self.hashes[j - 1] and post[i].key == self.ids[j - 1]:
                    continue
                self.hashes[j] = post[i].h
                self.ids[j] = post[i].key
                j += 1
            self.npost = j
        finally:
            free(post)

    def __dealloc__(self):
        free(self.arena)
        free(self.koff)
        free(self.klen)
        free(self.kbudget)
        free(self.kexplicit)
        free(self.hashes)
        free(self.ids)
        free(self.stamp)

    def __len__(self):
        return self.npost

    @property
    def nbytes(self):
        """Memory held by the index."""
        cdef Py_ssize_t total = self.npost * 12 + self.nkeys * (sizeof(Py_ssize_t) + 10)
        if self.nkeys:
            total += (self.koff[self.nkeys - 1] + self.klen[self.nkeys - 1]) * 4
        return total

    def lookup(self, query_, int own):
        """((key id, distance), ...) of every key within its budget of `query` at distance >= 1,
        a key's budget capped at `own` unless it was set by hand (a written word gets no more
        typos than its own length allows); sorted by key id."""
        cdef str query = exact_str(query_)
        cdef Py_ssize_t qlen = PyUnicode_GET_LENGTH(query), i, lo, hi, mid, c, p, nres = 0, cap = 64
        cdef int kind = PyUnicode_KIND(query)
        cdef void *data = PyUnicode_DATA(query)
        cdef uint32_t qbuf[64]
        cdef uint64_t hs[256]
        cdef uint64_t h
        cdef int32_t key
        cdef int eff, d
        cdef uint32_t epoch
        cdef uint32_t *q = qbuf
        cdef int64_t *res = NULL  # key << 8 | distance
        if not self.npost or qlen == 0:
            return ()
        try:
            if qlen > 64:
                q = <uint32_t *>resize(NULL, qlen * sizeof(uint32_t))
            res = <int64_t *>resize(NULL, cap * sizeof(int64_t))
            for i in range(qlen):
                q[i] = rd(kind, data, i)
            c = deletion_hashes(q, min(qlen, self.prefix), self.max_budget, hs)
            # The stamps mark keys already verified in this lookup; no Python runs until the
            # loop ends, so no other thread's lookup can interleave.
            self.epoch += 1
            if self.epoch == 0:  # wrapped: forget every stamp
                memset(self.stamp, 0, self.nkeys * sizeof(uint32_t))
                self.epoch = 1
            epoch = self.epoch
            for i in range(c):
                h = hs[i]
                lo, hi = 0, self.npost
                while lo < hi:
                    mid = (lo + hi) >> 1
                    if self.hashes[mid] < h:
                        lo = mid + 1
                    else:
                        hi = mid
                p = lo
                while p < self.npost and self.hashes[p] == h:
                    key = self.ids[p]
                    p += 1
                    if self.stamp[key] == epoch:
                        continue
                    self.stamp[key] = epoch
                    eff = self.kbudget[key]
                    if not self.kexplicit[key] and own < eff:
                        eff = own
                    if eff <= 0:
                        continue
                    d = osa(q, qlen, self.arena + self.koff[key], self.klen[key], eff)
                    if 0 < d <= eff:
                        if nres == cap:
                            cap *= 2
                            res = <int64_t *>resize(res, cap * sizeof(int64_t))
                        res[nres] = (<int64_t>key << 8) | d
                        nres += 1
            return tuple(sorted([(res[i] >> 8, res[i] & 255) for i in range(nres)]))
        finally:
            if q != qbuf:
                free(q)
            free(res)


# ---- sealed watchlists: the exact screen over boundary spans ------------------------------------

cdef enum:
    MISS_SLOTS = 512
    MISS_CHARS = 32


@cython.final
cdef class SpanScreen:
    """The exact match of a sealed watchlist, which holds no term to build an automaton from.

    A term is spelled on word boundaries, so every span of the compact text from a word
    boundary to a word boundary, `lmin` to `lmax` characters long, is a candidate. Each gets a
    polynomial hash, sum(c_k * r^k) mod 2^64 (k from the span's start), from prefix sums over
    the text, and its top `nbits` bits are looked up in a bitset of the terms'
    screen values (sealed.poly_hash). The few spans that pass go to `verify(span)`, the keyed
    digest lookup, which returns what the span matches or None: the digest decides, the screen
    only spares digests. Nothing here changes after construction, so threads may share it.
    """

    cdef uint8_t *bits
    cdef int shift
    cdef uint64_t r
    cdef uint64_t rinv  # r^-1 mod 2^64
    cdef readonly Py_ssize_t lmin
    cdef readonly Py_ssize_t lmax
    cdef object verify
    # Spans that passed the screen but not the digest, by content (a common word can share its
    # screen value with a term: "model" and "Kodel" differ in the first character only, which
    # the top bits of the hash barely see). Direct-mapped, so bounded; a slot is written with
    # no Python call in between, so threads never see half of one.
    cdef uint64_t miss_hash[MISS_SLOTS]
    cdef uint32_t miss_len[MISS_SLOTS]  # 0: empty
    cdef uint32_t miss_cp[MISS_SLOTS][MISS_CHARS]

    def __init__(self, values, uint64_t r, int nbits, Py_ssize_t lmin, Py_ssize_t lmax, verify):
        """`values`: the terms' screen values, each below 2**nbits; `verify(span) -> value or
        None` for a span that passes."""
        cdef uint64_t v
        if not 8 <= nbits <= 32:
            raise ValueError("nbits must be 8 to 32")
        if lmin < 1 or lmax < lmin:
            raise ValueError("span lengths must satisfy 1 <= lmin <= lmax")
        free(self.bits)
        self.bits = <uint8_t *>calloc((<size_t>1) << (nbits - 3), 1)
        if self.bits == NULL:
            raise MemoryError()
        if not r & 1:
            raise ValueError("r must be odd (invertible mod 2^64)")
        self.shift = 64 - nbits
        self.r = r
        self.rinv = r  # Newton's iteration: each step doubles the correct low bits (3 -> 96)
        for _ in range(5):
            self.rinv *= 2 - r * self.rinv
        self.lmin = lmin
        self.lmax = lmax
        self.verify = verify
        for x in values:
            v = x
            if v >> nbits:
                raise ValueError(f"screen value {x} has more than {nbits} bits")
            self.bits[v >> 3] |= <uint8_t>(1 << (v & 7))

    def __dealloc__(self):
        free(self.bits)

    cdef int walk(self, Tables t, Scratch *s, list hits) except -1:
        """Verify every boundary span of s that passes the screen: append (start, end, value)
        to `hits`, or with no list stop at the first and return 1."""
        cdef Py_ssize_t n = s.n, k, nw = 0
        cdef int32_t stack[512]
        cdef int32_t *starts = stack  # the positions where a word starts
        if n < self.lmin:
            return 0
        if n + 1 > 512:
            starts = <int32_t *>resize(NULL, (n + 1) * sizeof(int32_t))
        try:
            for k in range(n + 1):
                if t.bound_bits(s, k) & 2:
                    starts[nw] = <int32_t>k
                    nw += 1
            return self.spans(s.cp, n, starts, nw, hits)
        finally:
            if starts != stack:
                free(starts)

    cdef int spans(self, const uint32_t *cp, Py_ssize_t n, const int32_t *starts, Py_ssize_t nw,
                   list hits) except -1:
        """`walk` on code points and word starts. With prefix sums P[k] = sum(c_j * r^j, j < k)
        and inverse powers, a span's hash is (P[e] - P[a]) * r^-a: a few operations a span,
        whatever its length."""
        cdef uint64_t stack[2 * 512]
        cdef uint64_t *prefix = stack
        cdef uint64_t *inv
        cdef uint64_t p = 1, q = 1, v, h
        cdef Py_ssize_t i, j, a, e, k, slot
        cdef object value
        if n + 1 > 512:
            prefix = <uint64_t *>resize(NULL, 2 * (n + 1) * sizeof(uint64_t))
        inv = prefix + (n + 1)
        try:
            prefix[0] = 0
            inv[0] = 1
            for k in range(n):  # mod 2^64, as sealed.poly_hash
                prefix[k + 1] = prefix[k] + cp[k] * p
                p *= self.r
                q *= self.rinv
                inv[k + 1] = q
            for i in range(nw):
                a = starts[i]
                for j in range(i + 1, nw):
                    e = starts[j]
                    if e - a > self.lmax:
                        break
                    if e - a < self.lmin:
                        continue
                    h = (prefix[e] - prefix[a]) * inv[a]
                    v = h >> self.shift
                    if not (self.bits[v >> 3] >> (v & 7)) & 1:
                        continue
                    slot = mix(h) & (MISS_SLOTS - 1)
                    if self.missed(slot, h, cp + a, e - a):
                        continue
                    # Python runs here (other threads too): the buffers are this call's own,
                    # and the bitset never changes.
                    value = self.verify(PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, cp + a, e - a))
                    if value is None:
                        if e - a <= MISS_CHARS:
                            self.miss_hash[slot] = h
                            self.miss_len[slot] = <uint32_t>(e - a)
                            memcpy(self.miss_cp[slot], cp + a, (e - a) * sizeof(uint32_t))
                        continue
                    if hits is None:
                        return 1
                    hits.append((a, e, value))
            return 0
        finally:
            if prefix != stack:
                free(prefix)

    cdef inline bint missed(self, Py_ssize_t slot, uint64_t h, const uint32_t *cp, Py_ssize_t n) noexcept:
        """Whether this span was verified before and matched nothing."""
        return (self.miss_len[slot] == n and self.miss_hash[slot] == h
                and memcmp(self.miss_cp[slot], cp, n * sizeof(uint32_t)) == 0)

    def find(self, compact_, bound):
        """(start, end, value) of every verified span of `compact` between word starts, given
        as `bound` (len(compact) + 1 flags, as `Folded.bound`): the walk, for tests."""
        cdef str compact = exact_str(compact_)
        cdef Py_ssize_t n = PyUnicode_GET_LENGTH(compact), k, nw = 0
        cdef list hits = []
        cdef uint32_t *cp = NULL
        cdef int32_t *starts = NULL
        if len(bound) != n + 1:
            raise ValueError("one boundary flag per position")
        try:
            cp = <uint32_t *>resize(NULL, (n + 1) * sizeof(uint32_t))
            starts = <int32_t *>resize(NULL, (n + 1) * sizeof(int32_t))
            for k in range(n):
                cp[k] = ord(compact[k])
            for k in range(n + 1):
                if bound[k]:
                    starts[nw] = <int32_t>k
                    nw += 1
            self.spans(cp, n, starts, nw, hits)
            return hits
        finally:
            free(cp)
            free(starts)


# ---- the codename core: screen and full-match analysis ------------------------------------------

cdef inline uint64_t mix(uint64_t h) noexcept:
    h ^= h >> 33
    h *= 0xFF51AFD7ED558CCDULL
    h ^= h >> 33
    return h


cdef inline bint is_letter(uint32_t c) noexcept:
    """`[^\\W\\d_]` of Python's re: alphanumeric but not a decimal digit (nor "_")."""
    if c < 128:
        return (c | 32) - 97 < 26
    return Py_UNICODE_ISALNUM(c) and not Py_UNICODE_ISDECIMAL(c)


cdef inline bint is_leet(uint32_t c) noexcept:
    """A character the leet readings fold differently (normalize.LEET_ANY)."""
    return (c == 48 or c == 49 or c == 51 or c == 52 or c == 53 or c == 55
            or c == 64 or c == 36 or c == 33 or c == 124)


cdef int leet_readings(str text) noexcept:
    """How many leet readings `text` may need (a superset of `normalize.readings`): 1 when a
    leet digit or symbol has a letter within two characters, 2 when the text also holds 1, ! or
    |, else 0. LEET_HINT's three alternatives all put a letter that close to a leet character."""
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(text), i, j
    cdef int kind = PyUnicode_KIND(text)
    cdef void *data = PyUnicode_DATA(text)
    cdef uint32_t c
    cdef bint hint = False, ambiguous = False
    for i in range(n):
        c = rd(kind, data, i)
        if not is_leet(c):
            continue
        if c == 49 or c == 33 or c == 124:
            ambiguous = True
        if not hint:
            for j in range(max(i - 2, 0), min(i + 3, n)):
                if j != i and is_letter(rd(kind, data, j)):
                    hint = True
                    break
        if hint and ambiguous:
            break
    if not hint:
        return 0
    return 2 if ambiguous else 1


@cython.final
cdef class Core:
    """One watchlist's codename screen and the per-text analysis its full match runs on.

    `verdict(piece) -> int` is the Python specification of a token's verdict byte; its answers
    are cached here by the piece's characters (bounded: cleared when `limit` is reached).
    """

    cdef Tables tables
    cdef Automaton automaton  # None: no keys
    cdef SpanScreen spans  # a sealed watchlist's exact screen instead of the automaton, or None
    cdef object verdict
    cdef readonly bint fuzzy
    # the verdict cache: open addressing, keys' characters in `arena`
    cdef uint64_t *hh
    cdef uint32_t *hoff
    cdef uint32_t *hlen  # 0: empty slot
    cdef uint8_t *hval
    cdef Py_ssize_t cap
    cdef Py_ssize_t count
    cdef Py_ssize_t limit
    cdef uint32_t *arena
    cdef Py_ssize_t an
    cdef Py_ssize_t acap

    def __cinit__(self):
        self.cap = 0

    def __init__(self, Tables tables, Automaton automaton, verdict, bint fuzzy, Py_ssize_t limit,
                 SpanScreen spans=None):
        if automaton is not None and spans is not None:
            raise ValueError("exact matches come from an automaton or a span screen, not both")
        self.tables = tables
        self.automaton = automaton
        self.spans = spans
        self.verdict = verdict
        self.fuzzy = fuzzy
        self.limit = max(limit, 16)
        self._alloc(1 << 12)

    def __dealloc__(self):
        free(self.hh)
        free(self.hoff)
        free(self.hlen)
        free(self.hval)
        free(self.arena)

    cdef int _alloc(self, Py_ssize_t cap) except -1:
        free(self.hh)
        free(self.hoff)
        free(self.hlen)
        free(self.hval)
        self.hh = <uint64_t *>malloc(cap * sizeof(uint64_t))
        self.hoff = <uint32_t *>malloc(cap * sizeof(uint32_t))
        self.hlen = <uint32_t *>calloc(cap, sizeof(uint32_t))
        self.hval = <uint8_t *>malloc(cap)
        if not (self.hh and self.hoff and self.hlen and self.hval):
            raise MemoryError()
        self.cap = cap
        self.count = 0
        return 0

    def clear_cache(self):
        """Forget every cached verdict (after the verdict function changed)."""
        memset(self.hlen, 0, self.cap * sizeof(uint32_t))
        self.count = 0
        self.an = 0

    @property
    def cached(self):
        """How many verdicts are cached."""
        return self.count

    cdef int _probe(self, uint64_t h, int kind, void *data, Py_ssize_t a, Py_ssize_t b) noexcept:
        """The cached verdict of text[a:b] (hash h), or -1."""
        cdef Py_ssize_t mask = self.cap - 1, i = mix(h) & mask, k
        cdef uint32_t n = <uint32_t>(b - a)
        cdef uint32_t *key
        while self.hlen[i] != 0:
            if self.hh[i] == h and self.hlen[i] == n:
                key = self.arena + self.hoff[i]
                for k in range(n):
                    if key[k] != rd(kind, data, a + k):
                        break
                else:
                    return self.hval[i]
            i = (i + 1) & mask
        return -1

    cdef int _insert(self, uint64_t h, int kind, void *data, Py_ssize_t a, Py_ssize_t b,
                     int code) except -1:
        cdef Py_ssize_t n = b - a, k, i, mask, j, old_cap, cap
        cdef uint64_t *old_h
        cdef uint32_t *old_off
        cdef uint32_t *old_len
        cdef uint8_t *old_val
        if self._probe(h, kind, data, a, b) >= 0:
            return 0  # another thread got there first
        if self.count >= self.limit or self.an + n >= 0xFFFFFFFF:
            self.clear_cache()  # bounded memory on endless novel tokens
        if 2 * (self.count + 1) > self.cap:  # grow: rehash the stored hashes
            old_h, old_off, old_len, old_val, old_cap = self.hh, self.hoff, self.hlen, self.hval, self.cap
            self.hh = self.hoff = self.hlen = NULL
            self.hval = NULL
            try:
                self._alloc(2 * old_cap)
            except MemoryError:
                self.hh, self.hoff, self.hlen, self.hval, self.cap = old_h, old_off, old_len, old_val, old_cap
                raise
            mask = self.cap - 1
            for j in range(old_cap):
                if old_len[j] != 0:
                    i = mix(old_h[j]) & mask
                    while self.hlen[i] != 0:
                        i = (i + 1) & mask
                    self.hh[i] = old_h[j]
                    self.hoff[i] = old_off[j]
                    self.hlen[i] = old_len[j]
                    self.hval[i] = old_val[j]
                    self.count += 1
            free(old_h)
            free(old_off)
            free(old_len)
            free(old_val)
        if self.an + n > self.acap:
            cap = max(2 * self.acap, self.an + n, 4096)
            self.arena = <uint32_t *>resize(self.arena, cap * sizeof(uint32_t))
            self.acap = cap
        for k in range(n):
            self.arena[self.an + k] = rd(kind, data, a + k)
        mask = self.cap - 1
        i = mix(h) & mask
        while self.hlen[i] != 0:
            i = (i + 1) & mask
        self.hh[i] = h
        self.hoff[i] = <uint32_t>self.an
        self.hlen[i] = <uint32_t>n
        self.hval[i] = <uint8_t>code
        self.an += n
        self.count += 1
        return 0

    cdef int piece_code(self, str text, int kind, void *data, Py_ssize_t a, Py_ssize_t b) except -1:
        """The verdict of the piece text[a:b], cached."""
        cdef uint64_t h = 14695981039346656037ULL
        cdef Py_ssize_t k
        cdef int code
        for k in range(a, b):
            h = (h ^ rd(kind, data, k)) * 1099511628211ULL
        code = self._probe(h, kind, data, a, b)
        if code >= 0:
            return code
        code = self.verdict(PyUnicode_Substring(text, a, b))  # may run other threads
        self._insert(h, kind, data, a, b, code)
        return code

    cdef bint hot_tokens(self, str text) except -1:
        """Whether a piece of `text` (cut at characters that separate in every reading) is hot,
        or single letters stand on both sides of a cut with only pieces that fold to nothing
        between them (a spaced-out run)."""
        cdef Py_ssize_t n = PyUnicode_GET_LENGTH(text), i = 0, a
        cdef int kind = PyUnicode_KIND(text)
        cdef void *data = PyUnicode_DATA(text)
        cdef bint pending = False
        cdef int code
        cdef Tables t = self.tables
        while i < n:
            if t.separates(rd(kind, data, i)):
                i += 1
                continue
            a = i
            i += 1
            while i < n and not t.separates(rd(kind, data, i)):
                i += 1
            code = self.piece_code(text, kind, data, a, i)
            if code & V_HOT or (pending and code & V_LEAD):
                return True
            pending = (code & V_TRAIL) != 0 or (pending and (code & V_CLEAR) != 0)
        return False

    cdef bint exact_any(self, str text, Scratch *s) except -1:
        """Whether a key is spelled on word boundaries in some reading `text` may need."""
        cdef int leet, r
        if self.automaton is None and self.spans is None:
            return False
        self.tables.fold_into(text, 0, s, False)
        if self.exact_in(s):
            return True
        leet = leet_readings(text)
        for r in range(1, leet + 1):
            self.tables.fold_into(text, r, s, False)
            if self.exact_in(s):
                return True
        return False

    cdef inline bint exact_in(self, Scratch *s) except -1:
        if self.automaton is not None:
            return self.automaton.any_bounded(self.tables, s)
        return self.spans.walk(self.tables, s, None)

    def screen(self, texts):
        """Indices of `texts` that may hold a codename (a superset of what the full match
        reports): an exact spelling on word boundaries, a hot piece or a spaced-out run."""
        cdef Scratch s
        cdef list out = []
        cdef Py_ssize_t i = 0
        cdef str text
        memset(&s, 0, sizeof(Scratch))
        try:
            for item in texts:
                text = exact_str(item)
                if PyUnicode_GET_LENGTH(text) and (
                    (self.fuzzy and self.hot_tokens(text)) or self.exact_any(text, &s)
                ):
                    out.append(i)
                i += 1
        finally:
            release(&s)
        return out

    def analyse(self, text_, int reading, bint exact=True):
        """What the full match needs of `text` folded in one reading:

        (compact, original index per compact character as int64 bytes, exact hits as
        (start, end, value) on word boundaries, the spans looked up for typos (tokens, words
        inside tokens, runs of three or more single-letter tokens; none written with digits
        only), the words, whether each word is written with digits only (bytes), the number of
        tokens, the length of the first and of the last token). Offsets are compact. A run does
        not cross between a caseless script and letters (codenames._spans)."""
        cdef str text = exact_str(text_)
        cdef Scratch s
        cdef Py_ssize_t n, q, a, b, w, run_start = 0, run_len = 0, ntok = 0, first_len = 0, last_len = 0
        cdef uint8_t *bits = NULL
        cdef int32_t *nondigit = NULL  # non-digit characters before each position
        cdef int kind = PyUnicode_KIND(text)
        cdef void *data = PyUnicode_DATA(text)
        cdef list spans = [], words = [], hits
        cdef bytearray wdigit = bytearray()
        cdef uint8_t caseless = self.tables.caseless_class
        memset(&s, 0, sizeof(Scratch))
        try:
            self.tables.fold_into(text, reading, &s, False)
            n = s.n
            bits = <uint8_t *>malloc(n + 1)
            nondigit = <int32_t *>malloc((n + 1) * sizeof(int32_t))
            if bits == NULL or nondigit == NULL:
                raise MemoryError()
            nondigit[0] = 0
            for q in range(n + 1):
                bits[q] = self.tables.bound_bits(&s, q)
                if q < n:
                    nondigit[q + 1] = nondigit[q] + (
                        0 if Py_UNICODE_ISDIGIT(rd(kind, data, s.orig[q])) else 1
                    )
            hits = []
            if exact and self.automaton is not None:
                hits = self.automaton.bounded(self.tables, &s)
            elif exact and self.spans is not None:
                self.spans.walk(self.tables, &s, hits)
            a = 0
            for b in range(1, n + 1):
                if not bits[b] & 1:
                    continue
                # token [a, b): itself, the words inside it, and runs of single letters
                ntok += 1
                if ntok == 1:
                    first_len = b - a
                last_len = b - a
                if nondigit[b] - nondigit[a]:
                    spans.append((a, b))
                w = a
                for q in range(a + 1, b + 1):
                    if bits[q] & 2:
                        words.append((w, q))
                        wdigit.append(0 if nondigit[q] - nondigit[w] else 1)
                        if q - w < b - a and nondigit[q] - nondigit[w]:
                            spans.append((w, q))  # a word smaller than its token
                        w = q
                if b - a == 1:
                    if run_len and (s.cls[a] == caseless) != (s.cls[a - 1] == caseless):
                        if run_len >= 3 and nondigit[a] - nondigit[run_start]:
                            spans.append((run_start, a))
                        run_len = 0
                    if run_len == 0:
                        run_start = a
                    run_len += 1
                else:
                    if run_len >= 3 and nondigit[a] - nondigit[run_start]:
                        spans.append((run_start, a))
                    run_len = 0
                a = b
            if run_len >= 3 and nondigit[n] - nondigit[run_start]:
                spans.append((run_start, n))
            return (
                PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, s.cp, n),
                PyBytes_FromStringAndSize(<char *>s.orig, n * sizeof(int64_t)),
                hits,
                spans,
                words,
                bytes(wdigit),
                ntok,
                first_len,
                last_len,
            )
        finally:
            free(bits)
            free(nondigit)
            release(&s)
