# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Tests of the ctypes binding: every bound operation, and errors crossing the boundary.

Run: python3 bindings/python/tests/test_mmsb.py   (TAP on stdout; MMSB_LIB picks the library)
"""
import array
import os
import subprocess
import sys
import tempfile
import textwrap
import unittest

PKG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, PKG)
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

    def test_write_a_range(self):
        a, b = self.s.page_create(16), self.s.page_create(16)
        self.s.edge_add(a, b)
        self.s.set_passthrough(b, a)
        self.assertEqual(self.s.write(a, 3, b"xyz"), 1)
        self.assertEqual(self.s.write(a, 3, bytearray(b"xyz")), 0)  # unchanged: no delta
        self.assertEqual(self.s.write(a, 15, memoryview(bytearray(b"!"))), 1)
        self.assertEqual(self.s.write(a, 16, b""), 0)
        want = bytearray(16)
        want[3:6] = b"xyz"
        want[15:16] = b"!"
        self.assertEqual(self.s.read(a), want)
        self.assertEqual(self.s.read(b), want)  # propagated
        self.assertEqual(self.s.epoch(a), 2)
        with self.assertRaises(mmsb.Error) as e:
            self.s.write(a, 14, b"abc")  # past the end: nothing changes
        self.assertEqual(e.exception.name, "SIZE_MISMATCH")
        self.assertEqual(self.s.read(a), want)

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


def run_isolated(test, code, timeout=60):
    """Run code in a fresh python3 with the binding, so that a crash (SIGSEGV, abort, heap
    corruption) or a hang is this test's failure, not the runner's end. It prints "done" last."""
    pre = f"import sys; sys.path.insert(0, {PKG!r}); import mmsb\n"
    try:
        r = subprocess.run([sys.executable, "-c", pre + textwrap.dedent(code)],
                           capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        test.fail(f"hung for {timeout} s (a close() waiting forever?)")
    how = f"signal {-r.returncode}" if r.returncode < 0 else f"exit {r.returncode}"
    test.assertEqual(r.returncode, 0, f"{how}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}")
    test.assertTrue(r.stdout.rstrip().endswith("done"), r.stdout + r.stderr)
    test.assertNotIn("Exception ignored", r.stderr)
    return r.stdout


class Lifetime(unittest.TestCase):
    """Misuse of a closed or closing object raises, never crashes (each in its own process)."""

    def test_closed_delta_every_attribute_raises(self):
        run_isolated(self, """
            s = mmsb.State()
            a = s.page_create(4)
            d = mmsb.Delta(a, b"\\x01" * 4, b"\\x02" * 4)
            s.route(d)
            assert d.id > 0 and d.epoch == 1
            d.close()
            d.close()  # twice: nothing
            live = mmsb.Delta(a, b"\\x01" * 4, b"\\x03" * 4)
            for get in (lambda: d.id, lambda: d.epoch, lambda: s.route(d),
                        lambda: s.route_batch([d]), lambda: s.route_batch([live, d])):
                try:
                    get()
                    raise SystemExit("no exception")
                except ValueError as e:
                    assert isinstance(e, mmsb.Error) and e.name == "EINVAL", e
                    assert "delta is closed" in str(e), e
            assert s.read(a) == bytearray(b"\\x02" * 4)  # the refused batch changed nothing
            s.close()
            for get in (lambda: s.page_count(), lambda: s.update(a, bytes(4)), lambda: s.read(a),
                        lambda: s.update_batch([(a, bytes(4))]), lambda: s.route(d),
                        lambda: s.diverge(mmsb.State()), lambda: s.handle, lambda: s.pages()):
                try:
                    get()
                    raise SystemExit("no exception")
                except ValueError as e:
                    assert "closed" in str(e), e
            assert d.closed and s.closed
            print("done")
        """)

    def test_state_close_inside_recompute_callback(self):
        out = run_isolated(self, """
            import gc
            for round in range(200):
                s = mmsb.State()
                a, b, c = s.page_create(64), s.page_create(64), s.page_create(64)
                s.edge_add(a, b)
                s.edge_add(b, c)
                s.set_passthrough(c, b)
                seen = []
                def fill(state, page, out):
                    state.close()          # deferred: the update below is still running
                    try:
                        state.read(a)
                        seen.append("read after close")
                    except Exception as e:
                        seen.append("refused" if isinstance(e, ValueError) else repr(e))
                    out[:] = b"\\x07" * 64  # the wave goes on with a live state
                s.set_recompute(b, fill)
                s.update(a, b"\\x01" * 64)  # before: the wave went on in the freed state
                assert seen == ["refused"], seen
                try:
                    s.page_count()
                    raise SystemExit("usable after close")
                except ValueError:
                    pass
                s.close()
                del s, fill
                gc.collect()
            # and from a transform, which has no state argument but may hold one
            s = mmsb.State()
            a, b = s.page_create(8), s.page_create(8)
            s.edge_add(a, b)
            s.set_passthrough(b, a, lambda src, dst: s.close())
            s.update(a, b"\\x02" * 8)
            try:
                s.read(a)
                raise SystemExit("usable after close")
            except ValueError:
                pass
            assert s.closed
            print("done")
        """)
        self.assertIn("done", out)

    def test_delta_close_inside_callback_of_its_route(self):
        run_isolated(self, """
            s = mmsb.State()
            a, b = s.page_create(4), s.page_create(4)
            s.edge_add(a, b)
            d = mmsb.Delta(a, b"\\x01" * 4, b"\\x05" * 4)
            def fill(state, page, out):
                d.close()  # freed when route() returns
                out[:] = b"\\x09" * 4
            s.set_recompute(b, fill)
            s.route(d)
            assert s.read(b) == bytearray(b"\\x09" * 4)
            try:
                d.id
                raise SystemExit("no exception")
            except ValueError:
                pass
            ds = [mmsb.Delta(a, b"\\x01" * 4, bytes([i]) * 4) for i in range(1, 4)]
            s.set_recompute(b, lambda st, pg, out: [x.close() for x in ds])
            s.route_batch(ds)
            for x in ds:
                try:
                    x.epoch
                    raise SystemExit("usable after close")
                except ValueError:
                    pass
            s.close()
            print("done")
        """)

    def test_callback_buffers_do_not_outlive_the_callback(self):
        run_isolated(self, """
            s = mmsb.State()
            a, b, c = s.page_create(16), s.page_create(16), s.page_create(16)
            s.edge_add(a, b)
            s.edge_add(a, c)
            kept = []
            def fill(state, page, out):
                kept.append(out)
                kept.append(out[2:6])  # a view derived from it
                out[0] = 1
            s.set_recompute(b, fill)
            def tf(src, dst):
                kept.append(src)
                try:
                    src[0] = 9
                    raise SystemExit("the source page was writable")
                except TypeError:
                    pass
                dst[:] = src
            s.set_passthrough(c, a, tf)
            s.update(a, b"\\x03" * 16)
            assert s.read(b)[0] == 1 and s.read(c) == bytearray(b"\\x03" * 16)
            for i in range(100):  # the library reuses its scratch buffer meanwhile
                s.update(a, bytes([i]) * 16)
            for mv in (kept[0], kept[3]):
                try:
                    mv[0] = 0xEE
                    raise SystemExit("a kept view still writes")
                except ValueError:
                    pass
            kept[1][0] = 0xEE  # a derived view reaches only the callback's own copy
            assert 0xEE not in s.read(b)
            # a callback that raises BaseException fails the recompute, nothing is written
            def interrupt(state, page, out):
                out[:] = b"\\xff" * 16
                raise KeyboardInterrupt
            s.set_recompute(b, interrupt)
            before = s.read(b)
            try:
                s.update(a, b"\\x44" * 16)
                raise SystemExit("no exception")
            except mmsb.Error as e:
                assert e.name == "EINTR", e.name
            assert s.read(b) == before
            s.close()
            print("done")
        """)

    def test_close_racing_calls_from_threads(self):
        out = run_isolated(self, """
            import random, threading, time
            rng = random.Random(1)
            ok = refused = other = rounds = 0
            end = time.monotonic() + 1.5
            while time.monotonic() < end:
                rounds += 1
                s = mmsb.State()
                a, b = s.page_create(256), s.page_create(256)
                s.edge_add(a, b)
                s.set_recompute(b, lambda st, pg, out: st.read_into(a, out))
                d = mmsb.Delta(a, b"\\x01" * 256, b"\\x06" * 256)
                bufs = [bytes(256), b"\\x01" * 256]
                counts = [0, 0, 0]
                def hammer(k):
                    for i in range(400):
                        try:
                            (s.update(a, bufs[i & 1]) if k == 0 else
                             s.update_batch([(a, bufs[i & 1]), (b, bufs[i & 1])]) if k == 1 else
                             s.route(d) if k == 2 else
                             (d.id, s.read(b), s.page_count()))
                            counts[0] += 1
                        except ValueError:
                            counts[1] += 1
                        except mmsb.Error as e:
                            # the recompute callback's read refused by a close: its ClosedError
                            # fails the wave and comes out of update() as EINVAL
                            counts[2 if e.name != "EINVAL" else 1] += 1
                ts = [threading.Thread(target=hammer, args=(k,)) for k in range(4)]
                for t in ts:
                    t.start()
                time.sleep(rng.random() * 0.004)
                (d.close() if rounds % 3 == 0 else None)
                s.close()
                d.close()
                for t in ts:
                    t.join()
                assert s.closed and d.closed
                ok += counts[0]; refused += counts[1]; other += counts[2]
            assert ok + refused + other == rounds * 1600
            assert other == 0, other
            assert refused > 0 and ok > 0, (ok, refused)
            print(f"rounds {rounds} ok {ok} refused {refused}")
            print("done")
        """, timeout=120)
        self.assertIn("rounds", out)

    def test_close_waits_for_a_callback_on_another_thread(self):
        run_isolated(self, """
            import threading, time
            s = mmsb.State()
            a, b = s.page_create(4), s.page_create(4)
            s.edge_add(a, b)
            inside, log = threading.Event(), []
            def slow(state, page, out):
                inside.set()
                time.sleep(0.2)
                try:
                    state.read(a)  # close() has begun: new calls are refused...
                    log.append("read after close")
                except ValueError:
                    pass
                out[:] = b"\x02" * 4  # ...but the library's state is alive until we return
                log.append("callback done")
            s.set_recompute(b, slow)
            t = threading.Thread(target=lambda: log.append(s.update(a, b"\\x01" * 4)))
            t.start()
            inside.wait()
            s.close()
            log.append("closed")
            t.join()
            assert log in (["callback done", 1, "closed"], ["callback done", "closed", 1]), log
            print("done")
        """)


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
