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

__all__ = ["Error", "State", "Delta", "version", "LOC_CPU", "LOC_UNIFIED", "EDGE_DATA",
           "EDGE_CONTROL", "EDGE_GPU", "EDGE_COMPILER", "EDGE_ANY", "DURABLE_BATCH",
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


class Delta:
    """A masked delta for page_id: mask (one byte per page byte, or packed) and payload."""

    def __init__(self, page_id, mask, payload, flags=0):
        m, ml = _buf(mask)
        p, pl = _buf(payload)
        self._d = _delta_new(page_id, m, ml, p, pl, flags)
        if not self._d:
            raise _errno_error("delta_new")

    @property
    def id(self):
        return _delta_id(self._d)

    @property
    def epoch(self):
        return _delta_epoch(self._d)

    def close(self):
        if self._d:
            _delta_free(self._d)
            self._d = None

    def __del__(self):
        self.close()


class State:
    """A libmmsb state: pages, graph, propagation, log, checkpoints."""

    def __init__(self, log_path=None, durability=DURABLE_BATCH, log_mode=LOG_CREATE,
                 deferred=False, _handle=None):
        self._callbacks = {}  # ctypes callbacks must outlive their registration
        if _handle is not None:
            self._s = _handle
            return
        o = _StateOpts(ctypes.sizeof(_StateOpts), os.fsencode(log_path) if log_path else None,
                       log_mode, durability, LOC_CPU, deferred)
        self._s = _state_open(ctypes.byref(o))
        if not self._s:
            raise _errno_error(f"state_open {log_path or ''}".strip())

    def close(self):
        if self._s:
            _state_close(self._s)
            self._s = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()

    @property
    def handle(self):
        if not self._s:
            raise Error(-22, "state is closed")
        return self._s

    def flush(self):
        _check(_state_flush(self.handle), "flush")

    # pages
    def page_create(self, size, loc=LOC_CPU):
        pid = _u64()
        _check(_page_create(self.handle, size, loc, ctypes.byref(pid)), "page_create")
        return pid.value

    def page_free(self, pid):
        _check(_page_free(self.handle, pid), "page_free")

    def page_size(self, pid):
        return _check(_page_size(self.handle, pid), "page_size")

    def epoch(self, pid):
        return _check(_page_epoch(self.handle, pid), "page_epoch")

    def page_count(self):
        return _page_count(self.handle)

    def pages(self):
        n = self.page_count()
        ids = (_u64 * max(n, 1))()
        got = _check(_page_list(self.handle, ids, n), "page_list")
        return list(ids[:got])

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
        return _check(_page_read(self.handle, pid, p, n, offset), "page_read")

    def update(self, pid, data):
        """Replace the page's bytes (len == page size): 1 if it changed, 0 if not."""
        # the hot path calls no other Python function: each would cost a host-side frame
        s = self._s
        if not s:
            raise Error(-22, "state is closed")
        if type(data) is bytes:
            rc = _page_update(s, pid, data, len(data))
        else:
            p, n = _buf(data)
            rc = _page_update(s, pid, p, n)
        if rc < 0:
            raise Error(rc, "page_update")
        return rc

    def update_batch(self, writes):
        """[(page_id, data), ...] in one crossing and one wave: the number of pages changed."""
        n = len(writes)
        if _BYTES_OFF is not None and all(type(d) is bytes for _, d in writes):
            # every write is bytes (kept alive by `writes`): their addresses, packed in one go
            off, pack = _BYTES_OFF, _PAGE_WRITE.pack
            desc = b"".join([pack(pid, id(d) + off, len(d)) for pid, d in writes])
            arr = ctypes.cast(desc, _PAGE_WRITE_P)
        else:  # any buffer: lent in place through its address
            keep = [(pid, _buf(data)) for pid, data in writes]
            arr = (_PageWrite * max(n, 1))(*[(pid, _address(b), ln) for pid, (b, ln) in keep])
        rc = _page_update_batch(self._s or self.handle, arr, n)
        if rc < 0:
            raise Error(rc, "page_update_batch")
        return rc

    def route(self, delta):
        rc = _route(self._s or self.handle, delta._d)
        if rc < 0:
            raise Error(rc, "route")

    def route_batch(self, deltas):
        arr = (_vp * max(len(deltas), 1))(*[d._d for d in deltas])
        rc = _route_batch(self._s or self.handle, arr, len(deltas))
        if rc < 0:
            raise Error(rc, "route_batch")

    # graph
    def edge_add(self, parent, child, type=EDGE_DATA):
        _check(_edge_add(self.handle, parent, child, type), "edge_add")

    def edge_remove(self, parent, child, type=EDGE_ANY):
        _check(_edge_remove(self.handle, parent, child, type), "edge_remove")

    def _edges(self, fn, pid, what):
        n = _check(fn(self.handle, pid, None, 0), what)
        out = (_Edge * max(n, 1))()
        n = _check(fn(self.handle, pid, out, n), what)
        return [(e.page, e.type) for e in out[:n]]

    def children(self, pid):
        return self._edges(_edge_children, pid, "edge_children")

    def parents(self, pid):
        return self._edges(_edge_parents, pid, "edge_parents")

    def edge_count(self):
        return _edge_count(self.handle)

    def toposort(self):
        n = self.page_count()
        out = (_u64 * max(n, 1))()
        return list(out[:_check(_toposort(self.handle, out, n), "graph_toposort")])

    def bfs(self, root):
        n = self.page_count()
        out = (_u64 * max(n, 1))()
        return list(out[:_check(_bfs(self.handle, root, out, n), "graph_bfs")])

    # recompute
    def set_passthrough(self, target, source, transform=None):
        """target follows source; transform(src: memoryview, dst: memoryview) may rewrite."""
        if transform is None:
            cb = _TRANSFORM()
        else:
            def tramp(src, src_len, dst, dst_len, ctx):
                try:
                    transform(memoryview((ctypes.c_uint8 * src_len).from_address(
                        ctypes.addressof(src.contents))).cast("B"),
                        memoryview((ctypes.c_uint8 * dst_len).from_address(
                            ctypes.addressof(dst.contents))).cast("B"))
                    return 0
                except Error as e:
                    return e.code
                except Exception:
                    return -5  # EIO: the host failed; the library counts it
            cb = _TRANSFORM(tramp)
        _check(_set_passthrough(self.handle, target, source, cb, None), "page_set_passthrough")
        self._callbacks[("pass", target)] = cb

    def set_recompute(self, pid, fn):
        """fn(state, page_id, out: memoryview) fills out; raising makes the recompute fail."""
        def tramp(s, page, out, size, ctx):
            try:
                fn(self, page, memoryview((ctypes.c_uint8 * size).from_address(
                    ctypes.addressof(out.contents))).cast("B"))
                return 0
            except Error as e:
                return e.code
            except Exception:
                return -5
        cb = _RECOMPUTE(tramp) if fn else _RECOMPUTE()
        _check(_set_recompute(self.handle, pid, cb, None), "page_set_recompute")
        self._callbacks[("rec", pid)] = cb

    def recompute(self, pid):
        return _check(_page_recompute(self.handle, pid), "page_recompute")

    def set_deferred(self, deferred):
        _check(_set_deferred(self.handle, deferred), "propagate_set_deferred")

    def propagate_run(self):
        return _check(_propagate_run(self.handle), "propagate_run")

    # persistence
    def checkpoint_write(self, path):
        _check(_ckpt_write(self.handle, os.fsencode(path)), f"checkpoint_write {path}")

    def checkpoint_load(self, path):
        _check(_ckpt_load(self.handle, os.fsencode(path)), f"checkpoint_load {path}")

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
        _check(_diverge(self.handle, other.handle, ctypes.byref(d)), "state_diverge")
        return {name: getattr(d, name) for name, _ in _Divergence._fields_}

    def verify(self):
        """Replay the state's own log and compare: True when identical."""
        d = _Divergence()
        return _check(_verify(self.handle, ctypes.byref(d)), "state_verify") == 0
