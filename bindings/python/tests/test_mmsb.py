# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Tests of the ctypes binding: every bound operation, and errors crossing the boundary.

Run: python3 bindings/python/tests/test_mmsb.py   (TAP on stdout; MMSB_LIB picks the library)
"""
import array
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import mmsb  # noqa: E402


class Pages(unittest.TestCase):
    def setUp(self):
        self.s = mmsb.State()

    def tearDown(self):
        self.s.close()

    def test_create_read_free(self):
        a = self.s.page_create(64)
        self.assertEqual(self.s.page_size(a), 64)
        self.assertEqual(self.s.read(a), bytearray(64))
        self.assertEqual(self.s.epoch(a), 0)
        self.assertEqual(self.s.pages(), [a])
        self.assertEqual(self.s.page_count(), 1)
        self.s.page_free(a)
        self.assertEqual(self.s.page_count(), 0)

    def test_update_from_any_buffer_without_copies(self):
        a = self.s.page_create(8)
        self.assertEqual(self.s.update(a, b"\x01" * 8), 1)
        self.assertEqual(self.s.update(a, b"\x01" * 8), 0)  # unchanged: no delta
        self.assertEqual(self.s.update(a, bytearray(b"\x02" * 8)), 1)
        self.assertEqual(self.s.update(a, memoryview(bytearray(b"\x03" * 8))), 1)
        self.assertEqual(self.s.update(a, array.array("B", [4] * 8)), 1)
        self.assertEqual(self.s.epoch(a), 4)
        out = bytearray(8)
        self.assertEqual(self.s.read_into(a, out), 8)
        self.assertEqual(out, bytearray(b"\x04" * 8))
        # read_into fills part of a larger buffer through a memoryview, in place
        big = bytearray(12)
        self.assertEqual(self.s.read_into(a, memoryview(big)[2:6], offset=4), 4)
        self.assertEqual(big, bytearray(b"\0\0\x04\x04\x04\x04" + b"\0" * 6))
        with self.assertRaises(ValueError):
            self.s.read_into(a, b"immutable")

    def test_errors_carry_the_library_name(self):
        a = self.s.page_create(8)
        with self.assertRaises(mmsb.Error) as e:
            self.s.update(a, b"short")
        self.assertEqual(e.exception.name, "SIZE_MISMATCH")
        self.assertLess(e.exception.code, 0)
        with self.assertRaises(mmsb.Error) as e:
            self.s.epoch(12345)
        self.assertEqual(e.exception.name, "PAGE_NOT_FOUND")
        with self.assertRaises(mmsb.Error) as e:
            self.s.page_free(12345)
        self.assertEqual(e.exception.name, "PAGE_NOT_FOUND")
        self.assertIn("page_free", str(e.exception))
        self.s.close()
        with self.assertRaises(mmsb.Error) as e:
            self.s.page_count()
        self.assertEqual(e.exception.name, "EINVAL")

    def test_update_batch_one_crossing_one_wave(self):
        a, b, c = (self.s.page_create(4) for _ in range(3))
        self.s.edge_add(a, c)
        self.s.set_passthrough(c, a)
        n = self.s.update_batch([(a, b"\x01\x02\x03\x04"), (b, bytearray(b"\x09" * 4)),
                                 (a, b"\x05" * 4), (b, b"\x09" * 4)])
        self.assertEqual(n, 3)  # the last write changes nothing
        self.assertEqual(self.s.read(c), bytearray(b"\x05" * 4))
        self.assertEqual(self.s.epoch(c), 1)  # one wave
        with self.assertRaises(mmsb.Error) as e:
            self.s.update_batch([(a, b"\0" * 4), (999, b"\0" * 4)])
        self.assertEqual(e.exception.name, "PAGE_NOT_FOUND")
        self.assertEqual(self.s.read(a), bytearray(b"\x05" * 4))  # nothing changed
        self.assertEqual(self.s.update_batch([]), 0)

    def test_deltas_route_and_route_batch(self):
        a, b = self.s.page_create(4), self.s.page_create(4)
        d = mmsb.Delta(a, b"\x01\x00\x00\x01", b"\x07\x00\x00\x08")
        self.s.route(d)
        self.assertEqual(self.s.read(a), bytearray(b"\x07\x00\x00\x08"))
        self.assertEqual(d.epoch, 1)
        self.assertGreater(d.id, 0)
        ds = [mmsb.Delta(a, b"\x00\x01\x00\x00", b"\x00\x02\x00\x00"),
              mmsb.Delta(b, b"\x01\x01\x01\x01", b"\x03\x03\x03\x03")]
        self.s.route_batch(ds)
        self.assertEqual(self.s.read(a), bytearray(b"\x07\x02\x00\x08"))
        self.assertEqual(self.s.read(b), bytearray(b"\x03" * 4))
        # sparse: mask of indexes, payload of just the changed bytes
        sp = mmsb.Delta(b, b"\x00\x01\x00\x00", b"\x09", mmsb.DELTA_SPARSE)
        self.s.route(sp)
        self.assertEqual(self.s.read(b), bytearray(b"\x03\x09\x03\x03"))
        with self.assertRaises(mmsb.Error):
            mmsb.Delta(a, b"\x01\x01", b"\x01")  # dense payload must match the mask
        bad = mmsb.Delta(999, b"\x01", b"\x01")
        with self.assertRaises(mmsb.Error) as e:
            self.s.route_batch([ds[0], bad])
        self.assertEqual(e.exception.name, "PAGE_NOT_FOUND")
        for x in ds + [d, sp, bad]:
            x.close()


class Graph(unittest.TestCase):
    def test_edges_toposort_bfs_and_cycles(self):
        with mmsb.State() as s:
            a, b, c = (s.page_create(1) for _ in range(3))
            s.edge_add(a, b)
            s.edge_add(b, c, mmsb.EDGE_CONTROL)
            self.assertEqual(s.children(a), [(b, mmsb.EDGE_DATA)])
            self.assertEqual(s.parents(c), [(b, mmsb.EDGE_CONTROL)])
            self.assertEqual(s.edge_count(), 2)
            self.assertEqual(s.toposort(), [a, b, c])
            self.assertEqual(s.bfs(a), [a, b, c])
            with self.assertRaises(mmsb.Error) as e:
                s.edge_add(c, a)
            self.assertEqual(e.exception.name, "CYCLE")
            self.assertEqual(s.edge_count(), 2)  # the graph is left as it was
            s.edge_remove(b, c)
            with self.assertRaises(mmsb.Error) as e:
                s.edge_remove(b, c)
            self.assertEqual(e.exception.name, "EDGE_NOT_FOUND")


class Recompute(unittest.TestCase):
    def test_passthrough_with_a_python_transform(self):
        with mmsb.State() as s:
            a, b = s.page_create(4), s.page_create(4)
            s.edge_add(a, b)

            def double(src, dst):
                for i in range(len(src)):
                    dst[i] = (2 * src[i]) & 0xFF
            s.set_passthrough(b, a, double)
            s.update(a, b"\x01\x02\x03\x04")
            self.assertEqual(s.read(b), bytearray(b"\x02\x04\x06\x08"))

    def test_recompute_callback_and_its_errors(self):
        with mmsb.State() as s:
            a, b = s.page_create(2), s.page_create(2)
            s.edge_add(a, b)
            seen = []

            def fill(state, page, out):
                src = state.read(a)
                seen.append(page)
                out[0], out[1] = src[1], src[0]
            s.set_recompute(b, fill)
            s.update(a, b"\x01\x02")
            self.assertEqual(s.read(b), bytearray(b"\x02\x01"))
            self.assertEqual(seen, [b])
            self.assertEqual(s.recompute(b), 0)  # parents unchanged: skipped
            self.assertEqual(seen, [b])

            def fail(state, page, out):
                raise RuntimeError("host failure")
            s.set_recompute(b, fail)
            with self.assertRaises(mmsb.Error) as e:
                s.update(a, b"\x03\x04")  # the Python exception crosses back as EIO
            self.assertEqual(e.exception.name, "EIO")
            self.assertEqual(s.read(b), bytearray(b"\x02\x01"))  # the failed recompute wrote nothing

    def test_deferred_propagation(self):
        with mmsb.State(deferred=True) as s:
            a, b = s.page_create(1), s.page_create(1)
            s.edge_add(a, b)
            s.set_passthrough(b, a)
            s.update(a, b"\x05")
            self.assertEqual(s.read(b), bytearray(b"\x00"))
            s.propagate_run()
            self.assertEqual(s.read(b), bytearray(b"\x05"))
            s.set_deferred(False)
            s.update(a, b"\x06")
            self.assertEqual(s.read(b), bytearray(b"\x06"))


class Persistence(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.log = os.path.join(self.dir.name, "t.tlog")
        self.ckpt = os.path.join(self.dir.name, "t.ckpt")

    def tearDown(self):
        self.dir.cleanup()

    def test_checkpoint_replay_and_verify(self):
        with mmsb.State(log_path=self.log, durability=mmsb.DURABLE_BATCH) as s:
            a = s.page_create(4)
            for i in range(1, 6):
                s.update(a, bytes([i]) * 4)
            s.checkpoint_write(self.ckpt)
            info = mmsb.State.checkpoint_verify(self.ckpt)
            self.assertEqual(info["pages"], 1)
            self.assertTrue(s.verify())
            s.flush()
        with mmsb.State.replay(self.log) as r:
            self.assertEqual(r.read(a), bytearray(b"\x05" * 4))
        with mmsb.State.replay(self.log, to_epoch=3) as r:
            self.assertEqual(r.read(a), bytearray(b"\x03" * 4))
        with mmsb.State() as fresh, mmsb.State.replay(self.log) as r:
            fresh.checkpoint_load(self.ckpt)
            self.assertEqual(fresh.diverge(r)["pages_differing"], 0)

    def test_bad_files_raise_and_change_nothing(self):
        with open(self.ckpt, "wb") as f:
            f.write(b"MMSBSNAP but truncated")
        with self.assertRaises(mmsb.Error) as e:
            mmsb.State.checkpoint_verify(self.ckpt)
        self.assertIn(e.exception.name, ("TRUNCATED", "BAD_VERSION", "CORRUPT", "CHECKSUM"))
        with mmsb.State() as s:
            a = s.page_create(2)
            s.update(a, b"\x01\x02")
            with self.assertRaises(mmsb.Error):
                s.checkpoint_load(self.ckpt)
            self.assertEqual(s.read(a), bytearray(b"\x01\x02"))
        with self.assertRaises(mmsb.Error) as e:
            mmsb.State.replay(os.path.join(self.dir.name, "missing.tlog"))
        self.assertEqual(e.exception.name, "ENOENT")
        with open(self.log, "wb") as f:
            f.write(b"x" * 64)
        with self.assertRaises(mmsb.Error) as e:
            mmsb.State(log_path=self.log)  # refuses to overwrite what is not empty
        self.assertEqual(e.exception.name, "EEXIST")


class Tap(unittest.TextTestResult):
    """TAP lines for tests/run.sh: ok N name / not ok N name."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.n = 0

    def _line(self, test, ok, note=""):
        self.n += 1
        print(f"{'ok' if ok else 'not ok'} {self.n} {test.id().split('.', 1)[1]}{note}",
              flush=True)

    def addSuccess(self, test):
        super().addSuccess(test)
        self._line(test, True)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._line(test, False)

    def addError(self, test, err):
        super().addError(test, err)
        self._line(test, False)

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._line(test, True, f" # SKIP {reason}")


if __name__ == "__main__":
    suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules[__name__])
    print("TAP version 13")
    print(f"1..{suite.countTestCases()}")
    res = unittest.TextTestRunner(resultclass=Tap, stream=sys.stderr, verbosity=0).run(suite)
    sys.exit(0 if res.wasSuccessful() else 1)
