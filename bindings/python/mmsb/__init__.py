# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""ctypes binding of libmmsb (standard library only).

    import mmsb
    with mmsb.State(log_path="app.tlog") as s:
        a, b = s.page_create(4096), s.page_create(4096)
        s.edge_add(a, b)
        s.set_passthrough(b, a)              # b follows a
        s.update(a, bytes(4096))             # logged, applied, b recomputed
        s.update_batch([(a, x), (b, y)])     # one crossing, one wave
        s.checkpoint_write("app.ckpt")

Errors raise mmsb.Error, whose .name is the library's error name (mmsb_errname: "PAGE_NOT_FOUND",
"EINVAL", ...) and .code the negative value. Page bytes cross without extra copies where ctypes
allows: a bytes object is passed by pointer, a writable buffer (bytearray, memoryview, array) is
lent to the library in place, and read_into() fills a caller's buffer.

The library is found in $MMSB_LIB, then beside this package in a source tree (.output/), then
by the dynamic linker (an installed libmmsb.so.0).
"""
import ctypes
import ctypes.util
import os
import platform
import struct
import threading

__all__ = ["Error", "ClosedError", "State", "Delta", "version", "LOC_CPU", "LOC_UNIFIED",
           "EDGE_DATA", "EDGE_CONTROL", "EDGE_GPU", "EDGE_COMPILER", "EDGE_ANY", "DURABLE_BATCH",
           "DURABLE_NONE", "DURABLE_EVERY", "LOG_CREATE", "LOG_APPEND", "LOG_TRUNCATE",
           "DELTA_SPARSE"]

LOC_CPU, LOC_GPU, LOC_UNIFIED, LOC_DEFAULT = 0, 1, 2, -1
DURABLE_BATCH, DURABLE_NONE, DURABLE_EVERY = 0, 1, 2
LOG_CREATE, LOG_APPEND, LOG_TRUNCATE = 0, 1, 2
EDGE_DATA, EDGE_CONTROL, EDGE_GPU, EDGE_COMPILER, EDGE_ANY = 0, 1, 2, 3, -1
DELTA_SPARSE = 1


def _find_library():
    env = os.environ.get("MMSB_LIB")
    if env:
        return env
    here = os.path.dirname(os.path.abspath(__file__))
    built = os.path.join(here, "..", "..", "..", ".output", "libmmsb.so.0")
    if os.path.exists(built):
        return os.path.normpath(built)
    found = ctypes.util.find_library("mmsb")
    if found:
        return found
    raise OSError("libmmsb not found: set MMSB_LIB to libmmsb.so.0, or install it")


_lib = ctypes.CDLL(_find_library(), use_errno=True)

_u64, _i64, _sz, _ssz = ctypes.c_uint64, ctypes.c_int64, ctypes.c_size_t, ctypes.c_ssize_t
_vp, _cp, _int = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int


class _StateOpts(ctypes.Structure):
    _fields_ = [("sz", _sz), ("log_path", _cp), ("log_mode", _int), ("durability", _int),
                ("default_location", _int), ("deferred", ctypes.c_bool)]


class _ReplayOpts(ctypes.Structure):
    _fields_ = [("sz", _sz), ("checkpoint", _cp), ("template_state", _vp), ("to_lsn", _u64),
                ("to_epoch", ctypes.c_uint32), ("to_timestamp", _u64)]


class _Edge(ctypes.Structure):
    _fields_ = [("page", _u64), ("type", _int)]


class _PageWrite(ctypes.Structure):
    # char *, not void *: a bytes object is stored as a pointer to its own buffer (no copy)
    _fields_ = [("id", _u64), ("data", _cp), ("len", _sz)]


class _Divergence(ctypes.Structure):
    _fields_ = [("l2", ctypes.c_double), ("max_delta", ctypes.c_uint32),
                ("pages_compared", _u64), ("pages_differing", _u64), ("only_in_a", _u64),
                ("only_in_b", _u64)]


class _CkptInfo(ctypes.Structure):
    _fields_ = [("version", _int), ("pages", _u64), ("edges", _u64), ("page_bytes", _u64),
                ("next_page_id", _u64), ("next_delta_id", _u64), ("log_lsn", _u64),
                ("log_id", _u64), ("file_size", _u64)]


_RECOMPUTE = ctypes.CFUNCTYPE(_int, _vp, _u64, ctypes.POINTER(ctypes.c_uint8), _sz, _vp)
_TRANSFORM = ctypes.CFUNCTYPE(_int, ctypes.POINTER(ctypes.c_uint8), _sz,
                              ctypes.POINTER(ctypes.c_uint8), _sz, _vp)


def _sig(name, restype, *argtypes):
    f = getattr(_lib, name)
    f.restype, f.argtypes = restype, list(argtypes)
    return f


# every function the binding calls, typed once
_errname = _sig("mmsb_errname", _cp, _int)
_strerror = _sig("mmsb_strerror", _cp, _int)
_version = _sig("mmsb_version", _cp)
_state_open = _sig("mmsb_state_open", _vp, ctypes.POINTER(_StateOpts))
_state_close = _sig("mmsb_state_close", None, _vp)
_state_flush = _sig("mmsb_state_flush", _int, _vp)
_page_create = _sig("mmsb_page_create", _int, _vp, _sz, _int, ctypes.POINTER(_u64))
_page_free = _sig("mmsb_page_free", _int, _vp, _u64)
_page_read = _sig("mmsb_page_read", _ssz, _vp, _u64, _vp, _sz, _sz)
_page_size = _sig("mmsb_page_size", _ssz, _vp, _u64)
_page_epoch = _sig("mmsb_page_epoch", _i64, _vp, _u64)
_page_count = _sig("mmsb_page_count", _sz, _vp)
_page_list = _sig("mmsb_page_list", _ssz, _vp, ctypes.POINTER(_u64), _sz)
_page_update = _sig("mmsb_page_update", _int, _vp, _u64, _vp, _sz)
_page_write = _sig("mmsb_page_write", _int, _vp, _u64, _u64, _vp, _sz)
_page_update_batch = _sig("mmsb_page_update_batch", _int, _vp, ctypes.POINTER(_PageWrite), _sz)
_delta_new = _sig("mmsb_delta_new", _vp, _u64, _vp, _sz, _vp, _sz, ctypes.c_uint)
_delta_free = _sig("mmsb_delta_free", None, _vp)
_delta_id = _sig("mmsb_delta_id", _u64, _vp)
_delta_epoch = _sig("mmsb_delta_epoch", ctypes.c_uint32, _vp)
_route = _sig("mmsb_route", _int, _vp, _vp)
_route_batch = _sig("mmsb_route_batch", _int, _vp, ctypes.POINTER(_vp), _sz)
_edge_add = _sig("mmsb_edge_add", _int, _vp, _u64, _u64, _int)
_edge_remove = _sig("mmsb_edge_remove", _int, _vp, _u64, _u64, _int)
_edge_children = _sig("mmsb_edge_children", _ssz, _vp, _u64, ctypes.POINTER(_Edge), _sz)
_edge_parents = _sig("mmsb_edge_parents", _ssz, _vp, _u64, ctypes.POINTER(_Edge), _sz)
_edge_count = _sig("mmsb_edge_count", _sz, _vp)
_toposort = _sig("mmsb_graph_toposort", _ssz, _vp, ctypes.POINTER(_u64), _sz)
_bfs = _sig("mmsb_graph_bfs", _ssz, _vp, _u64, ctypes.POINTER(_u64), _sz)
_set_recompute = _sig("mmsb_page_set_recompute", _int, _vp, _u64, _RECOMPUTE, _vp)
_set_passthrough = _sig("mmsb_page_set_passthrough", _int, _vp, _u64, _u64, _TRANSFORM, _vp)
_set_deferred = _sig("mmsb_propagate_set_deferred", _int, _vp, ctypes.c_bool)
_propagate_run = _sig("mmsb_propagate_run", _int, _vp)
_page_recompute = _sig("mmsb_page_recompute", _int, _vp, _u64)
_ckpt_write = _sig("mmsb_checkpoint_write", _int, _vp, _cp)
_ckpt_load = _sig("mmsb_checkpoint_load", _int, _vp, _cp)
_ckpt_verify = _sig("mmsb_checkpoint_verify", _int, _cp, ctypes.POINTER(_CkptInfo))
_replay = _sig("mmsb_replay", _vp, _cp, ctypes.POINTER(_ReplayOpts))
_diverge = _sig("mmsb_state_diverge", _int, _vp, _vp, ctypes.POINTER(_Divergence))
_verify = _sig("mmsb_state_verify", _int, _vp, ctypes.POINTER(_Divergence))


class Error(Exception):
    """A libmmsb error: .code (negative), .name ("PAGE_NOT_FOUND", "EINVAL", ...)."""

    def __init__(self, code, what=""):
        self.code = code
        self.name = _errname(code).decode()
        msg = _strerror(code).decode()
        super().__init__(f"{what + ': ' if what else ''}{self.name}: {msg}")


class ClosedError(Error, ValueError):
    """A call on a closed (or closing) State or Delta: a ValueError, and an Error named EINVAL."""

    def __init__(self, what):
        self.code, self.name = -22, "EINVAL"
        Exception.__init__(self, what)


def _check(rc, what):
    if rc < 0:
        raise Error(rc, what)
    return rc


def _errno_error(what):
    return Error(-(ctypes.get_errno() or 22), what)  # EINVAL when errno was not set


def _buf(data):
    """(arg, length) for a const void * argument: data's own bytes, never copied except for a
    read-only buffer that is not bytes. bytes pass as they are; a writable buffer (bytearray,
    memoryview, array) is lent in place."""
    if type(data) is bytes:
        return data, len(data)
    mv = memoryview(data)
    if not mv.c_contiguous:
        raise ValueError("page data must be a contiguous buffer")
    if mv.readonly:
        b = mv.tobytes()
        return b, len(b)
    if mv.nbytes == 0:
        return None, 0
    return (ctypes.c_char * mv.nbytes).from_buffer(mv.cast("B")), mv.nbytes


def _address(arg):
    """The address behind a _buf() argument, for pointers stored in structures."""
    if arg is None:
        return None
    if type(arg) is bytes:
        return ctypes.cast(ctypes.c_char_p(arg), _vp).value
    return ctypes.addressof(arg)


def _bytes_data_offset():
    """Where CPython keeps a bytes object's data relative to its id(), checked on a live object;
    None elsewhere. It lets update_batch() describe n writes with one joined buffer instead of n
    ctypes objects (0.14 us a write instead of 0.42 us here)."""
    probe = b"mmsb-probe"
    off = ctypes.cast(ctypes.c_char_p(probe), _vp).value - id(probe)
    ok = platform.python_implementation() == "CPython" and 0 < off <= 64
    return off if ok and ctypes.sizeof(_PageWrite) == _PAGE_WRITE.size else None


_PAGE_WRITE = struct.Struct("=QQQ")  # struct mmsb_page_write on LP64: id, data, len
_BYTES_OFF = _bytes_data_offset()
_PAGE_WRITE_P = ctypes.POINTER(_PageWrite)


def version():
    return _version().decode()


# ---- Lifetime of library handles -------------------------------------------------------------
#
# A State or a Delta owns a pointer into the library. Every method that passes it to the library
# first registers the calling thread in the object's list of calls in flight (_calls) and takes it
# out when the library returns. close() puts _CLOSED at the head of that list, so every later call
# raises ClosedError before touching the pointer, and the pointer is freed only when no call is in
# flight: at once when there is none; when the outermost call returns when close() comes from
# inside one on the same thread (a recompute callback, a transform, a signal handler); otherwise
# close() waits for the other threads' calls to return. list.append/remove and an index are each
# atomic in CPython (under the GIL, and per list on a free-threaded build), and a thread reads the
# head only after its own append, so a call either sees _CLOSED or is seen by whoever frees.
# Cost: a get_ident(), an append, an index and a remove per call (docs/ffi.md).

_CLOSED = object()
_get_ident = threading.get_ident
_swap = threading.Lock()  # held only to take the pointer away and to meet a waiting close()


class _Handle:
    _kind = "handle"
    _h = None      # the library's pointer; None once freed
    _calls = None  # thread ids of calls in flight, _CLOSED first once close() was called
    _done = False  # the pointer was freed
    _ev = None     # set when freed, made by a close() that has to wait

    def _enter(self, what):
        """Register a call in flight on this thread: its id, or ClosedError."""
        me = _get_ident()
        calls = self._calls
        calls.append(me)
        if calls[0] is _CLOSED:
            self._leave(me)
            raise ClosedError(f"{what}: {self._kind} is closed")
        return me

    def _leave(self, me):
        calls = self._calls
        calls.remove(me)
        if calls:
            self._after()

    def _after(self):
        """A call returned with others in flight or a close pending: free if it was the last.
        _CLOSED never leaves the head once there; the list may empty under us, hence the slice."""
        calls = self._calls
        head = calls[:1]
        if head and head[0] is _CLOSED and len(calls) == 1:
            self._finish()

    def _finish(self):
        with _swap:
            h, self._h = self._h, None
        if not h:
            return
        try:
            self._free(h)
        finally:
            with _swap:
                self._done, ev = True, self._ev
            if ev is not None:
                ev.set()

    def close(self):
        """Free the library's object. Calls in flight on other threads are waited for; from
        inside a call on this object (a callback), the outermost call frees it as it returns.
        Every call after close() raises ClosedError. Closing twice does nothing."""
        calls = self._calls
        if calls is None:  # the constructor failed before any pointer
            return
        with _swap:
            if self._done:
                return
            if not calls or calls[0] is not _CLOSED:
                calls.insert(0, _CLOSED)
        if len(calls) == 1:
            self._finish()
            return
        if _get_ident() in calls:
            return  # deferred: this thread is inside a call on this object
        with _swap:
            if self._done:
                return
            if self._ev is None:
                self._ev = threading.Event()
            ev = self._ev
        ev.wait()

    @property
    def closed(self):
        """True once close() was called (the library's object may still be in use by a call
        in flight, and is freed when it returns)."""
        calls = self._calls
        return calls is None or calls[:1] == [_CLOSED]

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: the module's globals may be gone
            pass


def _cb_error(e):
    """The negative code a callback that raised returns to the library."""
    if isinstance(e, Error):
        c = e.code
        if type(c) is int and -(1 << 31) <= c < 0:
            return c
    if isinstance(e, KeyboardInterrupt):
        return -4  # EINTR
    return -5  # EIO: the host failed; the library counts it


def _release(*mvs):
    for mv in mvs:
        try:
            mv.release()
        except BufferError:  # something exported from it: it only reaches our own copy
            pass


class Delta(_Handle):
    """A masked delta for page_id: mask (one byte per page byte, or packed) and payload."""
    _kind = "delta"

    def __init__(self, page_id, mask, payload, flags=0):
        self._calls = []
        m, ml = _buf(mask)
        p, pl = _buf(payload)
        d = _delta_new(page_id, m, ml, p, pl, flags)
        if not d:
            self._calls = None
            raise _errno_error("delta_new")
        self._h = d

    @staticmethod
    def _free(h):
        _delta_free(h)

    def _get(self, fn, what):
        me = _get_ident()  # _enter()/_leave() inlined
        calls = self._calls
        calls.append(me)
        try:
            if calls[0] is _CLOSED:
                raise ClosedError(f"{what}: delta is closed")
            return fn(self._h)
        finally:
            calls.remove(me)
            if calls:
                self._after()

    @property
    def id(self):
        me = _get_ident()  # as _get(), inlined: a frame less
        calls = self._calls
        calls.append(me)
        try:
            if calls[0] is _CLOSED:
                raise ClosedError("delta id: delta is closed")
            return _delta_id(self._h)
        finally:
            calls.remove(me)
            if calls:
                self._after()

    @property
    def epoch(self):
        return self._get(_delta_epoch, "delta epoch")


class State(_Handle):
    """A libmmsb state: pages, graph, propagation, log, checkpoints.

    Usable from several threads (the library serialises calls on the state's mutex). close()
    waits for calls in flight on other threads; from inside a callback it takes effect when the
    outermost call returns. Any call on a closed state raises ClosedError (a ValueError)."""
    _kind = "state"

    def __init__(self, log_path=None, durability=DURABLE_BATCH, log_mode=LOG_CREATE,
                 deferred=False, _handle=None):
        self._callbacks = {}  # ctypes callbacks must outlive their registration
        self._calls = []
        if _handle is not None:
            self._h = _handle
            return
        o = _StateOpts(ctypes.sizeof(_StateOpts), os.fsencode(log_path) if log_path else None,
                       log_mode, durability, LOC_CPU, deferred)
        h = _state_open(ctypes.byref(o))
        if not h:
            self._calls = None
            raise _errno_error(f"state_open {log_path or ''}".strip())
        self._h = h

    def _free(self, h):
        _state_close(h)
        self._callbacks.clear()  # no call in flight: no callback can run any more

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def handle(self):
        """The raw struct mmsb_state * (unguarded: keep the State open while using it)."""
        h = self._h
        if self.closed or not h:
            raise ClosedError("state is closed")
        return h

    def _call(self, fn, what, *args):
        """fn(state, *args) as a call in flight; a negative result raises Error."""
        me = _get_ident()  # _enter()/_leave() inlined: two frames less a call
        calls = self._calls
        calls.append(me)
        try:
            if calls[0] is _CLOSED:
                raise ClosedError(f"{what}: state is closed")
            rc = fn(self._h, *args)
        finally:
            calls.remove(me)
            if calls:
                self._after()
        if rc < 0:
            raise Error(rc, what)
        return rc

    def flush(self):
        self._call(_state_flush, "flush")

    # pages
    def page_create(self, size, loc=LOC_CPU):
        pid = _u64()
        self._call(_page_create, "page_create", size, loc, ctypes.byref(pid))
        return pid.value

    def page_free(self, pid):
        self._call(_page_free, "page_free", pid)

    def page_size(self, pid):
        return self._call(_page_size, "page_size", pid)

    def epoch(self, pid):
        return self._call(_page_epoch, "page_epoch", pid)

    def page_count(self):
        return self._call(_page_count, "page_count")

    def pages(self):
        n = self.page_count()
        ids = (_u64 * max(n, 1))()
        got = self._call(_page_list, "page_list", ids, n)
        return list(ids[:min(got, n)])

    def read(self, pid):
        """The page's bytes, as a new bytearray (one copy: the library's into it)."""
        out = bytearray(self.page_size(pid))
        self.read_into(pid, out)
        return out

    def read_into(self, pid, buf, offset=0):
        """Fill a writable buffer from the page at offset; returns the bytes read."""
        mv = memoryview(buf)
        if mv.readonly or not mv.c_contiguous:
            raise ValueError("read_into needs a writable contiguous buffer")
        p, n = _buf(mv)
        return self._call(_page_read, "page_read", pid, p, n, offset)

    def update(self, pid, data):
        """Replace the page's bytes (len == page size): 1 if it changed, 0 if not."""
        # the hot path calls no other Python function: each would cost a host-side frame
        me = _get_ident()
        calls = self._calls
        calls.append(me)
        try:
            if calls[0] is _CLOSED:
                raise ClosedError("page_update: state is closed")
            if type(data) is bytes:
                rc = _page_update(self._h, pid, data, len(data))
            else:
                p, n = _buf(data)
                rc = _page_update(self._h, pid, p, n)
        finally:
            calls.remove(me)
            if calls:
                self._after()
        if rc < 0:
            raise Error(rc, "page_update")
        return rc

    def write(self, pid, offset, data):
        """Write data at byte offset of the page, logged and propagated like update(): 1 if it
        changed, 0 if not. Its cost is len(data)'s, not the page's."""
        p, n = _buf(data)
        return self._call(_page_write, "page_write", pid, offset, p, n)

    def update_batch(self, writes):
        """[(page_id, data), ...] in one crossing and one wave: the number of pages changed."""
        ws = tuple(writes)  # a snapshot: the list may change under a callback or a thread
        ds = [d for _, d in ws]  # each write's data, alive until the library returns
        n = len(ws)
        if _BYTES_OFF is not None and all(type(d) is bytes for d in ds):
            # every write is bytes: their addresses, packed in one go
            off, pack = _BYTES_OFF, _PAGE_WRITE.pack
            desc = b"".join([pack(w[0], id(d) + off, len(d)) for w, d in zip(ws, ds)])
            arr = ctypes.cast(desc, _PAGE_WRITE_P)
        else:  # any buffer: lent in place through its address
            keep = [_buf(d) for d in ds]
            arr = (_PageWrite * max(n, 1))(*[(w[0], _address(b), ln)
                                             for w, (b, ln) in zip(ws, keep)])
        me = _get_ident()
        calls = self._calls
        calls.append(me)
        try:
            if calls[0] is _CLOSED:
                raise ClosedError("page_update_batch: state is closed")
            rc = _page_update_batch(self._h, arr, n)
        finally:
            calls.remove(me)
            if calls:
                self._after()
        if rc < 0:
            raise Error(rc, "page_update_batch")
        return rc

    def route(self, delta):
        me = _get_ident()
        calls, dcalls = self._calls, delta._calls
        calls.append(me)
        try:
            if calls[0] is _CLOSED:
                raise ClosedError("route: state is closed")
            dcalls.append(me)
            try:
                if dcalls[0] is _CLOSED:
                    raise ClosedError("route: delta is closed")
                rc = _route(self._h, delta._h)
            finally:
                dcalls.remove(me)
                if dcalls:
                    delta._after()
        finally:
            calls.remove(me)
            if calls:
                self._after()
        if rc < 0:
            raise Error(rc, "route")

    def route_batch(self, deltas):
        ds = list(deltas)  # a snapshot: the deltas stay alive and in flight until it returns
        n = len(ds)
        me = _get_ident()
        calls = self._calls
        calls.append(me)
        entered = []  # the deltas' lists of calls in flight that hold `me`
        try:
            if calls[0] is _CLOSED:
                raise ClosedError("route_batch: state is closed")
            for d in ds:
                dc = d._calls
                dc.append(me)
                entered.append(dc)
                if dc[0] is _CLOSED:
                    raise ClosedError("route_batch: delta is closed")
            rc = _route_batch(self._h, (_vp * max(n, 1))(*[d._h for d in ds]), n)
        finally:
            for d, dc in zip(ds, entered):
                dc.remove(me)
                if dc:
                    d._after()
            calls.remove(me)
            if calls:
                self._after()
        if rc < 0:
            raise Error(rc, "route_batch")

    # graph
    def edge_add(self, parent, child, type=EDGE_DATA):
        self._call(_edge_add, "edge_add", parent, child, type)

    def edge_remove(self, parent, child, type=EDGE_ANY):
        self._call(_edge_remove, "edge_remove", parent, child, type)

    def _edges(self, fn, pid, what):
        n = self._call(fn, what, pid, None, 0)
        out = (_Edge * max(n, 1))()
        n = min(self._call(fn, what, pid, out, n), n)
        return [(e.page, e.type) for e in out[:n]]

    def children(self, pid):
        return self._edges(_edge_children, pid, "edge_children")

    def parents(self, pid):
        return self._edges(_edge_parents, pid, "edge_parents")

    def edge_count(self):
        return self._call(_edge_count, "edge_count")

    def toposort(self):
        n = self.page_count()
        out = (_u64 * max(n, 1))()
        return list(out[:min(self._call(_toposort, "graph_toposort", out, n), n)])

    def bfs(self, root):
        n = self.page_count()
        out = (_u64 * max(n, 1))()
        return list(out[:min(self._call(_bfs, "graph_bfs", root, out, n), n)])

    # recompute
    #
    # A callback gets memoryviews of copies, released when it returns: a view it keeps raises
    # ValueError when used, and one derived from it reaches only the copy, never the library's
    # scratch memory. The source of a transform is read-only. The result is copied back only
    # when the callback returns normally; an exception (any BaseException) fails the recompute.
    def set_passthrough(self, target, source, transform=None):
        """target follows source; transform(src: memoryview, dst: memoryview) may rewrite."""
        if transform is None:
            cb = _TRANSFORM()
        else:
            def tramp(src, src_len, dst, dst_len, ctx):
                try:
                    copy = (ctypes.c_uint8 * dst_len)()
                    if dst_len:
                        ctypes.memmove(copy, dst, dst_len)
                    sv = memoryview(ctypes.string_at(src, src_len) if src_len else b"")
                    dv = memoryview(copy).cast("B")
                    try:
                        transform(sv, dv)
                    finally:
                        _release(sv, dv)
                    if dst_len:
                        ctypes.memmove(dst, copy, dst_len)
                    return 0
                except BaseException as e:
                    return _cb_error(e)
            cb = _TRANSFORM(tramp)
        self._call(_set_passthrough, "page_set_passthrough", target, source, cb, None)
        self._callbacks[("pass", target)] = cb

    def set_recompute(self, pid, fn):
        """fn(state, page_id, out: memoryview) fills out; raising makes the recompute fail."""
        def tramp(s, page, out, size, ctx):
            try:
                copy = (ctypes.c_uint8 * size)()
                if size:
                    ctypes.memmove(copy, out, size)
                ov = memoryview(copy).cast("B")
                try:
                    fn(self, page, ov)
                finally:
                    _release(ov)
                if size:
                    ctypes.memmove(out, copy, size)
                return 0
            except BaseException as e:
                return _cb_error(e)
        cb = _RECOMPUTE(tramp) if fn else _RECOMPUTE()
        self._call(_set_recompute, "page_set_recompute", pid, cb, None)
        self._callbacks[("rec", pid)] = cb

    def recompute(self, pid):
        return self._call(_page_recompute, "page_recompute", pid)

    def set_deferred(self, deferred):
        self._call(_set_deferred, "propagate_set_deferred", deferred)

    def propagate_run(self):
        return self._call(_propagate_run, "propagate_run")

    # persistence
    def checkpoint_write(self, path):
        self._call(_ckpt_write, f"checkpoint_write {path}", os.fsencode(path))

    def checkpoint_load(self, path):
        self._call(_ckpt_load, f"checkpoint_load {path}", os.fsencode(path))

    @staticmethod
    def checkpoint_verify(path):
        info = _CkptInfo()
        _check(_ckpt_verify(os.fsencode(path), ctypes.byref(info)), f"checkpoint_verify {path}")
        return {name: getattr(info, name) for name, _ in _CkptInfo._fields_}

    @classmethod
    def replay(cls, log_path, checkpoint=None, to_lsn=0, to_epoch=0, to_timestamp=0):
        """A new state: the log replayed (from a checkpoint), up to the bounds given."""
        o = _ReplayOpts(ctypes.sizeof(_ReplayOpts),
                        os.fsencode(checkpoint) if checkpoint else None, None, to_lsn,
                        to_epoch, to_timestamp)
        h = _replay(os.fsencode(log_path), ctypes.byref(o))
        if not h:
            raise _errno_error(f"replay {log_path}")
        return cls(_handle=h)

    def diverge(self, other):
        d = _Divergence()
        if not isinstance(other, State):
            raise TypeError("diverge needs another State")
        me = self._enter("state_diverge")
        try:
            ome = other._enter("state_diverge")
            try:
                rc = _diverge(self._h, other._h, ctypes.byref(d))
            finally:
                other._leave(ome)
        finally:
            self._leave(me)
        _check(rc, "state_diverge")
        return {name: getattr(d, name) for name, _ in _Divergence._fields_}

    def verify(self):
        """Replay the state's own log and compare: True when identical."""
        d = _Divergence()
        return self._call(_verify, "state_verify", ctypes.byref(d)) == 0
